"""Several remote-sandboxed tasks in one run (test_mf_remote.py, the run's
sandbox pool). Each `work` task holds a marker file in its sandbox's /tmp
while it runs: a second task in the same sandbox at the same time would find
it and fail. Each also records which task directories of its step it finds
in the sandbox's copy of the datastore (its own only, if the task before it
in that sandbox left nothing behind). --fail N: task N raises; --sleep-at N:
task N prints POOL-SLEEPING and sleeps 120 s (for an interrupt)."""

import os
import tempfile
import time

from metaflow import FlowSpec, Parameter, current, step


class PoolFlow(FlowSpec):
    width = Parameter("width", default=6, type=int)
    fail = Parameter("fail", default=-1, type=int)
    sleep_at = Parameter("sleep-at", default=-1, type=int)

    @step
    def start(self):
        self.items = list(range(self.width))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        busy = os.path.join(tempfile.gettempdir(), "pool-flow-busy")
        # FileExistsError if another task uses this sandbox right now.
        fd = os.open(busy, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            # (The trampoline sets MF_DATASTORE_ROOT; a task started by
            # sandbox_remote has Metaflow's own setting only.)
            root = os.environ.get("MF_DATASTORE_ROOT") or os.path.join(
                os.environ.get("METAFLOW_DATASTORE_SYSROOT_LOCAL", ""), ".metaflow"
            )
            step_dir = os.path.join(root, current.flow_name, current.run_id, "work")
            names = os.listdir(step_dir) if os.path.isdir(step_dir) else []
            self.seen = sorted(n for n in names if not n.startswith("_"))
            self.task = current.task_id
            if self.input == self.sleep_at:
                print("POOL-SLEEPING", flush=True)
                time.sleep(120)
            time.sleep(0.3)
            if self.input == self.fail:
                raise RuntimeError("task %d fails on purpose" % self.input)
        finally:
            os.close(fd)
            os.unlink(busy)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.tasks = sorted(inp.task for inp in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    PoolFlow()

"""A hostile step: it tries to write, in the local datastore its sandbox
mounts, files that are not its own task's: another flow's task data,
metadata, blob and card, another run's of its own flow, its run's own
metadata and a task of its run that has not run (--victims lists the
paths, separated by commas, {run} for its run). Run with --with sandbox:
every attempt must fail, and the step's own artifacts must still be
stored."""

import os

from metaflow import FlowSpec, Parameter, current, step


def attack(paths):
    written = 0
    for path in paths:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write("poisoned by a sandboxed step\n")
            written += 1
        except OSError:
            pass
    return written


class HostileDatastoreFlow(FlowSpec):
    victims = Parameter("victims", default="")

    @step
    def start(self):
        root = os.path.join(os.environ["METAFLOW_DATASTORE_SYSROOT_LOCAL"], ".metaflow")
        rel = [r.replace("{run}", current.run_id) for r in self.victims.split(",") if r]
        written = attack([os.path.join(root, r) for r in rel])
        # And through the working directory's .metaflow (the cards' way).
        if os.path.isdir(".metaflow"):
            written += attack([os.path.join(".metaflow", r) for r in rel])
        print("HOSTILE-DS-WRITTEN %d" % written)
        self.payload = os.urandom(4096)
        self.next(self.end)

    @step
    def end(self):
        self.more = [os.urandom(64) for _ in range(4)]
        print("HOSTILE-DS-END %d" % len(self.payload))


if __name__ == "__main__":
    HostileDatastoreFlow()

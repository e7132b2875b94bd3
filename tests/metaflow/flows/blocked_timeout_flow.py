"""@timeout on a sandboxed step that waits for a command it started, in C
where Python's signal handler cannot run (os.system), while a child of the
step runs on beside it (METAFLOW_TEST_MARK in their command lines)."""

import os
import subprocess

from metaflow import FlowSpec, catch, retry, sandbox, step, timeout


class BlockedTimeoutFlow(FlowSpec):
    @sandbox
    @catch(var="failure")
    @retry(times=1)
    @timeout(seconds=3)
    @step
    def start(self):
        from metaflow import current

        mark = os.environ["METAFLOW_TEST_MARK"]
        subprocess.Popen(["sh", "-c", "sleep 600; : %s" % mark])
        print("BLOCKED-STARTED attempt %d" % current.retry_count, flush=True)
        os.system("sleep 600; : %s" % mark)
        print("BLOCKED-WAIT-RETURNED", flush=True)
        self.next(self.end)

    @step
    def end(self):
        print("CAUGHT", getattr(self.failure, "type", None))


if __name__ == "__main__":
    BlockedTimeoutFlow()

"""@timeout on a sandboxed step that waits for a command it started, in C
where Python's signal handler cannot run (os.system), while a child of the
step runs on beside it (METAFLOW_TEST_MARK in their command lines); and on
one that catches the timeout and then runs a command past its limit."""

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
        self.next(self.swallow)

    @sandbox
    @timeout(seconds=3)
    @step
    def swallow(self):
        """Catches the timeout and goes on: what it starts then runs to its
        end, as without the sandbox."""
        import time

        try:
            time.sleep(60)
        except Exception as ex:
            print("SWALLOWED", type(ex).__name__, flush=True)
        os.system("sleep 4; echo SWALLOW-COMMAND-DONE")
        self.next(self.end)

    @step
    def end(self):
        print("CAUGHT", getattr(self.failure, "type", None))


if __name__ == "__main__":
    BlockedTimeoutFlow()

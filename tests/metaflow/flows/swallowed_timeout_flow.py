"""A sandboxed step that catches @timeout's exception and then waits in
os.system past its limit: only the sandbox's backstop (60 s after the
limit) ends it, and @catch takes the failed attempt."""

import os

from metaflow import FlowSpec, catch, sandbox, step, timeout


class SwallowedTimeoutFlow(FlowSpec):
    @sandbox
    @catch(var="failure")
    @timeout(seconds=3)
    @step
    def start(self):
        import time

        try:
            time.sleep(60)
        except Exception as ex:
            print("SWALLOWED", type(ex).__name__, flush=True)
        os.system("sleep 300; : %s" % os.environ["METAFLOW_TEST_MARK"])
        self.next(self.end)

    @step
    def end(self):
        print("CAUGHT", getattr(self.failure, "type", None))


if __name__ == "__main__":
    SwallowedTimeoutFlow()

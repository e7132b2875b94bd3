"""@retry (the first attempt fails), @catch, and a step that fails while
METAFLOW_TEST_FAIL=1 (for resume). Run with --with sandbox."""

import os
import platform

from metaflow import FlowSpec, catch, current, retry, step


class RetrySandboxFlow(FlowSpec):
    @step
    def start(self):
        self.start_host = platform.node()
        self.next(self.flaky)

    @retry(times=1, minutes_between_retries=0)
    @step
    def flaky(self):
        print("flaky attempt %d on %s" % (current.retry_count, platform.node()))
        if current.retry_count == 0:
            raise RuntimeError("first attempt fails on purpose")
        self.flaky_attempt = current.retry_count
        self.next(self.boom)

    @catch(var="boom_error")
    @step
    def boom(self):
        self.boom_host = platform.node()
        raise ValueError("boom in the sandbox")
        self.next(self.gated)

    @step
    def gated(self):
        if os.environ.get("METAFLOW_TEST_FAIL") == "1":
            raise RuntimeError("gated step fails while METAFLOW_TEST_FAIL=1")
        self.gated_host = platform.node()
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RetrySandboxFlow()

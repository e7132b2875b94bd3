"""@sandbox(timeout=...) without @timeout, with @retry and @catch; and a
shorter timeout= than @timeout's."""

import time

from metaflow import FlowSpec, catch, current, retry, sandbox, step, timeout


class SandboxTimeoutFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.slow)

    # minutes_between_retries=2: the local runtime retries at once anyway.
    @catch(var="slow_error")
    @retry(times=1, minutes_between_retries=2)
    @sandbox(timeout=5)
    @step
    def slow(self):
        print("SLOW-STARTED attempt %d" % current.retry_count, flush=True)
        time.sleep(120)
        self.next(self.both)

    @catch(var="both_error")
    @timeout(seconds=60)
    @sandbox(timeout=4)
    @step
    def both(self):
        print("BOTH-STARTED", flush=True)
        time.sleep(120)
        self.next(self.end)

    @step
    def end(self):
        print("SLOW-ERROR %s" % self.slow_error)
        print("BOTH-ERROR %s" % self.both_error)


if __name__ == "__main__":
    SandboxTimeoutFlow()

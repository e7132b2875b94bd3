"""A sandboxed step that runs longer than its @timeout."""

import time

from metaflow import FlowSpec, sandbox, step, timeout


class TimeoutSandboxFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.slow)

    @sandbox
    @timeout(seconds=5)
    @step
    def slow(self):
        print("TIMEOUT-STEP-STARTED", flush=True)
        time.sleep(300)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TimeoutSandboxFlow()

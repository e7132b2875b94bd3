"""A sandboxed step that runs until it is interrupted."""

import time

from metaflow import FlowSpec, sandbox, step


class SleepSandboxFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.slow)

    @sandbox
    @step
    def slow(self):
        print("SLOW-STEP-STARTED", flush=True)
        time.sleep(120)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SleepSandboxFlow()

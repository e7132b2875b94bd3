"""A sandboxed step that runs until it is interrupted (METAFLOW_TEST_SLEEP
seconds, default 120; 0 for the resume afterwards)."""

import os
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
        time.sleep(int(os.environ.get("METAFLOW_TEST_SLEEP", "120")))
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SleepSandboxFlow()

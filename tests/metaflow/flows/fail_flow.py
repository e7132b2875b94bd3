"""A step that fails (with @retry, whose minutes_between_retries the local
runtime does not wait). Run with --with sandbox."""

from metaflow import FlowSpec, retry, step


class FailSandboxFlow(FlowSpec):
    @retry(times=1, minutes_between_retries=0)
    @step
    def start(self):
        print("FAIL-STEP-RAN", flush=True)
        raise RuntimeError("this step fails on purpose")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FailSandboxFlow()

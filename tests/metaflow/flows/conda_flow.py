"""A step with @conda. Run with --with sandbox (refused before the run)."""

from metaflow import FlowSpec, conda, step


class CondaSandboxFlow(FlowSpec):
    @conda(packages={"six": "1.16.0"})
    @step
    def start(self):
        print("CONDA-STEP-RAN", flush=True)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CondaSandboxFlow()

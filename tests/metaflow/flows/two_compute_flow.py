"""Two compute decorators on one step: rejected before any task runs."""

from metaflow import FlowSpec, e2b, sandbox, step


class TwoComputeSandboxFlow(FlowSpec):
    @sandbox
    @e2b
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TwoComputeSandboxFlow()

"""start on the Daytona backend, end on E2B: without E2B's configuration
the run fails before any task starts (the end step's preflight), after the
runtime began to prepare start's Daytona sandbox."""

from metaflow import FlowSpec, sandbox, step


class TwoBackendsFlow(FlowSpec):
    @sandbox(backend="daytona")
    @step
    def start(self):
        self.next(self.end)

    @sandbox(backend="e2b")
    @step
    def end(self):
        pass


if __name__ == "__main__":
    TwoBackendsFlow()

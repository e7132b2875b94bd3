"""@parallel with @sandbox: rejected before any task runs."""

from metaflow import FlowSpec, parallel, sandbox, step


class ParallelSandboxFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.train, num_parallel=2)

    @sandbox
    @parallel
    @step
    def train(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ParallelSandboxFlow()

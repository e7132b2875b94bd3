"""Foreach with 8 splits and a join using merge_artifacts, all in sandboxes."""

import platform

from metaflow import FlowSpec, sandbox, step


class ForeachSandboxFlow(FlowSpec):
    @sandbox
    @step
    def start(self):
        self.items = list(range(8))
        self.common = "shared"
        self.next(self.square, foreach="items")

    @sandbox(cpu=1)
    @step
    def square(self):
        self.value = self.input * self.input
        self.host = platform.node()
        self.next(self.join)

    @sandbox
    @step
    def join(self, inputs):
        self.values = sorted(inp.value for inp in inputs)
        self.hosts = sorted(inp.host for inp in inputs)
        self.merge_artifacts(inputs, exclude=["value", "host"])
        self.next(self.end)

    @sandbox
    @step
    def end(self):
        self.total = sum(self.values)


if __name__ == "__main__":
    ForeachSandboxFlow()

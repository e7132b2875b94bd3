"""bench: a foreach over BENCH_FOREACH_WIDTH items (default 16)."""

import os

from metaflow import FlowSpec, step


class BenchForeachFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range(int(os.environ.get("BENCH_FOREACH_WIDTH", "16"))))
        self.next(self.square, foreach="items")

    @step
    def square(self):
        self.y = self.input * self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.y for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("total =", self.total)


if __name__ == "__main__":
    BenchForeachFlow()

"""bench: a foreach over --width items (default 16)."""

from metaflow import FlowSpec, Parameter, step


class BenchForeachFlow(FlowSpec):
    width = Parameter("width", default=16, type=int, help="number of foreach tasks")

    @step
    def start(self):
        self.items = list(range(self.width))
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

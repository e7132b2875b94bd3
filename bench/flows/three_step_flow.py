"""bench: a 3-step flow (start -> middle -> end), each step trivial."""

from metaflow import FlowSpec, step


class BenchThreeStepFlow(FlowSpec):
    @step
    def start(self):
        self.x = 1
        self.next(self.middle)

    @step
    def middle(self):
        self.x += 1
        self.next(self.end)

    @step
    def end(self):
        print("x =", self.x)


if __name__ == "__main__":
    BenchThreeStepFlow()

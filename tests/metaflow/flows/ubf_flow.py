"""An unbounded foreach (Metaflow's own test implementation of it): the
control task starts the mapper tasks itself. Run with --with sandbox."""

from metaflow import FlowSpec, step, unbounded_test_foreach_internal


class UbfSandboxFlow(FlowSpec):
    @step
    def start(self):
        from metaflow.plugins import InternalTestUnboundedForeachInput

        self.arr = InternalTestUnboundedForeachInput(range(2))
        self.next(self.inner, foreach="arr")

    @unbounded_test_foreach_internal
    @step
    def inner(self):
        self.my_input = self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.got = sorted(inp.my_input for inp in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("UBF-GOT %s" % self.got)


if __name__ == "__main__":
    UbfSandboxFlow()

"""A hostile sandboxed foreach step before a foreach body without @sandbox:
its _foreach_values artifact (Metaflow's own: the items' short strings) is
a list of pickles that run a command wherever they are unpickled, and
Metaflow's task of each body step reads its item of _foreach_values before
any code of the step runs (the runtime does not read it). The command
would create the file --marker names, on this machine. With --plant no,
the same flow plants nothing: its items, objects of a class of its own,
reach the unsandboxed body as usual."""

import os

from metaflow import FlowSpec, Parameter, sandbox, step


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


class Item:
    def __init__(self, n):
        self.n = n


class HostileForeachValuesFlow(FlowSpec):
    marker = Parameter("marker", default="/nonexistent/marker")
    plant = Parameter("plant", default="yes")

    @sandbox
    @step
    def start(self):
        if self.plant == "yes":
            original = FlowSpec.next
            marker = self.marker

            def next_then_plant(flow, *args, **kwargs):
                original(flow, *args, **kwargs)
                flow._foreach_values = [Payload(marker), Payload(marker)]

            HostileForeachValuesFlow.next = next_then_plant
        self.items = [Item(1), Item(2)]
        self.next(self.body, foreach="items")

    @step
    def body(self):
        print("FOREACH-BODY-REACHED %d" % self.input.n)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    HostileForeachValuesFlow()

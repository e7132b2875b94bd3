"""A hostile step: its _transition artifact is a pickle that runs a command
wherever it is unpickled, and the runtime reads _transition to schedule the
next step. Run with --with sandbox: nothing may run on the launching machine
(the command would create the file --marker names)."""

import os

from metaflow import FlowSpec, Parameter, step


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


class HostileArtifactFlow(FlowSpec):
    marker = Parameter("marker", default="/nonexistent/marker")

    @step
    def start(self):
        original = FlowSpec.next
        marker = self.marker

        def next_then_plant(flow, *args, **kwargs):
            original(flow, *args, **kwargs)
            flow._transition = (["end"], Payload(marker), None)

        HostileArtifactFlow.next = next_then_plant
        self.next(self.end)

    @step
    def end(self):
        print("HOSTILE-END-REACHED")


if __name__ == "__main__":
    HostileArtifactFlow()

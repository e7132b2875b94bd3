"""A hostile step in a remote sandbox: besides its own outputs it writes,
in the sandbox's copy of the datastore, files of another flow and of
another task of its run, which the copy back to the launching machine
would put in the host's datastore (--victim: the other flow's name)."""

import os

from metaflow import FlowSpec, Parameter, current, step


class HostileOutputsFlow(FlowSpec):
    victim = Parameter("victim", default="VictimFlow")

    @step
    def start(self):
        root = self._datastore._storage_impl.datastore_root
        planted = [
            os.path.join(root, self.victim, "1", "end", "2", "DONE.lock"),
            os.path.join(root, current.flow_name, current.run_id, "end", "99", "planted"),
        ]
        for path in planted:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write("planted by a sandboxed step\n")
        print("HOSTILE-OUTPUTS-PLANTED %d" % len(planted))
        self.next(self.end)

    @step
    def end(self):
        print("HOSTILE-OUTPUTS-END")


if __name__ == "__main__":
    HostileOutputsFlow()

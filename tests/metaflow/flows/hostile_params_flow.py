"""A hostile step in a local sandbox (which mounts its flow's blobs
read-write) overwrites the blob of the run's IncludeFile parameter with a
pickle of its own, which calls os.system when it is loaded. The next step
runs on a remote backend, whose task process on the launching machine reads
the run's IncludeFile values (to send the uploads along): it must not run
the pickle."""

import json
import os
import pickle

from metaflow import FlowSpec, IncludeFile, Parameter, current, sandbox, step


class Payload:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class HostileParamsFlow(FlowSpec):
    data = IncludeFile("data", default="data.txt")
    marker = Parameter("marker", default="/nonexistent/marker")

    @sandbox(backend="local")
    @step
    def start(self):
        ds = self._datastore
        root = ds._storage_impl.datastore_root
        packed = ds._ca_store._pack_v1(pickle.dumps(Payload("touch " + self.marker), protocol=4))
        params = os.path.join(root, current.flow_name, current.run_id, "_parameters")
        rewritten = 0
        for task_id in os.listdir(params):
            path = os.path.join(params, task_id, "0.data.json")
            if os.path.exists(path):
                with open(path) as f:
                    key = json.load(f)["objects"]["data"]
                # The blob itself: its content is not checked against its address.
                blob = os.path.join(root, current.flow_name, "data", key[:2], key)
                with open(blob, "wb") as f:
                    f.write(packed.getvalue() if hasattr(packed, "getvalue") else packed)
                rewritten += 1
        print("HOSTILE-PARAMS-REWRITTEN %d" % rewritten)
        self.next(self.end)

    @sandbox(backend="daytona")
    @step
    def end(self):
        print("HOSTILE-PARAMS-END")


if __name__ == "__main__":
    HostileParamsFlow()

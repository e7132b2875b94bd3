"""A hostile step in a local sandbox (which writes its flow's blobs,
<Flow>/data) rewrites the run's code package, stored under its content
address, with a package whose flow file prints a line of its own. A later
run with the same code keeps the blob it finds under that address, and its
tasks (the trampoline extracts the package in each sandbox) would run the
step's code: the runtime must put its own package back."""

import io
import os
import tarfile

from metaflow import FlowSpec, Parameter, step


def poison(url):
    with open(url, "rb") as f:
        original = f.read()
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(original), mode="r:gz") as src:
        with tarfile.open(fileobj=out, mode="w:gz") as dst:
            for member in src:
                data = src.extractfile(member).read() if member.isfile() else None
                if member.name.endswith("hostile_package_flow.py"):
                    data = b'print("HOSTILE-CODE-" + "RAN")\n' + data
                    member.size = len(data)
                dst.addfile(member, io.BytesIO(data) if data is not None else None)
    with open(url, "wb") as f:
        f.write(out.getvalue())


class HostilePackageFlow(FlowSpec):
    poison = Parameter("poison", default=False, type=bool)

    @step
    def start(self):
        url = os.environ.get("METAFLOW_CODE_URL", "")
        if self.poison and url:
            poison(url)
            print("HOSTILE-PACKAGE-POISONED")
        self.next(self.end)

    @step
    def end(self):
        print("HOSTILE-PACKAGE-END")


if __name__ == "__main__":
    HostilePackageFlow()

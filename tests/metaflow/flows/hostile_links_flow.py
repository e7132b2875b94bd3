"""A hostile step: it tries to plant, in the local datastore (mounted
read-write in its sandbox), symbolic links to a host directory (--target)
where the runtime and later tasks write (<Flow>/data/<xx>/, a future run's
directory) and FIFOs where they read. Run with --with sandbox: every
attempt must fail, and nothing may ever be written to the target."""

import os

from metaflow import FlowSpec, Parameter, current, step


def plant(root, target):
    flow_dir = os.path.join(root, current.flow_name)
    data = os.path.join(flow_dir, "data")
    os.makedirs(data, exist_ok=True)
    planted = refused = 0
    attempts = [(os.path.join(data, "%02x" % i), "link") for i in range(256)]
    attempts += [(os.path.join(flow_dir, str(int(current.run_id) + i)), "link") for i in (1, 2)]
    attempts += [(os.path.join(data, "%02x" % i, "fifo"), "fifo") for i in range(4)]
    attempts += [(os.path.join(flow_dir, "fifo"), "fifo")]
    for path, kind in attempts:
        if kind == "link" and os.path.lexists(path):
            continue
        try:
            if kind == "link":
                os.symlink(target, path)
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.mkfifo(path)
            planted += 1
        except OSError:
            refused += 1
    return planted, refused


class HostileLinksFlow(FlowSpec):
    target = Parameter("target", default="/nonexistent")

    @step
    def start(self):
        root = os.environ.get("MF_DATASTORE_ROOT") or os.path.join(
            os.environ["METAFLOW_DATASTORE_SYSROOT_LOCAL"], ".metaflow"
        )
        planted, refused = plant(root, self.target)
        # And through the working directory's .metaflow (the cards' way).
        if os.path.isdir(".metaflow"):
            more, refused_more = plant(".metaflow", self.target)
            planted += more
            refused += refused_more
        print("PLANTED %d REFUSED %d" % (planted, refused))
        self.payload = os.urandom(4096)
        self.next(self.end)

    @step
    def end(self):
        self.more = [os.urandom(64) for _ in range(32)]
        print("HOSTILE-LINKS-END")


if __name__ == "__main__":
    HostileLinksFlow()

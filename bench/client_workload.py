"""bench: one client's workload, N x (create, exec echo, upload 1 MiB, download, destroy).

Run by bench/run in its own process (so its CPU time and peak RSS can be read
with os.wait4); prints "wall SECONDS" for the loop alone; with --ops (third
argument) also "op NAME MS", each operation's mean wall time per cycle. CLIENT is one of
libsandbox-daytona, libsandbox-e2b (PyGObject, needs /usr/bin/python3 or a venv
with system site packages), sdk-daytona, sdk-e2b (the official SDKs). The
emulator's environment (DAYTONA_API_URL/KEY, E2B_API_URL/SANDBOX_URL/API_KEY)
comes from the caller.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

PAYLOAD = os.urandom(1 << 20)
OPS: dict[str, float] = {}


@contextmanager
def op(name: str) -> Iterator[None]:
    """Adds the wall time of the block to OPS[name] (printed with --ops)."""
    start = time.monotonic()
    yield
    OPS[name] = OPS.get(name, 0.0) + time.monotonic() - start


def libsandbox_cycle(backend_name: str) -> Callable[[], None]:
    import gi

    gi.require_version("Sandbox", "1.0")
    from gi.repository import Gio, Sandbox

    backend = Sandbox.Backend.new_for_name(backend_name)
    tmp = tempfile.mkdtemp(prefix="bench-client-")
    src = os.path.join(tmp, "payload.bin")
    back = os.path.join(tmp, "back.bin")
    with open(src, "wb") as f:
        f.write(PAYLOAD)

    def cycle() -> None:
        with op("create"):
            inst = backend.create(Sandbox.Spec(), None)
        with op("exec"):
            out = Gio.MemoryOutputStream.new_resizable()
            cmd = Sandbox.Command.new(["echo", "hello"])
            cmd.set_stdout_stream(out)
            r = inst.exec(cmd, None)
            assert r.get_exit_status() == 0
        with op("upload"):
            inst.upload(Gio.File.new_for_path(src), "/tmp/payload.bin", None)
        with op("download"):
            inst.download("/tmp/payload.bin", Gio.File.new_for_path(back), None)
            assert os.path.getsize(back) == len(PAYLOAD)
            os.unlink(back)
        with op("destroy"):
            inst.destroy(None)

    return cycle


def daytona_cycle() -> Callable[[], None]:
    from daytona import Daytona

    client = Daytona()

    def cycle() -> None:
        with op("create"):
            sb = client.create(timeout=60)
        with op("exec"):
            assert sb.process.exec("echo hello").exit_code == 0
        with op("upload"):
            sb.fs.upload_file(PAYLOAD, "/tmp/payload.bin")
        with op("download"):
            assert len(sb.fs.download_file("/tmp/payload.bin")) == len(PAYLOAD)
        with op("destroy"):
            client.delete(sb)

    return cycle


def e2b_cycle() -> Callable[[], None]:
    from e2b import Sandbox

    def cycle() -> None:
        with op("create"):
            sbx = Sandbox.create()
        with op("exec"):
            assert sbx.commands.run("echo hello").exit_code == 0
        with op("upload"):
            sbx.files.write("/tmp/payload.bin", PAYLOAD)
        with op("download"):
            assert len(sbx.files.read("/tmp/payload.bin", format="bytes")) == len(PAYLOAD)
        with op("destroy"):
            sbx.kill()

    return cycle


def main() -> int:
    client, n = sys.argv[1], int(sys.argv[2])
    ops = "--ops" in sys.argv[3:]
    factories: dict[str, Callable[[], Callable[[], None]]] = {
        "libsandbox-daytona": lambda: libsandbox_cycle("daytona"),
        "libsandbox-e2b": lambda: libsandbox_cycle("e2b"),
        "sdk-daytona": daytona_cycle,
        "sdk-e2b": e2b_cycle,
    }
    cycle = factories[client]()
    start = time.monotonic()
    for _ in range(n):
        cycle()
    wall = time.monotonic() - start
    if ops:  # the wall time of each operation, per cycle (ms); the "wall" line stays last
        for name, total in OPS.items():
            print(f"op {name} {1000 * total / n:.1f}")
    print(f"wall {wall:.6f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

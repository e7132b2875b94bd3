"""bench: create -> exec true -> destroy through PyGObject vs raw bwrap, interleaved.

Prints "sample gi US" and "sample bwrap US" lines. The raw bwrap command
line comes from `bench-sandbox bwrap-argv` (the local backend's flags), so
both rows of the table use the same one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

import gi

gi.require_version("Sandbox", "1.0")
from gi.repository import Sandbox  # noqa: E402


def spawn_wait(argv: list[str]) -> None:
    pid = os.posix_spawnp(argv[0], argv, os.environ)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, argv


def main() -> int:
    tool, n = sys.argv[1], int(sys.argv[2])
    tmp = tempfile.mkdtemp(prefix="bench-gi-")
    raw = subprocess.run([tool, "bwrap-argv", tmp], check=True, capture_output=True, text=True)
    bwrap = raw.stdout.rstrip("\n").split("\n")
    backend = Sandbox.Backend.new_for_name("local")
    cmd = Sandbox.Command.new(["true"])

    def lib() -> None:
        inst = backend.create(Sandbox.Spec(), None)
        r = inst.exec(cmd, None)
        assert r.get_exit_status() == 0
        inst.destroy(None)

    lib()
    spawn_wait(bwrap)
    for i in range(n):
        for kind in ("gi", "bwrap") if i % 2 == 0 else ("bwrap", "gi"):
            start = time.monotonic_ns()
            lib() if kind == "gi" else spawn_wait(bwrap)
            print(f"sample {kind} {(time.monotonic_ns() - start) / 1000:.1f}")
    shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())

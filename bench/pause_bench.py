"""bench: how long pause, resume and get_metrics take, N cycles on one sandbox.

Usage: pause_bench.py BACKEND [N]   (default N = 20)

BACKEND is local, e2b or daytona (the remote ones against whatever their
environment points at, e.g. the emulators: tests/emulators/*-emulator print
the variables). The sandbox runs a busy-looping shell while it is paused, so
the local backend has a process to stop. Prints one line per operation:
"op NAME median MS p90 MS". Needs PyGObject (/usr/bin/python3) and the
library (scripts/uninstalled-env from a build tree).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable


def main() -> int:
    import gi

    gi.require_version("Sandbox", "1.0")
    from gi.repository import Sandbox

    backend = Sandbox.Backend.new_for_name(sys.argv[1])
    cycles = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    spec = Sandbox.Spec()
    spec.set_timeout(600)
    instance = backend.create(spec, None)
    times: dict[str, list[float]] = {"pause": [], "resume": [], "get_metrics": []}

    def timed(name: str, call: Callable[[], object]) -> None:
        start = time.monotonic()
        call()
        times[name].append((time.monotonic() - start) * 1000)

    try:
        instance.exec(
            Sandbox.Command.new(
                ["sh", "-c", "setsid sh -c 'while :; do :; done' </dev/null >/dev/null 2>&1 &"]
            ),
            None,
        )
        for _ in range(cycles):
            timed("get_metrics", lambda: instance.get_metrics(None))
            timed("pause", lambda: instance.pause(None))
            timed("resume", lambda: instance.resume(None))
    finally:
        instance.destroy(None)

    for name, values in times.items():
        values.sort()
        p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
        print(f"op {name} median {statistics.median(values):.1f} p90 {p90:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

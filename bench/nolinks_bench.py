"""The cost of a mount without links (SANDBOX_MOUNT_NO_LINKS) on the local
backend: in a sandbox with such a mount every symlink() is made by pid 1
on the command's behalf. Times 1,000 symlink() calls in a directory of
the sandbox (not the mount) with and without a NO_LINKS mount, interleaved
(A B A B ...), and prints the medians per call.

    scripts/uninstalled-env python3 bench/nolinks_bench.py [ROUNDS] [DIR...]

DIR: where the links are made inside the sandbox (default /dev/shm, a
tmpfs, and /tmp, the host disk). Needs sandboxctl on PATH (the build's).
Measures; never asserts a speed.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile

PROBE = """
import os, sys, time
d = sys.argv[1] + '/nolinks-bench'
os.mkdir(d)
t = time.perf_counter()
for i in range(1000):
    os.symlink('/etc', '%s/l%d' % (d, i))
print((time.perf_counter() - t) / 1000 * 1e6)
"""


def one(mount: str | None, where: str) -> float:
    argv = ["sandboxctl", "run", "--backend", "local"]
    if mount:
        argv += ["--mount", mount + ":/data:nolinks"]
    argv += ["--", "/usr/bin/python3", "-c", PROBE, where]
    return float(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    dirs = sys.argv[2:] or ["/dev/shm", "/tmp"]
    mount = tempfile.mkdtemp(prefix="nolinks-bench-")
    try:
        for where in dirs:
            plain, mediated = [], []
            for r in range(rounds):
                for kind in ("plain", "mediated") if r % 2 == 0 else ("mediated", "plain"):
                    if kind == "plain":
                        plain.append(one(None, where))
                    else:
                        mediated.append(one(mount, where))
            p, m = statistics.median(plain), statistics.median(mediated)
            print(
                f"symlink() in {where}: {p:.1f} us without a NO_LINKS mount, "
                f"{m:.1f} us with one ({m / p:.1f}x, n={rounds} x 1000 each)"
            )
    finally:
        shutil.rmtree(mount, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

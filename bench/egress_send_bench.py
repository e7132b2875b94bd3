"""The cost of a send under egress rules on the local backend: with rules,
pid 1 makes every sendto() with a destination, sendmsg() and sendmmsg()
of a command itself, on copies of the socket and the message
(docs/security.md, "Egress rules"). Times 20,000 UDP sendto() calls of 512
bytes to 127.0.0.1 in a sandbox with the network, with rules ("deny all but
127.0.0.1") and without, for two builds interleaved (A B B A per round), and
prints the medians per call.

    /usr/bin/python3 bench/egress_send_bench.py OLD_BUILDDIR NEW_BUILDDIR [ROUNDS]

Runs each build's library through PyGObject (/work/main/.venv's Python, or
$SDK_PYTHON). Measures; never asserts a speed.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

CHILD = """
import sys
import gi
gi.require_version("Sandbox", "1.0")
from gi.repository import Sandbox
LOOP = '''
import socket, time
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.bind(('127.0.0.1', 0))
r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
a = r.getsockname()
d = b'x' * 512
n = 20000
t = time.perf_counter()
for i in range(n):
    s.sendto(d, a)
    if i % 100 == 99:
        try:
            while True:
                r.recv(1024, socket.MSG_DONTWAIT)
        except BlockingIOError:
            pass
print((time.perf_counter() - t) / n * 1e6)
'''
spec = Sandbox.Spec()
spec.set_network(True)
if sys.argv[1] == "rules":
    spec.set_egress_rules(["127.0.0.1"], ["0.0.0.0/0"])
inst = Sandbox.Backend.new_for_name("local").create(spec, None)
try:
    for _ in range(3):
        res = inst.exec(Sandbox.Command.new(["/usr/bin/python3", "-c", LOOP]), None)
        print(bytes(res.get_stdout().get_data()).decode().strip())
finally:
    inst.destroy(None)
"""


def run(builddir: str, mode: str) -> list[float]:
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.path.join(builddir, "libsandbox", ".libs")
    env["GI_TYPELIB_PATH"] = os.path.join(builddir, "introspection")
    env["SANDBOX_EXEC_HELPER"] = os.path.join(builddir, "backends", "local", "sandbox-exec-helper")
    env["GIO_USE_PROXY_RESOLVER"] = "dummy"
    env["GSETTINGS_BACKEND"] = "memory"
    python = os.environ.get("SDK_PYTHON", "/work/main/.venv/bin/python")
    argv = [python, "-c", CHILD, mode]
    out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True)
    return [float(x) for x in out.stdout.split()]


def main() -> None:
    old, new = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for build in (old, new, new, old):
            for mode in ("rules", "none"):
                times.setdefault((build, mode), []).extend(run(build, mode))
    for mode in ("rules", "none"):
        o = statistics.median(times[(old, mode)])
        n = statistics.median(times[(new, mode)])
        count = len(times[(new, mode)])
        print(f"{mode}: old {o:.1f} us, new {n:.1f} us per sendto (new/old {n / o:.2f}, n={count})")


if __name__ == "__main__":
    main()

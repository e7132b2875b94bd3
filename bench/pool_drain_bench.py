#!/usr/bin/env python3
"""The Metaflow extension's end-of-run drain alone: N sandboxes of a
Daytona or E2B emulator listed in a run's pool, destroyed by
sandbox_executor.destroy_pooled (what the runtime calls when the run ends),
timed; the extension of each --tree in turn, interleaved. --rtt-ms puts a
proxy in front of the emulator's API that holds every request that long
before passing it on (a provider's round trip; the loopback has none).

    GI_TYPELIB_PATH=... LD_LIBRARY_PATH=... (scripts/uninstalled-env) \\
      python bench/pool_drain_bench.py --builddir _build --backend e2b \\
      --tree . --tree /tmp/old --sandboxes 16 --rounds 5 [--rtt-ms 50]

Prints one line per round and the medians per tree (seconds).
"""

import argparse
import http.client
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import run_module

CREATE = """
import json, sys
from metaflow_extensions.libsandbox.plugins.sandbox_remote import _load_gi

Gio, GLib, Sandbox = _load_gi()
backend = Sandbox.Backend.new_for_name(sys.argv[1])
print(json.dumps([backend.create(Sandbox.Spec(), None).get_id() for _ in range(int(sys.argv[2]))]))
"""

DRAIN = """
import sys, time
from metaflow_extensions.libsandbox.plugins.sandbox_executor import destroy_pooled

started = time.monotonic()
destroy_pooled(sys.argv[1])
print(time.monotonic() - started)
"""


def delaying_proxy(target: str, rtt_s: float) -> str:
    upstream = urllib.parse.urlsplit(target)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            time.sleep(rtt_s)
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
            hop = ("host", "connection")
            headers = {k: v for k, v in self.headers.items() if k.lower() not in hop}
            conn.request(self.command, self.path, body=body, headers=headers)
            reply = conn.getresponse()
            data = reply.read()
            self.send_response(reply.status)
            for key, value in reply.getheaders():
                if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return "http://127.0.0.1:%d%s" % (server.server_address[1], upstream.path.rstrip("/"))


def run(code: str, args: list, env: dict) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--builddir", type=Path, required=True)
    parser.add_argument("--backend", choices=("daytona", "e2b"), default="e2b")
    parser.add_argument(
        "--tree",
        action="append",
        required=True,
        help="a source tree whose python/ extension drains (repeat to compare)",
    )
    parser.add_argument("--sandboxes", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rtt-ms", type=float, default=0.0)
    cfg = parser.parse_args()

    key = "E2B_API_URL" if cfg.backend == "e2b" else "DAYTONA_API_URL"
    with tempfile.TemporaryDirectory(prefix="bench-drain-") as tmp:
        env = dict(os.environ, SANDBOX_LOCAL_ROOT=os.path.join(tmp, "sbx"))
        with run_module.load().emulator(cfg.builddir.resolve(), cfg.backend, env) as env:
            drain_env = dict(env)
            if cfg.rtt_ms > 0:
                drain_env[key] = delaying_proxy(env[key], cfg.rtt_ms / 1000.0)
            times = {tree: [] for tree in cfg.tree}
            for rnd in range(cfg.rounds):
                order = cfg.tree if rnd % 2 == 0 else list(reversed(cfg.tree))
                for tree in order:
                    py = dict(env, PYTHONPATH=str(Path(tree).resolve() / "python"))
                    ids = json.loads(run(CREATE, [cfg.backend, str(cfg.sandboxes)], py))
                    pool = Path(tmp) / ("pool-%d-%d" % (rnd, cfg.tree.index(tree)))
                    pool.mkdir(mode=0o700)
                    for n, sandbox_id in enumerate(ids):
                        entry = {"backend": cfg.backend, "id": sandbox_id}
                        (pool / ("k-%d.json" % n)).write_text(json.dumps(entry))
                    drain = dict(drain_env, PYTHONPATH=py["PYTHONPATH"])
                    took = float(run(DRAIN, [str(pool)], drain).strip().splitlines()[-1])
                    if pool.exists():
                        raise RuntimeError("the drain left its pool: %s" % sorted(os.listdir(pool)))
                    times[tree].append(took)
                    print("round %d %s: %.3f s" % (rnd, tree, took), flush=True)
            for tree, values in times.items():
                print(
                    "%s: median %.3f s (min %.3f, max %.3f, n=%d)"
                    % (tree, statistics.median(values), min(values), max(values), len(values))
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

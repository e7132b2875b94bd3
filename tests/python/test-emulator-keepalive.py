# libsandbox - the emulators keep a connection alive after a 204 No Content
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A 204 must not end the connection: the real APIs keep it, and clients reuse it.

libsoup 3.2 closed the connection after every 204 without a
"Connection: close" header, so a client that reused it at once (the e2b SDK:
kill, then create) got "connection reset by peer" (bench rows 2d-2f). Each
test sends the request answered by a 204 and then another request on the
same connection, which fails if the emulator closed it.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import unittest
import urllib.parse
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import taptest


def start_emulator(program: str, *args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    builddir = os.environ.get("TOP_BUILDDIR", os.getcwd())
    proc = subprocess.Popen(
        [os.path.join(builddir, "tests", "emulators", program), *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    env: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.strip()
        if line == "READY":
            return proc, env
        key, _, value = line.partition("=")
        env[key] = value
    raise RuntimeError(f"{program} exited before it was ready")


class Client:
    """One HTTP/1.1 connection; every request must reuse it."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.headers = headers
        self.sock: object = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers, **({"Content-Type": "application/json"} if data else {}))
        self.conn.request(method, path, body=data, headers=headers)
        if self.sock is None:
            self.sock = self.conn.sock
        assert self.conn.sock is self.sock, "the client opened a second connection"
        resp = self.conn.getresponse()
        raw = resp.read()
        assert resp.getheader("Connection", "").lower() != "close", f"{method} {path} closes"
        return resp.status, json.loads(raw) if raw else None


class KeepAliveTest(unittest.TestCase):
    def run_emulator(self, program: str, *args: str) -> dict[str, str]:
        proc, env = start_emulator(program, *args)
        self.addCleanup(proc.wait, 30)
        self.addCleanup(proc.terminate)
        return env

    def test_e2b_kill_then_create(self) -> None:
        env = self.run_emulator("e2b-emulator")
        c = Client(env["E2B_API_URL"], {"X-API-Key": env["E2B_API_KEY"]})
        status, sbx = c.request("POST", "/sandboxes", {"templateID": "base"})
        self.assertEqual(status, 201)
        status, _ = c.request("DELETE", f"/sandboxes/{sbx['sandboxID']}")
        self.assertEqual(status, 204)
        status, sbx = c.request("POST", "/sandboxes", {"templateID": "base"})
        self.assertEqual(status, 201)
        self.assertEqual(c.request("DELETE", f"/sandboxes/{sbx['sandboxID']}")[0], 204)

    def test_daytona_session_delete_then_request(self) -> None:
        env = self.run_emulator("daytona-emulator", "--state-delay-ms", "1")
        auth = {"Authorization": f"Bearer {env['DAYTONA_API_KEY']}"}
        api = urllib.parse.urlsplit(env["DAYTONA_API_URL"]).path.rstrip("/")
        c = Client(env["DAYTONA_API_URL"], auth)
        status, sbx = c.request("POST", f"{api}/sandbox", {})
        self.assertIn(status, (200, 201))
        deadline = time.monotonic() + 30
        while sbx["state"] != "started" and time.monotonic() < deadline:
            time.sleep(0.01)
            sbx = c.request("GET", f"{api}/sandbox/{sbx['id']}")[1]
        self.assertEqual(sbx["state"], "started")
        toolbox = f"{api.removesuffix('/api')}/toolbox/{sbx['id']}/process/session"
        self.assertEqual(c.request("POST", toolbox, {"sessionId": "s"})[0], 201)
        self.assertEqual(c.request("DELETE", f"{toolbox}/s")[0], 204)
        status, _ = c.request("GET", f"{api}/sandbox/{sbx['id']}")
        self.assertEqual(status, 200)


if __name__ == "__main__":
    taptest.main()

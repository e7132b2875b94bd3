"""What the conformance tests of every emulator share.

The TAP wrappers (test-daytona-conformance.sh, test-e2b-conformance.sh) put
this directory on PYTHONPATH, so that a test file imports it as
`conformance_util`, as it does emulator_images. A third emulator's tests
take the same helpers:

- `start_emulator`: runs an emulator program and reads the KEY=VALUE lines
  it prints before READY (its URLs and API key);
- `environ`: sets variables for the official SDK, and puts them back after;
- `LoopbackServer`, `loopback_servers`, `reached`: two TCP servers on the
  host's loopback (127.0.0.1 and 127.0.0.2, which the emulators' sandboxes
  share) and which of them a command in a sandbox can talk to, for the
  tests of egress rules.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence

import pytest

FIRST, SECOND = "127.0.0.1", "127.0.0.2"


def start_emulator(
    argv: Sequence[str], env: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Starts the emulator `argv` and returns it with what it printed before
    READY; fails the test when it exits first."""
    process = subprocess.Popen(list(argv), stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    printed: dict[str, str] = {}
    for line in process.stdout:
        line = line.strip()
        if line == "READY":
            return process, printed
        key, _, value = line.partition("=")
        printed[key] = value
    process.wait(10)
    pytest.fail(f"the emulator {argv[0]} exited ({process.returncode}) before it was ready")


@contextlib.contextmanager
def environ(values: Mapping[str, str | None]) -> Iterator[None]:
    """Sets each variable of `values` (None: unsets it) for the duration."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class LoopbackServer:
    """A TCP server on one loopback address that counts its connections and
    answers each with `reached HOST`."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.sendall(f"reached {self.host}\n".encode())
            conn.close()


def loopback_servers() -> Iterator[tuple[LoopbackServer, LoopbackServer]]:
    """A server on FIRST and one on SECOND, closed after: the body of a
    fixture (`yield from loopback_servers()`)."""
    pair = (LoopbackServer(FIRST), LoopbackServer(SECOND))
    try:
        yield pair
    finally:
        for server in pair:
            server.sock.close()


def reached(run: Callable[[str], str], servers: Sequence[LoopbackServer]) -> list[str]:
    """The hosts of `servers` that a shell command in the sandbox can talk to.
    `run` runs a bash command line there and returns its output."""
    found = []
    for server in servers:
        talk = f"(exec 3<>/dev/tcp/{server.host}/{server.port}; head -1 <&3) 2>/dev/null"
        line = run(f"{talk} || echo refused").strip()
        if line == f"reached {server.host}":
            found.append(server.host)
        else:
            assert line == "refused", line
    return found

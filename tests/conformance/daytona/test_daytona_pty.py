"""The official daytona SDK's terminal (PTY) calls against the emulator.

create_pty_session (the create-connect WebSocket, envs in a subprotocol
token), connect_pty_session to a session made over REST with lazyStart,
resize_pty_session (seen by `stty size` inside), list/get info, typed input
echoed by the terminal, Ctrl-C, and kill_pty_session with the exit code the
daemon reports for a killed shell.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from daytona import Daytona, DaytonaError, PtySize, Sandbox
from daytona.handle.pty_handle import PtyHandle


@pytest.fixture
def sandbox(daytona: Daytona) -> Iterator[Sandbox]:
    box = daytona.create(timeout=60)
    yield box
    daytona.delete(box, timeout=60)


def read_until(handle: PtyHandle, needle: bytes, seconds: float = 30) -> bytes:
    """Everything the terminal shows until NEEDLE appears (or the time is up)."""
    seen = b""
    deadline = time.monotonic() + seconds
    while needle not in seen and time.monotonic() < deadline:
        for chunk in handle._handle_events(deadline=min(deadline, time.monotonic() + 1)):
            seen += chunk
            if needle in seen:
                break
    return seen


def test_create_type_resize_exit(sandbox: Sandbox) -> None:
    name = f"pty-{uuid.uuid4().hex[:8]}"
    handle = sandbox.process.create_pty_session(
        id=name, cwd="/tmp", envs={"GREETING": "hello-pty"}, pty_size=PtySize(rows=20, cols=70)
    )
    try:
        assert handle.is_connected()
        handle.send_input('echo "$GREETING in $PWD"; stty size\n')
        seen = read_until(handle, b"20 70")
        assert b"hello-pty in /tmp" in seen
        assert b"20 70" in seen

        info = handle.resize(PtySize(rows=33, cols=101))
        assert (info.rows, info.cols) == (33, 101)
        assert info.active
        handle.send_input("stty size\n")
        assert b"33 101" in read_until(handle, b"33 101")

        listed = {s.id: s for s in sandbox.process.list_pty_sessions()}
        assert listed[name].cols == 101
        assert listed[name].envs["GREETING"] == "hello-pty"
        assert sandbox.process.get_pty_session_info(name).cwd == "/tmp"

        handle.send_input("exit 3\n")
        result = handle.wait(timeout=30)
        assert result.exit_code == 3
        assert name not in [s.id for s in sandbox.process.list_pty_sessions()]
    finally:
        handle.disconnect()


def test_connect_lazy_session_and_kill(sandbox: Sandbox) -> None:
    name = f"lazy-{uuid.uuid4().hex[:8]}"
    toolbox = sandbox.process._api_client
    from daytona_toolbox_api_client import PtyCreateRequest

    toolbox.create_pty_session(PtyCreateRequest(id=name, cols=50, rows=10, lazy_start=True))
    assert not sandbox.process.get_pty_session_info(name).active

    handle = sandbox.process.connect_pty_session(name)
    try:
        assert sandbox.process.get_pty_session_info(name).active
        # Ctrl-C interrupts what runs in the foreground, not the shell.
        handle.send_input("sleep 600\n")
        time.sleep(0.5)
        handle.send_input(b"\x03")
        handle.send_input("echo after-$((40+2))\n")
        assert b"after-42" in read_until(handle, b"after-42")

        handle.kill()
        result = handle.wait(timeout=30)
        assert result.exit_code == 137
        assert result.error == "SIGKILL"
    finally:
        handle.disconnect()
    with pytest.raises(DaytonaError):
        sandbox.process.get_pty_session_info(name)


def test_refusals(sandbox: Sandbox) -> None:
    name = f"dup-{uuid.uuid4().hex[:8]}"
    handle = sandbox.process.create_pty_session(id=name)
    try:
        with pytest.raises(DaytonaError):
            sandbox.process.create_pty_session(id=name)
        with pytest.raises(DaytonaError):
            sandbox.process.resize_pty_session(name, PtySize(rows=10, cols=5000))
    finally:
        handle.kill()
        handle.disconnect()
    with pytest.raises(DaytonaError, match="not found"):
        sandbox.process.connect_pty_session("no-such-terminal")


def test_async_client(emulator: object) -> None:
    """The async SDK (aiohttp's WebSocket client) on the same protocol."""
    from daytona import AsyncDaytona

    async def flow() -> tuple[bytes, int | None]:
        seen = bytearray()
        async with AsyncDaytona() as client:
            box = await client.create(timeout=60)
            try:
                handle = await box.process.create_pty_session(
                    id="async-pty", on_data=seen.extend, pty_size=PtySize(rows=12, cols=34)
                )
                await handle.send_input("stty size; exit 5\n")
                result = await asyncio.wait_for(handle.wait(), 30)
                await handle.disconnect()
                return bytes(seen), result.exit_code
            finally:
                await client.delete(box, timeout=60)

    seen, code = asyncio.run(flow())
    assert b"12 34" in seen
    assert code == 5

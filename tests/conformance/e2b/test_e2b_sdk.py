"""Conformance: the official e2b Python SDK, unmodified, against the emulator.

Every flow here is one a user of the SDK relies on; if the emulator answers
anything the SDK does not expect, a test fails.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from conftest import Emulator
from e2b import (
    AsyncSandbox,
    AuthenticationException,
    CommandExitException,
    FileNotFoundException,
    FilesystemEvent,
    FilesystemEventType,
    FileType,
    NotFoundException,
    Sandbox,
    SandboxException,
    SandboxQuery,
    SandboxState,
    TimeoutException,
)
from e2b.exceptions import SandboxNotRunningException
from e2b.sandbox.commands.command_handle import PtySize


@pytest.fixture(scope="module")
def sandbox(emulator: Emulator) -> Iterator[Sandbox]:
    sbx = Sandbox.create(
        metadata={"suite": "conformance", "run": uuid.uuid4().hex},
        envs={"GREETING": "hello from envs"},
        timeout=120,
    )
    yield sbx
    sbx.kill()


def test_create_with_metadata_and_envs(sandbox: Sandbox) -> None:
    info = sandbox.get_info()
    assert info.sandbox_id == sandbox.sandbox_id
    assert info.metadata["suite"] == "conformance"
    assert info.state.value == "running"
    result = sandbox.commands.run("echo $GREETING; echo $HOME; whoami 2>/dev/null || true")
    assert result.stdout.splitlines()[:2] == ["hello from envs", "/home/user"]
    assert sandbox.is_running()


def test_run_streams_stdout_and_stderr(sandbox: Sandbox) -> None:
    out: list[str] = []
    err: list[str] = []
    result = sandbox.commands.run(
        "for i in 1 2 3; do echo out$i; echo err$i >&2; done",
        on_stdout=out.append,
        on_stderr=err.append,
        envs={"EXTRA": "x"},
        cwd="/tmp",
    )
    assert result.exit_code == 0
    assert "".join(out) == "out1\nout2\nout3\n" == result.stdout
    assert "".join(err) == "err1\nerr2\nerr3\n" == result.stderr


def test_output_is_live(sandbox: Sandbox) -> None:
    # The first line must arrive while the command still runs: only then
    # can it be killed (kill() of a finished command returns False).
    handle = sandbox.commands.run("echo ready; sleep 30", background=True)
    for stdout, _stderr, _pty in handle:
        if stdout and "ready" in stdout:
            break
    assert handle.kill() is True
    with pytest.raises(CommandExitException) as excinfo:
        handle.wait()
    assert excinfo.value.exit_code == -1


def test_nonzero_exit_raises(sandbox: Sandbox) -> None:
    with pytest.raises(CommandExitException) as excinfo:
        sandbox.commands.run("echo partial; echo broken >&2; exit 3")
    assert excinfo.value.exit_code == 3
    assert excinfo.value.stdout == "partial\n"
    assert excinfo.value.stderr == "broken\n"


def test_command_timeout_kills(sandbox: Sandbox) -> None:
    with pytest.raises(TimeoutException):
        sandbox.commands.run("sleep 30; echo done", timeout=1)
    # The process goes with the deadline (envd kills it, not the client).
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        running = [p for p in sandbox.commands.list() if "sleep 30" in " ".join(p.args)]
        if not running:
            break
        time.sleep(0.1)
    assert running == []


def test_background_command_then_kill(sandbox: Sandbox) -> None:
    handle = sandbox.commands.run("sleep 60", background=True)
    assert handle.pid in [p.pid for p in sandbox.commands.list()]
    assert sandbox.commands.kill(handle.pid) is True
    with pytest.raises(CommandExitException) as excinfo:
        handle.wait()
    assert excinfo.value.exit_code == -1
    assert sandbox.commands.kill(handle.pid) is False


def test_connect_to_running_command(sandbox: Sandbox) -> None:
    handle = sandbox.commands.run("sleep 1; echo later", background=True)
    handle.disconnect()
    again = sandbox.commands.connect(handle.pid)
    result = again.wait()
    assert result.stdout == "later\n"


def test_stdin(sandbox: Sandbox) -> None:
    handle = sandbox.commands.run("cat", background=True, stdin=True)
    sandbox.commands.send_stdin(handle.pid, "line one\n")
    handle.send_stdin("line two\n")
    handle.close_stdin()
    assert handle.wait().stdout == "line one\nline two\n"


def _pty_read_until(
    events: Iterator[tuple[object, object, bytes | None]], seen: bytearray, needle: bytes
) -> None:
    """Reads the PTY's output until NEEDLE has shown."""
    while needle not in seen:
        try:
            _, _, pty = next(events)
        except Exception as error:
            raise AssertionError(f"{needle!r} never came: {bytes(seen)!r}") from error
        if pty is not None:
            seen.extend(pty)


# The terminal echoes what is typed: the markers waited for are computed by
# the shell ($((…))), so that the echo of the typed line never matches them.
def test_pty_size_input_resize(sandbox: Sandbox) -> None:
    handle = sandbox.pty.create(PtySize(rows=33, cols=101), timeout=60)
    events = iter(handle)
    seen = bytearray()
    sandbox.pty.send_stdin(handle.pid, b"stty size; tty; test -t 0 && echo $((40+2))-tty\n")
    _pty_read_until(events, seen, b"42-tty\r\n")
    assert b"33 101\r\n" in seen
    assert b"/dev/pts/" in seen
    sandbox.pty.resize(handle.pid, PtySize(rows=40, cols=120))
    sandbox.pty.send_stdin(handle.pid, b"stty size; echo $((40+3))-sized\n")
    _pty_read_until(events, seen, b"43-sized\r\n")
    assert b"40 120\r\n" in seen
    # An interactive read: what is typed is echoed, then read.
    sandbox.pty.send_stdin(handle.pid, b"read x; echo got-$x\n")
    sandbox.pty.send_stdin(handle.pid, b"typed\n")
    _pty_read_until(events, seen, b"got-typed\r\n")
    sandbox.pty.send_stdin(handle.pid, b"exit\n")
    for _ in events:
        pass
    assert handle.wait().exit_code == 0


def test_pty_ctrl_c_then_kill(sandbox: Sandbox) -> None:
    handle = sandbox.pty.create(PtySize(rows=24, cols=80), timeout=60)
    events = iter(handle)
    seen = bytearray()
    # Ctrl-C ends the foreground command (SIGINT: 130), not the shell.
    sandbox.pty.send_stdin(handle.pid, b"sh -c 'echo $((40+5))-sleeping; exec sleep 600'\n")
    _pty_read_until(events, seen, b"45-sleeping\r\n")
    sandbox.pty.send_stdin(handle.pid, b"\x03")
    sandbox.pty.send_stdin(handle.pid, b"echo $((40+6))-back-$?\n")
    _pty_read_until(events, seen, b"46-back-130\r\n")
    assert sandbox.pty.kill(handle.pid) is True
    with pytest.raises(CommandExitException) as excinfo:
        handle.wait()
    assert excinfo.value.exit_code == -1
    assert sandbox.pty.kill(handle.pid) is False


def test_invalid_cwd(sandbox: Sandbox) -> None:
    with pytest.raises(Exception) as excinfo:
        sandbox.commands.run("true", cwd="/home/user/does/not/exist")
    assert "does not exist" in str(excinfo.value)


def test_files(sandbox: Sandbox) -> None:
    files = sandbox.files
    info = files.write("/home/user/dir/a.txt", "alpha")
    assert info.path == "/home/user/dir/a.txt"
    assert files.read("/home/user/dir/a.txt") == "alpha"
    assert files.read("dir/a.txt", format="bytes") == b"alpha"
    files.write_files(
        [
            {"path": "/home/user/dir/b.bin", "data": b"\x00\x01\x02"},
            {"path": "/tmp/c.txt", "data": "gamma"},
        ]
    )
    assert files.read("/home/user/dir/b.bin", format="bytes") == b"\x00\x01\x02"
    assert sandbox.commands.run("cat /tmp/c.txt").stdout == "gamma"

    assert files.make_dir("/home/user/dir/sub") is True
    assert files.make_dir("/home/user/dir/sub") is False
    entries = {e.name: e for e in files.list("/home/user/dir")}
    assert set(entries) == {"a.txt", "b.bin", "sub"}
    assert entries["sub"].type == FileType.DIR
    assert entries["a.txt"].type == FileType.FILE and entries["a.txt"].size == 5
    deep = files.list("/home/user", depth=2)
    assert "/home/user/dir/sub" in [e.path for e in deep]

    assert files.exists("/home/user/dir/a.txt")
    assert files.get_info("/home/user/dir/a.txt").size == 5
    files.rename("/home/user/dir/a.txt", "/home/user/dir/renamed.txt")
    assert not files.exists("/home/user/dir/a.txt")
    files.remove("/home/user/dir")
    assert not files.exists("/home/user/dir")
    with pytest.raises(NotFoundException):
        files.read("/home/user/dir/renamed.txt")


def test_list_order_is_the_services(sandbox: Sandbox) -> None:
    """ListDir walks as envd does: each directory sorted by name, a
    directory followed by what is in it."""
    files = sandbox.files
    base = f"/home/user/order-{uuid.uuid4().hex[:6]}"
    for path in ("zeta", "beta/b2", "beta/b1", "alpha"):
        files.make_dir(f"{base}/{path}")
    files.write(f"{base}/Upper.txt", "u")
    files.write(f"{base}/gamma.txt", "g")
    assert [e.name for e in files.list(base)] == [
        "Upper.txt",
        "alpha",
        "beta",
        "gamma.txt",
        "zeta",
    ]
    assert [e.path.removeprefix(base + "/") for e in files.list(base, depth=2)] == [
        "Upper.txt",
        "alpha",
        "beta",
        "beta/b1",
        "beta/b2",
        "gamma.txt",
        "zeta",
    ]
    files.remove(base)


def test_symlinks_are_what_they_lead_to(sandbox: Sandbox) -> None:
    """get_info and list type a symlink as its target and give the absolute
    path it leads to; a plain entry has no symlink_target."""
    files = sandbox.files
    base = f"/home/user/links-{uuid.uuid4().hex[:6]}"
    files.write(f"{base}/data/file.txt", "content")
    sandbox.commands.run(
        "ln -s file.txt data/to-file && ln -s data to-dir && ln -s to-dir/to-file chain",
        cwd=base,
    )
    to_file = files.get_info(f"{base}/data/to-file")
    assert to_file.type == FileType.FILE
    assert to_file.name == "to-file"
    assert to_file.path == f"{base}/data/to-file"
    assert to_file.symlink_target == f"{base}/data/file.txt"
    to_dir = files.get_info(f"{base}/to-dir")
    assert to_dir.type == FileType.DIR
    assert to_dir.symlink_target == f"{base}/data"
    assert files.get_info(f"{base}/chain").symlink_target == f"{base}/data/file.txt"
    plain = files.get_info(f"{base}/data/file.txt")
    assert plain.type == FileType.FILE and plain.symlink_target is None
    listed = {e.name: e for e in files.list(base, depth=3)}
    # A symlinked directory is not walked into.
    assert set(listed) == {"chain", "data", "file.txt", "to-dir", "to-file"}
    assert listed["to-dir"].type == FileType.DIR
    assert listed["to-file"].symlink_target == f"{base}/data/file.txt"
    files.remove(base)


def test_watch_dir(sandbox: Sandbox) -> None:
    """watch_dir reports what happens in the directory, whether the file API
    or a command in the sandbox did it, named relative to the directory."""
    files = sandbox.files
    base = f"/home/user/watched-{uuid.uuid4().hex[:6]}"
    files.make_dir(f"{base}/old")
    handle = files.watch_dir(base, include_entry=True)
    files.write(f"{base}/new.txt", "first")
    events = handle.get_new_events()
    assert len(events) == 3, events
    assert (events[0].type, events[0].name) == (FilesystemEventType.CREATE, "new.txt")
    write = [e for e in events if e.type == FilesystemEventType.WRITE]
    assert [e.name for e in write] == ["new.txt"]
    assert write[0].entry is not None and write[0].entry.path == f"{base}/new.txt"

    sandbox.commands.run("mv new.txt moved.txt && rm -r old && echo x >> moved.txt", cwd=base)
    seen = [(e.type, e.name) for e in handle.get_new_events()]
    assert (FilesystemEventType.RENAME, "new.txt") in seen
    assert (FilesystemEventType.CREATE, "moved.txt") in seen
    assert (FilesystemEventType.REMOVE, "old") in seen
    assert (FilesystemEventType.WRITE, "moved.txt") in seen
    assert handle.get_new_events() == []
    handle.stop()
    with pytest.raises(SandboxException):
        handle.get_new_events()

    # Recursive: directories made later are watched too.
    deep = files.watch_dir(base, recursive=True)
    files.make_dir(f"{base}/sub")
    files.write(f"{base}/sub/inner.txt", "inner")
    seen = [(e.type, e.name) for e in deep.get_new_events()]
    assert (FilesystemEventType.CREATE, "sub") in seen
    assert (FilesystemEventType.WRITE, "sub/inner.txt") in seen
    deep.stop()
    # Without recursive, what happens below is not reported.
    flat = files.watch_dir(base)
    files.write(f"{base}/sub/inner.txt", "again")
    assert flat.get_new_events() == []
    flat.stop()

    with pytest.raises(FileNotFoundException):
        files.watch_dir(f"{base}/missing")
    files.remove(base)


def test_watch_dir_stream(emulator: Emulator) -> None:
    """The async SDK's watch_dir: events pushed over a WatchDir stream to
    on_event, until stop."""

    async def flow() -> list[tuple[FilesystemEventType, str]]:
        sbx = await AsyncSandbox.create(timeout=60)
        try:
            seen: list[tuple[FilesystemEventType, str]] = []
            wrote = asyncio.Event()

            def on_event(event: FilesystemEvent) -> None:
                seen.append((event.type, event.name))
                if event.type == FilesystemEventType.WRITE:
                    wrote.set()

            await sbx.files.make_dir("streamed")
            handle = await sbx.files.watch_dir("streamed", on_event=on_event, recursive=True)
            await sbx.files.make_dir("streamed/sub")
            await sbx.files.write("streamed/sub/f.txt", "data")
            await asyncio.wait_for(wrote.wait(), 30)
            await handle.stop()
            return seen
        finally:
            await sbx.kill()

    seen = asyncio.run(flow())
    assert (FilesystemEventType.CREATE, "sub") in seen
    assert (FilesystemEventType.CREATE, "sub/f.txt") in seen
    assert (FilesystemEventType.WRITE, "sub/f.txt") in seen


def test_users_and_home_directories(sandbox: Sandbox) -> None:
    """The default user is `user` in /home/user; `root` is there too."""
    default = sandbox.commands.run('echo "$USER $HOME $(pwd) $(whoami) $(stat -c %U .)"')
    assert default.stdout == "user /home/user /home/user user user\n"
    root = sandbox.commands.run('echo "$USER $HOME"', user="root")
    assert root.stdout == "root /root\n"
    sandbox.files.write("relative.txt", "in the home directory")
    assert sandbox.files.read("/home/user/relative.txt") == "in the home directory"
    sandbox.files.remove("relative.txt")


def test_written_files_are_seen_by_commands(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/script.sh", "echo from script\n")
    assert sandbox.commands.run("sh script.sh").stdout == "from script\n"
    sandbox.commands.run("echo made by a command > /home/user/made.txt")
    assert sandbox.files.read("/home/user/made.txt") == "made by a command\n"


def test_list_by_metadata(emulator: Emulator, sandbox: Sandbox) -> None:
    tag = uuid.uuid4().hex
    other = Sandbox.create(metadata={"suite": "conformance-other", "tag": tag}, timeout=60)
    try:
        found = Sandbox.list(query=SandboxQuery(metadata={"tag": tag})).next_items()
        assert [s.sandbox_id for s in found] == [other.sandbox_id]
        found = Sandbox.list(query=SandboxQuery(metadata={"suite": "conformance"})).next_items()
        assert [s.sandbox_id for s in found] == [sandbox.sandbox_id]
        paginator = Sandbox.list(limit=1)
        first = paginator.next_items()
        assert len(first) == 1 and paginator.has_next
        second = paginator.next_items()
        assert {first[0].sandbox_id, second[0].sandbox_id} == {
            sandbox.sandbox_id,
            other.sandbox_id,
        }
    finally:
        other.kill()


def test_list_started_after(sandbox: Sandbox) -> None:
    """started_after keeps the sandboxes started at or after that time."""
    started = sandbox.get_info().started_at
    run = {"suite": "conformance"}
    found = Sandbox.list(query=SandboxQuery(metadata=run, started_after=started)).next_items()
    assert sandbox.sandbox_id in [s.sandbox_id for s in found]
    later = started + timedelta(seconds=1)
    found = Sandbox.list(query=SandboxQuery(metadata=run, started_after=later)).next_items()
    assert sandbox.sandbox_id not in [s.sandbox_id for s in found]


def test_set_timeout_expires(emulator: Emulator) -> None:
    sbx = Sandbox.create(timeout=300)
    before = sbx.get_info().end_at
    sbx.set_timeout(1)
    assert sbx.get_info().end_at < before
    deadline = time.monotonic() + 30
    while sbx.is_running() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not sbx.is_running()
    with pytest.raises(NotFoundException):
        Sandbox.connect(sbx.sandbox_id)


def test_expiry_mid_command_cuts_the_stream(emulator: Emulator) -> None:
    # The service cuts a running command's stream when its sandbox dies; the
    # SDK recognises that (an end event with exit -1 would be a result).
    sbx = Sandbox.create(timeout=2)
    started = time.monotonic()
    with pytest.raises(SandboxNotRunningException):
        sbx.commands.run("echo started; sleep 60")
    assert time.monotonic() - started < 30
    assert not sbx.is_running()


def test_kill(emulator: Emulator) -> None:
    sbx = Sandbox.create()
    assert Sandbox.kill(sbx.sandbox_id) is True
    assert sbx.is_running() is False
    assert sbx.kill() is False
    with pytest.raises(NotFoundException):
        Sandbox.get_info(sbx.sandbox_id)


def test_wrong_api_key(emulator: Emulator) -> None:
    with pytest.raises(AuthenticationException):
        Sandbox.create(api_key="e2b_" + "1" * 40)


def test_nothing_left_running(emulator: Emulator, sandbox: Sandbox) -> None:
    sandbox.kill()
    assert emulator.live() == 0


# --- pause, resume (connect) and metrics -----------------------------------


# A ticker appends the time 20 times a second; paused it cannot, so the
# longest gap between its ticks is at least the pause (no timing of the test).
TICKER = "while :; do date +%s.%N >> /tmp/ticks; sleep 0.05; done"
LONGEST_GAP_MS = (
    "awk 'NR > 1 && $1 - p > m { m = $1 - p } { p = $1 } END { printf \"%d\\n\", m * 1000 }'"
    " /tmp/ticks"
)


def _ticks_after(sbx: Sandbox, than: int) -> int:
    value = 0
    for _ in range(200):
        value = int(sbx.commands.run("cat /tmp/ticks 2>/dev/null | wc -l").stdout.strip())
        if value > than:
            break
        time.sleep(0.05)
    return value


def test_pause_connect_resumes_with_files(emulator: Emulator) -> None:
    sbx = Sandbox.create(metadata={"suite": "conformance-pause"}, timeout=120)
    try:
        sbx.files.write("/home/user/kept.txt", "kept across pause")
        sbx.commands.run(TICKER, background=True)
        assert _ticks_after(sbx, 1) > 1

        assert sbx.pause() is True
        # Pausing again: the service answers 409, the SDK says False.
        assert sbx.pause() is False
        info = Sandbox.get_info(sbx.sandbox_id)
        assert info.state.value == "paused"
        paused = Sandbox.list(query=SandboxQuery(state=[SandboxState.PAUSED])).next_items()
        assert sbx.sandbox_id in [s.sandbox_id for s in paused]
        running = Sandbox.list(query=SandboxQuery(state=[SandboxState.RUNNING])).next_items()
        assert sbx.sandbox_id not in [s.sandbox_id for s in running]
        # The envd of a paused sandbox does not run commands.
        with pytest.raises(Exception):  # noqa: B017 - the SDK raises its own per transport
            sbx.commands.run("true", request_timeout=10)

        time.sleep(2)  # 40 ticks, were the ticker running
        resumed = Sandbox.connect(sbx.sandbox_id, timeout=120)
        assert Sandbox.get_info(sbx.sandbox_id).state.value == "running"
        assert resumed.files.read("/home/user/kept.txt") == "kept across pause"
        # The ticker runs again, and left a gap as long as the pause.
        after = _ticks_after(resumed, 0)
        assert _ticks_after(resumed, after) > after
        assert int(resumed.commands.run(LONGEST_GAP_MS).stdout.strip()) >= 1900
        # connect on a running sandbox is a no-op that returns it.
        assert Sandbox.connect(sbx.sandbox_id).sandbox_id == sbx.sandbox_id
    finally:
        sbx.kill()


def test_paused_sandbox_can_be_killed(emulator: Emulator) -> None:
    sbx = Sandbox.create(timeout=120)
    sbx.pause()
    assert sbx.kill() is True
    listed = Sandbox.list(query=SandboxQuery(state=[SandboxState.PAUSED, SandboxState.RUNNING]))
    assert sbx.sandbox_id not in [s.sandbox_id for s in listed.next_items()]
    with pytest.raises(NotFoundException):
        Sandbox.connect(sbx.sandbox_id)


def test_async_pause_and_connect(emulator: Emulator) -> None:
    async def flow() -> None:
        sbx = await AsyncSandbox.create(timeout=120)
        try:
            await sbx.files.write("/home/user/a.txt", "async")
            assert await sbx.pause() is True
            resumed = await AsyncSandbox.connect(sbx.sandbox_id)
            assert await resumed.files.read("/home/user/a.txt") == "async"
        finally:
            await sbx.kill()

    asyncio.run(flow())


def test_get_metrics(emulator: Emulator) -> None:
    sandbox = Sandbox.create(timeout=120)
    try:
        sandbox.commands.run("head -c 1048576 /dev/zero > /tmp/metrics.bin")
        metrics = sandbox.get_metrics()
        assert len(metrics) >= 1
        last = metrics[-1]
        assert last.cpu_count >= 1
        assert 0 <= last.cpu_used_pct <= 100
        assert 0 < last.mem_used <= last.mem_total
        assert 0 <= last.disk_used <= last.disk_total
        assert last.disk_total > 0
        assert last.timestamp is not None
        # The class method reaches the same endpoint by id.
        assert Sandbox.get_metrics(sandbox.sandbox_id)[-1].cpu_count == last.cpu_count

        # A time range: one that covers the sandbox's life has its sample,
        # one from before it existed has none.
        now = datetime.now(timezone.utc)
        assert len(sandbox.get_metrics(start=now - timedelta(minutes=1), end=now)) >= 1
        before = sandbox.get_metrics(start=now - timedelta(hours=2), end=now - timedelta(hours=1))
        assert before == []
    finally:
        sandbox.kill()


def test_signed_file_urls(emulator: Emulator) -> None:
    """A secured sandbox's download_url/upload_url, signed with its envd token,
    work without any header (a browser, curl); two sandboxes' URLs reach
    their own files; an expired signature is refused with the service's words."""
    import json
    import urllib.error
    import urllib.request

    first = Sandbox.create(timeout=60, secure=True)
    second = Sandbox.create(timeout=60, secure=True)
    try:
        first.files.write("signed.txt", "first's")
        second.files.write("signed.txt", "second's")
        for sbx, expected in ((first, b"first's"), (second, b"second's")):
            with urllib.request.urlopen(sbx.download_url("signed.txt", "user")) as resp:
                assert resp.read() == expected

        upload = urllib.request.Request(
            first.upload_url("uploaded.txt", "user", 60),
            data=b'--b\r\nContent-Disposition: form-data; name="file"; filename="uploaded.txt"\r\n'
            b"\r\nposted\r\n--b--\r\n",
            headers={"Content-Type": "multipart/form-data; boundary=b"},
            method="POST",
        )
        with urllib.request.urlopen(upload) as resp:
            assert resp.status == 200
        assert first.files.read("uploaded.txt") == "posted"

        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(
                first.download_url("signed.txt", "user", use_signature_expiration=-60)
            )
        assert refused.value.code == 401
        assert json.loads(refused.value.read()) == {
            "code": 401,
            "message": "signature is already expired",
        }
    finally:
        first.kill()
        second.kill()


def test_list_order_of_sandboxes_made_in_one_second(emulator: Emulator) -> None:
    """order="asc"/"desc" sorts by start time; sandboxes made back to back
    (the same second) come in the order they were made, as on the service,
    whose start times are finer than a second."""
    tag = uuid.uuid4().hex
    made = [Sandbox.create(metadata={"order-tag": tag}, timeout=60) for _ in range(4)]
    try:
        ids = [s.sandbox_id for s in made]
        query = SandboxQuery(metadata={"order-tag": tag})
        asc = [s.sandbox_id for s in Sandbox.list(query=query, order="asc").next_items()]
        desc = [s.sandbox_id for s in Sandbox.list(query=query, order="desc").next_items()]
        assert asc == ids
        assert desc == ids[::-1]
    finally:
        for sbx in made:
            sbx.kill()

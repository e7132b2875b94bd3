"""The official daytona SDK's own flows against the emulator, unmodified.

Each test fails if the emulator breaks the SDK's expectations: paths,
fields, status codes, error bodies, the log stream framing, multipart.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
from daytona import (
    CodeRunParams,
    CreateSandboxFromImageParams,
    CreateSandboxFromSnapshotParams,
    Daytona,
    DaytonaAuthenticationError,
    DaytonaConfig,
    DaytonaError,
    DaytonaNotFoundError,
    DownloadProgress,
    FileUpload,
    Image,
    ListSandboxesQuery,
    Resources,
    Sandbox,
    SessionExecuteRequest,
)


class Emulator(Protocol):
    """What conftest.py's emulator fixture gives."""

    api_url: str
    api_key: str

    def stats(self) -> dict[str, int]: ...


@pytest.fixture
def sandbox(daytona: Daytona) -> Iterator[Sandbox]:
    sb = daytona.create(
        CreateSandboxFromSnapshotParams(
            labels={"suite": "conformance"}, env_vars={"GREETING": "hello"}
        ),
        timeout=30,
    )
    yield sb
    daytona.delete(sb)


def test_create_from_image_with_labels_env_resources(daytona: Daytona) -> None:
    sb = daytona.create(
        CreateSandboxFromImageParams(
            image="debian:12-slim",
            env_vars={"FOO": "bar"},
            labels={"suite": "conformance", "kind": "image"},
            resources=Resources(cpu=2, memory=2, disk=5),
        ),
        timeout=30,
    )
    try:
        assert sb.state == "started"
        assert sb.labels["kind"] == "image"
        assert sb.labels["code-toolbox-language"] == "python"
        assert (sb.cpu, sb.memory, sb.disk) == (2, 2, 5)
        assert sb.env == {"FOO": "bar"}
        assert sb.toolbox_proxy_url.endswith("/toolbox")
        assert sb.process.exec("echo $FOO").result.strip() == "bar"
    finally:
        daytona.delete(sb)


def test_create_from_image_with_build_logs(daytona: Daytona) -> None:
    """A create that builds an image hands its build log, step by step, to
    on_snapshot_create_logs (the SDK reads build-logs-url, then follows it)."""
    image = Image.base("debian:12-slim").run_commands("echo one", "echo two").env({"K": "v"})
    logs: list[str] = []
    sb = daytona.create(
        CreateSandboxFromImageParams(image=image),
        timeout=60,
        on_snapshot_create_logs=logs.append,
    )
    try:
        assert sb.state == "started"
        text = "\n".join(logs)
        steps = [line for line in text.splitlines() if line.startswith("Step ")]
        assert steps[0] == "Step 1/4 : FROM debian:12-slim"
        assert steps[-1].startswith("Step 4/4 : ENV")
        assert text.splitlines()[-1].startswith("Successfully built")
    finally:
        daytona.delete(sb)


def test_build_logs_follow_until_the_build_ends(daytona: Daytona, emulator: Emulator) -> None:
    """build-logs-url?follow=true stays open while the image builds and ends
    with the build; without follow it gives the log so far."""
    headers = {
        "Authorization": f"Bearer {emulator.api_key}",
        "Content-Type": "application/json",
    }
    dockerfile = "FROM debian:12-slim\n" + "".join(f"RUN echo {i}\n" for i in range(8))
    body = json.dumps({"buildInfo": {"dockerfileContent": dockerfile}}).encode()
    req = urllib.request.Request(
        f"{emulator.api_url}/sandbox", data=body, headers=headers, method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        created = json.load(resp)
    assert created["state"] == "pending_build"
    try:
        req = urllib.request.Request(
            f"{emulator.api_url}/sandbox/{created['id']}/build-logs-url", headers=headers
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            url = json.load(resp)["url"]
        req = urllib.request.Request(url + "?follow=true", headers=headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.headers.get("Transfer-Encoding") == "chunked"
            lines = resp.read().decode().splitlines()
        assert lines[:2] == ["Step 1/9 : FROM debian:12-slim", "Step 2/9 : RUN echo 0"]
        assert lines[8] == "Step 9/9 : RUN echo 7"
        assert lines[-1].startswith("Successfully built")
        # The stream ended with the build: the sandbox is past pending_build.
        assert daytona.get(created["id"]).state != "pending_build"
        req = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.read().decode().splitlines() == lines
    finally:
        daytona.delete(daytona.get(created["id"]))


def test_create_from_snapshot_and_get(daytona: Daytona, sandbox: Sandbox) -> None:
    assert sandbox.state == "started"
    again = daytona.get(sandbox.id)
    assert again.id == sandbox.id
    assert again.labels["suite"] == "conformance"
    assert again.get_work_dir() == "/home/daytona"


def test_process_exec(sandbox: Sandbox) -> None:
    r = sandbox.process.exec("echo $GREETING; echo oops >&2; exit 3")
    assert r.exit_code == 3
    assert "hello" in r.result and "oops" in r.result
    r = sandbox.process.exec("pwd", cwd="/tmp")
    assert r.result.strip() == "/tmp"
    r = sandbox.process.exec("echo $A-$B", env={"A": "1", "B": "2"})
    assert r.result.strip() == "1-2"


def test_process_exec_timeout(sandbox: Sandbox) -> None:
    with pytest.raises(DaytonaError) as info:
        sandbox.process.exec("sleep 10", timeout=1)
    assert "timeout" in str(info.value).lower()


def test_session_streams_logs_of_a_long_command(sandbox: Sandbox) -> None:
    sid = f"s-{uuid.uuid4().hex[:8]}"
    sandbox.process.create_session(sid)
    cmd = sandbox.process.execute_session_command(
        sid,
        SessionExecuteRequest(
            command="for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.3; done; exit 4",
            run_async=True,
        ),
    )
    assert cmd.exit_code is None
    running = sandbox.process.get_session_command(sid, cmd.cmd_id)
    assert running.exit_code is None

    out: list[str] = []
    err: list[str] = []
    asyncio.run(
        sandbox.process.get_session_command_logs_async(sid, cmd.cmd_id, out.append, err.append)
    )
    assert "".join(out) == "out1\nout2\nout3\n"
    assert "".join(err) == "err1\nerr2\nerr3\n"
    assert len(out) >= 2, "the log came in one piece: it was not streamed"

    done = sandbox.process.get_session_command(sid, cmd.cmd_id)
    assert done.exit_code == 4
    logs = sandbox.process.get_session_command_logs(sid, cmd.cmd_id)
    assert logs.stdout == "out1\nout2\nout3\n"
    assert logs.stderr == "err1\nerr2\nerr3\n"

    sync = sandbox.process.execute_session_command(sid, SessionExecuteRequest(command="echo sync"))
    assert sync.exit_code == 0
    assert sync.stdout == "sync\n"
    session = sandbox.process.get_session(sid)
    assert [c.id for c in session.commands] == [cmd.cmd_id, sync.cmd_id]
    sandbox.process.delete_session(sid)
    with pytest.raises(DaytonaNotFoundError):
        sandbox.process.get_session(sid)


def test_session_shell_keeps_its_state(sandbox: Sandbox) -> None:
    """One shell per session, as the daemon has: the directory, exported and
    plain shell variables set by a command are there for the next one, in
    that session only."""
    sandbox.process.create_session("state")
    sandbox.process.create_session("other")
    first = sandbox.process.execute_session_command(
        "state",
        SessionExecuteRequest(
            command="mkdir -p /tmp/there && cd /tmp/there && export KEPT=yes && PLAIN=1"
        ),
    )
    assert first.exit_code == 0
    later = sandbox.process.execute_session_command(
        "state", SessionExecuteRequest(command='echo "$(pwd) $KEPT $PLAIN"')
    )
    assert later.stdout == "/tmp/there yes 1\n"
    # An exported variable reaches the commands the shell starts.
    child = sandbox.process.execute_session_command(
        "state", SessionExecuteRequest(command="sh -c 'echo $KEPT'")
    )
    assert child.stdout == "yes\n"
    # A background command's state counts too: it ran in the same shell.
    bg = sandbox.process.execute_session_command(
        "state", SessionExecuteRequest(command="cd / && export KEPT=again", run_async=True)
    )
    deadline = time.monotonic() + 10
    while sandbox.process.get_session_command("state", bg.cmd_id).exit_code is None:
        assert time.monotonic() < deadline, "the background command never finished"
        time.sleep(0.05)
    again = sandbox.process.execute_session_command(
        "state", SessionExecuteRequest(command='echo "$(pwd) $KEPT"')
    )
    assert again.stdout == "/ again\n"
    fresh = sandbox.process.execute_session_command(
        "other", SessionExecuteRequest(command='echo "$(pwd) [$KEPT]"')
    )
    assert fresh.stdout == "/home/daytona []\n"
    sandbox.process.delete_session("state")
    sandbox.process.delete_session("other")


def test_session_command_input(sandbox: Sandbox) -> None:
    """send_session_command_input feeds a background command's stdin, and
    the input shows in its log unless echo is suppressed."""
    sandbox.process.create_session("input")
    cmd = sandbox.process.execute_session_command(
        "input",
        SessionExecuteRequest(
            command='read first; read second; echo "got $first+$second"', run_async=True
        ),
    )
    sandbox.process.send_session_command_input("input", cmd.cmd_id, "one")
    sandbox.process.send_session_command_input("input", cmd.cmd_id, "two\n")
    deadline = time.monotonic() + 10
    while sandbox.process.get_session_command("input", cmd.cmd_id).exit_code is None:
        assert time.monotonic() < deadline, "the command never read its input"
        time.sleep(0.05)
    logs = sandbox.process.get_session_command_logs("input", cmd.cmd_id)
    assert logs.stdout == "one\ntwo\ngot one+two\n"
    assert sandbox.process.get_session_command("input", cmd.cmd_id).exit_code == 0

    quiet = sandbox.process.execute_session_command(
        "input",
        SessionExecuteRequest(
            command="read x; echo len=${#x}", run_async=True, suppress_input_echo=True
        ),
    )
    sandbox.process.send_session_command_input("input", quiet.cmd_id, "secret")
    deadline = time.monotonic() + 10
    while sandbox.process.get_session_command("input", quiet.cmd_id).exit_code is None:
        assert time.monotonic() < deadline, "the command never read its input"
        time.sleep(0.05)
    assert sandbox.process.get_session_command_logs("input", quiet.cmd_id).stdout == "len=6\n"
    # A finished command takes no more input.
    with pytest.raises(DaytonaError):
        sandbox.process.send_session_command_input("input", quiet.cmd_id, "late")
    sandbox.process.delete_session("input")


def test_user_and_home_directory(sandbox: Sandbox) -> None:
    """As in the service's images: user daytona, home and work directory
    /home/daytona, where relative paths of the file API land."""
    assert sandbox.user == "daytona"
    assert sandbox.get_user_home_dir() == "/home/daytona"
    assert sandbox.get_work_dir() == "/home/daytona"
    r = sandbox.process.exec('echo "$(pwd) $HOME $USER $(whoami) $(id -gn)"')
    assert r.result.strip() == "/home/daytona /home/daytona daytona daytona daytona"
    assert sandbox.process.exec("pwd", cwd="/home/daytona").result.strip() == "/home/daytona"
    sandbox.fs.upload_file(b"at home", "rel.txt")
    assert sandbox.process.exec("cat /home/daytona/rel.txt").result == "at home"
    assert sandbox.fs.download_file("/home/daytona/rel.txt") == b"at home"
    assert sandbox.fs.get_file_info("rel.txt").owner == "daytona"
    sandbox.process.create_session("home")
    where = sandbox.process.execute_session_command(
        "home", SessionExecuteRequest(command="pwd; cd; pwd")
    )
    assert where.stdout == "/home/daytona\n/home/daytona\n"
    sandbox.process.delete_session("home")


def test_files(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.fs.create_folder("data/sub", "755")
    sandbox.fs.upload_file(b"hello file", "data/a.txt")
    local = tmp_path / "b.bin"
    local.write_bytes(bytes(range(256)) * 100)
    sandbox.fs.upload_files(
        [
            FileUpload(source=str(local), destination="data/sub/b.bin"),
            FileUpload(source=b"x", destination="/tmp/c"),
        ]
    )

    names = sorted(f.name for f in sandbox.fs.list_files("data"))
    assert names == ["a.txt", "sub"]
    info = sandbox.fs.get_file_info("data/sub/b.bin")
    assert info.size == 25600 and not info.is_dir
    assert sandbox.fs.get_file_info("data/sub").is_dir

    assert sandbox.fs.download_file("data/a.txt") == b"hello file"
    target = tmp_path / "out" / "b.bin"
    sandbox.fs.download_file("data/sub/b.bin", str(target))
    assert target.read_bytes() == local.read_bytes()
    assert sandbox.process.exec("cat /tmp/c").result == "x"

    with pytest.raises(DaytonaError):
        sandbox.fs.download_file("data/missing.txt")

    sandbox.fs.delete_file("data/a.txt")
    assert [f.name for f in sandbox.fs.list_files("data")] == ["sub"]
    sandbox.fs.delete_file("data", recursive=True)
    with pytest.raises(DaytonaError):
        sandbox.fs.get_file_info("data")


def test_download_progress_knows_the_size(sandbox: Sandbox) -> None:
    """download_file_stream's progress reports each file's size (the part's
    Content-Length), and bytes received up to it."""
    data = bytes(range(256)) * 300
    sandbox.fs.upload_file(data, "progress.bin")
    progress: list[DownloadProgress] = []
    got = b"".join(sandbox.fs.download_file_stream("progress.bin", on_progress=progress.append))
    assert got == data
    assert progress and all(p.total_bytes == len(data) for p in progress)
    assert progress[-1].bytes_received == len(data)


def test_find_search_replace_move_permissions(sandbox: Sandbox) -> None:
    """The file API's walks and edits, as the daemon does them: find (text
    lines, binary files skipped), search (glob on names), replace (literal,
    per file), move and permissions."""
    fs = sandbox.fs
    fs.create_folder("walk/sub", "755")
    fs.upload_file(b"hello world\nbye\nhello again\n", "walk/a.txt")
    fs.upload_file(b"\x00hello", "walk/bin.dat")
    fs.upload_file(b"say hello\n", "walk/sub/b.txt")
    found = [(m.file, m.line, m.content) for m in fs.find_files("walk", "hello")]
    assert found == [
        ("walk/a.txt", 1, "hello world"),
        ("walk/a.txt", 3, "hello again"),
        ("walk/sub/b.txt", 1, "say hello"),
    ]
    assert fs.search_files("walk", "*.txt").files == ["walk/a.txt", "walk/sub/b.txt"]
    results = fs.replace_in_files(["walk/a.txt", "walk/none.txt"], "hello", "$1 & \\1")
    assert [(r.file, r.success) for r in results] == [
        ("walk/a.txt", True),
        ("walk/none.txt", False),
    ]
    assert fs.download_file("walk/a.txt") == b"$1 & \\1 world\nbye\n$1 & \\1 again\n"
    fs.move_files("walk/a.txt", "walk/sub/moved.txt")
    assert fs.get_file_info("walk/sub/moved.txt").size == 32
    with pytest.raises(DaytonaNotFoundError):
        fs.get_file_info("walk/a.txt")
    with pytest.raises(DaytonaNotFoundError):
        fs.move_files("walk/a.txt", "walk/again.txt")
    fs.set_file_permissions("walk/sub/moved.txt", mode="600")
    assert fs.get_file_info("walk/sub/moved.txt").permissions == "0600"
    fs.delete_file("walk", recursive=True)


def test_list_by_label(daytona: Daytona) -> None:
    tag = uuid.uuid4().hex[:8]
    a = daytona.create(
        CreateSandboxFromSnapshotParams(labels={"tag": tag, "role": "a"}), timeout=30
    )
    b = daytona.create(
        CreateSandboxFromSnapshotParams(labels={"tag": tag, "role": "b"}), timeout=30
    )
    try:
        both = {s.id for s in daytona.list(ListSandboxesQuery(labels={"tag": tag}))}
        assert both == {a.id, b.id}
        only_b = [s.id for s in daytona.list(ListSandboxesQuery(labels={"tag": tag, "role": "b"}))]
        assert only_b == [b.id]
        assert list(daytona.list(ListSandboxesQuery(labels={"tag": "no-such-tag"}))) == []
    finally:
        daytona.delete(a)
        daytona.delete(b)


def test_stop_and_start(sandbox: Sandbox) -> None:
    sandbox.fs.upload_file(b"kept", "keep.txt")
    sandbox.stop(timeout=30)
    assert sandbox.state == "stopped"
    sandbox.start(timeout=30)
    assert sandbox.state == "started"
    assert sandbox.fs.download_file("keep.txt") == b"kept"


# A ticker appends the time 20 times a second; stopped it cannot, so the
# longest gap between its ticks is at least the stop (no timing of the test).
LONGEST_GAP_MS = (
    "awk 'NR > 1 && $1 - p > m { m = $1 - p } { p = $1 } END { printf \"%d\\n\", m * 1000 }'"
    " /tmp/ticks"
)


def _ticks(sandbox: Sandbox) -> int:
    return int(sandbox.process.exec("cat /tmp/ticks 2>/dev/null | wc -l").result.strip())


def test_stopped_sandbox_runs_nothing_until_started(daytona: Daytona) -> None:
    sb = daytona.create(CreateSandboxFromSnapshotParams(labels={"suite": "stop"}), timeout=30)
    try:
        sb.process.exec(
            "setsid sh -c 'while :; do date +%s.%N >> /tmp/ticks; sleep 0.05; done'"
            " </dev/null >/dev/null 2>&1 &"
        )
        for _ in range(200):
            if _ticks(sb) > 1:
                break
            time.sleep(0.05)
        assert _ticks(sb) > 1
        sb.stop(timeout=30)
        listed = daytona.list(ListSandboxesQuery(labels={"suite": "stop"}))
        assert [s.state for s in listed if s.id == sb.id] == ["stopped"]
        # The toolbox of a stopped sandbox runs no command.
        with pytest.raises(DaytonaError):
            sb.process.exec("true")
        time.sleep(2)  # 40 ticks, were the ticker running
        sb.start(timeout=30)
        assert sb.state == "started"
        # Nothing ran while stopped: the ticks have a gap as long as the stop
        # (the service ends the ticker, the emulator freezes it).
        assert int(sb.process.exec(LONGEST_GAP_MS).result.strip()) >= 1900
    finally:
        daytona.delete(sb)


def test_stopped_sandbox_can_be_deleted(daytona: Daytona, emulator: Emulator) -> None:
    sb = daytona.create(CreateSandboxFromSnapshotParams(), timeout=30)
    live = emulator.stats()["live"]
    sb.stop(timeout=30)
    daytona.delete(sb, wait=True)
    assert emulator.stats()["live"] == live - 1


def test_delete_then_not_found(daytona: Daytona, emulator: Emulator) -> None:
    sb = daytona.create(CreateSandboxFromSnapshotParams(), timeout=30)
    live = emulator.stats()["live"]
    daytona.delete(sb, wait=True)
    assert emulator.stats()["live"] == live - 1
    deadline = time.monotonic() + 10
    while True:
        try:
            daytona.get(sb.id)
        except DaytonaNotFoundError:
            break
        assert time.monotonic() < deadline, "a deleted sandbox never went away"
        time.sleep(0.1)


def test_missing_sandbox_is_the_sdks_not_found_error(daytona: Daytona) -> None:
    with pytest.raises(DaytonaNotFoundError) as info:
        daytona.get("no-such-sandbox")
    assert "no-such-sandbox" in str(info.value)


def test_wrong_key_is_the_sdks_authentication_error(emulator: Emulator) -> None:
    wrong = Daytona(DaytonaConfig(api_key="not-the-key", api_url=emulator.api_url))
    with pytest.raises(DaytonaAuthenticationError):
        list(wrong.list())


def test_zz_nothing_left_alive(emulator: Emulator) -> None:
    assert emulator.stats()["live"] == 0


def test_code_run(sandbox: Sandbox) -> None:
    """process.code_run: the code through python3, stdout and stderr in one
    result, argv and env, a syntax error's status, and artifact lines (what
    the daemon's matplotlib wrapper prints) taken out into charts."""
    done = sandbox.process.code_run(
        'import os, sys\nprint("args", sys.argv[1:], os.environ["COLOUR"])\n'
        'print("to-stderr", file=sys.stderr)',
        params=CodeRunParams(argv=["one", "two"], env={"COLOUR": "teal"}),
    )
    assert done.exit_code == 0
    assert "args ['one', 'two'] teal" in done.result
    assert "to-stderr" in done.result

    broken = sandbox.process.code_run("def unfinished(")
    assert broken.exit_code != 0
    assert "SyntaxError" in broken.result

    chart = {"type": "line", "title": "growth", "elements": []}
    marked = sandbox.process.code_run(
        "import json\nprint('before')\n"
        f"print('dtn_artifact_k39fd2:' + json.dumps({{'type': 'chart', 'value': {chart!r}}}))\n"
        "print('after')"
    )
    assert marked.exit_code == 0
    assert marked.result.split() == ["before", "after"]
    assert [c.title for c in marked.artifacts.charts] == ["growth"]

"""End-to-end: real flows with @sandbox on the local backend (bubblewrap).

Assertions go through the Metaflow client API (mfinspect.py) and libsandbox.
"""

import glob
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from datetime import datetime

import pytest

from conftest import interrupt_when, main_metaflow, use_backend


def _tasks(info, step):
    return info["steps"][step]


def _task(info, step):
    tasks = _tasks(info, step)
    assert len(tasks) == 1, tasks
    return tasks[0]


def _assert_sandboxed(task):
    """The task ran in exactly one sandbox of the local backend, and knows it."""
    assert len(task["sandbox_ids"]) == 1, task["sandbox_ids"]
    sandbox_id = task["sandbox_ids"][0]
    assert re.fullmatch(r"sbx-[0-9a-f]{12}", sandbox_id)
    assert task["metadata"]["sandbox-backend"] == "local"
    return sandbox_id


def test_linear_flow_options_logs_card_and_isolation(mf):
    """--with sandbox:cpu=1, parameters, a config, @environment, @resources, @card,
    no network, 10,000 log lines, artifacts read from the host (zero copy)."""
    flow = mf.copy_flow("linear_flow.py")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    # Reachable from the host: the sandbox's failure below is the sandbox's doing.
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    try:
        proc = mf.run(
            flow,
            "--with",
            "sandbox:cpu=1",
            "run",
            "--alpha",
            "5",
            "--port",
            str(port),
            extra_env={"SANDBOX_TEST_HOST_SECRET": "s3cr3t"},
        )
    finally:
        server.close()
    info = mf.inspect("LinearSandboxFlow")
    assert info["successful"]

    ids = {step: _assert_sandboxed(_task(info, step)) for step in info["steps"]}
    assert len(set(ids.values())) == 4, f"one sandbox per task: {ids}"

    start = _task(info, "start")["data"]
    assert start["host"] == ids["start"]  # hostname inside = the sandbox id
    assert start["alpha_seen"] == 5
    assert (start["cfg_greeting"], start["cfg_n"]) == ("hello", 3)
    assert start["env_greeting"] == "from-environment"
    assert start["leaked_secret"] is None  # the host environment is not inherited
    assert start["home"] == "/workspace"
    assert start["network_ok"] is False, "the default spec must not have network"
    assert start["cpus"] == 1
    assert '"cpu": "1"' in _task(info, "start")["metadata"]["sandbox-spec"]

    many = _task(info, "many_lines")
    assert many["data"]["host"] == ids["many_lines"]
    assert many["data"]["total"] == 45 * 5
    # Zero copy: an artifact written inside is read by the client from the host.
    assert many["data"]["payload"] == {"numbers": list(range(10)), "text": "written in the sandbox"}
    assert many["cards"] >= 1

    # Every line exactly once in Task.stdout, without the console prefix.
    lines = Counter(many["stdout"].splitlines())
    expected = ["line-%05d" % i for i in range(10000)]
    assert all(lines[line] == 1 for line in expected), [
        (line, lines[line]) for line in expected if lines[line] != 1
    ][:5]
    assert sum(lines.values()) == 10000, sum(lines.values())
    # ... and streamed live to the console, as an unsandboxed task's lines
    # (started directly by sandboxctl: no trampoline adds a prefix), after
    # the line that names the sandbox.
    assert "] line-09999\n" in proc.output
    announce = "Task is starting in sandbox {} (backend local).".format(ids["many_lines"])
    assert announce in proc.output

    wide = _task(info, "wide")
    expected_cpus = min(2, len(os.sched_getaffinity(0)))
    assert wide["data"]["wide_cpus"] == expected_cpus  # @resources(cpu=2) beats cpu=1
    assert '"cpu": "2.0"' in wide["metadata"]["sandbox-spec"]

    assert _task(info, "end")["data"]["end_host"] == ids["end"]
    mf.assert_no_sandboxes("LinearSandboxFlow")


def test_foreach_join_merge_artifacts(mf):
    flow = mf.copy_flow("foreach_flow.py")
    mf.run(flow, "run", "--max-workers", "4")
    info = mf.inspect("ForeachSandboxFlow")
    assert info["successful"]

    squares = _tasks(info, "square")
    assert len(squares) == 8
    square_ids = sorted(_assert_sandboxed(t) for t in squares)
    assert len(set(square_ids)) == 8
    assert sorted(t["data"]["value"] for t in squares) == [i * i for i in range(8)]
    for task in squares:
        assert task["data"]["host"] == task["sandbox_ids"][0]

    join = _task(info, "join")["data"]
    assert join["values"] == [i * i for i in range(8)]
    assert join["hosts"] == square_ids
    assert join["common"] == "shared"  # merge_artifacts
    end = _task(info, "end")["data"]
    assert end["total"] == sum(i * i for i in range(8))
    assert end["common"] == "shared"
    mf.assert_no_sandboxes("ForeachSandboxFlow")


def test_retry_catch_failure_and_resume(mf):
    flow = mf.copy_flow("retry_flow.py")
    failed = mf.run(
        flow,
        "--with",
        "sandbox",
        "run",
        extra_env={"METAFLOW_TEST_FAIL": "1"},
        expect_ok=False,
    )
    assert "gated step fails while METAFLOW_TEST_FAIL=1" in failed.output
    first = mf.inspect("RetrySandboxFlow")
    assert not first["successful"]

    flaky = _task(first, "flaky")
    assert flaky["successful"]
    assert flaky["current_attempt"] == 1
    assert flaky["data"]["flaky_attempt"] == 1
    assert len(flaky["sandbox_ids"]) == 2, "each attempt gets its own sandbox"
    assert "flaky attempt 1 on sbx-" in flaky["stdout"]

    boom = _task(first, "boom")
    # Handled by @catch: finished (the run went on), _success stays False.
    assert boom["finished"]
    assert "boom in the sandbox" in boom["data"]["boom_error"]  # @catch, inside the sandbox
    assert boom["data"]["boom_host"] == boom["sandbox_ids"][0]

    gated = _task(first, "gated")
    assert not gated["successful"]
    # Failure path: nothing left behind.
    mf.assert_no_sandboxes("RetrySandboxFlow")

    mf.run(flow, "--with", "sandbox", "resume")
    second = mf.inspect("RetrySandboxFlow")
    assert second["run_id"] != first["run_id"]
    assert second["successful"]
    start = _task(second, "start")
    assert start["metadata"].get("origin-run-id") == first["run_id"]  # cloned
    gated = _task(second, "gated")
    assert gated["data"]["gated_host"] == _assert_sandboxed(gated)
    mf.assert_no_sandboxes("RetrySandboxFlow")


INTERRUPT_CASES = [
    (backend, signum)
    for backend in ("local", "daytona", "e2b")
    for signum in (signal.SIGINT, signal.SIGTERM)
]


@pytest.mark.parametrize(
    "backend,signum",
    INTERRUPT_CASES,
    ids=["%s-%s" % (b, signal.Signals(s).name.lower()) for b, s in INTERRUPT_CASES],
)
def test_interrupt_destroys_sandbox(mf, emulators, backend, signum):
    """Ctrl-C or SIGTERM to `flow.py run` during a sandboxed step: the sandbox
    is gone within 5 s, the task has no DONE.lock, and resume then works."""
    if backend != "local" and not main_metaflow():
        pytest.skip("remote backends are tested on the main Metaflow version only")
    emu = use_backend(mf, emulators, backend)
    flow = mf.copy_flow("sleep_flow.py")
    proc = mf.popen(flow, "run")
    gone: dict = {}

    def watch_emulator():
        """Polls the emulator from the moment of the signal."""
        signalled = time.monotonic()

        def poll():
            if emu.wait_live(0, 30) == 0:
                gone["after"] = time.monotonic() - signalled

        gone["thread"] = threading.Thread(target=poll, daemon=True)
        gone["thread"].start()

    output = interrupt_when(proc, "SLOW-STEP-STARTED", signum, watch_emulator if emu else None)
    assert proc.returncode != 0
    if signum == signal.SIGINT and emu is None:
        # (A remote sandbox's destruction may outlast the runtime's printing.)
        assert "destroying sandbox " in output
    if emu is not None:
        gone["thread"].join(40)
        assert "after" in gone, "the sandbox was not destroyed:\n" + output[-3000:]
        assert gone["after"] < 5.0, "the sandbox lived %.1f s after the signal" % gone["after"]
    mf.assert_no_sandboxes("SleepSandboxFlow")
    done = list(mf.datastore_root.glob("SleepSandboxFlow/*/slow/*/*.DONE.lock"))
    assert done == [], f"the interrupted task must not look finished: {done}"

    mf.run(flow, "resume", extra_env={"METAFLOW_TEST_SLEEP": "0"})
    info = mf.inspect("SleepSandboxFlow")
    assert info["successful"]
    assert _task(info, "slow")["metadata"]["sandbox-backend"] == backend
    if emu is not None:
        assert emu.wait_live(0, 30) == 0


@pytest.mark.parametrize("backend", ["daytona", "e2b"])
def test_crash_leaves_ttl_and_labels_for_gc(mf, emulators, backend):
    """SIGKILL to the whole run (nothing can clean up): the sandbox left on the
    provider has labels naming the task and a TTL, and `sandboxctl gc`
    removes it."""
    if not main_metaflow():
        pytest.skip("remote backends are tested on the main Metaflow version only")
    tool = os.environ.get("SANDBOXCTL")
    if not tool or not os.access(tool, os.X_OK):
        pytest.skip("SANDBOXCTL is not set")
    emu = use_backend(mf, emulators, backend)
    flow = mf.copy_flow("sleep_flow.py")
    proc = mf.popen(flow, "run")
    interrupt_when(proc, "SLOW-STEP-STARTED", signal.SIGKILL)
    try:
        assert emu.live() == 1, "the crash should have left the sandbox behind"
        if backend == "daytona":
            boxes = emu.api("/sandbox")
            boxes = boxes["items"] if isinstance(boxes, dict) else boxes
            labels = [b["labels"] for b in boxes]
            # TTL: stopped after 24 h (the cap for hosted sandboxes), then deleted.
            assert [b["autoStopInterval"] for b in boxes] == [24 * 60]
            assert boxes[0]["autoDeleteInterval"] >= 0
        else:
            boxes = emu.api("/sandboxes")
            labels = [b["metadata"] for b in boxes]
            ttl = datetime.fromisoformat(
                boxes[0]["endAt"].replace("Z", "+00:00")
            ) - datetime.fromisoformat(boxes[0]["startedAt"].replace("Z", "+00:00"))
            assert 23 * 3600 < ttl.total_seconds() <= 24 * 3600, ttl
        assert len(labels) == 1
        assert {k: labels[0].get(k) for k in ("flow", "step", "attempt")} == {
            "flow": "SleepSandboxFlow",
            "step": "slow",
            "attempt": "0",
        }
        assert labels[0].get("run_id") and labels[0].get("task_id")
    finally:
        out = subprocess.run(
            [tool, "gc", "--backend", backend, "--label", "flow=SleepSandboxFlow"],
            env=dict(mf.env),
            capture_output=True,
            timeout=120,
        )
    assert out.returncode == 0, out.stderr.decode()
    assert emu.wait_live(0, 30) == 0
    assert "DONE.lock" not in " ".join(
        str(p) for p in mf.datastore_root.glob("SleepSandboxFlow/*/slow/*/*")
    )


def test_timeout_kills_sandboxed_step(mf):
    """@timeout(seconds=5) on a sandboxed step that sleeps 300 s: the step is
    killed, the run fails naming the timeout, and no sandbox is left."""
    flow = mf.copy_flow("timeout_flow.py")
    started = time.monotonic()
    proc = mf.run(flow, "run", expect_ok=False)
    elapsed = time.monotonic() - started
    assert "TIMEOUT-STEP-STARTED" in proc.output
    assert "Step slow timed out after 0 hours, 0 minutes, 5 seconds" in proc.output, proc.output[
        -3000:
    ]
    assert elapsed < 240, "the step was not stopped by its timeout"  # never-hangs bound
    info = mf.inspect("TimeoutSandboxFlow")
    assert not info["successful"]
    assert not _task(info, "slow")["successful"]
    assert '"timeout": 5' in _task(info, "slow")["metadata"]["sandbox-spec"]
    mf.assert_no_sandboxes("TimeoutSandboxFlow")


def _system_typelib():
    return any(
        glob.glob(pattern)
        for pattern in (
            "/usr/lib/*/girepository-1.0/Sandbox-1.0.typelib",
            "/usr/lib*/girepository-1.0/Sandbox-1.0.typelib",
            "/usr/local/lib*/girepository-1.0/Sandbox-1.0.typelib",
        )
    )


def _assert_rejected(proc, *needles):
    for needle in needles:
        assert needle in proc.output, proc.output[-3000:]
    assert "Task is starting" not in proc.output


def test_bad_input_rejected_before_any_task(mf, tmp_path):
    _assert_rejected(
        mf.run(mf.copy_flow("two_compute_flow.py"), "run", expect_ok=False),
        "more than one compute decorator",
    )
    flow = mf.copy_flow("sleep_flow.py")
    proc = mf.run(flow, "--with", "sandbox:backend=nope", "run", expect_ok=False)
    _assert_rejected(proc, "Unknown sandbox backend nope", "Known backends:")
    assert re.search(r"Known backends:[^\n]*\blocal\b", proc.output)

    proc = mf.run(
        flow,
        "run",
        extra_env={"SANDBOX_BWRAP": str(tmp_path / "no-such-bwrap")},
        expect_ok=False,
    )
    _assert_rejected(proc, "is not ready", "bubblewrap")

    # Without PyGObject.
    nogi = tmp_path / "nogi"
    (nogi / "gi").mkdir(parents=True)
    (nogi / "gi" / "__init__.py").write_text("raise ImportError('no gi here')\n")
    proc = mf.run(
        flow,
        "run",
        extra_env={"PYTHONPATH": "{}:{}".format(nogi, mf.env["PYTHONPATH"])},
        expect_ok=False,
    )
    _assert_rejected(proc, "@sandbox needs PyGObject", "python3-gi")

    # Without the typelib (only checkable where libsandbox is not installed).
    if not _system_typelib():
        empty = tmp_path / "no-typelibs"
        empty.mkdir()
        proc = mf.run(flow, "run", extra_env={"GI_TYPELIB_PATH": str(empty)}, expect_ok=False)
        _assert_rejected(proc, "typelib Sandbox-1.0", "gir1.2-sandbox-1.0")
    mf.assert_no_sandboxes("SleepSandboxFlow")


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "trampoline"])
def test_code_package_read_only_and_logs(mf, tmp_path, direct):
    """Started directly by sandboxctl, a step runs from the run's code package,
    mounted read-only: it cannot change it, but may write new files where it
    runs (inside its sandbox only), as a plain step can; $HOME stays writable.
    Either way its output reaches `python flow.py logs`."""
    flow = mf.copy_flow("code_flow.py")
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    extra = {"TMPDIR": str(tmpdir)}
    if not direct:
        extra["METAFLOW_SANDBOX_DIRECT"] = "0"
    # The runtime prints every task's command line.
    proc = mf.run(flow, "run", extra_env=dict(extra, METAFLOW_DEBUG_SUBCOMMAND="1"))
    assert "step start" in proc.output
    info = mf.inspect("CodeSandboxFlow")
    assert info["successful"]
    start = _task(info, "start")
    _assert_sandboxed(start)
    assert start["data"]["cwd"] == "/workspace/metaflow"
    # A secret-named variable reaches the step, not a command line.
    assert start["data"]["token"] == "tok-4711"
    assert "tok-4711" not in proc.output
    assert start["data"]["home_file"] == "written"
    if direct:
        assert start["data"]["flow_file"] == "OSError"  # EROFS
    assert start["data"]["new_file"] == "written"
    assert not (mf.cwd / "new.py").exists()
    # The host's copy of the flow is untouched either way.
    assert "CHANGED-BY-THE-STEP" not in (mf.cwd / flow).read_text()
    logs = mf.run(flow, "logs", "%s/start" % info["run_id"], extra_env=extra)
    assert "CODE-FLOW-LOG-LINE" in logs.output
    assert "Task is starting in sandbox %s" % start["sandbox_ids"][0] in logs.output
    mf.assert_no_sandboxes("CodeSandboxFlow")
    assert not list(tmpdir.glob("metaflow-sandbox-code-*")), "the run removes its code copy"
    if direct:
        # One left by a killed run (its pid is gone) goes at the next run.
        stale = tmpdir / "metaflow-sandbox-code-999999999-x"
        stale.mkdir()
        mf.run(flow, "run", extra_env=extra)
        assert not list(tmpdir.glob("metaflow-sandbox-code-*"))

"""End-to-end: real flows with @sandbox on the local backend (bubblewrap).

Assertions go through the Metaflow client API (mfinspect.py) and libsandbox.
"""

import glob
import os
import re
import signal
import socket
from collections import Counter

import pytest

from conftest import interrupt_when


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
    # ... and streamed live to the console, prefixed with the sandbox id.
    assert "[{}] line-09999".format(ids["many_lines"]) in proc.output

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


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_interrupt_destroys_sandbox(mf, signum):
    flow = mf.copy_flow("sleep_flow.py")
    proc = mf.popen(flow, "run")
    output = interrupt_when(proc, "SLOW-STEP-STARTED", signum)
    assert proc.returncode != 0
    if signum == signal.SIGINT:
        assert "destroying sandbox sbx-" in output
    mf.assert_no_sandboxes("SleepSandboxFlow")
    done = list(mf.datastore_root.glob("SleepSandboxFlow/*/slow/*/*.DONE.lock"))
    assert done == [], f"the interrupted task must not look finished: {done}"


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
        mf.run(mf.copy_flow("parallel_flow.py"), "run", expect_ok=False),
        "uses @parallel, which @sandbox does not support",
    )
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

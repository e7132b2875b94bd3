"""What a step imports in a sandbox, and which interpreter runs it
(session mfx17): the same modules as an unsandboxed task on the local
backend's host root whichever way the task is started; an image whose
Python is too old said so; a remote image that cannot be built not
retried; time limits with a daemon left behind.
"""

import os
import subprocess
import time
import uuid

import pytest

from conftest import PYTHON, main_metaflow, use_backend
from test_mf_image import CTL, _host_tools, _import, _layout


@pytest.mark.parametrize("direct", ["1", "0"])
def test_launchers_pythonpath_reaches_the_step(mf, tmp_path, direct):
    """A module on the launching Python's PYTHONPATH (under /tmp, which a
    local sandbox makes private) is imported by the step, which runs with
    the launching interpreter, both when sandboxctl starts the task
    directly and through the trampoline (METAFLOW_SANDBOX_DIRECT=0: what
    an image, a remote datastore, configs or METAFLOW_SANDBOX_DEBUG use).
    The trampoline's step used to see only the code package's PYTHONPATH:
    ModuleNotFoundError."""
    libs = tmp_path / "libs"
    libs.mkdir()
    (libs / "mf_host_module.py").write_text("VALUE = 'from-host-pythonpath'\n")
    mf.env["PYTHONPATH"] = mf.env["PYTHONPATH"] + os.pathsep + str(libs)
    flow = mf.copy_flow("imports_flow.py")
    proc = mf.run(flow, "run", "--with", "sandbox", extra_env={"METAFLOW_SANDBOX_DIRECT": direct})
    assert "STEP-PYTHON %s" % PYTHON in proc.output, proc.output[-3000:]
    assert "STEP-MODULE %s from-host-pythonpath" % (libs / "mf_host_module.py") in proc.output
    if direct == "0":
        assert "[sbx-" in proc.output  # the trampoline's prefix: that path was taken
    mf.assert_no_sandboxes("ImportsFlow")


@pytest.mark.skipif(not CTL, reason="SANDBOXCTL is not set")
def test_image_with_a_too_old_python(mf, tmp_path):
    """An imported image whose python3 is 3.6: the task stops saying so and
    what to do, not with Metaflow's SyntaxError followed by "install
    Metaflow's dependencies"."""
    python36 = (
        b"#!/bin/sh\n"
        b'if [ "$1" = -V ]; then echo "Python 3.6.9"; exit 0; fi\n'
        b"echo 'SyntaxError: invalid syntax' >&2\nexit 1\n"
    )
    files = _host_tools("tar", "gzip", "mkdir", "ln")
    files["usr/bin/python3"] = python36
    _import(mf, _layout(tmp_path / "py36", files), "py36:1")
    flow = mf.copy_flow("sleep_flow.py")
    proc = mf.run(
        flow,
        "--with",
        "sandbox:image=py36:1",
        "run",
        extra_env={"METAFLOW_SANDBOX_PYTHON": "python3", "METAFLOW_TEST_SLEEP": "0"},
        expect_ok=False,
    )
    out = proc.output
    assert "The image py36:1 has Python 3.6.9, too old" in out, out[-3000:]
    assert "need Python 3.8 or newer" in out and "METAFLOW_SANDBOX_PYTHON" in out
    assert "cannot run Metaflow" not in out and "SLOW-STEP-STARTED" not in out
    mf.assert_no_sandboxes("SleepSandboxFlow")


def test_remote_image_that_cannot_be_built_is_not_retried(mf, emulators):
    """Daytona with an image it cannot pull (the build fails): the task
    fails at once with the provider's reason, instead of three creates
    (two back-offs, 6 s) that each build the image again."""
    use_backend(mf, emulators, "daytona")
    flow = mf.copy_flow("sleep_flow.py")
    started = time.monotonic()
    proc = mf.run(
        flow,
        "--with",
        "sandbox:image=no-such-image:7",
        "run",
        extra_env={"METAFLOW_TEST_SLEEP": "0"},
        expect_ok=False,
    )
    elapsed = time.monotonic() - started
    out = proc.output
    assert "no-such-image:7" in out and "build_failed" in out, out[-3000:]
    assert "trying again" not in out and "3 tries" not in out, out[-3000:]
    assert "SLOW-STEP-STARTED" not in out
    # Three creates wait 2 + 4 s between them.
    assert elapsed < 60, elapsed


@pytest.mark.parametrize("direct", ["1", "0"])
def test_timeout_with_a_daemon_left_behind(mf, direct):
    """@timeout(3) with @retry(1) and @catch on a step that starts a
    SIGTERM-ignoring daemon in a session of its own: both attempts end on
    time, @catch catches, and no process of the step survives the run
    (the local backend's pid 1 forks the one-shot command itself)."""
    mark = "mf-daemon-%s" % uuid.uuid4().hex
    flow = mf.copy_flow("daemon_timeout_flow.py")
    started = time.monotonic()
    proc = mf.run(
        flow,
        "run",
        extra_env={"METAFLOW_TEST_MARK": mark, "METAFLOW_SANDBOX_DIRECT": direct},
    )
    elapsed = time.monotonic() - started
    out = proc.output
    assert out.count("DAEMON-STARTED") == 2, out[-3000:]
    assert out.count("timed out after 0 hours, 0 minutes, 3 seconds") >= 2
    assert "CAUGHT" in out and "CAUGHT None" not in out
    # Two 3 s attempts; generous for a loaded machine, far below the 60 s backstop.
    assert elapsed < 45, elapsed
    left = subprocess.run(["pgrep", "-f", mark], capture_output=True, text=True).stdout
    assert left == "", left
    mf.assert_no_sandboxes("DaemonTimeoutFlow")


def test_with_attributes_on_a_step_that_has_the_decorator_are_named(mf):
    """--with sandbox:memory=2048 on a flow whose step `slow` has @sandbox in
    its code: Metaflow leaves that step's decorator as it is (the option is
    attached only to steps without @sandbox), so the run says that the
    values do not reach `slow` instead of dropping them silently."""
    flow = mf.copy_flow("sleep_flow.py")
    env = {"METAFLOW_TEST_SLEEP": "0"}
    proc = mf.run(flow, "run", "--with", "sandbox:memory=2048", extra_env=env)
    warning = "--with sandbox:memory=2048 does not change step slow, whose @sandbox"
    assert proc.output.count(warning) == 1, proc.output[-3000:]
    assert "does not change step start" not in proc.output
    # Without attributes there is nothing to lose: no warning.
    proc = mf.run(flow, "--with", "sandbox", "run", extra_env=env)
    assert "does not change step" not in proc.output


@pytest.mark.parametrize("backend", ["local", "daytona", "e2b"])
def test_timeout_of_a_step_waiting_in_os_system(mf, emulators, backend):
    """@timeout on a step that waits in os.system (Python's signal handler
    cannot run until that returns): the step's processes are killed just
    after the limit, the wait returns and the step ends with @timeout's own
    exception, which @retry retries and @catch catches. It used to wait for
    the backstop 60 s later, which killed the task without that exception.
    A step that caught the exception and goes on is left alone."""
    if backend != "local" and not main_metaflow():
        pytest.skip("remote backends are tested on the main Metaflow version only")
    use_backend(mf, emulators, backend)
    mark = "mf-blocked-%s" % uuid.uuid4().hex[:12]
    flow = mf.copy_flow("blocked_timeout_flow.py")
    proc = mf.run(flow, "run", extra_env={"METAFLOW_TEST_MARK": mark})
    out = proc.output
    assert out.count("BLOCKED-STARTED attempt") == 2, out[-3000:]
    assert out.count("Step start timed out after 0 hours, 0 minutes, 3 seconds") >= 2, out[-3000:]
    assert "CAUGHT metaflow.plugins.timeout_decorator.TimeoutException" in out, out[-3000:]
    assert "BLOCKED-WAIT-RETURNED" not in out
    # A step that caught the timeout keeps what it runs next.
    assert "SWALLOWED TimeoutException" in out, out[-3000:]
    assert "SWALLOW-COMMAND-DONE" in out, out[-3000:]
    assert "timed out after 63 seconds" not in out and "longer than its time limit" not in out
    left = subprocess.run(["pgrep", "-f", mark], capture_output=True, text=True).stdout
    assert not left.strip(), left

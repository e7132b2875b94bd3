"""What a user's image does to a step on Daytona and E2B (session mfx18):
an image with too old a Python is named, not met with a SyntaxError deep
in Metaflow; an image without bash runs the step; a task whose sandbox
never finishes starting ends on SIGTERM, with no sandbox left.

The images are built here from this machine's programs (test_mf_image.py)
and imported into a store of the test's own, which the emulator started
by the test runs its sandboxes on (docs/testing.md, "Images in the
emulators").
"""

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time

import pytest

from conftest import (
    EXTENSION_DIR,
    ApiProxy,
    Emulator,
    interrupt_when,
    main_metaflow,
    use_backend,
)
from test_mf_image import CTL, _host_python_files, _host_tools, _layout
from test_mf_remote import _remote_task

pytestmark = [
    pytest.mark.skipif(not CTL, reason="SANDBOXCTL is not set"),
    pytest.mark.skipif(
        not main_metaflow(), reason="remote backends are tested on the main Metaflow version only"
    ),
]

# What the remote task's command and the Daytona emulator's session shell
# use: the emulator writes a command's status with mv and answers the file
# API with stat; Daytona's commands start with env (as BusyBox has them).
TOOLS = ("tar", "gzip", "mkdir", "ln", "rm", "cat", "touch", "mv", "mktemp", "grep", "env", "stat")


def _store(tmp_path, images):
    """A store with @images (name -> {path: bytes}, on dash and libc)."""
    store = tmp_path / "store"
    env = dict(os.environ, SANDBOX_IMAGE_STORE=str(store))
    for name, files in images.items():
        layout = _layout(tmp_path / ("layout-" + name.replace(":", "-")), files)
        proc = subprocess.run(
            [CTL, "image", "import", str(layout), "--name", name],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
    return store


def _emulator(name, tmp_path, store):
    return Emulator(name, tmp_path / ("emu-" + name), env={"SANDBOX_IMAGE_STORE": str(store)})


def _run_on_image(mf, emu, image, direct, expect_ok=True):
    """sleep_flow.py with every step (its @sandbox step too: the settings,
    not --with values) on @emu's backend and @image, whose python3 runs
    them, launched directly (@direct "1") or through the trampoline ("0")."""
    mf.env.update(emu.env)
    flow = mf.copy_flow("sleep_flow.py")
    return mf.run(
        flow,
        "--with",
        "sandbox",
        "run",
        extra_env={
            "METAFLOW_SANDBOX_BACKEND": emu.name,
            "METAFLOW_SANDBOX_IMAGE": image,
            "METAFLOW_SANDBOX_PYTHON": "python3",
            "METAFLOW_TEST_SLEEP": "0",
            "METAFLOW_SANDBOX_DIRECT": direct,
        },
        expect_ok=expect_ok,
    )


def _stub_python(version, error):
    """An image whose python3 says it is @version and fails anything else
    with @error, with the tools the task's command needs."""
    files = _host_tools(*TOOLS)
    files["usr/bin/python3"] = (
        b"#!/bin/sh\n"
        b'if [ "$1" = -V ]; then echo "Python %s"; exit 0; fi\n'
        b"echo '%s' >&2\nexit 1\n" % (version.encode(), error.encode())
    )
    return files


@pytest.mark.parametrize(
    "python,direct", [("old", "1"), ("old", "0"), ("no-deps", "1"), ("no-deps", "0")]
)
def test_remote_image_python_checked(mf, tmp_path, python, direct):
    """Daytona on an image whose python3 is 3.6, or cannot import Metaflow
    (its dependencies are missing), through the remote task's process
    (direct) and through the trampoline: the task says which Python it
    found, or what to install, as on the local backend (whose checks are
    now shared). Both paths used to run Metaflow with an old Python and
    fail with its SyntaxError deep inside, or with a bare traceback."""
    if python == "old":
        files = _stub_python("3.6.9", "SyntaxError: invalid syntax")
    else:
        files = _stub_python("3.11.2", "ModuleNotFoundError: No module named requests")
    emu = _emulator("daytona", tmp_path, _store(tmp_path, {"img:1": files}))
    try:
        proc = _run_on_image(mf, emu, "img:1", direct, expect_ok=False)
        out = proc.output
        if python == "old":
            assert "The image img:1 has Python 3.6.9, too old" in out, out[-3000:]
            assert "need Python 3.8 or newer" in out and "METAFLOW_SANDBOX_PYTHON" in out
            assert "SyntaxError" not in out
        else:
            assert "No module named requests" in out, out[-3000:]
            assert "The image img:1 cannot run Metaflow" in out, out[-3000:]
            assert "pip install metaflow==" in out
        assert "SLOW-STEP-STARTED" not in out
        # What the failed step said is the news, not the missing outputs.
        assert "Could not copy the task's results back" not in out, out[-3000:]
        assert emu.wait_live(0, 30) == 0
    finally:
        emu.stop()


@pytest.mark.parametrize("backend,direct", [("daytona", "1"), ("daytona", "0"), ("e2b", "1")])
def test_remote_image_without_bash(mf, tmp_path, backend, direct):
    """An image with Python and Metaflow's dependencies but no bash (sh is
    dash, as BusyBox sh on alpine): the step runs, through the remote
    task's process and through the trampoline, whose commands started
    with /bin/bash ("No such file or directory")."""
    if not os.path.exists("/usr/bin/python3.11"):
        pytest.skip("needs this machine's /usr/bin/python3.11 to build the image")
    files = _host_python_files()
    files.update(_host_tools(*TOOLS))
    assert not any(path.endswith("/bash") for path in files)
    emu = _emulator(backend, tmp_path, _store(tmp_path, {"nobash:1": files}))
    try:
        proc = _run_on_image(mf, emu, "nobash:1", direct)
        assert "SLOW-STEP-STARTED" in proc.output, proc.output[-3000:]
        assert "/bin/bash" not in proc.output
        assert emu.wait_live(0, 30) == 0
    finally:
        emu.stop()


def _start_remote_task(tmp_path, emu, image, step):
    """sandbox_remote (what remote_launch starts for a task) with @step as
    the step's command, on @image (None: the backend's default)."""
    root = tmp_path / "ds" / ".metaflow"
    pool = tmp_path / "pool"
    pool.mkdir(mode=0o700)
    package = io.BytesIO()
    with tarfile.open(fileobj=package, mode="w:gz") as tar:
        info = tarfile.TarInfo("code.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    sha = "cd" * 20
    (root / "F/data/pk").mkdir(parents=True)
    (root / "F/data/pk" / sha).write_bytes(package.getvalue())
    task = _remote_task(pool, root, "10", sha)
    task["backend"] = emu.name
    if image:
        task["spec"]["image"] = image
    task_file = pool / "task-10.todo"
    task_file.write_text(json.dumps(task))
    env = dict(os.environ, **emu.env, PYTHONPATH=str(EXTENSION_DIR))
    return subprocess.Popen(
        [sys.executable, "-m", "metaflow_extensions.libsandbox.plugins.sandbox_remote"]
        + [str(task_file), "--", "/bin/sh", "-c", step],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _sigterm(proc, timeout: float):
    """SIGTERM to a remote task's process: (what it printed, seconds until
    it ended); fails the test if it is still running after @timeout."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        out, _err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _err = proc.communicate()
        pytest.fail("the task's process ignored SIGTERM:\n" + out.decode()[-3000:])
    return out.decode("utf-8", "replace"), time.monotonic() - started


@pytest.mark.parametrize(
    "backend,stuck", [("daytona", "create"), ("daytona", "step"), ("e2b", "step")]
)
def test_stuck_remote_task_ends_on_sigterm(tmp_path, backend, stuck):
    """A remote task's process gets SIGTERM (the runtime ending the run)
    while its sandbox is still starting and never will (a Daytona image
    without `mv`: the emulator's session shell cannot report the workdir
    command's end), or while the step hangs: it exits within seconds,
    saying it was interrupted, and the emulator has no sandbox left. The
    create was not cancellable: that process ignored every SIGTERM."""
    store = None
    image = None
    if stuck == "create":
        tools = _host_tools(*(t for t in TOOLS if t != "mv"), "sleep")
        store = _store(tmp_path, {"nomv:1": tools})
        image = "nomv:1"
    emu = Emulator(
        backend,
        tmp_path / "emu",
        env={"SANDBOX_IMAGE_STORE": str(store)} if store else None,
    )
    try:
        proc = _start_remote_task(tmp_path, emu, image, "echo STEP-HANGS; exec sleep 600")
        if stuck == "create":
            deadline = time.monotonic() + 60
            while emu.live() == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert emu.live() == 1
            time.sleep(1.0)  # in the create's workdir command, which never ends
        else:
            assert proc.stdout is not None
            for line in proc.stdout:
                if b"STEP-HANGS" in line:
                    break
        assert proc.poll() is None
        text, elapsed = _sigterm(proc, 20)
        assert proc.returncode == 128 + signal.SIGTERM, text[-3000:]
        assert "Interrupted (signal 15)" in text, text[-3000:]
        assert elapsed < 10, elapsed
        assert emu.wait_live(0, 10) == 0
    finally:
        emu.stop()


@pytest.mark.parametrize("direct,prepare", [("1", "0"), ("0", "0"), ("1", "1")])
def test_run_stuck_in_create_ends_on_sigterm(mf, tmp_path, direct, prepare):
    """The same through a whole run, on both remote launch paths (the
    remote task's process, and the trampoline, which had its own create
    without a cancellable), and with the start task's sandbox created by
    the runtime's helper (METAFLOW_SANDBOX_PREPARE): SIGTERM to the run's
    process group while that sandbox can never finish starting ends every
    process of the run, and no sandbox is left."""
    tools = _host_tools(*(t for t in TOOLS if t != "mv"))
    emu = _emulator("daytona", tmp_path, _store(tmp_path, {"nomv:1": tools}))
    try:
        mf.env.update(emu.env)
        mf.env.update({"METAFLOW_SANDBOX_DIRECT": direct, "METAFLOW_SANDBOX_PREPARE": prepare})
        flow = mf.copy_flow("sleep_flow.py")
        proc = mf.popen(flow, "--with", "sandbox:backend=daytona,image=nomv:1", "run")

        def terminate_in_create():
            # The start task's sandbox exists, and its start never ends.
            deadline = time.monotonic() + 60
            while emu.live() == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)
            os.killpg(proc.pid, signal.SIGTERM)

        # (Signal 0 at the marker: only after_signal sends SIGTERM.)
        output = interrupt_when(proc, "Task is starting.", 0, terminate_in_create)
        assert proc.returncode != 0
        assert emu.wait_live(0, 30) == 0, output[-3000:]
    finally:
        emu.stop()


@pytest.mark.parametrize("backend", ["daytona", "e2b"])
def test_time_limits_hold_on_remote(mf, emulators, backend):
    """@timeout, and @sandbox(timeout=...) with @retry and @catch (the
    smaller of the two winning), end remote steps on time, as on the local
    backend: each attempt of a 120 s sleep stops after about its limit,
    the run goes on through @catch, and no sandbox is left."""
    emu = use_backend(mf, emulators, backend)
    flow = mf.copy_flow("sandbox_timeout_flow.py")
    started = time.monotonic()
    proc = mf.run(flow, "run")
    elapsed = time.monotonic() - started
    out = proc.output
    limit = "Step slow timed out after 0 hours, 0 minutes, 5 seconds (@sandbox(timeout=5))"
    assert out.count(limit) >= 2, out[-3000:]  # (the end step prints the caught ones too)
    assert out.count("SLOW-STARTED attempt") == 2
    assert "Step both timed out after 0 hours, 0 minutes, 4 seconds" in out, out[-3000:]
    assert "SLOW-ERROR" in out and "SLOW-ERROR None" not in out
    # Three sleeps of 120 s cut to 5, 5 and 4 s; far below any backstop.
    assert elapsed < 120, elapsed
    assert emu.wait_live(0, 30) == 0


def _hold_until_the_client_goes(hold_s: float):
    """An ApiProxy's on_delete: holds every DELETE (a provider slow to
    destroy) until the client gives up on it (closes the connection) or
    @hold_s pass, then passes it on."""
    import select
    import socket

    def on_delete(_proxy, handler, _sandbox_id):
        deadline = time.monotonic() + hold_s
        while time.monotonic() < deadline:
            ready, _, _ = select.select([handler.connection], [], [], 0.05)
            peek = socket.MSG_PEEK | socket.MSG_DONTWAIT
            if ready and not handler.connection.recv(1, peek):
                break  # the client went away
        return None

    return on_delete


@pytest.mark.parametrize("backend", ["e2b", "daytona"])
def test_sigterm_while_destroying_ends_the_task(tmp_path, backend):
    """SIGTERM to a remote task's process while the provider is slow to
    answer the destroy of its sandbox (the step failed): the process ends
    within seconds, saying the sandbox's destroy got no answer and how to
    remove it, and the destroy it sent is carried out (no sandbox left).
    The destroy was a synchronous call, during which GLib's signal handlers
    do not run: the process went on waiting for the provider, through
    every SIGTERM."""
    emu = Emulator(backend, tmp_path / "emu")
    proxy = ApiProxy(emu, _hold_until_the_client_goes(60))
    try:
        proc = _start_remote_task(tmp_path, emu, None, "echo STEP-FAILS; exit 3")
        deadline = time.monotonic() + 120
        while not proxy.deletes:
            assert time.monotonic() < deadline, "the task never destroyed its sandbox"
            time.sleep(0.05)
        assert proc.poll() is None
        text, elapsed = _sigterm(proc, 30)
        assert "STEP-FAILS" in text, text[-3000:]
        assert elapsed < 10, (elapsed, text[-3000:])
        assert "no answer 5 s after the interrupt (signal 15)" in text, text[-3000:]
        assert "sandboxctl rm" in text, text[-3000:]
        assert emu.wait_live(0, 30) == 0
    finally:
        proxy.stop()
        emu.stop()


def test_backstop_ends_remote_task(mf, emulators):
    """A step that caught @timeout's exception and then waits in os.system
    runs to its sandbox's backstop, 60 s after the limit; the task then says
    so and ends (@catch takes it), with nothing of the step and no sandbox
    left. The task hung for ever in the destroy of its sandbox: its first
    call (the prepared sandbox's get_instance) had left a kept-alive
    connection on the context of synchronous calls, whose idle timer (60 s)
    closed it under the DELETE that took it a minute later (libsoup)."""
    import uuid

    emu = use_backend(mf, emulators, "e2b")
    mark = "mf-backstop-%s" % uuid.uuid4().hex[:12]
    mf.env["METAFLOW_TEST_MARK"] = mark
    # The task takes the sandbox the runtime's helper prepared: its first
    # call, a synchronous get_instance (a minute before the destroy).
    mf.env["METAFLOW_SANDBOX_PREPARE"] = "1"
    flow = mf.copy_flow("swallowed_timeout_flow.py")
    proc = mf.popen(flow, "run")
    try:
        out, _err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _err = proc.communicate()
        pytest.fail("the run did not end after the backstop:\n" + out.decode()[-3000:])
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 0, text[-3000:]
    assert "SWALLOWED TimeoutException" in text, text[-3000:]
    assert "The task ran longer than its time limit of 3 seconds and was killed." in text
    assert "CAUGHT" in text and "CAUGHT None" not in text, text[-3000:]
    left = subprocess.run(["pgrep", "-f", mark], capture_output=True, text=True).stdout
    assert not left.strip(), left
    assert emu.wait_live(0, 30) == 0


ATTEMPT_AFTER_SIGNAL = """
import os, signal, time
from metaflow_extensions.libsandbox.plugins.sandbox_remote import SIGNAL_GRACE_S, Attempt, _load_gi

Gio, GLib, Sandbox = _load_gi()


class Calls:
    # thing_async never ends; late_async ends one second after it began.
    def thing_async(self, cancellable, callback):
        pass

    def late_async(self, cancellable, callback):
        GLib.timeout_add(1000, lambda: callback(self, None) and False)

    def late_finish(self, result):
        return "late"


attempt = Attempt(Gio, GLib, Sandbox, "local")
attempt.install_signal_handlers()
calls = Calls()
GLib.timeout_add(200, lambda: os.kill(os.getpid(), signal.SIGTERM) and False)
for what in ("wait", "wait_all"):
    started = time.monotonic()
    try:
        if what == "wait":
            attempt.wait(calls, "thing", attempt.cancellable)
        else:
            attempt.wait_all([(calls, "thing", (None,)), (calls, "late", (None,))])
    except GLib.Error as ex:
        print(what, round(time.monotonic() - started), ex.message)
# Within the grace, a call that ends is waited for.
print(attempt.wait(calls, "late", None))
attempt.remove_signal_handlers()
"""


def test_no_wait_outlasts_a_signal_by_more_than_seconds(tmp_path):
    """Once SIGTERM came, a remote task's process waits for what is under
    way (a cancelled command's end, a destroy's answer) SIGNAL_GRACE_S
    (5 s) more at the most, then goes on to its end: a provider that never
    answers cannot hold the process. A call that the signal had cancelled
    and that never ended (an E2B command's kill, a Daytona session's
    delete unanswered) held it for ever."""
    env = dict(os.environ, PYTHONPATH=str(EXTENSION_DIR))
    proc = subprocess.run(
        [sys.executable, "-c", ATTEMPT_AFTER_SIGNAL],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == [
        "wait 5 no answer 5 s after the interrupt (signal 15)",
        "wait_all 5 no answer 5 s after the interrupt (signal 15)",
        "late",
    ], proc.stdout + proc.stderr

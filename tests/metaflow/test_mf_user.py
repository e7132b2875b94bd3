"""@sandbox as a Metaflow user expects it (issue 15): timeout= ends the task
on time, resources are applied or refused before the run, sandbox problems
have their own headline, and the runtime sees what a local task would give
it (signals, unbounded foreach, immediate retries).

Timing bounds are loose: the machine running them may be loaded.
"""

import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import FLOWS, PYTHON, main_metaflow, use_backend


def _timed_lines(proc) -> list[tuple[float, str]]:
    """The run's output lines with the time each arrived."""
    lines = []
    assert proc.stdout is not None
    for raw in proc.stdout:
        lines.append((time.monotonic(), raw.decode("utf-8", errors="replace")))
    proc.wait(timeout=600)
    return lines


def _first(lines, pattern: str, after: float = 0.0) -> float:
    for t, line in lines:
        if t >= after and re.search(pattern, line):
            return t
    pytest.fail("no line matches %r:\n%s" % (pattern, "".join(text for _, text in lines[-60:])))


def test_sandbox_timeout_ends_task_on_time_with_retry_and_catch(mf):
    """@sandbox(timeout=5) without @timeout stops a 120 s sleep after about
    5 s, in every @retry attempt, retried at once (no minutes_between_retries
    sleep, as local Metaflow), then caught by @catch; a timeout= shorter than
    @timeout's wins."""
    flow = mf.copy_flow("sandbox_timeout_flow.py")
    proc = mf.popen(flow, "run")
    lines = _timed_lines(proc)
    out = "".join(line for _, line in lines)
    assert proc.returncode == 0, out[-4000:]

    msg = r"Step slow timed out after 0 hours, 0 minutes, 5 seconds \(@sandbox\(timeout=5\)\)"
    start0 = _first(lines, r"SLOW-STARTED attempt 0")
    end0 = _first(lines, msg, after=start0)
    start1 = _first(lines, r"SLOW-STARTED attempt 1", after=end0)
    end1 = _first(lines, msg, after=start1)
    for start, end in ((start0, end0), (start1, end1)):
        assert 3.5 < end - start < 20, (end - start, out[-4000:])
    # Not 2 minutes: the runtime retries at once.
    assert start1 - end0 < 60, out[-4000:]

    both = _first(lines, r"BOTH-STARTED")
    both_end = _first(lines, r"Step both timed out after 0 hours, 0 minutes, 4 seconds", both)
    assert 2.5 < both_end - both < 20, out[-4000:]

    info = mf.inspect("SandboxTimeoutFlow")
    assert info["successful"]
    assert "timed out" in info["steps"]["end"][0]["stdout"]
    mf.assert_no_sandboxes("SandboxTimeoutFlow")


def _refused(proc, *needles):
    assert proc.returncode != 0
    for needle in needles:
        assert needle in proc.output, proc.output[-3000:]
    assert "Task is starting" not in proc.output
    assert "Internal error" not in proc.output
    assert "RESOURCES-STEP-RAN" not in proc.output


@pytest.mark.parametrize(
    "withs, needles",
    [
        (
            ["sandbox:backend=e2b,cpu=4"],
            ["asks for cpu=4", "@sandbox(cpu=...)", "e2b backend cannot apply cpu"],
        ),
        (
            ["sandbox:backend=daytona,memory=8192"],
            ["asks for memory=8192", "sizes a sandbox from its snapshot", "image="],
        ),
        (
            ["sandbox:backend=local,gpu=1"],
            ["asks for gpu=1", "local backend cannot apply gpu", "remove @sandbox(gpu=...)"],
        ),
        (
            ["sandbox:backend=e2b", "resources:memory=16000"],
            ["asks for memory=16000", "@resources(memory=...)"],
        ),
        # (mfx19) @resources(shared_memory=...) was dropped without a word.
        (
            ["sandbox:backend=e2b", "resources:shared_memory=1024"],
            [
                "asks for shared_memory=1024 with @resources(shared_memory=...)",
                "e2b backend cannot size /dev/shm",
            ],
        ),
        (
            ["sandbox:backend=local", "resources:shared_memory=2048"],
            [
                "asks for shared_memory=2048",
                "/dev/shm holds a quarter of the step's memory (memory=4096 gives 1024 MB)",
                "ask for memory=8192 or more",
            ],
        ),
        (
            ["sandbox:image=/no/such/rootfs"],
            ['accepts image="host"', "root file system directory", "sandboxctl image import"],
        ),
    ],
)
def test_resources_and_images_refused_before_the_run(mf, withs, needles):
    flow = mf.copy_flow("resources_flow.py")
    args = []
    for w in withs:
        args += ["--with", w]
    _refused(mf.run(flow, *args, "run", expect_ok=False), *needles)


def test_shared_memory_within_the_local_limit_is_honoured(mf):
    """@resources(shared_memory=N) on the local backend: /dev/shm holds a
    quarter of the step's memory, so N within it is what the step gets (at
    least N MB), here with the memory that gives it."""
    flow = mf.copy_flow("shm_flow.py")
    proc = mf.run(
        flow, "--with", "sandbox", "--with", "resources:shared_memory=1536,memory=6144", "run"
    )
    shm = [int(line.split("SHM-MB=")[1]) for line in proc.output.splitlines() if "SHM-MB=" in line]
    assert shm and 1536 <= shm[0] < 4096, proc.output[-3000:]


def test_defaults_a_backend_ignores_are_not_sent(mf, emulators):
    """E2B sizes sandboxes from the template: the configured default cpu and
    memory are neither refused nor recorded as the task's."""
    use_backend(mf, emulators, "e2b")
    flow = mf.copy_flow("resources_flow.py")
    proc = mf.run(flow, "--with", "sandbox", "run")
    # The datastore sync is reported only with METAFLOW_SANDBOX_DEBUG, and
    # save_logs' own diagnostics never reach users.
    assert "datastore sync" not in proc.output
    assert "[save_logs]" not in proc.output and "upload_start" not in proc.output
    info = mf.inspect("ResourcesSandboxFlow")
    spec = info["steps"]["start"][0]["metadata"]["sandbox-spec"]
    assert '"cpu": null' in spec and '"memory": null' in spec, spec


@pytest.mark.parametrize(
    "withs, needles",
    [
        (
            ["sandbox:backend=pycpu,memory=512"],
            ["asks for memory=512", "@sandbox(memory=...)", "pycpu backend cannot apply memory"],
        ),
        (
            ["sandbox:backend=pycpu", "resources:gpu=1"],
            ["asks for gpu=1", "@resources(gpu=...)", "pycpu backend cannot apply gpu"],
        ),
        (
            ["sandbox:backend=pysnap,cpu=2"],
            ["asks for cpu=2", "pysnap backend sizes a sandbox from its snapshot", "image="],
        ),
        # (mfx18) network= and image= a backend cannot honour: refused,
        # where they were sent and ignored.
        (
            ["sandbox:backend=pyopen,network=true"],
            ["asks for network=True", "pyopen backend cannot turn a sandbox's network"],
        ),
        (
            ["sandbox:backend=pyopen,network=false"],
            ["asks for network=False", "remove network= from @sandbox"],
        ),
        (
            ["sandbox:backend=pyown,image=python:3.12"],
            ["asks for image=python:3.12 with @sandbox(image=...)", "cannot run another"],
        ),
        (
            ["sandbox:backend=pysnap,image=host"],
            ['asks for image="host"', "only the local backend has", "pysnap backend's default"],
        ),
    ],
)
def test_python_backend_capabilities_refuse(mf, withs, needles):
    """A backend written in Python (registered by the flow) is validated by
    the capabilities it declares, not by its name: a resource it does not
    declare is refused before the run, naming the argument to remove."""
    flow = mf.copy_flow("pybackend_flow.py")
    args = []
    for w in withs:
        args += ["--with", w]
    proc = mf.run(flow, *args, "run", expect_ok=False)
    _refused(proc, *needles)
    assert "PYBACKEND-STEP-RAN" not in proc.output


def test_python_backend_capabilities_accept(mf):
    """The cpu the Python backend declares is accepted and sent; the default
    memory and disk it does not declare are dropped, not refused."""
    flow = mf.copy_flow("pybackend_flow.py")
    proc = mf.run(flow, "--with", "sandbox:backend=pycpu,cpu=2", "run")
    assert "PYBACKEND-STEP-RAN" in proc.output
    assert "backend pycpu" in proc.output, proc.output[-3000:]
    info = mf.inspect("PyBackendSandboxFlow")
    meta = info["steps"]["start"][0]["metadata"]
    assert meta["sandbox-backend"] == "pycpu"
    spec = json.loads(meta["sandbox-spec"])
    assert float(spec["cpu"]) == 2, spec
    assert spec["memory"] is None and spec["disk"] is None, spec
    mf.assert_no_sandboxes("PyBackendSandboxFlow")


def test_network_default_a_backend_cannot_keep_is_said(mf):
    """(mfx18) A backend without a network policy runs the step, saying
    once that "no network" (the default) cannot be promised there, instead
    of implying it silently."""
    flow = mf.copy_flow("pybackend_flow.py")
    proc = mf.run(flow, "--with", "sandbox:backend=pyopen", "run")
    assert "PYBACKEND-STEP-RAN" in proc.output
    warning = "Step start runs on the pyopen backend, which cannot turn a sandbox's network off"
    assert proc.output.count(warning) == 1, proc.output[-3000:]
    mf.assert_no_sandboxes("PyBackendSandboxFlow")


def test_segfault_reported_as_signal(mf):
    flow = mf.copy_flow("segfault_flow.py")
    proc = mf.run(flow, "--with", "sandbox", "run", expect_ok=False)
    assert "SEGFAULT-COMING" in proc.output
    assert "Task is starting in sandbox" in proc.output
    assert "Task failed with a segmentation fault." in proc.output, proc.output[-3000:]
    mf.assert_no_sandboxes("SegfaultSandboxFlow")


def test_unbounded_foreach(mf):
    flow = mf.copy_flow("ubf_flow.py")
    proc = mf.run(flow, "--with", "sandbox", "run")
    assert "UBF-GOT [0, 1]" in proc.output, proc.output[-3000:]
    assert "Task is starting in sandbox" in proc.output
    mf.assert_no_sandboxes("UbfSandboxFlow")


def test_debug_keeps_failed_sandbox_then_list_and_kill(mf):
    """METAFLOW_SANDBOX_DEBUG=1: a failed task's sandbox stays, with the
    command that opens a shell in it; `sandbox list` shows it and `sandbox
    kill` removes it."""
    flow = mf.copy_flow("fail_flow.py")
    proc = mf.run(
        flow, "--with", "sandbox", "run", extra_env={"METAFLOW_SANDBOX_DEBUG": "1"}, expect_ok=False
    )
    kept = re.findall(r"sandboxctl exec (sbx-[0-9a-f]{12}) -- sh", proc.output)
    assert len(kept) == 2, proc.output[-3000:]  # both attempts failed
    assert sorted(mf.live_sandboxes({"flow": "FailSandboxFlow"})) == sorted(kept)
    run_id = mf.inspect("FailSandboxFlow")["run_id"]

    shell = subprocess.run(
        [
            os.environ.get("SANDBOXCTL") or "sandboxctl",
            "exec",
            kept[0],
            "--",
            "sh",
            "-c",
            "echo inside $(hostname)",
        ],
        env=mf.env,
        capture_output=True,
        timeout=60,
    )
    assert shell.returncode == 0, shell.stderr.decode()
    assert "inside" in shell.stdout.decode()

    listing = mf.run(flow, "sandbox", "list", "--run-id", run_id).output
    for sandbox_id in kept:
        assert sandbox_id in listing and "/start/" in listing, listing
    killed = mf.run(flow, "sandbox", "kill", "--run-id", run_id).output
    for sandbox_id in kept:
        assert "Destroyed sandbox %s" % sandbox_id in killed, killed
    assert "No live sandboxes" in mf.run(flow, "sandbox", "list").output
    mf.assert_no_sandboxes("FailSandboxFlow")


def test_failed_task_sandbox_destroyed_without_debug(mf):
    flow = mf.copy_flow("fail_flow.py")
    proc = mf.run(flow, "--with", "sandbox", "run", expect_ok=False)
    assert proc.output.count("FAIL-STEP-RAN") == 2
    assert "sandboxctl exec" not in proc.output
    mf.assert_no_sandboxes("FailSandboxFlow")


class _Unavailable(http.server.BaseHTTPRequestHandler):
    def _fail(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b'{"message": "service unavailable"}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _fail

    def log_message(self, *args):
        pass


def test_failed_create_retried_then_task_retry(mf):
    """A provider that cannot create sandboxes: each attempt tries 3 times
    with back-off, then fails as a task (Sandbox error, not Internal error),
    which @retry retries."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        mf.env.update(
            {
                "METAFLOW_SANDBOX_BACKEND": "e2b",
                "E2B_API_KEY": "e2b_test",
                "E2B_API_URL": "http://127.0.0.1:%d" % server.server_address[1],
                "E2B_DOMAIN": "127.0.0.1",
            }
        )
        flow = mf.copy_flow("fail_flow.py")
        proc = mf.run(flow, "--with", "sandbox", "run", expect_ok=False)
    finally:
        server.shutdown()
    out = proc.output
    assert out.count("trying again in 2 s") == 2, out[-4000:]
    assert out.count("trying again in 4 s") == 2, out[-4000:]
    assert out.count("(3 tries)") == 2, out[-4000:]
    assert "Sandbox error" in out
    assert "Internal error" not in out
    assert "FAIL-STEP-RAN" not in out


ENV_PYPI = ["--environment=pypi", "--with", "sandbox", "run"]
ENV_CONDA = ["--environment=conda", "--with", "sandbox", "run"]
WITH_SANDBOX = ["--with", "sandbox", "run"]


@pytest.mark.parametrize(
    "flow_file, args, needle",
    [
        # A flow without @pypi/@conda, in their environments.
        ("segfault_flow.py", ENV_PYPI, "uses --environment=pypi"),
        ("segfault_flow.py", ENV_CONDA, "uses --environment=conda"),
        # @pypi/@conda, in any environment: refused before Metaflow's own check
        # (which would send the user to --environment=pypi or conda).
        ("pypi_flow.py", WITH_SANDBOX, "Step start uses @pypi"),
        ("conda_flow.py", WITH_SANDBOX, "Step start uses @conda"),
        ("pypi_flow.py", ENV_PYPI, "Step start uses @pypi"),
    ],
)
def test_pypi_conda_refused_pointing_at_uv(mf, flow_file, args, needle):
    flow = mf.copy_flow(flow_file)
    proc = mf.run(flow, *args, expect_ok=False)
    assert needle in proc.output, proc.output[-3000:]
    assert "--environment=uv" in proc.output
    assert "requires --environment=conda or --environment=pypi" not in proc.output
    assert "STEP-RAN" not in proc.output and "SEGFAULT-COMING" not in proc.output
    assert "Task is starting" not in proc.output


def test_parallel_gang_in_one_sandbox(mf):
    """@parallel (num_parallel=3): the control task starts the other nodes in
    its own sandbox, as local Metaflow starts them on this machine."""
    flow = mf.copy_flow("parallel_flow.py")
    proc = mf.run(flow, "run")
    assert "PARALLEL-GOT [(0, 3), (1, 3), (2, 3)] in 1 sandbox(es)" in proc.output, proc.output[
        -3000:
    ]
    assert "Task is starting in sandbox" in proc.output
    mf.assert_no_sandboxes("ParallelSandboxFlow")


def _pypi_reachable() -> bool:
    try:
        with urllib.request.urlopen("https://pypi.org/simple/six/", timeout=15) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.mark.parametrize("backend", ["daytona", "e2b"])
def test_uv_environment_remote(mf, emulators, backend):
    """--environment=uv on a remote backend (its emulator): the sandbox syncs
    the project's uv.lock itself (uv from PyPI, once per sandbox) and the
    step runs in that environment."""
    if not main_metaflow():
        pytest.skip("--environment=uv is tested with the Metaflow requirements-test.txt pins")
    if not _pypi_reachable():
        pytest.skip("PyPI (pypi.org) is not reachable from here: uv sync cannot run")
    emu = use_backend(mf, emulators, backend)
    project = FLOWS / "uv_project"
    for name in ("uv_flow.py", "pyproject.toml", "uv.lock"):
        shutil.copy(project / name, mf.cwd / name)
    proc = mf.run("uv_flow.py", "--environment=uv", "--with", "sandbox", "run")
    assert "six=1.16.0" in proc.output, proc.output[-3000:]
    assert "Task is starting in sandbox" in proc.output
    info = mf.inspect("UvSandboxFlow")
    assert info["steps"]["start"][0]["data"]["six"] == "1.16.0"
    assert '"network": true' in info["steps"]["start"][0]["metadata"]["sandbox-spec"]
    assert emu is not None and emu.live() == 0, "sandboxes left behind"


@pytest.mark.parametrize("host_uv", [True, False], ids=["host-uv", "uv-from-pypi"])
def test_uv_environment(mf, host_uv):
    """--environment=uv: the step runs in the project's locked environment,
    synced in the sandbox (uv from the host, or from PyPI in the sandbox),
    with one uv cache for the datastore's tasks."""
    if not main_metaflow():
        pytest.skip("--environment=uv is tested with the Metaflow requirements-test.txt pins")
    if not _pypi_reachable():
        pytest.skip("PyPI (pypi.org) is not reachable from here: uv sync cannot run")
    project = FLOWS / "uv_project"
    for name in ("uv_flow.py", "pyproject.toml", "uv.lock"):
        shutil.copy(project / name, mf.cwd / name)
    path = [
        p for p in mf.env["PATH"].split(os.pathsep) if not os.access(os.path.join(p, "uv"), os.X_OK)
    ]
    if host_uv:
        uv = shutil.which("uv") or shutil.which("uv", path=str(Path(PYTHON).parent))
        if not uv:
            pytest.skip("no uv on this machine (pip install uv)")
        path.insert(0, os.path.dirname(uv))
    mf.env["PATH"] = os.pathsep.join(path)
    proc = mf.run("uv_flow.py", "--environment=uv", "--with", "sandbox", "run")
    assert "UV-STEP prefix=/workspace/metaflow/.venv six=1.16.0" in proc.output, proc.output[-3000:]
    assert (mf.datastore_root / ".uv-caches" / "UvSandboxFlow").is_dir()
    info = mf.inspect("UvSandboxFlow")
    assert info["steps"]["start"][0]["data"]["six"] == "1.16.0"
    assert '"network": true' in info["steps"]["start"][0]["metadata"]["sandbox-spec"]
    mf.assert_no_sandboxes("UvSandboxFlow")


def test_run_id_file_in_the_task_working_directory(mf):
    """Metaflow's own harness (RunIdFileTest) reads the launcher's
    --run-id-file in the step's working directory: a sandboxed step started
    directly finds it there too, and its card still reaches the datastore."""
    flow = mf.copy_flow("run_id_file_flow.py")
    proc = mf.run(flow, "--with", "sandbox", "run", "--run-id-file", "run-id")
    run_id = (mf.cwd / "run-id").read_text()
    assert "RUN-ID-FILE-SEEN %s" % run_id in proc.output, proc.output[-3000:]
    assert "Task is starting in sandbox" in proc.output
    info = mf.inspect("RunIdFileSandboxFlow", run_id)
    start = info["steps"]["start"][0]
    assert start["data"]["from_file"] == run_id
    assert start["cards"] >= 1
    mf.assert_no_sandboxes("RunIdFileSandboxFlow")


@pytest.mark.parametrize("direct", ["1", "0"])
def test_card_with_a_card_root_of_its_own(mf, tmp_path, direct):
    """With METAFLOW_CARD_LOCALROOT set, a sandboxed step, which sees the
    datastore read-only but for its own directories, still stores its card
    where Metaflow puts it (2.19: below the datastore root itself), direct
    launch and trampoline."""
    cards = tmp_path / "cards"
    flow = mf.copy_flow("card_root_flow.py")
    env = {"METAFLOW_CARD_LOCALROOT": str(cards), "METAFLOW_SANDBOX_DIRECT": direct}
    proc = mf.run(flow, "--with", "sandbox", "run", extra_env=env)
    assert "CARD-ROOT-END" in proc.output, proc.output[-3000:]
    found = sorted(str(p) for p in tmp_path.rglob("*.html"))
    assert len(found) == 1, found
    assert re.search(r"/CardRootFlow/runs/\d+/steps/start/tasks/1/cards/[^/]+$", found[0]), found
    mf.assert_no_sandboxes("CardRootFlow")

"""Fixtures for the Metaflow extension tests (real Metaflow, real bubblewrap).

Every test gets its own directory with its own local datastore
(METAFLOW_DATASTORE_SYSROOT_LOCAL), working directory and SANDBOX_LOCAL_ROOT;
flows run as subprocesses, and the client API is read in a subprocess
(mfinspect.py) so each test's environment applies.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FLOWS = HERE / "flows"
TOP_SRCDIR = Path(os.environ.get("TOP_SRCDIR") or HERE.parent.parent).resolve()
EXTENSION_DIR = TOP_SRCDIR / "python"
PYTHON = sys.executable
RUN_TIMEOUT = 600


@dataclass
class MfEnv:
    base: Path
    cwd: Path
    sbx_root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def datastore_root(self) -> Path:
        return self.base / ".metaflow"

    def copy_flow(self, name: str) -> str:
        shutil.copy(FLOWS / name, self.cwd / name)
        return name

    def flow_cmd(self, flow: str, *args: str) -> list[str]:
        return [PYTHON, flow, "--no-pylint", *args]

    def run(
        self,
        flow: str,
        *args: str,
        extra_env: dict[str, str] | None = None,
        expect_ok: bool | None = True,
    ) -> subprocess.CompletedProcess:
        env = dict(self.env, **(extra_env or {}))
        proc = subprocess.run(
            self.flow_cmd(flow, *args),
            cwd=self.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=RUN_TIMEOUT,
        )
        proc.output = proc.stdout.decode("utf-8", errors="replace")
        if expect_ok is not None and (proc.returncode == 0) != expect_ok:
            tail = "\n".join(proc.output.splitlines()[-60:])
            pytest.fail("%s %s exited with %d:\n%s" % (flow, " ".join(args), proc.returncode, tail))
        return proc

    def popen(self, flow: str, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            self.flow_cmd(flow, *args),
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, like a terminal job
        )

    def inspect(self, flow_name: str, run_id: str | None = None) -> dict:
        args = [PYTHON, str(HERE / "mfinspect.py"), flow_name]
        if run_id:
            args.append(run_id)
        out = subprocess.run(
            args,
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            timeout=RUN_TIMEOUT,
        )
        if out.returncode != 0:
            pytest.fail(f"mfinspect failed:\n{out.stderr.decode()[-4000:]}")
        return json.loads(out.stdout)

    def live_sandboxes(self, labels: dict[str, str]) -> list[str]:
        """Ids of local-backend instances with these labels (through libsandbox)."""
        script = (
            "import gi, json, sys\n"
            "gi.require_version('Sandbox', '1.0')\n"
            "from gi.repository import Sandbox\n"
            "b = Sandbox.Backend.new_for_name('local')\n"
            "print(json.dumps([i.get_id() for i in b.list(json.loads(sys.argv[1]), None)]))\n"
        )
        out = subprocess.run(
            [PYTHON, "-c", script, json.dumps(labels)],
            env=self.env,
            capture_output=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr.decode()
        return json.loads(out.stdout)

    def sandboxctl_ls(self) -> str | None:
        tool = os.environ.get("SANDBOXCTL")
        if not tool or not os.access(tool, os.X_OK):
            return None
        out = subprocess.run(
            [tool, "ls"],
            env=self.env,
            capture_output=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr.decode()
        return out.stdout.decode()

    def assert_no_sandboxes(self, flow_name: str) -> None:
        assert self.live_sandboxes({"flow": flow_name}) == []
        leftovers = [p.name for p in self.sbx_root.iterdir()] if self.sbx_root.exists() else []
        assert leftovers == [], f"instances left in SANDBOX_LOCAL_ROOT: {leftovers}"
        listing = self.sandboxctl_ls()
        if listing is not None:
            assert "sbx-" not in listing, listing


@pytest.fixture
def mf(tmp_path) -> MfEnv:
    base = tmp_path / "ds"
    cwd = tmp_path / "work"
    sbx = tmp_path / "sbx"
    for d in (base, cwd, sbx, tmp_path / "home"):
        d.mkdir()
    (base / ".metaflow").mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("METAFLOW_", "SANDBOX_LOCAL_ROOT", "PYTHONPATH"))
    }
    env.update(
        {
            "METAFLOW_HOME": str(tmp_path / "home"),
            "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(base),
            "METAFLOW_DEFAULT_DATASTORE": "local",
            "METAFLOW_DEFAULT_METADATA": "local",
            "METAFLOW_USER": "tester",
            "SANDBOX_LOCAL_ROOT": str(sbx),
            "PYTHONPATH": str(EXTENSION_DIR),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return MfEnv(base=base, cwd=cwd, sbx_root=sbx, env=env)


def interrupt_when(proc: subprocess.Popen, marker: str, signum: int) -> str:
    """Reads the run's output until marker, then signals its process group."""
    seen = []
    for raw in proc.stdout:
        line = raw.decode("utf-8", errors="replace")
        seen.append(line)
        if marker in line:
            os.killpg(proc.pid, signum)
            break
    else:
        proc.wait()
        pytest.fail("the run ended before printing {!r}:\n{}".format(marker, "".join(seen[-40:])))
    rest = proc.stdout.read().decode("utf-8", errors="replace")
    proc.wait(timeout=RUN_TIMEOUT)
    # The trampolines are grandchildren: wait until the whole group is gone.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("processes of the interrupted run are still alive")
    return "".join(seen) + rest


__all__ = ["MfEnv", "interrupt_when"]

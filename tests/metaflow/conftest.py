"""Fixtures for the Metaflow extension tests (real Metaflow, real bubblewrap).

Every test gets its own directory with its own local datastore
(METAFLOW_DATASTORE_SYSROOT_LOCAL), working directory and SANDBOX_LOCAL_ROOT;
flows run as subprocesses, and the client API is read in a subprocess
(mfinspect.py) so each test's environment applies.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FLOWS = HERE / "flows"
TOP_SRCDIR = Path(os.environ.get("TOP_SRCDIR") or HERE.parent.parent).resolve()
EXTENSION_DIR = TOP_SRCDIR / "python"
PYTHON = sys.executable
RUN_TIMEOUT = 600


def _default_interrupt() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


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
            # A terminal job's Ctrl-C: not ignored, even when the suite runs
            # in the background of a non-interactive shell (which ignores it).
            preexec_fn=_default_interrupt,
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
            # The remote backends' bytecode cache (sandbox_executor): the test's own.
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
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


def interrupt_when(proc: subprocess.Popen, marker: str, signum: int, after_signal=None) -> str:
    """Reads the run's output until marker, then signals its process group
    (and calls after_signal() right away)."""
    seen = []
    for raw in proc.stdout:
        line = raw.decode("utf-8", errors="replace")
        seen.append(line)
        if marker in line:
            os.killpg(proc.pid, signum)
            if after_signal is not None:
                after_signal()
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


BUILDDIR = Path(os.environ.get("TOP_BUILDDIR") or ".").resolve()
EMULATORS = {
    "daytona": BUILDDIR / "tests/emulators/daytona-emulator",
    "e2b": BUILDDIR / "tests/emulators/e2b-emulator",
}


class Emulator:
    """A Daytona or E2B emulator program; its sandboxes are local-backend
    instances under @tmp."""

    def __init__(
        self, name: str, tmp: Path, state_delay_ms: int = 20, env: dict | None = None
    ) -> None:
        program = EMULATORS[name]
        if not os.access(program, os.X_OK):
            pytest.skip(f"{program} is not built")
        self.name = name
        # @env: more of the emulator's environment (SANDBOX_IMAGE_STORE: the
        # store whose images its sandboxes run on, docs/testing.md).
        env = dict(os.environ, SANDBOX_LOCAL_ROOT=str(tmp), **(env or {}))
        args = [str(program)]
        if name == "daytona":
            # How long a created sandbox stays "creating" (the client polls).
            args += ["--state-delay-ms", str(state_delay_ms)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
        self.env: dict[str, str] = {}
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line == "READY":
                break
            key, _, value = line.partition("=")
            self.env[key] = value
        else:
            pytest.fail(f"the {name} emulator exited before it was ready")

    def live(self) -> int:
        if self.name == "daytona":
            url = self.env["DAYTONA_API_URL"].removesuffix("/api") + "/_emulator/stats"
        else:
            url = self.env["E2B_API_URL"] + "/_emulator/live"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(json.load(resp)["live"])

    def wait_live(self, count: int, seconds: float) -> int:
        """Polls until @count sandboxes are live or @seconds pass; returns the last count."""
        deadline = time.monotonic() + seconds
        while True:
            live = self.live()
            if live == count or time.monotonic() > deadline:
                return live
            time.sleep(0.1)

    def api(self, path: str):
        """GET on the emulated control plane (sandbox listings, with TTL and labels)."""
        if self.name == "daytona":
            url = self.env["DAYTONA_API_URL"] + path
            headers = {"Authorization": "Bearer " + self.env["DAYTONA_API_KEY"]}
        else:
            url = self.env["E2B_API_URL"] + path
            headers = {"X-API-Key": self.env["E2B_API_KEY"]}
        req = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


class ApiProxy:
    """An HTTP proxy in front of an emulator's API (@emu: its env is
    pointed here until stop()). Every DELETE of a sandbox (its item path:
    Daytona's /api/sandbox/ID, E2B's /sandboxes/ID) is first given to
    @on_delete(proxy, handler, sandbox_id), which may hold it and may
    return a status to answer instead of passing it on (a provider that
    refuses); one passed on is carried out even when the client went away,
    as a provider would. deletes_in_flight and most_deletes_in_flight
    count the DELETEs under way in the proxy."""

    def __init__(self, emu: "Emulator", on_delete) -> None:
        import http.client
        import http.server
        import re
        import threading
        import urllib.parse

        key = "E2B_API_URL" if emu.name == "e2b" else "DAYTONA_API_URL"
        self.emu, self.key, self.target = emu, key, emu.env[key]
        upstream = urllib.parse.urlsplit(self.target)
        item = re.compile(r"^(?:/api)?/(?:sandbox|sandboxes)/([^/?]+)(?:\?.*)?$")
        self.lock = threading.Lock()
        self.deletes_in_flight = 0
        self.most_deletes_in_flight = 0
        self.deletes: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, status: int, headers, data: bytes) -> None:
                try:
                    self.send_response(status)
                    hop = ("connection", "transfer-encoding", "content-length")
                    for name, value in headers:
                        if name.lower() not in hop:
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client is gone: the request was carried out all the same

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                m = item.match(self.path) if self.command == "DELETE" else None
                if m is not None:
                    with proxy.lock:
                        proxy.deletes.append(m.group(1))
                        proxy.deletes_in_flight += 1
                        proxy.most_deletes_in_flight = max(
                            proxy.most_deletes_in_flight, proxy.deletes_in_flight
                        )
                    try:
                        refused = on_delete(proxy, self, m.group(1))
                        if refused is None:
                            self._pass_on(body)
                        else:
                            message = b'{"message": "refused by the test\'s proxy"}'
                            self._answer(refused, [("Content-Type", "application/json")], message)
                    finally:
                        with proxy.lock:
                            proxy.deletes_in_flight -= 1
                    return
                self._pass_on(body)

            def _pass_on(self, body) -> None:
                conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                }
                conn.request(self.command, self.path, body=body, headers=headers)
                reply = conn.getresponse()
                data = reply.read()
                self._answer(reply.status, reply.getheaders(), data)
                conn.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        if emu.name == "daytona":
            self.url += "/api"  # (the emulator's API is under /api)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        emu.env[key] = self.url

    def stop(self) -> None:
        self.emu.env[self.key] = self.target
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def emulators(tmp_path_factory):
    """emulators(name): the session's Daytona or E2B emulator, started on first use."""
    started: dict[str, Emulator] = {}

    def get(name: str) -> Emulator:
        if name not in started:
            started[name] = Emulator(name, tmp_path_factory.mktemp("emu-" + name))
        return started[name]

    yield get
    for emu in started.values():
        emu.stop()


def use_backend(mf: MfEnv, emulators, backend: str):
    """Points mf's runs at @backend (its emulator for a remote one); returns
    the emulator or None."""
    mf.env["METAFLOW_SANDBOX_BACKEND"] = backend
    if backend == "local":
        return None
    emu = emulators(backend)
    mf.env.update(emu.env)
    # The emulated sandboxes see this machine's root read-only: this Python.
    mf.env["METAFLOW_SANDBOX_PYTHON"] = PYTHON
    return emu


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """moto_server (PyPI moto[server]) on loopback, with one bucket."""

    BUCKET = "mf-sandbox-tests"
    # Recognisable, so a test can search command lines for it.
    SECRET = "mf-sandbox-test-secret-6f1d2c"

    def __init__(self, log: Path) -> None:
        program = Path(sys.executable).parent / "moto_server"
        if not os.access(program, os.X_OK):
            pytest.skip(f"moto_server is not installed next to {sys.executable} (moto[server])")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(
            [str(program), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("moto_server did not start; see %s" % log)
                time.sleep(0.2)
        self.client().create_bucket(Bucket=self.BUCKET)

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="mf-sandbox-test-key-id",
            aws_secret_access_key=self.SECRET,
        )

    def env(self, prefix: str) -> dict[str, str]:
        return {
            "METAFLOW_S3_ENDPOINT_URL": self.url,
            "METAFLOW_DATASTORE_SYSROOT_S3": "s3://%s/%s" % (self.BUCKET, prefix),
            "METAFLOW_DEFAULT_DATASTORE": "s3",
            "AWS_ACCESS_KEY_ID": "mf-sandbox-test-key-id",
            "AWS_SECRET_ACCESS_KEY": self.SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
            # The sandboxes run this test's Python, which has boto3.
            "METAFLOW_SKIP_INSTALL_DEPENDENCIES": "1",
        }

    def keys(self, prefix: str) -> list[str]:
        out = self.client().list_objects_v2(Bucket=self.BUCKET, Prefix=prefix + "/")
        return [o["Key"] for o in out.get("Contents", [])]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def main_metaflow() -> bool:
    """Whether this is the Metaflow version python/requirements-test.txt pins
    (scripts/test.sh reruns this suite with an older one)."""
    import metaflow

    pins = (EXTENSION_DIR / "requirements-test.txt").read_text().splitlines()
    want = [p.split("==", 1)[1].strip() for p in pins if p.startswith("metaflow==")]
    version = getattr(metaflow, "__version__", None)
    if version is None:
        from metaflow.metaflow_version import get_version

        version = get_version()
    return not want or version.split("+")[0] == want[0]


__all__ = [
    "MfEnv",
    "interrupt_when",
    "Emulator",
    "S3Server",
    "free_port",
    "main_metaflow",
    "use_backend",
]

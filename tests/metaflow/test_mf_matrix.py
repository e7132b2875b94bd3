"""End-to-end matrix: one flow with parameters, foreach + join with
merge_artifacts, @retry, @catch, @card, 10,000 log lines and a failing step
(then resume), run on each backend with each datastore:

    daytona, e2b (their emulators)  x  local datastore (synced), S3 (moto)
    local                           x  S3

With S3 the sandbox reads and writes the bucket itself (no sync): the
credentials reach it by environment only, which the test checks by searching
every command line on this machine while the flow runs.

One emulator per backend (conftest.py) and one moto_server serve all cases. Only on
the Metaflow version python/requirements-test.txt pins: scripts/test.sh
reruns this directory with an older Metaflow, which the local-backend tests
cover.
"""

import os
import subprocess
import threading
from collections import Counter
from pathlib import Path

import pytest

from conftest import S3Server, main_metaflow, use_backend

pytestmark = pytest.mark.skipif(
    not main_metaflow(), reason="the remote matrix runs on the main Metaflow version only"
)

FLOW = "MatrixSandboxFlow"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = S3Server(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


class CommandLineWatch:
    """Searches /proc/*/cmdline of every process on this machine (sandboxes
    and emulators included) for a string, until stopped."""

    def __init__(self, needle: str) -> None:
        self.needle = needle.encode()
        self.hits: list[str] = []
        self.scans = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def scan(self) -> None:
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or pid == str(os.getpid()):
                continue
            try:
                cmdline = Path("/proc", pid, "cmdline").read_bytes()
            except OSError:
                continue
            if self.needle in cmdline:
                self.hits.append(cmdline.replace(b"\0", b" ").decode(errors="replace")[:300])
        self.scans += 1

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self.scan()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)


def _task(info, step):
    tasks = info["steps"][step]
    assert len(tasks) == 1, tasks
    return tasks[0]


CASES = [
    ("daytona", "local"),
    ("daytona", "s3"),
    ("e2b", "local"),
    ("e2b", "s3"),
    ("local", "s3"),
]


@pytest.mark.parametrize("backend,datastore", CASES, ids=["%s-%s" % case for case in CASES])
def test_flow_matrix(mf, emulators, s3, request, backend, datastore):
    emu = use_backend(mf, emulators, backend)
    prefix = request.node.callspec.id
    if datastore == "s3":
        mf.env.update(s3.env(prefix))
    # The 8-wide foreach runs once per backend, in test_mf_remote.py (local
    # datastore; the local backend's in test_mf_flows.py): CI time.
    width = 2
    flow = mf.copy_flow("matrix_flow.py")
    with_opt = "sandbox:backend=%s" % backend

    try:
        with CommandLineWatch(S3Server.SECRET) as watch:
            failed = mf.run(
                flow,
                "--with",
                with_opt,
                "run",
                "--alpha",
                "3",
                "--width",
                str(width),
                "--label",
                prefix,
                "--max-workers",
                "4",
                extra_env={"METAFLOW_TEST_FAIL": "1"},
                expect_ok=False,
            )
            # The watch sees a secret on a command line when there is one.
            if datastore == "s3":
                probe = subprocess.Popen(["sh", "-c", "sleep 1 # " + S3Server.SECRET])
                watch.scan()
                probe.wait()
                assert watch.hits, "the command-line watch is blind"
                watch.hits.clear()
        assert "gated step fails while METAFLOW_TEST_FAIL=1" in failed.output, failed.output[-5000:]
        if datastore == "s3":
            assert watch.scans > 3
            assert watch.hits == [], "a secret on a command line: %s" % watch.hits
            assert "datastore sync" not in failed.output  # no copying in or out
            # The bucket got the run; the local datastore has no artifacts.
            keys = s3.keys(prefix)
            assert any("/%s/data/" % FLOW in k for k in keys), keys[:20]
            assert not list(mf.datastore_root.glob(FLOW + "/data/*")), "blobs written locally"
        else:
            # Synced, but reported only with METAFLOW_SANDBOX_DEBUG.
            assert "datastore sync" not in failed.output

        first = mf.inspect(FLOW)
        assert not first["successful"]
        for step, tasks in first["steps"].items():
            for task in tasks:
                assert task["sandbox_ids"], (step, task["id"])
                assert task["metadata"]["sandbox-backend"] == backend

        start = _task(first, "start")
        assert start["data"]["params"] == [3, width, prefix]
        if datastore == "s3":
            assert start["data"]["secret_argv"] == [], "the secret on a command line in the sandbox"
        squares = first["steps"]["square"]
        assert sorted(t["data"]["value"] for t in squares) == [i * i * 3 for i in range(width)]
        assert len({t["sandbox_ids"][0] for t in squares}) == width, "one sandbox per task"
        join = _task(first, "join")["data"]
        assert join["values"] == [i * i * 3 for i in range(width)]
        assert join["common"] == "shared-3"  # merge_artifacts
        assert join["params"] == [3, width, prefix]

        flaky = _task(first, "flaky")
        assert flaky["successful"] and flaky["current_attempt"] == 1
        assert flaky["data"]["flaky_attempt"] == 1
        assert len(flaky["sandbox_ids"]) == 2, "each attempt gets its own sandbox"
        assert "flaky attempt 1 on " in flaky["stdout"]

        boom = _task(first, "boom")
        assert boom["finished"]
        assert "boom in the sandbox" in boom["data"]["boom_error"]  # @catch

        many = _task(first, "start")
        assert many["cards"] >= 1
        lines = Counter(many["stdout"].splitlines())
        expected = ["line-%05d" % i for i in range(10000)]
        assert all(lines[line] == 1 for line in expected), [
            (line, lines[line]) for line in expected if lines[line] != 1
        ][:5]
        assert sum(lines[line] for line in lines if line.startswith("line-")) == 10000
        assert not _task(first, "gated")["successful"]
        if emu is not None:
            assert emu.live() == 0, "sandboxes left behind by the failed run"

        mf.run(flow, "--with", with_opt, "resume", "--max-workers", "4")
        second = mf.inspect(FLOW)
        assert second["successful"] and second["run_id"] != first["run_id"]
        assert _task(second, "start")["metadata"].get("origin-run-id") == first["run_id"]
        gated = _task(second, "gated")
        assert gated["sandbox_ids"] and gated["data"]["gated_host"]
        assert _task(second, "end")["data"]["total"] == sum(i * i * 3 for i in range(width))
    finally:
        if emu is not None:
            assert emu.wait_live(0, 30) == 0, "sandboxes left behind"
    if backend == "local":
        mf.assert_no_sandboxes(FLOW)

"""A sandboxed step cannot run code on the launching machine through the
artifacts the Metaflow runtime reads (sandbox_safeload.py)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest


def test_hostile_transition_artifact_runs_nothing_on_the_host(mf, tmp_path):
    marker = tmp_path / "ran-on-the-host"
    flow = mf.copy_flow("hostile_artifact_flow.py")
    proc = mf.run(flow, "run", "--with", "sandbox", "--marker", str(marker), expect_ok=False)
    assert not marker.exists(), "the step's pickle ran a command on the launching machine"
    assert "Artifact refused" in proc.output, proc.output[-3000:]
    assert "posix.system" in proc.output
    assert "HOSTILE-END-REACHED" not in proc.output
    mf.assert_no_sandboxes("HostileArtifactFlow")


# Run in a process of its own, with the extension on the path (imported here,
# after Metaflow was by other tests, it would not find its configuration).
LOADER_CHECKS = r"""
import collections, os, pickle
from metaflow.flowspec import ParallelUBF
from metaflow.plugins.test_unbounded_foreach_decorator import InternalTestUnboundedForeachInput
from metaflow.tuple_util import ForeachFrame
from metaflow_extensions.libsandbox.plugins.sandbox_safeload import RefusedArtifact, plain_loads

values = [
    (["a", "b"], "items", None),
    3,
    True,
    {"k": [1.5, b"x", None, {1, 2}, frozenset([3])]},
    collections.OrderedDict(a=1),
    [ForeachFrame(step="start", var="items", num_splits=3, index=1, value="v")],
    range(4),
]
for value in values:
    assert plain_loads(pickle.dumps(value, protocol=4)) == value, value
ubf = plain_loads(pickle.dumps(ParallelUBF(3)))
assert isinstance(ubf, ParallelUBF) and ubf.num_parallel == 3
test_ubf = plain_loads(pickle.dumps(InternalTestUnboundedForeachInput(range(2))))
assert isinstance(test_ubf, InternalTestUnboundedForeachInput)
from metaflow.includefile import IncludedFile
included = plain_loads(pickle.dumps(IncludedFile({"type": "self", "url": "local:///x"})))
assert included.descriptor == {"type": "self", "url": "local:///x"}


class Anything:
    pass


refused = 0
payloads = [(os.system, ("true",)), (eval, ("1",)), (getattr, ("text", "upper")), (Anything, ())]
for payload in payloads:
    class Reducer:
        def __reduce__(self, payload=payload):
            return payload
    try:
        plain_loads(pickle.dumps(Reducer()))
    except RefusedArtifact:
        refused += 1
print("refused", refused)

# Memory bombs of a few bytes each: bytes(10**10), bytearray(10**10), and a
# container filled from range(10**10) (set, frozenset, bytes), each refused
# before it is made; within the bound they still load. (Under a limit on
# this process's memory, so that a loader without the bound fails with
# MemoryError instead of taking the machine's memory.)
import resource
with open("/proc/self/status") as status:
    vm = [int(line.split()[1]) for line in status if line.startswith("VmSize:")][0] << 10
resource.setrlimit(resource.RLIMIT_AS, (vm + (512 << 20), resource.RLIM_INFINITY))
bombs = [
    (bytes, (10**10,)),
    (bytearray, (10**10,)),
    (set, (range(10**10),)),
    (frozenset, (range(1 << 21),)),
    (bytes, (range(10**12),)),
    (range, (0, 10**30)),
]
payloads = [
    pickle.dumps(type("Bomb", (), {"__reduce__": lambda self, b=b: b})(), protocol=4)
    for b in bombs
]
# copyreg.__newobj__(bytes, 10**10) (the pickler will not write it).
payloads.append(b"ccopyreg\n__newobj__\n(cbuiltins\nbytes\nI10000000000\ntR.")
too_large = 0
for payload in payloads:
    try:
        plain_loads(payload)
    except RefusedArtifact as e:
        too_large += "more than" in str(e)
    except TypeError as e:
        too_large += "not a type" in str(e)
for small in [(bytes, (16,)), (bytearray, (b"ab",)), (set, (range(3),))]:
    class Small:
        def __reduce__(self, small=small):
            return small
    assert plain_loads(pickle.dumps(Small(), protocol=4)) == small[0](*small[1]), small
print("too large", too_large)

# A gzip blob of 1 MiB that inflates to 1 GiB, as the content-addressed
# store reads it: refused past 256 MiB (before, MemoryError or 1 GiB).
import gzip, io
from metaflow.datastore import content_addressed_store
from metaflow_extensions.libsandbox.plugins.sandbox_safeload import install, uninstall
buf = io.BytesIO()
with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9) as f:
    chunk = bytes(1 << 20)
    for _ in range(1024):
        f.write(chunk)
install()
CAS = content_addressed_store.ContentAddressedStore
store = CAS.__new__(CAS)
try:
    store._unpack_v1(io.BytesIO(buf.getvalue()))
    print("inflated")
except RefusedArtifact as e:
    print("bomb refused" if "inflates" in str(e) else e)
small = io.BytesIO()
with gzip.GzipFile(fileobj=small, mode="wb") as f:
    f.write(b"plain")
assert store._unpack_v1(io.BytesIO(small.getvalue())) == b"plain"
uninstall()
assert content_addressed_store.gzip is gzip
"""


def test_plain_data_loads_and_anything_else_is_refused():
    from conftest import EXTENSION_DIR

    env = dict(os.environ, PYTHONPATH=str(EXTENSION_DIR))
    proc = subprocess.run(
        [sys.executable, "-c", LOADER_CHECKS], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "refused 4\ntoo large 7\nbomb refused", proc.stdout


def _special_files(root):
    """Paths under ROOT that are neither regular files nor directories."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                found.append(path)
    return found


def test_hostile_step_plants_no_link_in_the_datastore(mf, tmp_path):
    """The datastore is mounted read-write without links (SANDBOX_MOUNT_NO_LINKS):
    a step cannot replace <Flow>/data/<xx> or a future run's directory by a
    link to a host directory, which the runtime (and the next run's tasks)
    would then write into, nor leave a FIFO there to hang a reader."""
    target = tmp_path / "host-target"
    target.mkdir()
    flow = mf.copy_flow("hostile_links_flow.py")
    for _ in range(2):
        proc = mf.run(flow, "run", "--with", "sandbox", "--target", str(target))
        assert "HOSTILE-LINKS-END" in proc.output, proc.output[-3000:]
        assert "PLANTED 0 REFUSED" in proc.output, proc.output[-3000:]
        assert list(target.iterdir()) == [], "the runtime wrote through a planted link"
        assert _special_files(mf.datastore_root) == []
    mf.assert_no_sandboxes("HostileLinksFlow")


# include_file_uploads with a flow and datastore of plain objects: the
# _parameters task's values are what a sandboxed step could have written.
INCLUDE_CHECKS = r"""
import os, sys
from metaflow.includefile import IncludeFile, IncludedFile
from metaflow_extensions.libsandbox.plugins import sandbox_executor as ex

upload_root, secret = sys.argv[1], sys.argv[2]
inside = os.path.join(upload_root, "IncludeFlow", "data.csv")
os.makedirs(os.path.dirname(inside))
with open(inside, "w") as f:
    f.write("a,b\n")
escape = os.path.join(upload_root, "IncludeFlow", "up")
os.symlink(os.path.dirname(secret), escape)


class Flow:
    name = "IncludeFlow"

    def _get_parameters(self):
        return [(n, IncludeFile(n, default="x")) for n in ("good", "secret", "dotdot", "link")]


name = os.path.basename(secret)
dotdot = os.path.join(upload_root, "..", os.path.basename(os.path.dirname(secret)), name)
urls = {"good": inside, "secret": secret, "dotdot": dotdot, "link": os.path.join(escape, name)}
values = {k: IncludedFile({"type": "self", "url": "local://" + v}) for k, v in urls.items()}


class Store:
    datastore_root = os.path.join(upload_root, "ds")

    def get_task_datastore(self, run_id, step, task_id):
        return values


os.makedirs(os.path.join(Store.datastore_root, "IncludeFlow", "7", "_parameters", "1"))
print(ex.include_file_uploads(Flow(), Store(), "7") == [inside])
"""


def test_include_file_uploads_name_only_uploaded_files(tmp_path):
    """The runtime sends a remote sandbox the files its IncludeFile
    parameters name, read from the run's _parameters values: a step that
    rewrote them to name any file of this machine had it sent to the
    sandbox. Only IncludeFile's own upload directory is sent from now."""
    from conftest import EXTENSION_DIR

    upload_root = tmp_path / "uploads"
    upload_root.mkdir()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    secret = secrets / "id_ed25519"
    secret.write_text("host secret", encoding="utf-8")
    env = dict(
        os.environ,
        PYTHONPATH=str(EXTENSION_DIR),
        METAFLOW_DATATOOLS_LOCALROOT=str(upload_root),
    )
    proc = subprocess.run(
        [sys.executable, "-c", INCLUDE_CHECKS, str(upload_root), str(secret)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True", proc.stdout


def test_remote_step_writes_only_its_own_files_back(mf, tmp_path):
    """A remote sandbox's outputs come back as a listing and tar files that
    the step's sandbox made: a step that wrote files of another flow or of
    another task of its run (here a DONE.lock of a task that never ran) had
    them copied into the host's datastore. Now the copy takes only the
    task's own files and its flow's blobs, and refuses the task's results
    if the sandbox names any other."""
    from conftest import Emulator, main_metaflow

    if not main_metaflow():
        pytest.skip("remote backends are tested on the main Metaflow version only (CI time)")
    emu = Emulator("daytona", tmp_path / "emu")
    try:
        mf.env.update(emu.env)
        mf.env["METAFLOW_SANDBOX_PYTHON"] = sys.executable
        flow = mf.copy_flow("hostile_outputs_flow.py")
        proc = mf.run(flow, "--with", "sandbox:backend=daytona", "run", expect_ok=False)
        assert "HOSTILE-OUTPUTS-PLANTED 2" in proc.output, proc.output[-3000:]
        root = mf.datastore_root
        assert not (root / "VictimFlow").exists(), "another flow's files were written"
        assert list(root.glob("HostileOutputsFlow/*/end/99")) == [], "another task's files"
        assert "not one of the task's files" in proc.output, proc.output[-3000:]
        assert "HOSTILE-OUTPUTS-END" not in proc.output
        assert emu.live() == 0, "sandboxes left behind"
    finally:
        emu.stop()


def test_trampoline_loads_include_values_as_plain_data(mf, tmp_path):
    """A remote step's task process on this machine (the `sandbox step`
    trampoline, METAFLOW_SANDBOX_DIRECT=0 or a run without a pool) reads the
    run's IncludeFile values, which an earlier step in a local sandbox can
    rewrite: it loaded them with Metaflow's pickle, so a step's pickle ran
    on this machine. It loads artifacts as the runtime does now
    (sandbox_safeload.py)."""
    from conftest import Emulator, main_metaflow

    if not main_metaflow():
        pytest.skip("remote backends are tested on the main Metaflow version only (CI time)")
    marker = tmp_path / "ran-on-the-host"
    emu = Emulator("daytona", tmp_path / "emu")
    try:
        mf.env.update(emu.env)
        mf.env["METAFLOW_SANDBOX_PYTHON"] = sys.executable
        flow = mf.copy_flow("hostile_params_flow.py")
        (mf.cwd / "data.txt").write_text("a,b\n", encoding="utf-8")
        proc = mf.run(
            flow,
            "run",
            "--marker",
            str(marker),
            expect_ok=None,
            extra_env={"METAFLOW_SANDBOX_DIRECT": "0"},
        )
        assert "HOSTILE-PARAMS-REWRITTEN 1" in proc.output, proc.output[-3000:]
        assert not marker.exists(), "the step's pickle ran a command on the launching machine"
        # The remote step ran (its task process read the values, refused).
        assert "HOSTILE-PARAMS-END" in proc.output, proc.output[-3000:]
        assert emu.live() == 0, "sandboxes left behind"
    finally:
        emu.stop()


# A task's local metadata as a remote datastore brings it back: a tarball
# that the task's sandbox made, stored in a real (local) datastore that
# calls itself remote.
METADATA_CHECKS = r"""
import io, os, sys, tarfile, time
from types import SimpleNamespace
from metaflow.datastore import FlowDataStore
from metaflow.plugins.datastores.local_storage import LocalStorage
from metaflow_extensions.libsandbox.plugins import sandbox_executor as ex

base, outside = sys.argv[1], sys.argv[2]
meta = ".metaflow/F/1/s/2/_meta/"
tar_buf = io.BytesIO()
with tarfile.open(fileobj=tar_buf, mode="w:gz") as tar:
    def add(name, data=b"", link=None):
        info = tarfile.TarInfo(name)
        info.mtime = time.time()
        if link is not None:
            info.type, info.linkname = tarfile.SYMTYPE, link
            tar.addfile(info)
        else:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    add(meta + "attempt_0.json", b'{"ok": 1}')
    add(meta + "up", link=outside)
    add(meta + "up/authorized_keys", b"ssh-ed25519 planted")
    add(".metaflow/Other/1/s/2/_meta/x.json", b"{}")
    add(".metaflow/F/_meta/_self.json", b'{"replaced": 1}')
fds = FlowDataStore("F", storage_impl=LocalStorage, ds_root=os.path.join(base, "ds"))
task_ds = fds.get_task_datastore("1", "s", "2", attempt=0, mode="w")
task_ds.init_task()
task_ds.done()
_, key = fds.save_data([tar_buf.getvalue()], len_hint=1)[0]
task_ds._dangerous_save_metadata_post_done({"local_metadata": key})
fds.TYPE = "s3"
local = os.path.join(base, "local", ".metaflow")
os.makedirs(os.path.join(local, "F", "_meta"))
with open(os.path.join(local, "F", "_meta", "_self.json"), "w") as f:
    f.write("mine")
obj = SimpleNamespace(metadata=SimpleNamespace(TYPE="local"), flow=SimpleNamespace(name="F"),
                      flow_datastore=fds)
os.chdir(os.path.join(base, "local"))
ex._sync_metadata(obj, "1", "s", "2")
found = sorted(os.path.relpath(os.path.join(d, n), local)
               for d, _, names in os.walk(local) for n in names)
print(found)
print(open(os.path.join(local, "F", "_meta", "_self.json")).read())
"""


def test_task_metadata_copied_back_without_its_links(tmp_path):
    """Remote datastore + local metadata: the task's process copies the
    task's metadata back from a tarball that the sandbox stored. Metaflow's
    sync_local_metadata_from_datastore extracts it whole, symbolic links
    included: a link to a directory of this machine and a file through it
    wrote that file here (~/.ssh/authorized_keys). Only the task's _meta
    files are taken now, as regular files."""
    from conftest import EXTENSION_DIR

    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "local").mkdir()
    env = dict(os.environ, PYTHONPATH=str(EXTENSION_DIR))
    env.pop("METAFLOW_DATASTORE_SYSROOT_LOCAL", None)
    proc = subprocess.run(
        [sys.executable, "-c", METADATA_CHECKS, str(tmp_path), str(outside)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert list(outside.iterdir()) == [], "a file was written through the tarball's link"
    assert proc.stdout.splitlines() == [
        "['F/1/s/2/_meta/attempt_0.json', 'F/_meta/_self.json']",
        "mine",
    ], proc.stdout


# What a step in a local sandbox must not write: (path, exists before the run).
VICTIMS = [
    ("VictimFlow/1/start/1/0.data.json", True),
    ("VictimFlow/1/start/1/_meta/_self.json", True),
    ("VictimFlow/1/_meta/_self.json", True),
    ("VictimFlow/data/ab/ab" + "0" * 38, True),
    ("mf.cards/VictimFlow/runs/1/steps/start/tasks/1/cards/default-x.html", True),
    ("VictimFlow/2/start/1/DONE.lock", False),
    ("HostileDatastoreFlow/7/start/1/0.data.json", True),
    ("HostileDatastoreFlow/7/start/1/DONE.lock", True),
    ("HostileDatastoreFlow/{run}/_meta/_self.json", None),
    ("HostileDatastoreFlow/{run}/_meta/planted.json", False),
    ("HostileDatastoreFlow/{run}/end/99/DONE.lock", False),
]


@pytest.mark.parametrize("direct", ["1", "0"])
def test_local_step_writes_only_its_own_task_in_the_datastore(mf, tmp_path, direct):
    """A step in a local sandbox had the whole local datastore read-write:
    it rewrote another flow's artifacts, metadata, blobs and cards, another
    run's task data and DONE.lock, and its own run's metadata, and made
    files for tasks that never ran, which later runs, the client and the
    runtime read as theirs. Now the datastore is read-only in the sandbox
    but for the task's own directory, its flow's blobs and its own cards."""
    root = mf.datastore_root
    for rel, exists in VICTIMS:
        if exists:
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("victim\n", encoding="utf-8")
    flow = mf.copy_flow("hostile_datastore_flow.py")
    proc = mf.run(
        flow,
        "run",
        "--with",
        "sandbox",
        "--victims",
        ",".join(rel for rel, _ in VICTIMS),
        extra_env={"METAFLOW_SANDBOX_DIRECT": direct},
    )
    assert "HOSTILE-DS-END 4096" in proc.output, proc.output[-3000:]
    assert "HOSTILE-DS-WRITTEN 0" in proc.output, proc.output[-3000:]
    runs = [p.name for p in (root / "HostileDatastoreFlow").iterdir() if p.name.isdigit()]
    (run,) = [r for r in runs if r != "7"]
    for rel, exists in VICTIMS:
        path = root / rel.replace("{run}", run)
        if exists:
            assert path.read_text(encoding="utf-8") == "victim\n", rel
        elif exists is False:
            assert not path.exists(), rel
        else:
            assert "poisoned" not in path.read_text(encoding="utf-8"), rel
    mf.assert_no_sandboxes("HostileDatastoreFlow")


def test_rewritten_blob_is_refused_by_a_later_run(mf, tmp_path):
    """A step in a local sandbox writes its flow's blobs, and the store keeps
    a blob it finds under an address rather than write it again: a hostile
    run rewrote the blob of a value an earlier run stored, and the next run
    storing that value ran the step's pickle on this machine when its
    unsandboxed step loaded it. Every process of a flow with sandboxed
    steps now checks a blob against its address (sandbox_safeload)."""
    marker = tmp_path / "ran-on-the-host"
    flow = mf.copy_flow("hostile_blob_flow.py")
    mf.run(flow, "run", "--marker", str(marker))
    root = mf.datastore_root / "HostileBlobFlow"
    (first,) = [p.name for p in root.iterdir() if p.name.isdigit()]
    victim = "HostileBlobFlow/%s/start/1/0.data.json" % first
    proc = mf.run(flow, "run", "--marker", str(marker), "--victim", victim, expect_ok=None)
    assert "HOSTILE-BLOB-POISONED" in proc.output, proc.output[-3000:]
    proc = mf.run(flow, "run", "--marker", str(marker), expect_ok=None)
    assert not marker.exists(), "the step's pickle ran a command on the launching machine"
    assert proc.returncode != 0, proc.output[-3000:]
    assert "does not hold what its content address says" in proc.output, proc.output[-3000:]
    assert "HOSTILE-BLOB-END" not in proc.output
    mf.assert_no_sandboxes("HostileBlobFlow")


def test_rewritten_code_package_is_put_back(mf):
    """A step in a local sandbox writes its flow's blobs, the run's code
    package among them (the trampoline extracts it in each sandbox): a step
    that rewrote it had every later run with the same code run the step's
    code in its tasks (the store keeps the blob it finds under the
    package's address). The runtime now puts its own package back."""
    flow = mf.copy_flow("hostile_package_flow.py")
    trampoline = {"METAFLOW_SANDBOX_DIRECT": "0"}
    proc = mf.run(flow, "run", "--with", "sandbox", "--poison", "1", extra_env=trampoline)
    assert "HOSTILE-PACKAGE-POISONED" in proc.output, proc.output[-3000:]
    proc = mf.run(flow, "run", "--with", "sandbox", extra_env=trampoline)
    assert "HOSTILE-PACKAGE-END" in proc.output, proc.output[-3000:]
    assert "HOSTILE-CODE-RAN" not in proc.output, "a later run ran the step's code"
    mf.assert_no_sandboxes("HostilePackageFlow")


def test_uv_cache_of_one_flow_is_not_another_flows(mf):
    """--environment=uv: a hostile step rewrote the uv cache its sandbox
    writes (six.py of the cached wheel); a task of another flow of the same
    datastore then installed six from that cache and ran the step's line in
    its own sandbox (session sec26: the cache was <datastore>/.uv-cache,
    shared by every flow). Each flow has a cache of its own now."""
    from conftest import FLOWS, main_metaflow
    from test_mf_user import _pypi_reachable

    if not main_metaflow():
        pytest.skip("--environment=uv is tested with the Metaflow requirements-test.txt pins")
    if not _pypi_reachable():
        pytest.skip("PyPI (pypi.org) is not reachable from here: uv sync cannot run")
    import shutil

    project = FLOWS / "uv_project"
    for name in ("uv_flow.py", "uv_poison_flow.py", "pyproject.toml", "uv.lock"):
        shutil.copy(project / name, mf.cwd / name)
    proc = mf.run("uv_poison_flow.py", "--environment=uv", "--with", "sandbox", "run")
    assert "UV-POISON cache=" in proc.output, proc.output[-3000:]
    assert "poisoned=0" not in proc.output, "the step found no six.py to rewrite in its uv cache"
    proc = mf.run("uv_flow.py", "--environment=uv", "--with", "sandbox", "run")
    assert "UV-STEP prefix=/workspace/metaflow/.venv six=1.16.0" in proc.output, proc.output[-3000:]
    assert "UV-CACHE-POISONED" not in proc.output, "another flow changed what this one installed"
    mf.assert_no_sandboxes("UvSandboxFlow")
    mf.assert_no_sandboxes("UvPoisonFlow")


def test_unsandboxed_task_loads_metaflow_artifacts_as_plain_data(mf, tmp_path):
    """A foreach body without @sandbox after a sandboxed foreach step: Metaflow's
    task of the body reads its item of the step's _foreach_values (the
    items' short strings, which the runtime does not read) before any code
    of the body runs, on this machine; a step's list of os.system pickles
    there created the marker file (session sec26). Metaflow's own
    artifacts now load as plain data in every task of a flow with
    sandboxed steps. Control: the same flow planting nothing runs, its
    items (objects of its own class) reach the unsandboxed body."""
    marker = tmp_path / "ran-on-the-host"
    flow = mf.copy_flow("hostile_foreach_values_flow.py")
    proc = mf.run(flow, "run", "--marker", str(marker), expect_ok=False)
    assert not marker.exists(), "the step's pickle ran a command on the launching machine"
    assert "Artifact refused" in proc.output, proc.output[-3000:]
    assert "posix.system" in proc.output
    assert "FOREACH-BODY-REACHED" not in proc.output
    proc = mf.run(flow, "run", "--marker", str(marker), "--plant", "no")
    assert "FOREACH-BODY-REACHED 1" in proc.output, proc.output[-3000:]
    assert "FOREACH-BODY-REACHED 2" in proc.output
    assert not marker.exists()
    mf.assert_no_sandboxes("HostileForeachValuesFlow")


def _card_server_data(mf, flow: str, run_id: str, pathspec: str) -> tuple[int, str]:
    """Starts `flow.py card server` for the run, asks it for the card data of
    PATHSPEC's card "hostl" (as the viewer page polls it), stops it; returns
    the HTTP status and what the server printed."""
    import socket
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Metaflow's card commands look for cards under the working directory's
    # .metaflow (found upwards), not METAFLOW_DATASTORE_SYSROOT_LOCAL's: run
    # from the datastore's directory.
    server = subprocess.Popen(
        mf.flow_cmd(str(mf.cwd / flow), "card", "server", "--run-id", run_id, "--port", str(port)),
        cwd=mf.datastore_root.parent,
        env=mf.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    status = 0
    body = ""
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(
                    "http://127.0.0.1:%d/data/%s/hostl" % (port, pathspec), timeout=20
                ) as reply:
                    status = reply.status
                break
            except urllib.error.HTTPError as ex:
                status = ex.code
                body = ex.read().decode("utf-8", errors="replace")
                break
            except urllib.error.URLError as ex:
                if not isinstance(ex.reason, ConnectionRefusedError):
                    raise
                time.sleep(0.2)  # not listening yet
            except OSError as ex:
                body = "no answer: %r\n" % ex  # the handler failed
                break
    finally:
        os.killpg(server.pid, 15)
        out, _ = server.communicate(timeout=60)
    return status, body + out.decode("utf-8", errors="replace")


def test_card_server_loads_success_as_plain_data(mf, tmp_path):
    """`python flow.py card server` runs on this machine and answers the
    viewer's data requests with the task's `successful`, Metaflow's
    `_success` artifact, which the task wrote: a sandboxed step that stored
    it as an os.system pickle (and put a card with runtime data in its own
    card directory) had the card server create the marker file (session
    sec28). `_success` is now one of Metaflow's own artifacts that every
    process of a flow with sandboxed steps loads as plain data. Control:
    the same flow planting nothing; the server answers its data."""
    marker = tmp_path / "ran-on-the-host"
    flow = mf.copy_flow("hostile_success_flow.py")
    for plant in ("yes", "no"):
        mf.run(flow, "run", "--marker", str(marker), "--plant", plant)
        assert not marker.exists(), "the run itself unpickled the step's _success"
        run_id = (mf.datastore_root / "HostileSuccessFlow" / "latest_run").read_text().strip()
        status, out = _card_server_data(mf, flow, run_id, "HostileSuccessFlow/%s/start/1" % run_id)
        assert not marker.exists(), (
            "the step's pickle ran a command on this machine: " + out[-3000:]
        )
        if plant == "yes":
            assert "posix.system" in out, out[-3000:]
        else:
            assert status == 200, out[-3000:]
    mf.assert_no_sandboxes("HostileSuccessFlow")

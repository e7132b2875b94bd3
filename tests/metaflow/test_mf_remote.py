"""End-to-end: @sandbox on the daytona and e2b backends (their emulators,
started here as programs) with the LOCAL datastore, i.e. the executor copies
each task's inputs in and its outputs back (sandbox_sync.py, libsandbox
upload_archive / download_archive / archive_extract).

The emulators run every sandbox as a local-backend instance; the step's
interpreter is this test's Python (METAFLOW_SANDBOX_PYTHON), visible read-only
inside.
"""

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from conftest import ApiProxy, Emulator, interrupt_when, main_metaflow

PYTHON = sys.executable


@pytest.fixture(params=["daytona", "e2b"])
def remote(request, mf, tmp_path):
    if not main_metaflow():
        pytest.skip("remote backends are tested on the main Metaflow version only (CI time)")
    emu = Emulator(request.param, tmp_path / "emu")
    mf.env.update(emu.env)
    mf.env["METAFLOW_SANDBOX_PYTHON"] = PYTHON
    mf.env["METAFLOW_SANDBOX_DEBUG"] = "1"
    try:
        yield emu
        assert emu.live() == 0, "sandboxes left behind"
    finally:
        emu.stop()


def _client(mf, code: str):
    """Evaluates code with the Metaflow client in a subprocess; returns its JSON."""
    script = "import json\nfrom metaflow import Flow, namespace\nnamespace(None)\n" + code
    out = subprocess.run(
        [PYTHON, "-c", script], cwd=mf.cwd, env=mf.env, capture_output=True, timeout=300
    )
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    return json.loads(out.stdout)


SUMMARY = """
run = Flow("RemoteSyncFlow")[{run!r}]
res = {{"ok": run.successful, "steps": {{}}}}
for step in run:
    for task in step:
        data = {{a.id: repr(a.data) for a in task.artifacts
                if not a.id.startswith("_") and a.id not in ("name", "big")}}
        res["steps"].setdefault(step.id, []).append(
            {{"data": data, "stdout": task.stdout,
             "sandbox": [m.value for m in task.metadata if m.name == "sandbox-id"]}})
print(json.dumps(res))
"""


def _run_id(output: str) -> str:
    for line in output.splitlines():
        if "Workflow starting (run-id " in line:
            return line.split("run-id ")[1].split(")")[0]
    raise AssertionError(output[-2000:])


def _comparable(summary):
    """Artifacts per step, independent of task order."""
    return {
        step: sorted(json.dumps(t["data"], sort_keys=True) for t in tasks)
        for step, tasks in summary["steps"].items()
    }


def test_foreach_local_datastore_matches_plain_run(mf, remote):
    """linear + foreach(8) + join: same artifacts as without sandboxes, every
    task in its own remote sandbox, its log lines once in Task.stdout, the
    8-way concurrent write of one blob intact, no temporary files left."""
    flow = mf.copy_flow("remote_flow.py")
    plain = mf.run(flow, "run", "--alpha", "3")
    boxed = mf.run(
        flow,
        "--with",
        f"sandbox:backend={remote.name}",
        "run",
        "--alpha",
        "3",
        "--max-workers",
        "4",
        extra_env={"METAFLOW_SANDBOX_DEBUG": "1"},
    )
    # The sync is logged once per task, on one line, only with
    # METAFLOW_SANDBOX_DEBUG; save_logs' own diagnostics never reach users.
    sync_lines = [x for x in boxed.output.splitlines() if "datastore sync" in x]
    assert len(sync_lines) == 11, sync_lines  # 11 tasks
    assert all("datastore sync: sent" in x for x in sync_lines), sync_lines
    # (the per-group details are part of that line, not lines of their own)
    detail = re.compile(r"received \d+ (files|blobs) \(")
    details = [x for x in boxed.output.splitlines() if detail.search(x)]
    assert all("datastore sync" in x for x in details), details
    assert "[save_logs]" not in boxed.output and "upload_start" not in boxed.output
    a = _client(mf, SUMMARY.format(run=_run_id(plain.output)))
    b = _client(mf, SUMMARY.format(run=_run_id(boxed.output)))
    assert a["ok"] and b["ok"]
    assert _comparable(a) == _comparable(b)
    assert len(b["steps"]["square"]) == 8

    ids = [t["sandbox"] for tasks in b["steps"].values() for t in tasks]
    assert all(len(i) == 1 and i[0] for i in ids), ids
    # The run's tasks take turns with its sandboxes (at most 4 at once).
    assert len({i[0] for i in ids}) <= 4, ids
    for task in b["steps"]["square"]:
        assert task["data"]["same"] == a["steps"]["square"][0]["data"]["same"]
        lines = [x for x in task["stdout"].splitlines() if "square line" in x]
        assert len(lines) == 1, task["stdout"]
    start_out = b["steps"]["start"][0]["stdout"]
    assert start_out.count("start says hello") == 1, start_out

    leftovers = [p for p in mf.datastore_root.rglob("*") if ".sbx-" in p.name]
    assert leftovers == []
    # The runtime found DONE.lock for every task (the run succeeded), and
    # every blob is complete: the client loaded all artifacts above.


def test_big_artifact_round_trip(mf, remote):
    """200 MB made in one sandbox (downloaded), read in another (uploaded)."""
    if remote.name != "daytona":
        pytest.skip("one backend is enough for the big artifact (CI time)")
    flow = mf.copy_flow("remote_flow.py")
    proc = mf.run(
        flow,
        "--with",
        "sandbox:backend=daytona",
        "run",
        "--big-mb",
        "200",
        "--max-workers",
        "2",
    )
    res = _client(
        mf,
        'run = Flow("RemoteSyncFlow")[%r]\n'
        'end = run["end"].task\n'
        'print(json.dumps([run.successful, end["big_ok"].data, end["big_len"].data,'
        ' len(run["start"].task["big"].data)]))' % _run_id(proc.output),
    )
    assert res == [True, True, 200 * 1024 * 1024, 200 * 1024 * 1024]


def _extract(tar_bytes: bytes, dest: Path, keep: bool = False):
    import gi

    gi.require_version("Sandbox", "1.0")
    from gi.repository import Gio, GLib, Sandbox

    stream = Gio.MemoryInputStream.new_from_bytes(GLib.Bytes.new(tar_bytes))
    flags = Sandbox.ArchiveFlags.KEEP_EXISTING if keep else Sandbox.ArchiveFlags.NONE
    return Sandbox.archive_extract(stream, Gio.File.new_for_path(str(dest)), flags, None)


def _tar(members) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                info.type = tarfile.SYMTYPE
                info.linkname = payload
                tar.addfile(info)
    return buf.getvalue()


def test_archive_extract_is_safe_and_ordered(tmp_path):
    """Sandbox.archive_extract: files land in order, an existing file is kept
    with KEEP_EXISTING, and "..", absolute paths and symlink escapes are refused
    without touching anything outside the destination."""
    dest = tmp_path / "dest"
    assert _extract(_tar([("a/b.txt", "file", b"one"), ("DONE.lock", "file", b"")]), dest)
    assert (dest / "a/b.txt").read_bytes() == b"one" and (dest / "DONE.lock").exists()
    assert _extract(_tar([("a/b.txt", "file", b"two")]), dest, keep=True)
    assert (dest / "a/b.txt").read_bytes() == b"one"
    assert _extract(_tar([("a/b.txt", "file", b"two")]), dest)
    assert (dest / "a/b.txt").read_bytes() == b"two"

    for bad in (
        [("../escape.txt", "file", b"x")],
        [("/tmp/abs-escape.txt", "file", b"x")],
        [("link", "symlink", str(tmp_path)), ("link/escape.txt", "file", b"x")],
        [("ok", "file", b"x"), ("up", "symlink", "../.."), ("after", "file", b"x")],
    ):
        with pytest.raises(Exception) as refused:  # noqa: B017 - GLib.Error, checked below
            _extract(_tar(bad), dest)
        assert getattr(refused.value, "domain", None) == "sandbox-error-quark", refused.value
    assert not (tmp_path / "escape.txt").exists()
    assert not Path("/tmp/abs-escape.txt").exists()
    assert not (dest / "after").exists(), "nothing after a refused entry"
    assert not [p for p in dest.rglob("*") if ".sbx-" in p.name], "no temporary files left"


POOL_SUMMARY = """
run = Flow("PoolFlow")[{run!r}]
tasks = [t for s in run for t in s]
print(json.dumps({{"ok": run.successful,
    "ids": [[m.value for m in t.metadata if m.name == "sandbox-id"] for t in tasks],
    "work": [[t.id, t["seen"].data] for t in run["work"]]}}))
"""


def _pool_dirs(tmp: Path) -> list:
    return [p.name for p in tmp.iterdir() if p.name.startswith("mf-sandbox-pool-")]


def _stats(emu) -> dict:
    url = emu.env["DAYTONA_API_URL"].removesuffix("/api") + "/_emulator/stats"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)


def test_pool_one_task_at_a_time(mf, remote, tmp_path):
    """9 tasks, at most 3 at once: fewer sandboxes than tasks (the run's
    pool), never two tasks in one sandbox at the same time (each holds a
    file in the sandbox's /tmp, which another would find), a task finds no
    files of the task before it in the sandbox's datastore copy, and neither
    a sandbox (the fixture) nor the pool's directory outlives the run."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    flow = mf.copy_flow("pool_flow.py")
    proc = mf.run(
        flow,
        "--with",
        f"sandbox:backend={remote.name}",
        "run",
        "--width",
        "6",
        "--max-workers",
        "3",
        extra_env={"TMPDIR": str(tmp)},
    )
    res = _client(mf, POOL_SUMMARY.format(run=_run_id(proc.output)))
    assert res["ok"]
    ids = [i[0] for i in res["ids"]]
    assert len(ids) == 9 and all(ids), res["ids"]
    assert len(set(ids)) <= 3, ids
    if remote.name == "daytona":
        assert _stats(remote)["total"] == len(set(ids))
    for task_id, seen in res["work"]:
        assert seen == [task_id], (task_id, seen)
    assert _pool_dirs(tmp) == []


def test_pool_off(mf, remote):
    """METAFLOW_SANDBOX_REUSE=0: one new sandbox per task, as before."""
    if remote.name != "daytona":
        pytest.skip("one backend is enough (CI time)")
    flow = mf.copy_flow("pool_flow.py")
    proc = mf.run(
        flow,
        "--with",
        "sandbox:backend=daytona",
        "run",
        "--width",
        "2",
        "--max-workers",
        "1",
        extra_env={"METAFLOW_SANDBOX_REUSE": "0"},
    )
    res = _client(mf, POOL_SUMMARY.format(run=_run_id(proc.output)))
    ids = [i[0] for i in res["ids"]]
    assert len(set(ids)) == len(ids) == 5, ids
    assert _stats(remote)["total"] == 5


PREPARED_TWO_LOOKS = """
import sys
from metaflow_extensions.libsandbox.plugins import sandbox_pool as pool

pool_dir = sys.argv[1]
key = pool.pool_key(backend="daytona")
helper = pool.prepare_lease(pool_dir, key, "daytona")
helper.note(id="sbx-prepared")
assert pool.preparing(pool_dir, key)
# The task's first look: nothing free yet.
assert pool.acquire(pool_dir, key) == ([], None)
# The helper is done and lets the sandbox go.
helper.write(preparing=False, sent=["sha"])
helper.release()
# The task's second look must send it back to the first.
assert pool.preparing(pool_dir, key), "a ready prepared sandbox is not waited for"
stale, lease = pool.acquire(pool_dir, key)
assert stale == [] and lease is not None and lease.sandbox_id == "sbx-prepared"
assert lease.take_mark()
# Taken: the run's other tasks wait for it no longer.
assert not pool.preparing(pool_dir, key)
lease.release()
assert not pool.preparing(pool_dir, key)
# A helper that died before its sandbox was ready: nothing to wait for.
other = pool.pool_key(backend="e2b")
dead = pool.prepare_lease(pool_dir, other, "e2b")
dead.note(id="sbx-dead")
dead.release()
assert not pool.preparing(pool_dir, other)
print("ok")
"""


def test_prepared_sandbox_ready_between_two_looks(tmp_path):
    """A task looks for a free sandbox of the pool (acquire), then for one
    the runtime's helper is preparing (preparing). When the helper made its
    sandbox ready and let it go between the two looks, the task saw
    neither and created a second sandbox beside the prepared one (a loaded
    machine: the code package then went to two sandboxes). The pool's own
    functions, on real files and locks, in that order."""
    code = PREPARED_TWO_LOOKS.replace("sys.argv[1]", repr(str(tmp_path)))
    assert _extension_call(code, dict(os.environ)).strip() == "ok"


PREPARED_RENAMED_MID_LOOK = """
import os
import sys
from metaflow_extensions.libsandbox.plugins import sandbox_pool as pool

pool_dir = sys.argv[1]
key = pool.pool_key(backend="daytona")
helper = pool.prepare_lease(pool_dir, key, "daytona")
helper.note(id="sbx-prepared")
listdir = os.listdir


def listdir_then_ready(path):
    # The task lists the pool; before it opens the helper's entry, the
    # helper makes its sandbox ready (its .tmp becomes .json) and lets it go.
    names = listdir(path)
    if helper.fd >= 0:
        helper.write(preparing=False, sent=["sha"])
        helper.release()
    return names


os.listdir = listdir_then_ready
assert pool.preparing(pool_dir, key), "a prepared sandbox renamed mid-look is not waited for"
os.listdir = listdir
stale, lease = pool.acquire(pool_dir, key)
assert stale == [] and lease is not None and lease.sandbox_id == "sbx-prepared"
print("ok")
"""


def test_prepared_sandbox_ready_while_looking(tmp_path):
    """The helper made its sandbox ready (renamed its pool entry from .tmp
    to .json) between the task's listing of the pool and its open of the
    entry: the task found the entry gone, thought nothing was being
    prepared and created a second sandbox (CI under full-suite load:
    "sandbox (created) 6.255 s" in
    test_first_sandbox_prepared_when_create_is_slow). The pool's own
    functions on real files and locks; the helper's step is made to fall
    in that window."""
    code = PREPARED_RENAMED_MID_LOOK.replace("sys.argv[1]", repr(str(tmp_path)))
    assert _extension_call(code, dict(os.environ)).strip() == "ok"


def test_code_package_sent_once_per_sandbox(mf, remote):
    """5 tasks one after the other in one pooled sandbox: the emulator
    receives the code package once, not once per task."""
    if remote.name != "daytona":
        pytest.skip("the Daytona emulator counts the bytes uploaded")
    flow = mf.copy_flow("pool_flow.py")
    # With a sandbox prepared ahead (METAFLOW_SANDBOX_PREPARE=auto, on: the
    # emulator's create was never measured here), which the first task takes.
    proc = mf.run(
        flow,
        "--with",
        "sandbox:backend=daytona",
        "run",
        "--width",
        "2",
        "--max-workers",
        "1",
    )
    assert "sandbox (prepared)" in proc.output, proc.output[-3000:]
    res = _client(mf, POOL_SUMMARY.format(run=_run_id(proc.output)))
    assert res["ok"] and len({i[0] for i in res["ids"]}) == 1, res["ids"]
    # The code package is the largest blob of the run.
    blobs = [p for p in mf.datastore_root.glob("PoolFlow/data/*/*") if p.is_file()]
    package = max(p.stat().st_size for p in blobs)
    assert package > 50_000, package
    sent = _stats(remote)["upload_bytes"]
    assert package <= sent < 2 * package, (sent, package)


def test_input_task_logs_not_sent(mf, remote):
    """The start step prints 4 MB; the end task's sandbox gets start's
    artifacts, not its logs (a step never reads them; they stay in the
    host's datastore, where the client finds them): the emulator receives
    the code package and the small inputs only."""
    if remote.name != "daytona":
        pytest.skip("the Daytona emulator counts the bytes uploaded")
    flow = mf.copy_flow("chatty_flow.py")
    proc = mf.run(flow, "--with", "sandbox:backend=daytona", "run", "--mb", "4")
    run_id = _run_id(proc.output)
    res = _client(
        mf,
        'run = Flow("ChattyFlow")[%r]\n'
        'print(json.dumps([run.successful, run["end"].task["y"].data,'
        ' len(run["start"].task.stdout)]))' % run_id,
    )
    assert res[:2] == [True, 42] and res[2] >= 4 * 1024 * 1024, res
    blobs = [p for p in mf.datastore_root.glob("ChattyFlow/data/*/*") if p.is_file()]
    package = max(p.stat().st_size for p in blobs)
    sent = _stats(remote)["upload_bytes"]
    assert package <= sent < package + 1024 * 1024, (sent, package)


def test_bytecode_kept_for_the_next_run(mf, remote):
    """The end of a run keeps the bytecode its pooled sandbox's Python wrote
    for the code package; the next run of the same flow sends it to its new
    sandbox with the package (its first task compiles nothing it imports
    from the package)."""
    import tarfile

    if remote.name != "daytona":
        pytest.skip("the Daytona emulator counts the bytes uploaded")
    flow = mf.copy_flow("pool_flow.py")
    args = ("--with", "sandbox:backend=daytona", "run", "--width", "1", "--max-workers", "1")
    mf.run(flow, *args)
    cache = Path(mf.env["XDG_CACHE_HOME"]) / "libsandbox" / "metaflow-bytecode"
    kept = list(cache.glob("*.tgz"))
    assert len(kept) == 1, kept
    with tarfile.open(kept[0]) as tar:
        names = tar.getnames()
    assert any(n.endswith(".pyc") and "/metaflow/__pycache__/" in n for n in names), names[:20]
    first = _stats(remote)["upload_bytes"]
    mf.run(flow, *args)
    second = _stats(remote)["upload_bytes"] - first
    # The same package and inputs as the first run, and the bytecode.
    assert second >= first + kept[0].stat().st_size * 0.9, (first, second)
    assert list(cache.glob("*.tgz")) == kept


def test_first_task_starts_before_the_package_is_built(mf, remote):
    """The run's first remote task starts while Metaflow still builds the
    code package (the runtime no longer waits for it): its process makes
    its sandbox meanwhile and waits for the package's location, which the
    runtime names once it is saved; the step gets that package and its sha.
    Its modules are unpacked in the sandbox's memory (/dev/shm, a tmpfs in
    the emulator's sandboxes), the rest beside the step on the disk."""
    import base64
    import os

    if remote.name != "daytona":
        pytest.skip("one backend is enough (CI time)")
    flow = mf.copy_flow("package_flow.py")
    # Ballast that makes the package take a while to build (~8 MB to gzip).
    (mf.cwd / "ballast.py").write_text("# " + base64.b64encode(os.urandom(6 << 20)).decode() + "\n")
    # No prepared sandbox: the task's own process waits for the package.
    proc = mf.run(
        flow,
        "--with",
        "sandbox:backend=daytona",
        "run",
        extra_env={"METAFLOW_SANDBOX_PREPARE": "0"},
    )
    start_times = [
        line for line in proc.output.splitlines() if "/start/" in line and "times: " in line
    ]
    assert len(start_times) == 1 and "package wait" in start_times[0], proc.output[-3000:]
    blobs = [p for p in mf.datastore_root.glob("PackageFlow/data/*/*") if p.is_file()]
    package = max(blobs, key=lambda p: p.stat().st_size)
    assert package.stat().st_size > 4 << 20, package
    res = _client(
        mf,
        "t = Flow('PackageFlow')[%r]['start'].task\n"
        "print(json.dumps({k: t[k].data for k in ('code_sha', 'code_url', 'mf_dir', "
        "'mf_link', 'mf_real', 'cwd_real')}))" % _run_id(proc.output),
    )
    assert res["code_sha"] == package.name, res
    assert res["code_url"] == str(package), res
    assert res["mf_dir"].endswith("/metaflow/.mf_code/metaflow"), res
    assert res["mf_link"] and res["mf_real"].startswith("/dev/shm/"), res
    assert not res["cwd_real"].startswith("/dev/shm/"), res


def test_package_unpacked_on_disk_without_dev_shm(tmp_path):
    """The task's command unpacks the package's modules in /dev/shm when it
    can, and all of it on the disk when it cannot (here: no mktemp), with
    the bytecode sent beside it either way."""
    import io
    import os
    import subprocess
    import tarfile

    def tgz(files):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    pkg = tmp_path / "pkg.tgz"
    pkg.write_bytes(tgz({".mf_code/metaflow/__init__.py": b"X = 1\n", "flow.py": b"# the flow\n"}))
    for no_shm in (False, True):
        work = tmp_path / ("work-%d" % no_shm)
        work.mkdir()
        (work / ".mf-bytecode.tgz").write_bytes(
            tgz({"./.mf_code/metaflow/__pycache__/__init__.cpython-311.pyc": b"pyc"})
        )
        script = json.loads(
            _extension_call(
                "import json\n"
                "from metaflow_extensions.libsandbox.plugins.sandbox_executor import "
                "remote_script\n"
                "print(json.dumps(remote_script(%r, %r, %r, 'ab' * 20)))"
                % (str(work), str(tmp_path / ("root-%d" % no_shm)), str(pkg)),
                dict(os.environ),
            )
        )
        env = dict(os.environ)
        if no_shm:
            fake = tmp_path / "bin"
            fake.mkdir()
            (fake / "mktemp").write_text("#!/bin/sh\nexit 1\n")
            (fake / "mktemp").chmod(0o755)
            env["PATH"] = "%s:%s" % (fake, env["PATH"])
        proc = subprocess.run(
            ["/bin/bash", "-c", script, "bash", "/bin/true"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        mf_dir = work / "metaflow" / ".mf_code" / "metaflow"
        try:
            assert (mf_dir / "__init__.py").read_text() == "X = 1\n"
            assert (mf_dir / "__pycache__" / "__init__.cpython-311.pyc").read_bytes() == b"pyc"
            assert (work / "metaflow" / "flow.py").is_file()
            assert not (work / "metaflow" / "flow.py").is_symlink()
            if no_shm:
                assert not mf_dir.is_symlink()
            else:
                assert mf_dir.is_symlink() and os.readlink(mf_dir).startswith("/dev/shm/")
        finally:
            if mf_dir.is_symlink():
                import shutil

                shutil.rmtree(os.path.dirname(os.readlink(mf_dir)))


def test_pack_script_sorts_outputs(tmp_path):
    """The pack after a remote step (one walk of the datastore copy): the
    new blobs in one tar, the other new files in the other with every
    DONE.lock last, files older than the marker and the datastore's own
    temporary files (*.sbx-*) in neither; the listing names each new file
    with its size."""
    import os
    import subprocess
    import tarfile
    import time

    script = json.loads(
        _extension_call(
            "import json\n"
            "from metaflow_extensions.libsandbox.plugins.sandbox_sync import pack_script\n"
            "print(json.dumps(pack_script()))",
            dict(os.environ),
        )
    )
    root = tmp_path / "root"
    (root / "F/data/ab").mkdir(parents=True)
    (root / "F/1/s/2").mkdir(parents=True)
    (root / "F/1/s/old.txt").write_text("before the task")
    time.sleep(0.05)
    marker = tmp_path / "marker"
    marker.write_text("")
    time.sleep(0.05)
    files = {
        "F/data/ab/abcdef": "blob",
        "F/1/s/2/DONE.lock": "done",
        "F/1/s/2/0.data.json": "data",
        "F/1/s/2/x.sbx-tmp": "temporary",
        "F/1/s/DONE.lock": "d",
        "F/1/s/2/zz.txt": "last by name",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    blobs, rest = tmp_path / "blobs.tar", tmp_path / "rest.tar"
    proc = subprocess.run(
        ["/bin/sh", "-c", script, "sh", str(root), str(marker), "F", str(blobs), str(rest)],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    listing = dict(reversed(entry.split(b"\t", 1)) for entry in proc.stdout.split(b"\0") if entry)
    expected = {k: v for k, v in files.items() if ".sbx-" not in k}
    assert {k.decode(): int(v) for k, v in listing.items()} == {
        k: len(v) for k, v in expected.items()
    }
    with tarfile.open(blobs) as tar:
        assert tar.getnames() == ["F/data/ab/abcdef"]
    with tarfile.open(rest) as tar:
        names = tar.getnames()
    assert sorted(names) == sorted(k for k in expected if "/data/" not in k), names
    assert {n for n in names[-2:]} == {"F/1/s/2/DONE.lock", "F/1/s/DONE.lock"}, names


OUTPUTS_LISTED = """
import json
from metaflow_extensions.libsandbox.plugins.sandbox_remote import _load_gi
from metaflow_extensions.libsandbox.plugins.sandbox_sync import _check_exec, list_outputs

Gio, GLib, Sandbox = _load_gi()
instance = Sandbox.Backend.new_for_name("local").create(Sandbox.Spec(), None)
said = {}
try:
    script = ("mkdir -p /tmp/r/a && echo old > /tmp/r/old && touch /tmp/m && sleep 0.05 && "
              "printf 12345 > /tmp/r/a/new && printf x > /tmp/r/a/y.sbx-tmp")
    _check_exec(instance.exec(Sandbox.Command.new(["/bin/sh", "-c", script]), None), "setup")
    said["listed"] = list_outputs(Sandbox, instance, "/tmp/r", "/tmp/m", None)
    for name, argv in (("no marker", None), ("silent", ["/bin/sh", "-c", "exit 3"])):
        try:
            if argv is None:
                list_outputs(Sandbox, instance, "/tmp/r", "/tmp/no-marker", None)
            else:
                _check_exec(instance.exec(Sandbox.Command.new(argv), None), "the step")
        except RuntimeError as ex:
            said[name] = str(ex)
finally:
    instance.destroy(None)
print(json.dumps(said))
"""


def test_outputs_listed_and_exec_failures_said(tmp_path):
    """list_outputs (a task's new files in its sandbox, by find) in a real
    local sandbox: the new files with their sizes, not the older one nor
    the datastore's temporary (*.sbx-*) files; a failed exec is said with
    its stderr, else its exit status (the listing and the pack said
    "exit %d", unformatted, when there was no stderr)."""
    said = json.loads(_extension_call(OUTPUTS_LISTED, dict(os.environ)))
    assert said["listed"] == {"a/new": 5}, said
    assert said["no marker"].startswith("listing the task's outputs failed: find:"), said
    assert "no-marker" in said["no marker"], said
    assert said["silent"] == "the step failed: exit 3", said


def test_pool_emptied_after_failed_run(mf, remote, tmp_path):
    """A task fails: the run fails, and no sandbox nor pool is left."""
    if remote.name != "daytona":
        pytest.skip("one backend is enough (CI time)")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    flow = mf.copy_flow("pool_flow.py")
    proc = mf.run(
        flow,
        "--with",
        "sandbox:backend=daytona",
        "run",
        "--width",
        "4",
        "--max-workers",
        "2",
        "--fail",
        "2",
        # (METAFLOW_SANDBOX_DEBUG would keep the failed task's sandbox.)
        extra_env={"TMPDIR": str(tmp), "METAFLOW_SANDBOX_DEBUG": "0"},
        expect_ok=False,
    )
    assert "fails on purpose" in proc.output
    assert remote.wait_live(0, 30) == 0
    assert _pool_dirs(tmp) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_pool_emptied_after_interrupt(mf, remote, tmp_path, signum):
    """Ctrl-C (or SIGTERM) while one task sleeps in its sandbox and another
    sandbox waits in the pool: both are destroyed, the pool is removed."""
    if remote.name != "daytona" and signum != signal.SIGINT:
        pytest.skip("SIGTERM on one backend is enough (CI time)")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    mf.env["TMPDIR"] = str(tmp)
    flow = mf.copy_flow("pool_flow.py")
    # Two workers: work[0] and work[1] run in start's sandbox and a new
    # one; work[2], which sleeps, takes one of them and the other waits.
    proc = mf.popen(
        flow,
        "--with",
        f"sandbox:backend={remote.name}",
        "run",
        "--width",
        "3",
        "--max-workers",
        "2",
        "--sleep-at",
        "2",
    )
    output = interrupt_when(proc, "POOL-SLEEPING", signum)
    assert proc.returncode != 0
    assert remote.wait_live(0, 30) == 0, output[-3000:]
    assert _pool_dirs(tmp) == []


@pytest.mark.parametrize("where", ["host", "sandbox"])
def test_runner_leaves_logs_to_the_trampoline(tmp_path, where):
    """With a synced datastore the trampoline stores the task's logs (it has
    Metaflow loaded): the runner writes the mflog files and starts no
    save_logs interpreter. Otherwise it still runs save_logs itself."""
    from conftest import EXTENSION_DIR

    calls = tmp_path / "calls"
    fake_python = tmp_path / "python"
    fake_python.write_text('#!/bin/sh\necho "$*" >> %s\n' % calls)
    fake_python.chmod(0o755)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(EXTENSION_DIR),
        "MF_SANDBOX_STEP_CLI": "echo step line; echo step error >&2",
        "MF_SANDBOX_PYTHON": str(fake_python),
        "MFLOG_STDOUT": str(tmp_path / "mflog_stdout"),
        "MFLOG_STDERR": str(tmp_path / "mflog_stderr"),
        "MF_SANDBOX_SAVE_LOGS": where,
    }
    out = subprocess.run(
        [PYTHON, "-m", "metaflow_extensions.libsandbox.plugins.sandbox_runner"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr.decode()
    assert b"step line" in (tmp_path / "mflog_stdout").read_bytes()
    assert b"step error" in (tmp_path / "mflog_stderr").read_bytes()
    ran = calls.read_text() if calls.exists() else ""
    if where == "host":
        assert ran == ""
    else:
        assert "-m metaflow.mflog.save_logs" in ran


def _extension_call(code: str, env: dict) -> str:
    """What CODE prints, run with the extension's modules in a process of
    their own: imported here, after Metaflow was (by other tests), they
    would not find the extension's configuration in metaflow_config."""
    from conftest import EXTENSION_DIR

    env = dict(env, PYTHONPATH=str(EXTENSION_DIR))
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _remote_task(pool: Path, root: Path, task_id: str, sha: str) -> dict:
    """A task description as sandbox_executor.remote_launch writes it."""
    import os

    workdir = "/tmp/mf-remote-test-work"
    package_url = f"{root}/F/data/pk/{sha}"
    script, marker = json.loads(
        _extension_call(
            "import json\n"
            "from metaflow_extensions.libsandbox.plugins.sandbox_executor import remote_script\n"
            "from metaflow_extensions.libsandbox.plugins.sandbox_sync import marker_path\n"
            "w, r, u, s = %r, %r, %r, %r\n"
            "print(json.dumps([remote_script(w, r, u, s), marker_path(w)]))"
            % (workdir, str(root), package_url, sha),
            dict(os.environ),
        )
    )
    return {
        "backend": "daytona",
        "workdir": workdir,
        "spec": {"ttl": 600, "network": False},
        "labels": {"flow": "F", "run_id": "1", "step": "s", "task_id": task_id, "attempt": "0"},
        "debug": False,
        "pool_dir": str(pool),
        "pool_key": "k" * 32,
        "root": str(root),
        "flow": "F",
        "input_tasks": ["1/s/1"] if task_id == "20" else [],
        "package_url": package_url,
        "package_sha": sha,
        "marker": marker,
        "script": script,
        "env": {"GREETING": "hello"},
        "cmd_timeout_ms": 120_000,
        "run_time_limit": 60,
        "flow_file": "flow.py",
        "disallow_retry": 202,
    }


def test_remote_task_without_metaflow(tmp_path, remote, monkeypatch):
    """The runtime's process for a remote task (sandbox_remote, what
    remote_launch starts instead of the `sandbox step` trampoline) runs
    without Metaflow: two tasks one after the other in the run's pool get
    one sandbox and the code package once; each runs its command in it with
    its output streamed straight through, finds its own inputs and not the
    previous task's files, and its outputs come back. The pool's drain
    destroys the sandbox."""
    import io
    import os
    import tarfile

    from conftest import EXTENSION_DIR

    if remote.name != "daytona":
        pytest.skip("the Daytona emulator counts sandboxes and uploaded bytes")
    root = tmp_path / "ds" / ".metaflow"
    pool = tmp_path / "pool"
    pool.mkdir(mode=0o700)
    package = io.BytesIO()
    with tarfile.open(fileobj=package, mode="w:gz") as tar:
        for name, data in (("code.txt", b"the flow's code\n"), ("noise", os.urandom(65536))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    sha = "ab" * 20
    (root / "F/data/pk").mkdir(parents=True)
    (root / "F/data/pk" / sha).write_bytes(package.getvalue())
    (root / "F/1/s/1").mkdir(parents=True)
    (root / "F/1/s/1/input.txt").write_text("from the input task\n")
    env = dict(os.environ, **remote.env, PYTHONPATH=str(EXTENSION_DIR))
    # The step: what it sees of its datastore copy and its code.
    step = (
        'echo "$GREETING from $METAFLOW_SANDBOX_ID"; cat code.txt; '
        f"echo \"tasks: $(ls {root}/F/1/s 2>/dev/null | tr '\\n' ' ')\"; "
        f"cat {root}/F/1/s/1/input.txt 2>/dev/null || echo no input; "
        f"mkdir -p {root}/F/1/s/$TASK && echo out > {root}/F/1/s/$TASK/DONE.lock"
    )
    blocker = (
        "import sys; sys.modules['metaflow'] = None; import runpy; "
        "runpy.run_module('metaflow_extensions.libsandbox.plugins.sandbox_remote', "
        "run_name='__main__')"
    )
    outputs = []
    for task_id in ("10", "20"):
        task_file = pool / f"task-{task_id}.todo"
        task = _remote_task(pool, root, task_id, sha)
        task["env"]["TASK"] = task_id
        task_file.write_text(json.dumps(task))
        out = subprocess.run(
            [PYTHON, "-c", blocker, str(task_file), "--", "/bin/sh", "-c", step],
            env=env,
            capture_output=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr.decode()[-3000:]
        assert not task_file.exists()
        outputs.append(out.stdout.decode())
        assert (root / f"F/1/s/{task_id}/DONE.lock").read_text() == "out\n"
    first, second = outputs
    sandbox = re.search(r"hello from (\S+)", first).group(1)
    assert f"hello from {sandbox}" in second, second
    assert "the flow's code" in first and "the flow's code" in second
    assert "tasks: \nno input" in first, first
    # Its input task's files, not the previous task's outputs (10).
    assert "tasks: 1 \nfrom the input task" in second, second
    stats = _stats(remote)
    assert stats["total"] == 1
    size = len(package.getvalue())
    assert size <= stats["upload_bytes"] < 2 * size, (stats, size)
    assert remote.live() == 1
    _extension_call(
        "from metaflow_extensions.libsandbox.plugins.sandbox_executor import destroy_pooled\n"
        "destroy_pooled(%r)" % str(pool),
        dict(os.environ, **remote.env),
    )
    assert remote.wait_live(0, 30) == 0
    assert not pool.exists()


def test_first_sandbox_prepared(mf, remote):
    """METAFLOW_SANDBOX_PREPARE=1: the runtime prepares the start step's
    sandbox (created, the code package sent) while it starts the run: the
    start task takes it from the pool, the later tasks reuse it, and the
    run makes one sandbox. Then the default (auto): the emulator's create
    was quick (the time is kept per backend), so the next run's start task
    creates its sandbox itself."""
    flow = mf.copy_flow("pool_flow.py")
    args = ("--with", f"sandbox:backend={remote.name}", "run", "--width", "1", "--max-workers", "1")
    proc = mf.run(flow, *args, extra_env={"METAFLOW_SANDBOX_PREPARE": "1"})
    start = [line for line in proc.output.splitlines() if "/start/" in line and "times:" in line]
    assert len(start) == 1 and "sandbox (prepared)" in start[0], proc.output[-3000:]
    assert proc.output.count("sandbox (pooled)") >= 1, proc.output[-3000:]
    ids = set(re.findall(r"Task is starting in sandbox (\S+)", proc.output))
    assert len(ids) == 1, ids
    if remote.name == "daytona":
        assert _stats(remote)["total"] == 1
    # The run kept how long its create took. Whether that was under the
    # threshold depends on the machine's load, so the test says it was
    # quick (what the emulator's create is on a quiet machine): the
    # decision, not the machine's speed, is what is tested here.
    timing = os.path.join(mf.env["XDG_CACHE_HOME"], "libsandbox", "create-seconds-" + remote.name)
    with open(timing, encoding="utf-8") as f:
        assert float(f.read()) > 0
    with open(timing, "w", encoding="utf-8") as f:
        f.write("0.010\n")
    proc = mf.run(flow, *args)
    start = [line for line in proc.output.splitlines() if "/start/" in line and "times:" in line]
    assert len(start) == 1 and "sandbox (created)" in start[0], proc.output[-3000:]


@pytest.fixture
def slow_daytona(mf, tmp_path):
    """The Daytona emulator with a slow create (3 s "creating")."""
    if not main_metaflow():
        pytest.skip("remote backends are tested on the main Metaflow version only (CI time)")
    emu = Emulator("daytona", tmp_path / "emu", state_delay_ms=3000)
    mf.env.update(emu.env)
    mf.env["METAFLOW_SANDBOX_PYTHON"] = PYTHON
    try:
        yield emu
    finally:
        emu.stop()


def test_first_sandbox_prepared_when_create_is_slow(mf, slow_daytona):
    """The default (auto) prepares the start step's sandbox when the
    backend's create was slow (3 s here), run after run."""
    mf.env["METAFLOW_SANDBOX_DEBUG"] = "1"
    flow = mf.copy_flow("pool_flow.py")
    args = ("--with", "sandbox:backend=daytona", "run", "--width", "1", "--max-workers", "1")
    for _run in range(2):
        proc = mf.run(flow, *args)
        start = [
            line for line in proc.output.splitlines() if "/start/" in line and "times:" in line
        ]
        # Why the task did not take the prepared sandbox (its "pool:" lines,
        # the helper's): said under METAFLOW_SANDBOX_DEBUG.
        why = [line for line in proc.output.splitlines() if "pool:" in line or "prepare" in line]
        assert len(start) == 1 and "sandbox (prepared)" in start[0], "\n".join(
            why + [proc.output[-3000:]]
        )
    assert _stats(slow_daytona)["total"] == 2
    assert slow_daytona.wait_live(0, 30) == 0


def _wait_for_create(emu, proc, seconds: float = 60) -> None:
    import time

    deadline = time.monotonic() + seconds
    while _stats(emu)["total"] < 1:
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no sandbox was created"
        time.sleep(0.02)


def test_prepared_sandbox_destroyed_when_run_fails_early(mf, slow_daytona, tmp_path):
    """The run fails before any task starts (the E2B step's preflight, just
    after the runtime started to prepare start's Daytona sandbox, whose
    create takes 3 s): whether the helper got to ask for the sandbox or
    not, none is left, nor the pool, and the run ends at once (an
    interrupted create is waited for: test_prepared_sandbox_destroyed_after_interrupt)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    for key in [key for key in mf.env if key.startswith("E2B_")]:
        del mf.env[key]
    flow = mf.copy_flow("two_backends_flow.py")
    proc = mf.run(flow, "run", extra_env={"TMPDIR": str(tmp)}, expect_ok=False)
    assert "e2b" in proc.output.lower(), proc.output[-3000:]
    assert "Task is starting" not in proc.output
    assert _stats(slow_daytona)["total"] <= 1, proc.output[-3000:]
    assert slow_daytona.wait_live(0, 30) == 0
    assert _pool_dirs(tmp) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_prepared_sandbox_destroyed_after_interrupt(mf, slow_daytona, tmp_path, signum):
    """Ctrl-C (or SIGTERM) while the start step's sandbox is being prepared
    (its create takes 3 s; the start task waits for it): nothing is left,
    neither the sandbox nor the pool, nor a process of the run."""
    import os

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    mf.env["TMPDIR"] = str(tmp)
    flow = mf.copy_flow("pool_flow.py")
    proc = mf.popen(flow, "--with", "sandbox:backend=daytona", "run", "--width", "1")
    _wait_for_create(slow_daytona, proc)
    os.killpg(proc.pid, signum)
    output = proc.stdout.read().decode(errors="replace")
    proc.wait(timeout=120)
    assert proc.returncode != 0
    assert slow_daytona.wait_live(0, 30) == 0, output[-3000:]
    assert _pool_dirs(tmp) == []


def test_pool_of_a_killed_run_drained_by_the_next(mf, remote, tmp_path):
    """SIGKILL to the whole run while a task sleeps in a pooled sandbox:
    nothing could drain the pool, so its directory and sandboxes are left.
    The next run with a pool finds it by its free owner.lock and destroys
    its sandboxes; a pool whose run is alive (its lock held) is not
    touched."""
    if remote.name != "daytona":
        pytest.skip("one backend is enough (CI time)")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    mf.env["TMPDIR"] = str(tmp)
    flow = mf.copy_flow("pool_flow.py")
    # A live run's pool (its owner.lock held by this process).
    alive = tmp / "mf-sandbox-pool-alive"
    alive.mkdir(mode=0o700)
    (alive / "k-1.json").write_text('{"backend": "daytona", "id": "not-a-sandbox"}')
    holder = os.open(alive / "owner.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        proc = mf.popen(
            flow,
            "--with",
            "sandbox:backend=daytona",
            "run",
            "--width",
            "2",
            "--max-workers",
            "1",
            "--sleep-at",
            "0",
        )
        interrupt_when(proc, "POOL-SLEEPING", signal.SIGKILL)
        killed = [d for d in _pool_dirs(tmp) if d != alive.name]
        assert len(killed) == 1, _pool_dirs(tmp)
        assert remote.live() >= 1, "the killed run should have left its sandbox"

        mf.run(flow, "--with", "sandbox:backend=daytona", "run", "--width", "1")
        assert remote.wait_live(0, 30) == 0
        assert sorted(_pool_dirs(tmp)) == [alive.name]
        assert (alive / "k-1.json").exists()
    finally:
        os.close(holder)


def _hold_deletes_until(count, seconds: float = 10.0):
    """An ApiProxy's on_delete: holds each DELETE of a sandbox until
    @count() of them were under way at once (or @seconds pass: a client
    that sends them one at a time waits that long for each, and the test
    then fails on the count, not on the time), then passes it on; answers
    403 for the ids in the returned set."""
    import time

    refused: set = set()

    def on_delete(proxy, _handler, sandbox_id):
        deadline = time.monotonic() + seconds
        while proxy.most_deletes_in_flight < count() and time.monotonic() < deadline:
            time.sleep(0.01)
        return 403 if sandbox_id in refused else None

    return on_delete, refused


def test_pool_drained_concurrently(mf, remote, tmp_path):
    """The run's end destroys all its pooled sandboxes at the same time,
    not one after another (a destroy is two round trips to the provider: a
    16-way foreach paid 32 in turn at the end of every run). The proxy in
    front of the provider holds each DELETE until as many are under way as
    the run had sandboxes."""
    import time

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    pooled: list = []

    def count() -> int:
        if not pooled:
            pooled.append(remote.live())  # at the first DELETE: the whole pool
        return pooled[0]

    on_delete, _refused = _hold_deletes_until(count)
    proxy = ApiProxy(remote, on_delete)
    mf.env.update(remote.env)
    try:
        flow = mf.copy_flow("pool_flow.py")
        args = ("--with", f"sandbox:backend={remote.name}", "run", "--width", "3")
        started = time.monotonic()
        mf.run(flow, *args, "--max-workers", "3", extra_env={"TMPDIR": str(tmp)})
        ended = time.monotonic() - started
    finally:
        proxy.stop()
        mf.env.update(remote.env)
    assert pooled and pooled[0] >= 2, (pooled, proxy.deletes)
    assert sorted(set(proxy.deletes)) == sorted(proxy.deletes), proxy.deletes
    assert len(proxy.deletes) == pooled[0], (pooled, proxy.deletes)
    assert proxy.most_deletes_in_flight == pooled[0], (proxy.most_deletes_in_flight, ended)
    assert remote.wait_live(0, 30) == 0
    assert _pool_dirs(tmp) == []


CREATE_SANDBOXES = """
import json, sys
from metaflow_extensions.libsandbox.plugins.sandbox_remote import _load_gi

Gio, GLib, Sandbox = _load_gi()
backend = Sandbox.Backend.new_for_name(sys.argv[1])
print(json.dumps([backend.create(Sandbox.Spec(), None).get_id() for _ in range(int(sys.argv[2]))]))
"""

DESTROY_POOLED = """
import sys
from metaflow_extensions.libsandbox.plugins.sandbox_executor import destroy_pooled

destroy_pooled(sys.argv[1], abandoned=sys.argv[2] == "abandoned")
"""


def test_pool_drain_bounded_and_a_failure_kept(tmp_path):
    """A pool of 10 sandboxes: the drain has at most 8 destroys under way
    at once (DRAIN_CONCURRENCY), and one the provider refuses to destroy
    (or one of a backend that cannot be opened) stops none of the others.
    That one is said, with its id and how to remove it, and stays listed
    in the pool's directory, which stays too: the next run with a pool
    finds it abandoned and destroys it."""
    if not main_metaflow():
        pytest.skip("remote backends are tested on the main Metaflow version only (CI time)")
    emu = Emulator("daytona", tmp_path / "emu")
    env = dict(os.environ, **emu.env, PYTHONPATH=str(Path(__file__).parents[2] / "python"))
    pool = tmp_path / "pool"
    pool.mkdir(mode=0o700)
    (pool / "owner.lock").touch()
    try:
        made = subprocess.run(
            [PYTHON, "-c", CREATE_SANDBOXES, "daytona", "10"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert made.returncode == 0, made.stderr
        ids = json.loads(made.stdout)
        for n, sandbox_id in enumerate(ids):
            entry = {"backend": "daytona", "id": sandbox_id}
            (pool / ("k-%d.json" % n)).write_text(json.dumps(entry))
        # A backend that cannot be opened (here: no such backend) fails its
        # sandboxes alone.
        (pool / "z-0.json").write_text(json.dumps({"backend": "no-such", "id": "sbx-nowhere"}))
        on_delete, refused = _hold_deletes_until(lambda: 8)
        refused.add(ids[4])
        proxy = ApiProxy(emu, on_delete)
        env.update(emu.env)
        try:
            drained = subprocess.run(
                [PYTHON, "-c", DESTROY_POOLED, str(pool), "run"],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
        finally:
            proxy.stop()
            env.update(emu.env)
        assert drained.returncode == 0, drained.stderr
        assert sorted(proxy.deletes) == sorted(ids)
        assert proxy.most_deletes_in_flight == 8, proxy.most_deletes_in_flight
        said = drained.stdout + drained.stderr
        assert "Could not destroy sandbox %s" % ids[4] in said, said
        assert "sandboxctl rm %s" % ids[4] in said, said
        assert "Could not destroy sandbox sbx-nowhere" in said, said
        assert emu.live() == 1
        assert sorted(p.name for p in pool.iterdir()) == ["k-4.json", "owner.lock", "z-0.json"]
        (pool / "z-0.json").unlink()
        # The next run's look at abandoned pools.
        again = subprocess.run(
            [PYTHON, "-c", DESTROY_POOLED, str(pool), "abandoned"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert again.returncode == 0, again.stderr
        assert emu.wait_live(0, 30) == 0
        assert not pool.exists()
    finally:
        emu.stop()


def test_step_killed_by_signal_on_remote(mf, remote):
    """The task's command packs the outputs after the step (no exec of its
    own) and ends as the step did: a step that dies of SIGSEGV fails its
    task as a local one does ("Task failed with a segmentation fault."),
    without a traceback of the task's process (which dies of that signal,
    also of SIGKILL), and no sandbox is left. E2B's status ("signal:
    segmentation fault") was read as SIGKILL ("killed by signal 9 (out of
    memory?)"), and Daytona's shell status 139 as an exit status ("Task
    failed." and nothing more)."""
    flow = mf.copy_flow("segfault_flow.py")
    proc = mf.run(
        flow,
        "--with",
        f"sandbox:backend={remote.name}",
        "run",
        extra_env={"METAFLOW_SANDBOX_DEBUG": "0"},
        expect_ok=False,
    )
    assert "SEGFAULT-COMING" in proc.output
    assert "Task failed with a segmentation fault" in proc.output, proc.output[-3000:]
    assert "out of memory" not in proc.output, proc.output[-3000:]
    assert "Traceback" not in proc.output, proc.output[-3000:]
    # Daytona's session shell reported the signal with the task's whole
    # command line and environment ("cmd.sh: line 46: 8 Segmentation fault
    # env 'METAFLOW_…=…' …"), into the task's logs.
    assert "METAFLOW_SANDBOX_SPEC" not in proc.output, proc.output[-3000:]
    assert remote.wait_live(0, 30) == 0

"""@sandbox(image=...) on the local backend with imported OCI images (issue 16).

The images are built here from this machine's shell and C library (a few
MiB): what the executor says when an image lacks tar, the interpreter or
Metaflow. A full flow on a Debian image runs when SANDBOX_TEST_PYTHON_IMAGE
names an OCI layout made by scripts/make-python-image.sh (too large to build
in every test run).
"""

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile

import pytest

CTL = os.environ.get("SANDBOXCTL")


def _layer(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, what in entries:
            info = tarfile.TarInfo(path)
            if what == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(what, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, what[1]
                tar.addfile(info)
            else:
                info.size, info.mode = len(what), 0o755
                tar.addfile(info, io.BytesIO(what))
    return buf.getvalue()


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _layout(path, extra):
    """An OCI layout: dash and libc, plus EXTRA (path -> bytes) files."""
    layer = _layer(
        [
            ("usr", "dir"),
            ("usr/bin", "dir"),
            ("usr/lib", "dir"),
            ("usr/lib/x86_64-linux-gnu", "dir"),
            ("usr/lib64", "dir"),
            ("bin", ("link", "usr/bin")),
            ("lib", ("link", "usr/lib")),
            ("lib64", ("link", "usr/lib64")),
            ("usr/bin/sh", _read("/bin/dash")),
            ("usr/lib/x86_64-linux-gnu/libc.so.6", _read("/lib/x86_64-linux-gnu/libc.so.6")),
            ("usr/lib64/ld-linux-x86-64.so.2", _read("/lib64/ld-linux-x86-64.so.2")),
        ]
        + sorted(extra.items())
    )
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data):
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": "sha256:" + digest, "size": len(data)}

    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [put(layer)["digest"]]},
    }
    manifest = {
        "schemaVersion": 2,
        "config": dict(
            put(json.dumps(config).encode()), mediaType="application/vnd.oci.image.config.v1+json"
        ),
        "layers": [dict(put(layer), mediaType="application/vnd.oci.image.layer.v1.tar")],
    }
    index = {"schemaVersion": 2, "manifests": [put(json.dumps(manifest).encode())]}
    (path / "index.json").write_text(json.dumps(index))
    return path


def _host_tools(*names):
    """This machine's NAMES and the libraries they need, as image files."""
    files = {}
    for name in names:
        path = shutil.which(name)
        files["usr/bin/" + name] = _read(path)
        ldd = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout
        for lib in re.findall(r"=> (/\S+)", ldd):
            files["usr/lib/x86_64-linux-gnu/" + os.path.basename(lib)] = _read(lib)
    files.pop("usr/lib/x86_64-linux-gnu/libc.so.6", None)  # in the base already
    return files


def _import(mf, layout, name):
    proc = subprocess.run(
        [CTL, "image", "import", str(layout), "--name", name],
        env=mf.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _assert_fails(proc, *needles):
    for needle in needles:
        assert needle in proc.output, proc.output[-3000:]


pytestmark = pytest.mark.skipif(not CTL, reason="SANDBOXCTL is not set")


def test_unknown_image_rejected_before_the_run(mf):
    flow = mf.copy_flow("sleep_flow.py")
    proc = mf.run(flow, "--with", "sandbox:image=python:3.11-slim", "run", expect_ok=False)
    _assert_fails(proc, "sandboxctl image import FILE --name python:3.11-slim")
    assert "Task is starting" not in proc.output
    mf.assert_no_sandboxes("SleepSandboxFlow")


def test_image_without_tar_python_or_metaflow(mf, tmp_path):
    flow = mf.copy_flow("sleep_flow.py")
    env = {"METAFLOW_SANDBOX_PYTHON": "python3", "METAFLOW_TEST_SLEEP": "0"}

    _import(mf, _layout(tmp_path / "bare", {}), "bare:1")
    proc = mf.run(flow, "--with", "sandbox:image=bare:1", "run", extra_env=env, expect_ok=False)
    _assert_fails(proc, "The image bare:1 has no tar", "Local sandboxes on an image")

    stub = b"#!/bin/sh\nexit 0\n"
    tools = {"usr/bin/" + tool: stub for tool in ("tar", "gzip")}
    tools.update(_host_tools("mkdir", "ln"))
    _import(mf, _layout(tmp_path / "tar", tools), "tar:1")
    proc = mf.run(flow, "--with", "sandbox:image=tar:1", "run", extra_env=env, expect_ok=False)
    _assert_fails(
        proc, "The image tar:1 has no Python interpreter python3", "apt-get install python3"
    )

    python_stub = b"#!/bin/sh\necho 'ModuleNotFoundError: No module named requests' >&2\nexit 1\n"
    layout = _layout(tmp_path / "py", dict(tools, **{"usr/bin/python3": python_stub}))
    _import(mf, layout, "py:1")
    proc = mf.run(flow, "--with", "sandbox:image=py:1", "run", extra_env=env, expect_ok=False)
    _assert_fails(
        proc,
        "No module named requests",
        "The image py:1 cannot run Metaflow",
        "pip install metaflow==",
    )
    mf.assert_no_sandboxes("SleepSandboxFlow")


@pytest.mark.skipif(
    not os.environ.get("SANDBOX_TEST_PYTHON_IMAGE"),
    reason="SANDBOX_TEST_PYTHON_IMAGE (an OCI layout from scripts/make-python-image.sh) is not set",
)
def test_flow_on_a_debian_image(mf):
    _import(mf, os.environ["SANDBOX_TEST_PYTHON_IMAGE"], "debian-metaflow:1")
    flow = mf.copy_flow("sleep_flow.py")
    proc = mf.run(
        flow,
        "--with",
        "sandbox:image=debian-metaflow:1",
        "run",
        extra_env={"METAFLOW_SANDBOX_PYTHON": "python3", "METAFLOW_TEST_SLEEP": "0"},
    )
    assert "SLOW-STEP-STARTED" in proc.output
    info = mf.inspect("SleepSandboxFlow")
    assert info["successful"]
    mf.assert_no_sandboxes("SleepSandboxFlow")


def _host_python_files():
    """This machine's python3.11 (standard library with its bytecode,
    extension modules and the libraries they need) and requests with its
    dependencies: an image that can run a step, with sh but no bash."""
    files = _host_tools("tar", "gzip", "mkdir", "ln", "rm", "cat", "touch", "find")
    files["usr/bin/python3"] = _read("/usr/bin/python3.11")
    stdlib = "/usr/lib/python3.11"
    skip = {"test", "idlelib", "tkinter", "ensurepip", "lib2to3", "turtledemo", "pydoc_data"}
    for dirpath, dirs, names in os.walk(stdlib):
        dirs[:] = [d for d in dirs if d not in skip and not d.startswith("config-")]
        for name in names:
            full = os.path.join(dirpath, name)
            files[full.lstrip("/")] = _read(full)
    binaries = ["/usr/bin/python3.11"] + [
        os.path.join(stdlib, "lib-dynload", n) for n in os.listdir(stdlib + "/lib-dynload")
    ]
    for binary in binaries:
        ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
        for lib in re.findall(r"=> (/\S+)", ldd):
            files.setdefault("usr/lib/x86_64-linux-gnu/" + os.path.basename(lib), _read(lib))
    files.pop("usr/lib/x86_64-linux-gnu/libc.so.6", None)  # in the base already
    import requests

    site = os.path.dirname(os.path.dirname(requests.__file__))
    for pkg in ("requests", "urllib3", "idna", "certifi", "charset_normalizer"):
        for dirpath, dirs, names in os.walk(os.path.join(site, pkg)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in names:
                full = os.path.join(dirpath, name)
                files["usr/lib/python3/dist-packages/" + os.path.relpath(full, site)] = _read(full)
    return files


@pytest.mark.skipif(
    not os.path.exists("/usr/bin/python3.11") or not os.path.isdir("/usr/lib/python3.11"),
    reason="needs this machine's /usr/bin/python3.11 to build the image",
)
def test_flow_on_an_image_without_bash(mf, tmp_path):
    """An imported image with Python and Metaflow's dependencies but no
    bash (as python:3.x-alpine, or a minimal Debian image): the step runs
    (the task's runner started its command with /bin/bash, and failed with
    a traceback "No such file or directory: '/bin/bash'")."""
    layout = _layout(tmp_path / "hostpy", _host_python_files())
    _import(mf, layout, "hostpy:1")
    flow = mf.copy_flow("sleep_flow.py")
    proc = mf.run(
        flow,
        "--with",
        "sandbox:image=hostpy:1",
        "run",
        extra_env={"METAFLOW_SANDBOX_PYTHON": "python3", "METAFLOW_TEST_SLEEP": "0"},
    )
    assert "SLOW-STEP-STARTED" in proc.output
    assert "/bin/bash" not in proc.output
    mf.assert_no_sandboxes("SleepSandboxFlow")

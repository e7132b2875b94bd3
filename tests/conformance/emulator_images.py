"""Small OCI images for the emulators' image tests, built offline.

Each image holds this machine's bash, dash (as sh), cat and the libraries
they load, plus an /etc/os-release and a /marker of its own, so that a
command can tell which image it runs on. The images are imported with
`sandboxctl image import` into a store of their own (SANDBOX_IMAGE_STORE),
and a mapping file (the emulators' --images) maps provider names to them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

PROGRAMS = ("bash", "dash", "cat", "id", "ls")


def _libraries(program: str) -> list[str]:
    out = subprocess.run(["ldd", program], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if path.startswith("/"):
            libs.append(path)
    return libs


def _layer(files: dict[str, bytes], dirs: list[str], links: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _layout(directory: Path, name: str, with_passwd: bool) -> None:
    files: dict[str, bytes] = {}
    for program in PROGRAMS:
        path = shutil.which(program, path="/usr/bin:/bin")
        assert path is not None, f"{program} is not installed"
        files["usr/bin/" + program] = Path(path).read_bytes()
        for lib in _libraries(path):
            files[lib.lstrip("/")] = Path(os.path.realpath(lib)).read_bytes()
    files["usr/bin/sh"] = files["usr/bin/dash"]
    files["etc/os-release"] = f'ID={name}\nPRETTY_NAME="emulator test image {name}"\n'.encode()
    files["marker"] = f"{name}\n".encode()
    if with_passwd:
        files["etc/passwd"] = b"root:x:0:0:root:/root:/bin/sh\n"
        files["etc/group"] = b"root:x:0:\n"
    dirs = sorted({str(Path(f).parents[i]) for f in files for i in range(len(Path(f).parents) - 1)})
    links = {}
    for top in ("bin", "lib", "lib64"):
        if f"usr/{top}" in dirs and not any(d == top or d.startswith(top + "/") for d in dirs):
            links[top] = f"usr/{top}"
    files = {k: v for k, v in files.items() if not k.startswith(tuple(t + "/" for t in links))}
    layer = _layer(files, dirs, links)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin:/bin"]},
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()],
            },
        }
    ).encode()
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": "sha256:" + digest, "size": len(data)}

    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "config": put(config),
            "layers": [dict(put(layer), mediaType="application/vnd.oci.image.layer.v1.tar")],
        }
    ).encode()
    (directory / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "manifests": [put(manifest)]})
    )


def sandboxctl() -> str:
    ctl = os.environ.get("SANDBOXCTL")
    if ctl:
        return ctl
    return str(Path(os.environ["TOP_BUILDDIR"]) / "tools" / "sandboxctl")


def make_store(work: Path, images: dict[str, bool]) -> Path:
    """Imports one image per NAME (with an /etc/passwd when True) into WORK/store."""
    store = work / "store"
    env = dict(os.environ, SANDBOX_IMAGE_STORE=str(store))
    for name, with_passwd in images.items():
        layout = work / f"layout-{name}"
        _layout(layout, name, with_passwd)
        subprocess.run(
            [sandboxctl(), "image", "import", str(layout), "--name", f"{name}:1"],
            env=env,
            check=True,
            capture_output=True,
        )
    return store

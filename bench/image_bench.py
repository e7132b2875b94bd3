#!/usr/bin/python3
"""Benchmark 7 (issue 16): OCI images on the local backend, through PyGObject.

    image_bench.py import MIB PAIRS    importing a MIB-MiB image vs tar -x of its layers
    image_bench.py lifecycle N         create+exec true+destroy on an image root vs on host

Prints "sample NAME SECONDS" lines for bench/run. Needs the uninstalled
environment bench/run sets (GI_TYPELIB_PATH, LD_LIBRARY_PATH,
SANDBOX_EXEC_HELPER, SANDBOX_LOCAL_ROOT). The image is made here from this
machine's shell and C library plus MIB MiB of random files in 2 layers.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

import gi

gi.require_version("Sandbox", "1.0")
from gi.repository import Gio, Sandbox  # noqa: E402


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _add(
    tar: tarfile.TarFile, path: str, data: bytes | None = None, link: str | None = None
) -> None:
    info = tarfile.TarInfo(path)
    if link is not None:
        info.type, info.linkname = tarfile.SYMTYPE, link
        tar.addfile(info)
    elif data is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    else:
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))


def make_layout(path: str, mib: int) -> list[str]:
    """An OCI layout of a shell layer and a MIB-MiB data layer; returns the layer files."""
    blobs = os.path.join(path, "blobs", "sha256")
    os.makedirs(blobs)
    layers = []
    for which in ("base", "data"):
        tmp = os.path.join(path, which + ".tar")
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            if which == "base":
                for d in ("usr", "usr/bin", "usr/lib", "usr/lib/x86_64-linux-gnu", "usr/lib64"):
                    _add(tar, d)
                for name, target in (
                    ("bin", "usr/bin"),
                    ("lib", "usr/lib"),
                    ("lib64", "usr/lib64"),
                ):
                    _add(tar, name, link=target)
                _add(tar, "usr/bin/sh", _read("/bin/dash"))
                _add(tar, "usr/bin/true", _read("/bin/true"))
                _add(
                    tar,
                    "usr/lib/x86_64-linux-gnu/libc.so.6",
                    _read("/lib/x86_64-linux-gnu/libc.so.6"),
                )
                _add(tar, "usr/lib64/ld-linux-x86-64.so.2", _read("/lib64/ld-linux-x86-64.so.2"))
            else:
                _add(tar, "data")
                for i in range(mib * 4):  # 256 KiB files
                    if i % 64 == 0:
                        _add(tar, "data/%03d" % (i // 64))
                    _add(tar, "data/%03d/f%05d" % (i // 64, i), os.urandom(256 * 1024))
        digest = hashlib.sha256(_read(tmp)).hexdigest()
        os.rename(tmp, os.path.join(blobs, digest))
        layers.append(digest)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for d in layers]},
        }
    ).encode()
    config_digest = hashlib.sha256(config).hexdigest()
    with open(os.path.join(blobs, config_digest), "wb") as f:
        f.write(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "config": {
                "digest": "sha256:" + config_digest,
                "size": len(config),
                "mediaType": "application/vnd.oci.image.config.v1+json",
            },
            "layers": [
                {
                    "digest": "sha256:" + d,
                    "size": os.path.getsize(os.path.join(blobs, d)),
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                }
                for d in layers
            ],
        }
    ).encode()
    manifest_digest = hashlib.sha256(manifest).hexdigest()
    with open(os.path.join(blobs, manifest_digest), "wb") as f:
        f.write(manifest)
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump(
            {
                "schemaVersion": 2,
                "manifests": [{"digest": "sha256:" + manifest_digest, "size": len(manifest)}],
            },
            f,
        )
    return [os.path.join(blobs, d) for d in layers]


def bench_import(mib: int, pairs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
        layout = os.path.join(tmp, "layout")
        layer_files = make_layout(layout, mib)
        for i in range(pairs):
            for kind in ("import", "tar") if i % 2 == 0 else ("tar", "import"):
                if kind == "import":
                    store = Sandbox.ImageStore.new(os.path.join(tmp, "store"))
                    start = time.monotonic()
                    store.import_(Gio.File.new_for_path(layout), "bench:1", None)
                    print("sample import %f" % (time.monotonic() - start), flush=True)
                    shutil.rmtree(os.path.join(tmp, "store"))
                else:
                    dest = os.path.join(tmp, "tar-x")
                    os.makedirs(dest)
                    start = time.monotonic()
                    for f in layer_files:
                        subprocess.run(["tar", "-xf", f, "-C", dest], check=True)
                    print("sample tar %f" % (time.monotonic() - start), flush=True)
                    shutil.rmtree(dest)


def bench_lifecycle(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
        layout = os.path.join(tmp, "layout")
        make_layout(layout, 1)
        # Its own store (the backend looks there too), removed with TMP.
        os.environ["SANDBOX_IMAGE_STORE"] = os.path.join(tmp, "store")
        store = Sandbox.ImageStore.new(None)
        image = store.import_(Gio.File.new_for_path(layout), "bench-lifecycle:1", None)
        backend = Sandbox.Backend.new_for_name("local")
        try:
            for i in range(n):
                for kind in ("image", "host") if i % 2 == 0 else ("host", "image"):
                    spec = Sandbox.Spec.new()
                    if kind == "image":
                        spec.set_image("bench-lifecycle:1")
                    start = time.monotonic()
                    instance = backend.create(spec, None)
                    result = instance.exec(Sandbox.Command.new(["true"]), None)
                    instance.destroy(None)
                    print("sample %s %f" % (kind, time.monotonic() - start), flush=True)
                    assert result.get_success()
        finally:
            store.remove(image.get_id(), None)


if __name__ == "__main__":
    if sys.argv[1] == "import":
        bench_import(int(sys.argv[2]), int(sys.argv[3]))
    else:
        bench_lifecycle(int(sys.argv[2]))

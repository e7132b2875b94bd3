#!/usr/bin/python3
# libsandbox - the OCI image store through GObject-Introspection (PyGObject)
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Import, list, look up and remove images, and run one on the local backend,
only through gi.repository.Sandbox (issue 16). The image is built here from
this machine's shell and C library."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import unittest
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gi
import taptest

gi.require_version("Sandbox", "1.0")
from gi.repository import Gio, GLib, Sandbox  # noqa: E402


def make_layer(entries: list[tuple[str, Any]]) -> bytes:
    """A tar of (path, bytes | ("link", target) | "dir") entries."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, what in entries:
            info = tarfile.TarInfo(path)
            info.mtime = 1700000000
            if what == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif isinstance(what, tuple):
                info.type = tarfile.SYMTYPE
                info.linkname = what[1]
                tar.addfile(info)
            else:
                info.size = len(what)
                info.mode = 0o755
                tar.addfile(info, io.BytesIO(what))
    return buf.getvalue()


def write_layout(path: str, layers: list[bytes], config: dict[str, Any]) -> None:
    blobs = os.path.join(path, "blobs", "sha256")
    os.makedirs(blobs)

    def put(data: bytes) -> tuple[str, int]:
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data)
        return "sha256:" + digest, len(data)

    config = dict(
        config,
        architecture="amd64",
        os="linux",
        rootfs={
            "type": "layers",
            "diff_ids": ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers],
        },
    )
    config_digest, config_size = put(json.dumps(config).encode())
    layer_descs = []
    for layer in layers:
        digest, size = put(layer)
        layer_descs.append(
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size}
        )
    manifest = {
        "schemaVersion": 2,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": layer_descs,
    }
    manifest_digest, manifest_size = put(json.dumps(manifest).encode())
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": manifest_digest,
                        "size": manifest_size,
                    }
                ],
            },
            f,
        )


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class ImageStoreTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="test-gi-image-")
        os.environ["SANDBOX_LOCAL_ROOT"] = os.path.join(self.tmp, "local")
        os.environ.pop("SANDBOX_IMAGE_STORE", None)
        shell = make_layer(
            [
                ("usr", "dir"),
                ("usr/bin", "dir"),
                ("usr/lib", "dir"),
                ("usr/lib/x86_64-linux-gnu", "dir"),
                ("usr/lib64", "dir"),
                ("bin", ("link", "usr/bin")),
                ("lib", ("link", "usr/lib")),
                ("lib64", ("link", "usr/lib64")),
                ("usr/bin/sh", read("/bin/dash")),
                ("usr/lib/x86_64-linux-gnu/libc.so.6", read("/lib/x86_64-linux-gnu/libc.so.6")),
                ("usr/lib64/ld-linux-x86-64.so.2", read("/lib64/ld-linux-x86-64.so.2")),
                ("gone", b"lower\n"),
            ]
        )
        upper = make_layer([(".wh.gone", b""), ("greeting", b"hello\n")])
        self.layout = os.path.join(self.tmp, "layout")
        write_layout(
            self.layout,
            [shell, upper],
            {
                "config": {
                    "Env": ["FOO=from-image"],
                    "WorkingDir": "/srv",
                    "Cmd": ["/bin/sh", "-c", "echo hi"],
                }
            },
        )

    def tearDown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_store(self) -> None:
        store = Sandbox.ImageStore.new(None)
        self.assertEqual(store.get_path(), os.path.join(self.tmp, "images"))
        image = store.import_(Gio.File.new_for_path(self.layout), "gi/test:1", None)
        self.assertTrue(image.get_id().startswith("sha256:"))
        self.assertEqual(image.get_names(), ["gi/test:1"])
        self.assertEqual(image.get_env(), ["FOO=from-image"])
        self.assertEqual(image.get_workdir(), "/srv")
        self.assertEqual(image.get_cmd(), ["/bin/sh", "-c", "echo hi"])
        self.assertEqual(len(image.get_layers()), 2)
        rootfs = image.get_rootfs()
        self.assertTrue(os.path.exists(os.path.join(rootfs, "greeting")))
        self.assertFalse(os.path.exists(os.path.join(rootfs, "gone")))

        # The async variant, as a GI caller would use it.
        loop = GLib.MainLoop()
        box: dict[str, Any] = {}

        def done(source: Sandbox.ImageStore, result: Gio.AsyncResult) -> None:
            box["image"] = source.import_finish(result)
            loop.quit()

        store.import_async(Gio.File.new_for_path(self.layout), "gi/test:2", None, done)
        loop.run()
        self.assertEqual(box["image"].get_id(), image.get_id())
        self.assertEqual([i.get_id() for i in store.list(None)], [image.get_id()])
        self.assertEqual(store.lookup("gi/test:2", None).get_names(), ["gi/test:1", "gi/test:2"])

        def looked_up(source: Sandbox.ImageStore, result: Gio.AsyncResult) -> None:
            box["found"] = source.lookup_finish(result)
            loop.quit()

        store.lookup_async(image.get_id(), None, looked_up)
        loop.run()
        self.assertEqual(box["found"].get_id(), image.get_id())

        with self.assertRaises(GLib.Error) as ctx:
            store.lookup("not/there:1", None)
        self.assertTrue(ctx.exception.matches(Sandbox.error_quark(), Sandbox.Error.NOT_FOUND))
        self.assertIn("sandboxctl image import", ctx.exception.message)

        self.assertTrue(store.remove("gi/test:1", None))
        self.assertTrue(store.remove(image.get_id(), None))
        self.assertEqual(store.list(None), [])

    @unittest.skipIf(shutil.which("bwrap") is None, "bwrap is not installed")
    def test_local_sandbox(self) -> None:
        store = Sandbox.ImageStore.new(None)
        store.import_(Gio.File.new_for_path(self.layout), "gi/run:1", None)
        backend = Sandbox.Backend.new_for_name("local")
        spec = Sandbox.Spec.new()
        spec.set_image("gi/run:1")
        instance = backend.create(spec, None)
        try:
            script = "echo $FOO; pwd; read g < /greeting; echo $g"
            result = instance.exec(Sandbox.Command.new_shell(script), None)
            self.assertEqual(result.get_stdout().get_data(), b"from-image\n/srv\nhello\n")
        finally:
            instance.destroy(None)


if __name__ == "__main__":
    taptest.main()

#!/usr/bin/python3
"""Writes the tar seeds of fuzz/corpus/tar/.

Good trees come from sandbox_archive_write() itself (through GI, so run it
with the uninstalled environment of a build: GI_TYPELIB_PATH and
LD_LIBRARY_PATH); hostile ones (.., absolute paths, escaping links, hard
links, a link then a file through it) are made with Python's tarfile.
"""

import io
import os
import sys
import tarfile
import tempfile

import gi

gi.require_version("Sandbox", "1.0")
from gi.repository import Gio, Sandbox  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "tar")
os.makedirs(out, exist_ok=True)


def archive_of(base: str) -> bytes:
    stream = Gio.MemoryOutputStream.new_resizable()
    Sandbox.archive_write(Gio.File.new_for_path(base), None, stream, None)
    stream.close(None)
    return bytes(stream.steal_as_bytes().get_data())


with tempfile.TemporaryDirectory() as tree:
    os.makedirs(os.path.join(tree, "dir/empty"))
    with open(os.path.join(tree, "dir/file.txt"), "w") as f:
        f.write("hello\n")
    with open(os.path.join(tree, "run.sh"), "w") as f:
        f.write("#!/bin/sh\necho hi\n")
    os.chmod(os.path.join(tree, "run.sh"), 0o755)
    os.symlink("dir/file.txt", os.path.join(tree, "link"))
    os.symlink("../run.sh", os.path.join(tree, "dir/up-link"))
    with open(os.path.join(out, "tree.tar"), "wb") as f:
        f.write(archive_of(tree))


def hostile(name: str, members: list[tuple[str, str, bytes | str]]) -> None:
    """members: (kind, path, data or link target); kind: file, dir, symlink, hardlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, path, data in members:
            info = tarfile.TarInfo(path)
            if kind == "file":
                assert isinstance(data, bytes)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = str(data)
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = str(data)
            tar.addfile(info)
    with open(os.path.join(out, name), "wb") as f:
        f.write(buf.getvalue())


hostile("dotdot.tar", [("file", "ok", b"ok"), ("file", "../../escaped", b"x")])
hostile("absolute.tar", [("file", "/tmp/sandbox-fuzz-absolute", b"x")])
hostile("symlink-out.tar", [("symlink", "out", "../.."), ("file", "out/escaped", b"x")])
hostile(
    "symlink-chain.tar",
    [("dir", "x", b""), ("symlink", "x/y", ".."), ("symlink", "s", "x/y/..")],
)
hostile("symlink-dir-file.tar", [("symlink", "d", "."), ("file", "d/f", b"x")])
hostile("hardlink.tar", [("hardlink", "h", "/etc/passwd"), ("hardlink", "g", "../../x")])
# Image layers (issue 16): whiteouts, an opaque directory, hard links inside
# the layer (to a file, to a symbolic link, to a missing name), absolute
# symbolic links (kept in a layer), and a file through such a link.
hostile(
    "layer-whiteouts.tar",
    [
        ("dir", "etc", b""),
        ("file", "etc/.wh.passwd", b""),
        ("dir", "opq", b""),
        ("file", "opq/.wh..wh..opq", b""),
        ("file", "opq/new", b"new"),
        ("file", "a", b"a"),
        ("hardlink", "b", "a"),
        ("symlink", "abs", "/etc/passwd"),
        ("hardlink", "c", "abs"),
        ("hardlink", "d", "missing"),
        ("hardlink", "e", "./opq/new"),
    ],
)
hostile("layer-through-abs-link.tar", [("symlink", "l", "/tmp"), ("file", "l/escaped", b"x")])

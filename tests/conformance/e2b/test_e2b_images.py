"""Templates on images of the local image store, and network rules.

A second emulator runs with a mapping (--images) from two template names to
two small images built here, offline (tests/conformance/emulator_images.py),
and imported into a store of their own.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Emulator, _emulator_program
from e2b import ALL_TRAFFIC, Sandbox, SandboxException

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import emulator_images  # noqa: E402


@pytest.fixture(scope="module")
def image_emulator(
    emulator: Emulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Emulator]:
    work = tmp_path_factory.mktemp("images")
    store = emulator_images.make_store(work, {"one": False, "two": True})
    mapping = work / "images.map"
    mapping.write_text(
        "# template = image of the store\n"
        "first-template = one:1\nsecond-template = two:1\nmy-host = host\n"
    )
    process = subprocess.Popen(
        [_emulator_program(), "--images", str(mapping)],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, SANDBOX_IMAGE_STORE=str(store)),
    )
    assert process.stdout is not None
    env: dict[str, str] = {}
    for line in process.stdout:
        line = line.strip()
        if line == "READY":
            break
        key, _, value = line.partition("=")
        env[key] = value
    else:
        process.wait()
        pytest.fail("the E2B emulator exited before it was ready")
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield Emulator(env, process)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        process.terminate()
        process.wait(timeout=30)


def _logs(emu: Emulator, sandbox_id: str) -> list[str]:
    request = urllib.request.Request(
        f"{emu.url}/sandboxes/{sandbox_id}/logs", headers={"X-API-Key": emu.env["E2B_API_KEY"]}
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return [entry["line"] for entry in json.load(r)["logs"]]


def test_each_template_runs_on_its_image(image_emulator: Emulator) -> None:
    for template, name in (("first-template", "one"), ("second-template", "two")):
        sbx = Sandbox.create(template=template, timeout=60)
        try:
            out = sbx.commands.run("cat /etc/os-release /marker").stdout
            assert f"ID={name}\n" in out and out.endswith(f"{name}\n")
            assert "debian" not in out.lower()
            # The file service reads the image's root too.
            assert sbx.files.read("/marker") == f"{name}\n"
            assert sbx.get_info().template_id == template
            assert any(f"{name}:1" in line for line in _logs(image_emulator, sbx.sandbox_id))
        finally:
            sbx.kill()
    assert image_emulator.live() == 0


def test_user_and_home_inside_an_image(image_emulator: Emulator) -> None:
    # "one" has no /etc/passwd, "two" one without the user: both get it.
    for template in ("first-template", "second-template"):
        sbx = Sandbox.create(template=template, timeout=60)
        try:
            result = sbx.commands.run("id -un; echo $HOME; pwd; ls -ld /home/user")
            lines = result.stdout.splitlines()
            assert lines[:3] == ["user", "/home/user", "/home/user"]
            assert " user user " in lines[3]
            sbx.files.write("note.txt", "written by the file API")
            assert sbx.commands.run("cat /home/user/note.txt").stdout == "written by the file API"
            root = sbx.commands.run("id -un; echo $HOME", user="root").stdout.splitlines()
            assert root[1] == "/root"
        finally:
            sbx.kill()


def test_host_root_only_where_the_mapping_says_so(image_emulator: Emulator) -> None:
    for template in ("my-host", "base"):
        sbx = Sandbox.create(template=template, timeout=60)
        try:
            assert sbx.commands.run("test -e /marker || echo no-marker").stdout == "no-marker\n"
            assert any("host's root" in line for line in _logs(image_emulator, sbx.sandbox_id))
        finally:
            sbx.kill()


def test_unknown_template_is_404(image_emulator: Emulator) -> None:
    with pytest.raises(SandboxException) as info:
        Sandbox.create(template="no-such-template")
    assert "404" in str(info.value)
    assert "template 'no-such-template' not found" in str(info.value)
    assert image_emulator.live() == 0


# --- network rules (the session's emulator, template base) -------------------


class _Listener:
    """A TCP server on the host's loopback that counts its connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.sendall(b"hello from the host\n")
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[_Listener]:
    server = _Listener()
    yield server
    server.close()


def _reaches(sbx: Sandbox, port: int) -> str:
    return sbx.commands.run(
        f"(exec 3<>/dev/tcp/127.0.0.1/{port}; head -1 <&3) 2>/dev/null || echo unreachable",
        timeout=30,
    ).stdout.strip()


def test_internet_access_off_cuts_the_host(emulator: Emulator, listener: _Listener) -> None:
    on = Sandbox.create(timeout=60)
    try:
        assert _reaches(on, listener.port) == "hello from the host"
    finally:
        on.kill()
    seen = listener.accepted
    assert seen == 1
    for kwargs in ({"allow_internet_access": False}, {"network": {"deny_out": [ALL_TRAFFIC]}}):
        off = Sandbox.create(timeout=60, **kwargs)  # type: ignore[arg-type]
        try:
            assert _reaches(off, listener.port) == "unreachable"
        finally:
            off.kill()
    assert listener.accepted == seen
    # allowOut takes precedence over denyOut, as in the service.
    both = Sandbox.create(
        timeout=60, network={"allow_out": [ALL_TRAFFIC], "deny_out": [ALL_TRAFFIC]}
    )
    try:
        assert _reaches(both, listener.port) == "hello from the host"
    finally:
        both.kill()

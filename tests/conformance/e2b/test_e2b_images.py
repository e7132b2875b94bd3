"""Templates on images of the local image store, and network rules.

A second emulator runs with a mapping (--images) from two template names to
two small images built here, offline (tests/conformance/emulator_images.py),
and imported into a store of their own.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator

import emulator_images
import pytest
from conformance_util import FIRST, LoopbackServer, environ, reached, start_emulator
from conftest import Emulator, _emulator_program
from e2b import ALL_TRAFFIC, Sandbox, SandboxException


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
    process, env = start_emulator(
        [_emulator_program(), "--images", str(mapping)],
        env=dict(os.environ, SANDBOX_IMAGE_STORE=str(store)),
    )
    try:
        with environ(env):
            yield Emulator(env, process)
    finally:
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


@pytest.fixture
def listener() -> Iterator[LoopbackServer]:
    server = LoopbackServer(FIRST)
    yield server
    server.sock.close()


def _reaches(sbx: Sandbox, server: LoopbackServer) -> bool:
    run = lambda line: sbx.commands.run(line, timeout=30).stdout  # noqa: E731
    return reached(run, [server]) == [server.host]


def test_internet_access_off_cuts_the_host(emulator: Emulator, listener: LoopbackServer) -> None:
    on = Sandbox.create(timeout=60)
    try:
        assert _reaches(on, listener)
    finally:
        on.kill()
    seen = listener.accepted
    assert seen == 1
    for kwargs in ({"allow_internet_access": False}, {"network": {"deny_out": [ALL_TRAFFIC]}}):
        off = Sandbox.create(timeout=60, **kwargs)  # type: ignore[arg-type]
        try:
            assert not _reaches(off, listener)
        finally:
            off.kill()
    assert listener.accepted == seen
    # allowOut takes precedence over denyOut, as in the service.
    both = Sandbox.create(
        timeout=60, network={"allow_out": [ALL_TRAFFIC], "deny_out": [ALL_TRAFFIC]}
    )
    try:
        assert _reaches(both, listener)
    finally:
        both.kill()

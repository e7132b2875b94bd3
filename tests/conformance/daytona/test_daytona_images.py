"""Snapshots and images on images of the local image store, and network rules.

A second emulator runs with a mapping (--images) from a snapshot name and an
image name to two small images built here, offline
(tests/conformance/emulator_images.py), imported into a store of their own.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator

import emulator_images
import pytest
from conformance_util import FIRST, LoopbackServer, reached, start_emulator
from conftest import Emulator
from daytona import (
    CreateSandboxFromImageParams,
    CreateSandboxFromSnapshotParams,
    CreateSnapshotParams,
    Daytona,
    DaytonaConfig,
    DaytonaError,
    Image,
    ListSandboxesQuery,
    Sandbox,
)


@pytest.fixture(scope="module")
def image_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    work = tmp_path_factory.mktemp("images")
    store = emulator_images.make_store(work, {"one": False, "two": True})
    mapping = work / "images.map"
    mapping.write_text(
        "# snapshot or image = image of the store\n"
        "my-snapshot = one:1\nregistry.example/team/app:* = two:1\nmy-host = host\n"
    )
    proc, env = start_emulator(
        [os.environ["DAYTONA_EMULATOR"], "--state-delay-ms", "20", "--images", str(mapping)],
        env=dict(os.environ, SANDBOX_IMAGE_STORE=str(store)),
    )
    yield Emulator(proc, env)
    proc.terminate()
    proc.wait(30)


@pytest.fixture(scope="module")
def client(image_emulator: Emulator) -> Daytona:
    return Daytona(DaytonaConfig(api_key=image_emulator.api_key, api_url=image_emulator.api_url))


def _os_id(sb: Sandbox) -> str:
    return sb.process.exec("cat /etc/os-release /marker").result


def test_snapshot_and_image_run_on_their_images(client: Daytona, image_emulator: Emulator) -> None:
    first = client.create(CreateSandboxFromSnapshotParams(snapshot="my-snapshot"), timeout=60)
    logs: list[str] = []
    second = client.create(
        CreateSandboxFromImageParams(
            image=Image.base("registry.example/team/app:3").run_commands("echo built")
        ),
        timeout=60,
        on_snapshot_create_logs=logs.append,
    )
    try:
        out = _os_id(first)
        assert "ID=one\n" in out and out.endswith("one\n")
        out = _os_id(second)
        assert "ID=two\n" in out and out.endswith("two\n")
        # The file API reads the image's root too, and the build log says
        # which image the build became.
        assert first.fs.download_file("/marker") == b"one\n"
        last = "\n".join(logs).splitlines()[-1]
        assert "two:1" in last and last.startswith("Successfully built")
    finally:
        client.delete(first)
        client.delete(second)
    assert image_emulator.stats()["live"] == 0


def test_user_and_home_inside_an_image(client: Daytona) -> None:
    for params in (
        CreateSandboxFromSnapshotParams(snapshot="my-snapshot"),
        CreateSandboxFromImageParams(image="registry.example/team/app:1"),
    ):
        sb = client.create(params, timeout=60)
        try:
            lines = sb.process.exec("id -un; echo $HOME; pwd; ls -ld .").result.splitlines()
            assert lines[:3] == ["daytona", "/home/daytona", "/home/daytona"]
            assert " daytona daytona " in lines[3]
            assert sb.get_user_home_dir() == "/home/daytona"
            sb.fs.upload_file(b"from the file API", "note.txt")
            assert sb.process.exec("cat /home/daytona/note.txt").result == "from the file API"
        finally:
            client.delete(sb)


def test_host_root_only_where_the_mapping_says_so(client: Daytona) -> None:
    for params in (
        CreateSandboxFromSnapshotParams(snapshot="my-host"),
        CreateSandboxFromSnapshotParams(),
    ):
        sb = client.create(params, timeout=60)
        try:
            assert sb.process.exec("test -e /marker || echo no-marker").result == "no-marker\n"
        finally:
            client.delete(sb)


def test_unknown_snapshot_and_image_are_refused(client: Daytona, image_emulator: Emulator) -> None:
    with pytest.raises(DaytonaError) as info:
        client.create(CreateSandboxFromSnapshotParams(snapshot="no-such-snapshot"))
    assert "Snapshot no-such-snapshot not found" in str(info.value)
    # An image no rule maps fails its build, as a failed pull does.
    with pytest.raises(DaytonaError) as info:
        client.create(
            CreateSandboxFromImageParams(image="no-such-image:0", labels={"case": "unknown"}),
            timeout=60,
        )
    assert "build_failed" in str(info.value).lower() and "no-such-image:0" in str(info.value)
    for sb in client.list(ListSandboxesQuery(labels={"case": "unknown"})):
        client.delete(sb)
    assert image_emulator.stats()["live"] == 0


def _build_log(emu: Emulator, snapshot_id: str) -> str:
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    request = urllib.request.Request(
        f"{emu.api_url}/snapshots/{snapshot_id}/build-logs-url", headers=headers
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        url = json.load(resp)["url"]
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as resp:
        return resp.read().decode()


def test_snapshots_build_into_images(client: Daytona, image_emulator: Emulator) -> None:
    """POST /snapshots from an image name and from a Dockerfile: pending,
    then pulling or building, then active, with a build log; a sandbox made
    from the snapshot runs on the image its source maps to."""
    general = {s.name: s for s in client.snapshot.list().items}
    assert general["daytona-small"].general and general["daytona-small"].state == "active"
    logs: list[str] = []
    pulled = client.snapshot.create(
        CreateSnapshotParams(name="pulled", image="registry.example/team/app:7"),
        on_logs=logs.append,
    )
    built = client.snapshot.create(
        CreateSnapshotParams(name="built", image=Image.base("my-snapshot").run_commands("true")),
        on_logs=logs.append,
    )
    assert (pulled.state, built.state) == ("active", "active")
    assert logs[-1] == "Created snapshot built (SnapshotState.ACTIVE)"
    # The SDK followed the build's log while it built.
    followed = "\n".join(logs)
    assert "Step 2/2 : RUN true" in followed and "Successfully built" in followed
    text = _build_log(image_emulator, built.id)
    assert text.splitlines()[:2] == ["Step 1/2 : FROM my-snapshot", "Step 2/2 : RUN true"]
    assert "one:1" in text.splitlines()[-1]
    assert "two:1" in _build_log(image_emulator, pulled.id)
    assert client.snapshot.get("built").name == "built"
    page = client.snapshot.list(page=1, limit=2)
    assert page.page == 1 and len(page.items) == 2 and page.total == len(general) + 2
    for name, marker in (("pulled", "two"), ("built", "one")):
        sb = client.create(CreateSandboxFromSnapshotParams(snapshot=name), timeout=60)
        try:
            assert sb.process.exec("cat /marker").result == f"{marker}\n"
        finally:
            client.delete(sb)
    with pytest.raises(DaytonaError) as info:
        client.snapshot.create(CreateSnapshotParams(name="nothing", image="no-such-image:0"))
    assert "no-such-image:0" in str(info.value)
    for name in ("pulled", "built", "nothing"):
        client.snapshot.delete(client.snapshot.get(name))
    assert {s.name for s in client.snapshot.list().items} == set(general)
    assert image_emulator.stats()["live"] == 0


# --- network rules (the session's emulator) ----------------------------------


def _reaches(sb: Sandbox, server: LoopbackServer) -> bool:
    run = lambda line: sb.process.exec(f"bash -c '{line}'", timeout=30).result  # noqa: E731
    return reached(run, [server]) == [server.host]


def test_network_block_all_cuts_the_host(daytona: Daytona, emulator: Emulator) -> None:
    server = LoopbackServer(FIRST)
    try:
        on = daytona.create(CreateSandboxFromSnapshotParams(), timeout=60)
        try:
            assert _reaches(on, server)
        finally:
            daytona.delete(on)
        assert server.accepted == 1
        off = daytona.create(CreateSandboxFromSnapshotParams(network_block_all=True), timeout=60)
        try:
            assert off.network_block_all
            assert not _reaches(off, server)
        finally:
            daytona.delete(off)
        assert server.accepted == 1
    finally:
        server.sock.close()

"""The official daytona SDK's volume and preview-link calls against the emulator.

Volumes: daytona.volume.create/get/list/delete, and VolumeMount in
CreateSandboxFromSnapshotParams, with a file written in one sandbox read in
another. Preview links: sandbox.get_preview_link(port) reaches a server
started inside, with the token header (and only with it or the API key).
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Protocol

import pytest
from daytona import (
    CreateSandboxFromSnapshotParams,
    Daytona,
    DaytonaNotFoundError,
    Sandbox,
    VolumeMount,
)


class Emulator(Protocol):
    api_url: str
    api_key: str

    def stats(self) -> dict[str, int]: ...


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_ready(daytona: Daytona, name: str) -> None:
    deadline = time.monotonic() + 30
    while daytona.volume.get(name).state != "ready":
        assert time.monotonic() < deadline, f"volume {name} never became ready"
        time.sleep(0.05)


@pytest.fixture
def volume_name(daytona: Daytona) -> Iterator[str]:
    name = f"conformance-{uuid.uuid4().hex[:10]}"
    yield name
    try:
        daytona.volume.delete(daytona.volume.get(name))
    except DaytonaNotFoundError:
        pass


def test_volume_create_get_list_delete(daytona: Daytona, volume_name: str) -> None:
    created = daytona.volume.create(volume_name)
    assert created.name == volume_name
    assert created.id
    assert created.state in ("pending_create", "creating", "ready")
    wait_ready(daytona, volume_name)
    got = daytona.volume.get(volume_name)
    assert got.id == created.id
    assert any(v.id == created.id and v.name == volume_name for v in daytona.volume.list())
    # get(create=True) of an existing volume returns it, not a second one.
    assert daytona.volume.get(volume_name, create=True).id == created.id
    daytona.volume.delete(got)
    with pytest.raises(DaytonaNotFoundError):
        daytona.volume.get(volume_name)
    assert all(v.id != created.id for v in daytona.volume.list())


def test_volume_get_create_makes_a_missing_one(daytona: Daytona, volume_name: str) -> None:
    with pytest.raises(DaytonaNotFoundError):
        daytona.volume.get(volume_name)
    made = daytona.volume.get(volume_name, create=True)
    assert made.name == volume_name


def test_volume_is_shared_between_sandboxes(daytona: Daytona, volume_name: str) -> None:
    volume = daytona.volume.create(volume_name)
    wait_ready(daytona, volume_name)
    first = daytona.create(
        CreateSandboxFromSnapshotParams(
            volumes=[VolumeMount(volume_id=volume.id, mount_path="/home/daytona/shared")]
        ),
        timeout=30,
    )
    try:
        assert first.process.exec("echo from-the-first > /home/daytona/shared/note").exit_code == 0
    finally:
        daytona.delete(first)
    # Mounted by name this time, elsewhere.
    second = daytona.create(
        CreateSandboxFromSnapshotParams(
            volumes=[VolumeMount(volume_id=volume_name, mount_path="/mnt-data")]
        ),
        timeout=30,
    )
    try:
        response = second.process.exec("cat /mnt-data/note")
        assert response.exit_code == 0
        assert response.result.strip() == "from-the-first"
    finally:
        daytona.delete(second)


def test_volume_mounted_right_after_its_creation(daytona: Daytona, volume_name: str) -> None:
    # As Daytona's own volume example does: get(create=True), then a sandbox
    # with it at once, without waiting for the volume's state.
    volume = daytona.volume.get(volume_name, create=True)
    sb = daytona.create(
        CreateSandboxFromSnapshotParams(
            volumes=[VolumeMount(volume_id=volume.id, mount_path="/home/daytona/volume")]
        ),
        timeout=30,
    )
    try:
        sb.fs.upload_file(b"kept", "/home/daytona/volume/kept.txt")
        assert sb.process.exec("cat /home/daytona/volume/kept.txt").result == "kept"
    finally:
        daytona.delete(sb)


def test_missing_volume_refuses_the_sandbox(daytona: Daytona) -> None:
    with pytest.raises(DaytonaNotFoundError, match="Volume 'no-such-volume' not found"):
        daytona.create(
            CreateSandboxFromSnapshotParams(
                volumes=[VolumeMount(volume_id="no-such-volume", mount_path="/data")]
            ),
            timeout=30,
        )


@pytest.fixture
def served(daytona: Daytona) -> Iterator[tuple[Sandbox, int, str]]:
    sb = daytona.create(CreateSandboxFromSnapshotParams(), timeout=30)
    port = free_port()
    marker = f"preview-{uuid.uuid4().hex[:8]}"
    started = sb.process.exec(
        f"mkdir -p /tmp/www && cd /tmp/www && echo {marker} > index.html && "
        f"(setsid python3 -m http.server {port} --bind 127.0.0.1 >/dev/null 2>&1 &) && "
        "for i in $(seq 100); do python3 -c 'import socket; "
        f'socket.create_connection(("127.0.0.1", {port}))\' 2>/dev/null && echo up && break; '
        "sleep 0.1; done"
    )
    assert started.result.strip() == "up"
    yield sb, port, marker
    daytona.delete(sb)


def get(url: str, headers: dict[str, str]) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_preview_link_reaches_a_server_inside(
    served: tuple[Sandbox, int, str], emulator: Emulator
) -> None:
    sb, port, marker = served
    link = sb.get_preview_link(port)
    assert link.url.startswith("http")
    assert link.token
    status, body = get(f"{link.url}/index.html", {"X-Daytona-Preview-Token": link.token})
    assert (status, body.strip()) == (200, marker)
    # The API key works too; nothing, or a wrong token, does not.
    status, body = get(f"{link.url}/index.html", {"Authorization": f"Bearer {emulator.api_key}"})
    assert (status, body.strip()) == (200, marker)
    assert get(f"{link.url}/index.html", {})[0] == 401
    assert get(f"{link.url}/index.html", {"X-Daytona-Preview-Token": "wrong"})[0] == 401


def test_preview_link_of_a_closed_port(served: tuple[Sandbox, int, str]) -> None:
    sb, port, _ = served
    closed = free_port()
    link = sb.get_preview_link(closed)
    assert get(f"{link.url}/", {"X-Daytona-Preview-Token": link.token})[0] == 502


def test_signed_preview_url_needs_no_header(served: tuple[Sandbox, int, str]) -> None:
    sb, port, marker = served
    signed = sb.create_signed_preview_url(port, expires_in_seconds=120)
    assert signed.port == port
    assert signed.token
    status, body = get(f"{signed.url}/index.html", {})
    assert (status, body.strip()) == (200, marker)
    sb.expire_signed_preview_url(port, signed.token)
    assert get(f"{signed.url}/index.html", {})[0] == 401

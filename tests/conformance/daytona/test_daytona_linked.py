"""Linked sandboxes (`linked_sandbox` in CreateSandboxFromSnapshotParams).

A follower must be ephemeral, links to a started or stopped sandbox that is
not itself a follower, reports the owner's id as linked_sandbox_id, and
reaches the owner by the owner's name, as on the service's link network.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest
from daytona import (
    CreateSandboxFromSnapshotParams,
    Daytona,
    DaytonaBadRequestError,
    DaytonaNotFoundError,
    Sandbox,
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def owner(daytona: Daytona) -> Iterator[Sandbox]:
    sb = daytona.create(
        CreateSandboxFromSnapshotParams(name=f"owner-{uuid.uuid4().hex[:8]}"), timeout=30
    )
    yield sb
    daytona.delete(sb)


def linked(daytona: Daytona, owner: str, **extra: object) -> Sandbox:
    params = CreateSandboxFromSnapshotParams(linked_sandbox=owner, **extra)  # type: ignore[arg-type]
    return daytona.create(params, timeout=30)


def test_follower_reaches_the_owner_by_name(daytona: Daytona, owner: Sandbox) -> None:
    port = free_port()
    marker = f"linked-{uuid.uuid4().hex[:8]}"
    started = owner.process.exec(
        f"mkdir -p /tmp/www && cd /tmp/www && echo {marker} > index.html && "
        f"(setsid python3 -m http.server {port} >/dev/null 2>&1 &) && "
        "for i in $(seq 100); do python3 -c 'import socket; "
        f'socket.create_connection(("127.0.0.1", {port}))\' 2>/dev/null && echo up && break; '
        "sleep 0.1; done"
    )
    assert started.result.strip() == "up"
    follower = linked(daytona, owner.name, ephemeral=True)
    try:
        assert follower.linked_sandbox_id == owner.id
        assert daytona.get(follower.id).linked_sandbox_id == owner.id
        fetch = (
            "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())"
        )
        fetched = follower.process.exec(
            f"python3 -c '{fetch}' http://{owner.name}:{port}/", timeout=30
        )
        assert fetched.exit_code == 0, fetched.result
        assert fetched.result.strip() == marker
        # The owner learns the follower's name too.
        seen = owner.process.exec(f"getent hosts {follower.name}")
        assert seen.exit_code == 0
        assert seen.result.split()[0] == "127.0.0.1"
    finally:
        daytona.delete(follower)
    # Gone with the follower.
    assert owner.process.exec(f"getent hosts {follower.name}").exit_code != 0


def test_follower_must_be_ephemeral(daytona: Daytona, owner: Sandbox) -> None:
    with pytest.raises(DaytonaBadRequestError, match="must be ephemeral"):
        linked(daytona, owner.id)


def test_no_chained_links(daytona: Daytona, owner: Sandbox) -> None:
    follower = linked(daytona, owner.id, ephemeral=True)
    try:
        with pytest.raises(DaytonaBadRequestError, match="chained links are not allowed"):
            linked(daytona, follower.id, ephemeral=True)
    finally:
        daytona.delete(follower)


def test_unknown_owner(daytona: Daytona) -> None:
    with pytest.raises(DaytonaNotFoundError):
        linked(daytona, f"no-such-{uuid.uuid4().hex[:8]}", ephemeral=True)

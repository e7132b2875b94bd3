"""Conformance: the e2b SDK's sbx.get_host(port) against the emulator's edge proxy.

The host the SDK computes, "PORT-ID.DOMAIN", reaches a server started in
the sandbox when a request carries it (as the service's edge proxy routes
by Host), and so do the routing headers E2b-Sandbox-Id / E2b-Sandbox-Port.
"""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from conftest import Emulator
from e2b import Sandbox
from e2b.sandbox.sandbox_api import SandboxNetworkOpts


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served(emulator: Emulator) -> Iterator[tuple[Sandbox, int, str]]:
    sbx = Sandbox.create(metadata={"suite": "conformance-ports"})
    port = free_port()
    marker = f"e2b-served-{uuid.uuid4().hex[:8]}"
    sbx.commands.run(f"mkdir -p /tmp/www && echo {marker} > /tmp/www/index.html")
    sbx.commands.run(
        f"cd /tmp/www && python3 -m http.server {port} --bind 127.0.0.1",
        background=True,
    )
    sbx.commands.run(
        "for i in $(seq 100); do python3 -c 'import socket; "
        f'socket.create_connection(("127.0.0.1", {port}))\' 2>/dev/null && exit 0; '
        "sleep 0.1; done; exit 1"
    )
    yield sbx, port, marker
    sbx.kill()


def get(headers: dict[str, str], path: str = "/index.html") -> tuple[int, bytes]:
    url = os.environ["E2B_SANDBOX_URL"] + path
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_get_host_is_port_dash_id_dot_domain(served: tuple[Sandbox, int, str]) -> None:
    sbx, port, _ = served
    host = sbx.get_host(port)
    assert host == f"{port}-{sbx.sandbox_id}.{sbx.sandbox_domain}"


def test_get_host_reaches_the_server(served: tuple[Sandbox, int, str]) -> None:
    sbx, port, marker = served
    status, body = get({"Host": sbx.get_host(port)})
    assert status == 200
    assert body.strip() == marker.encode()


def test_routing_headers_reach_the_server(served: tuple[Sandbox, int, str]) -> None:
    sbx, port, marker = served
    status, body = get({"E2b-Sandbox-Id": sbx.sandbox_id, "E2b-Sandbox-Port": str(port)})
    assert (status, body.strip()) == (200, marker.encode())


def test_closed_port_is_the_proxys_502(served: tuple[Sandbox, int, str]) -> None:
    sbx, _, _ = served
    closed = free_port()
    status, body = get({"Host": sbx.get_host(closed)}, "/")
    assert status == 502
    assert b"port is not open" in body


def test_private_traffic_needs_the_token(emulator: Emulator) -> None:
    # network.allowPublicTraffic false: the sandbox gets a traffic access
    # token, and its ports answer only requests that carry it.
    sbx = Sandbox.create(secure=True, network=SandboxNetworkOpts(allow_public_traffic=False))
    try:
        token = sbx.traffic_access_token
        assert token
        port = free_port()
        sbx.commands.run("mkdir -p /tmp/priv && echo private > /tmp/priv/index.html")
        sbx.commands.run(
            f"cd /tmp/priv && python3 -m http.server {port} --bind 127.0.0.1", background=True
        )
        sbx.commands.run(
            "for i in $(seq 100); do python3 -c 'import socket; "
            f'socket.create_connection(("127.0.0.1", {port}))\' 2>/dev/null && exit 0; '
            "sleep 0.1; done; exit 1"
        )
        host = sbx.get_host(port)
        assert get({"Host": host})[0] == 403
        assert get({"Host": host, "e2b-traffic-access-token": "not-it"})[0] == 403
        assert get({"Host": host, "e2b-traffic-access-token": token}) == (200, b"private\n")
        # The sandbox's own API (envd) is not behind it.
        assert sbx.files.read("/tmp/priv/index.html") == "private\n"
    finally:
        sbx.kill()
    # A sandbox with public traffic has no token.
    open_sbx = Sandbox.create()
    try:
        assert open_sbx.traffic_access_token is None
    finally:
        open_sbx.kill()

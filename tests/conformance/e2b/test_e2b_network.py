"""Egress rules (network.allowOut / denyOut, update_network) and the tools of
the default template (sudo, python), through the official SDK.

The emulator's sandboxes share this machine's network, so the destinations
here are two TCP servers and a UDP socket on the host's loopback, at
127.0.0.1 and 127.0.0.2: a rule that names one must leave the other as it
was, and each server counts what reached it, so a refused connection is
also one that never arrived.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from conformance_util import FIRST, SECOND, LoopbackServer, loopback_servers, reached
from conftest import Emulator
from e2b import ALL_TRAFFIC, Sandbox, SandboxException

Servers = tuple[LoopbackServer, LoopbackServer]


@pytest.fixture
def servers() -> Iterator[Servers]:
    yield from loopback_servers()


def _reached(sbx: Sandbox, servers: Servers) -> list[str]:
    """Which of the two servers a command in the sandbox can talk to."""
    return reached(lambda line: sbx.commands.run(line, timeout=30).stdout, servers)


def test_deny_all_then_allow_one_address(emulator: Emulator, servers: Servers) -> None:
    sbx = Sandbox.create(timeout=60, network={"deny_out": [ALL_TRAFFIC], "allow_out": [FIRST]})
    try:
        assert _reached(sbx, servers) == [FIRST]
    finally:
        sbx.kill()
    assert (servers[0].accepted, servers[1].accepted) == (1, 0)


def test_deny_list_leaves_the_rest_open(emulator: Emulator, servers: Servers) -> None:
    # A single address and a CIDR block of one address: both forms count.
    for denied in (SECOND, f"{SECOND}/32"):
        sbx = Sandbox.create(timeout=60, network={"deny_out": [denied]})
        try:
            assert _reached(sbx, servers) == [FIRST]
        finally:
            sbx.kill()
    assert servers[1].accepted == 0


def test_an_allowed_block_wins_over_a_denial(emulator: Emulator, servers: Servers) -> None:
    sbx = Sandbox.create(
        timeout=60, network={"deny_out": [ALL_TRAFFIC, SECOND], "allow_out": ["127.0.0.0/8"]}
    )
    try:
        assert _reached(sbx, servers) == [FIRST, SECOND]
    finally:
        sbx.kill()


def test_datagrams_obey_the_rules(emulator: Emulator) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind((SECOND, 0))
    receiver.settimeout(5)
    port = receiver.getsockname()[1]
    send = (
        'python3 -c "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); '
        f"s.sendto(sys.argv[1].encode(), ('{SECOND}', {port}))\""
    )
    sbx = Sandbox.create(timeout=60, network={"deny_out": [SECOND]})
    try:
        blocked = sbx.commands.run(f"{send} blocked 2>&1 || echo refused", timeout=30)
        assert "refused" in blocked.stdout and "Permission denied" in blocked.stdout
        sbx.update_network({})
        assert sbx.commands.run(f"{send} allowed", timeout=30).exit_code == 0
        data, _ = receiver.recvfrom(100)
        assert data == b"allowed"  # the first datagram never came
    finally:
        sbx.kill()
        receiver.close()


def test_update_network_replaces_the_rules_of_a_running_sandbox(
    emulator: Emulator, servers: Servers
) -> None:
    sbx = Sandbox.create(timeout=60)
    try:
        assert _reached(sbx, servers) == [FIRST, SECOND]
        sbx.update_network({"deny_out": [SECOND]})
        assert _reached(sbx, servers) == [FIRST]
        sbx.update_network({"deny_out": [ALL_TRAFFIC]})
        assert _reached(sbx, servers) == []
        sbx.update_network({"deny_out": [ALL_TRAFFIC], "allow_out": [SECOND]})
        assert _reached(sbx, servers) == [SECOND]
        # An empty update clears every rule.
        sbx.update_network({})
        assert _reached(sbx, servers) == [FIRST, SECOND]
    finally:
        sbx.kill()


def test_rules_last_through_a_pause(emulator: Emulator, servers: Servers) -> None:
    sbx = Sandbox.create(timeout=60, network={"deny_out": [SECOND]})
    try:
        assert sbx.pause() is True
        resumed = Sandbox.connect(sbx.sandbox_id, timeout=60)
        assert _reached(resumed, servers) == [FIRST]
        # An update while paused applies once it runs again.
        assert resumed.pause() is True
        resumed.update_network({"deny_out": [FIRST]})
        resumed = Sandbox.connect(sbx.sandbox_id, timeout=60)
        assert _reached(resumed, servers) == [SECOND]
    finally:
        sbx.kill()


def test_what_cannot_be_applied_is_refused(emulator: Emulator) -> None:
    refused = [
        ({"deny_out": ["example.com"]}, "only IP addresses and CIDR blocks can be denied"),
        ({"allow_out": ["not an address"]}, "not an IP address, CIDR block or domain"),
        ({"allow_out": ["*.example.com"], "deny_out": [ALL_TRAFFIC]}, "every subdomain"),
        ({"allow_out": ["no-such-host.invalid"], "deny_out": [ALL_TRAFFIC]}, "does not resolve"),
    ]
    for network, words in refused:
        with pytest.raises(SandboxException) as info:
            Sandbox.create(timeout=60, network=network)  # type: ignore[arg-type]
        assert "400" in str(info.value) and words in str(info.value), network
    # Without internet access the local sandbox has no network at all:
    # nothing can open it later.
    closed = Sandbox.create(timeout=60, allow_internet_access=False)
    try:
        closed.update_network({"deny_out": [ALL_TRAFFIC]})
        with pytest.raises(SandboxException) as info:
            closed.update_network({})
        assert "501" in str(info.value) and "allow_internet_access true" in str(info.value)
    finally:
        closed.kill()
    assert emulator.live() == 0


def test_default_template_has_sudo_and_python(emulator: Emulator) -> None:
    sbx = Sandbox.create(timeout=60, envs={"SECRET_OF_THE_USER": "kept"})
    try:
        # sudo runs the command without a password, in sudo's reset
        # environment: the caller's variables stay behind, HOME is root's.
        out = sbx.commands.run(
            "sudo sh -c 'echo \"[$SECRET_OF_THE_USER] $HOME $SUDO_USER\"'", timeout=30
        )
        assert out.stdout.strip() == "[] /root user"
        assert sbx.commands.run("sudo -E printenv SECRET_OF_THE_USER").stdout.strip() == "kept"
        assert sbx.commands.run("sudo -u user true").exit_code == 0
        version = sbx.commands.run("python --version", timeout=30).stdout.strip()
        assert version.startswith("Python 3.")
        assert sbx.commands.run("python -c 'print(6 * 7)'").stdout.strip() == "42"
    finally:
        sbx.kill()

"""networkAllowList as egress rules, and `python` in the default snapshot,
through the official SDK.

The destinations are two TCP servers on the host's loopback (127.0.0.1 and
127.0.0.2), which the emulator's sandboxes share: an allow list naming one
must leave the other unreachable, and each server counts what reached it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conformance_util import FIRST, SECOND, LoopbackServer, loopback_servers, reached
from conftest import Emulator
from daytona import CreateSandboxFromSnapshotParams, Daytona, DaytonaError, Sandbox

Servers = tuple[LoopbackServer, LoopbackServer]


@pytest.fixture
def servers() -> Iterator[Servers]:
    yield from loopback_servers()


def _reached(sb: Sandbox, servers: Servers) -> list[str]:
    return reached(lambda line: sb.process.exec(f"bash -c '{line}'", timeout=30).result, servers)


def test_allow_list_is_all_the_sandbox_reaches(
    daytona: Daytona, emulator: Emulator, servers: Servers
) -> None:
    sb = daytona.create(
        CreateSandboxFromSnapshotParams(network_allow_list=f"{FIRST}/32"), timeout=60
    )
    try:
        assert sb.network_allow_list == f"{FIRST}/32"
        assert _reached(sb, servers) == [FIRST]
    finally:
        daytona.delete(sb)
    assert servers[1].accepted == 0
    # Several blocks, comma separated; a block covering both reaches both.
    sb = daytona.create(
        CreateSandboxFromSnapshotParams(network_allow_list=f"{SECOND}/32, 10.0.0.0/8"), timeout=60
    )
    try:
        assert _reached(sb, servers) == [SECOND]
    finally:
        daytona.delete(sb)
    # Host bits are dropped, as the service does (Daytona's own example
    # allows "192.168.1.0/16").
    sb = daytona.create(
        CreateSandboxFromSnapshotParams(network_allow_list="127.0.0.1/8"), timeout=60
    )
    try:
        assert _reached(sb, servers) == [FIRST, SECOND]
    finally:
        daytona.delete(sb)


def test_allow_list_lasts_across_stop_and_start(
    daytona: Daytona, emulator: Emulator, servers: Servers
) -> None:
    sb = daytona.create(
        CreateSandboxFromSnapshotParams(network_allow_list=f"{SECOND}/32"), timeout=60
    )
    try:
        sb.stop()
        sb.start()
        assert _reached(sb, servers) == [SECOND]
    finally:
        daytona.delete(sb)


def test_block_all_wins_over_the_allow_list(
    daytona: Daytona, emulator: Emulator, servers: Servers
) -> None:
    params = CreateSandboxFromSnapshotParams(
        network_allow_list=f"{FIRST}/32", network_block_all=True
    )
    sb = daytona.create(params, timeout=60)
    try:
        assert _reached(sb, servers) == []
    finally:
        daytona.delete(sb)
    assert servers[0].accepted == 0


def test_bad_allow_lists_are_refused(daytona: Daytona, emulator: Emulator) -> None:
    # In the service's words (its network-validation rules).
    for allow, words in (
        ("example.com", "Must be a valid IPv4 address"),
        ("10.0.0.1", "Missing CIDR prefix length"),
        ("2001:db8::/32", "Must be a valid IPv4 address"),
        ("10.0.0.0/33", "Prefix must be between 0 and 32"),
        (",".join(["10.0.0.0/8"] * 11), "cannot contain more than 10 networks"),
    ):
        with pytest.raises(DaytonaError) as info:
            daytona.create(CreateSandboxFromSnapshotParams(network_allow_list=allow), timeout=60)
        assert words in str(info.value), allow
    assert emulator.stats()["live"] == 0


def test_network_settings_change_a_running_sandbox(
    daytona: Daytona, emulator: Emulator, servers: Servers
) -> None:
    sb = daytona.create(CreateSandboxFromSnapshotParams(), timeout=60)
    try:
        assert _reached(sb, servers) == [FIRST, SECOND]
        sb.update_network_settings(network_allow_list=f"{SECOND}/32")
        assert sb.network_allow_list == f"{SECOND}/32" and not sb.network_block_all
        assert _reached(sb, servers) == [SECOND]
        sb.update_network_settings(network_block_all=True)
        assert sb.network_block_all
        assert _reached(sb, servers) == []
        # false restores all access and forgets the allow list
        sb.update_network_settings(network_block_all=False)
        assert not sb.network_block_all and not sb.network_allow_list
        assert _reached(sb, servers) == [FIRST, SECOND]
        # changed while stopped: applies when it starts again
        sb.stop()
        sb.update_network_settings(network_allow_list=f"{FIRST}/32")
        sb.start()
        assert _reached(sb, servers) == [FIRST]
    finally:
        daytona.delete(sb)


def test_network_settings_that_cannot_apply_are_refused(
    daytona: Daytona, emulator: Emulator
) -> None:
    sb = daytona.create(CreateSandboxFromSnapshotParams(network_block_all=True), timeout=60)
    try:
        sb.update_network_settings(network_block_all=True)  # stays closed: fine
        with pytest.raises(DaytonaError) as info:
            sb.update_network_settings(network_block_all=False)
        assert "networkBlockAll" in str(info.value)
        for bad in ({"network_allow_list": "example.com"}, {"domain_allow_list": "*.example.com"}):
            with pytest.raises(DaytonaError) as info:
                sb.update_network_settings(**bad)  # type: ignore[arg-type]
    finally:
        daytona.delete(sb)
    with pytest.raises(DaytonaError) as info:
        daytona.create(
            CreateSandboxFromSnapshotParams(domain_allow_list="no-such-host.invalid"), timeout=60
        )
    assert "does not resolve" in str(info.value)
    assert emulator.stats()["live"] == 0


def test_default_snapshot_has_python(daytona: Daytona, emulator: Emulator) -> None:
    sb = daytona.create(CreateSandboxFromSnapshotParams(), timeout=60)
    try:
        run = sb.process.exec("python - <<'EOF'\nimport sys\nprint(sys.version_info[0] * 14)\nEOF")
        assert run.exit_code == 0 and run.result.strip() == "42"
        assert sb.process.exec("python --version").result.startswith("Python 3.")
    finally:
        daytona.delete(sb)

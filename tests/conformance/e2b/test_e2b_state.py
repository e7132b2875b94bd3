"""Conformance: what an E2B sandbox keeps, through the official SDK.

File metadata (kept as the file's ``user.e2b.*`` extended attributes, as
envd does), snapshots of a running sandbox (made, listed, deleted, and
sandboxes started from them), forks, and a pause that keeps only the file
system. Each test fails against an emulator that lacks the feature.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from conftest import Emulator
from e2b import Sandbox, SandboxException, SandboxState
from e2b.exceptions import SandboxNotFoundException
from e2b.sandbox.filesystem.filesystem import WriteEntry


@pytest.fixture(scope="module")
def sandbox(emulator: Emulator) -> Iterator[Sandbox]:
    sbx = Sandbox.create(metadata={"suite": "state"}, timeout=300)
    yield sbx
    sbx.kill()


@pytest.fixture
def work_dir(sandbox: Sandbox) -> str:
    path = f"/home/user/state-{uuid.uuid4().hex[:8]}"
    sandbox.files.make_dir(path)
    return path


# --- file metadata ------------------------------------------------------------


def test_upload_metadata_is_reported_and_kept(sandbox: Sandbox, work_dir: str) -> None:
    tags = {"owner": "conformance", "kind": "notes"}
    written = sandbox.files.write(f"{work_dir}/a.txt", "alpha", metadata=tags)
    assert written.metadata == tags
    assert sandbox.files.get_info(f"{work_dir}/a.txt").metadata == tags

    # The raw-body upload carries it the same way.
    raw = sandbox.files.write(
        f"{work_dir}/b.txt", "beta", metadata={"k": "v"}, use_octet_stream=True
    )
    assert raw.metadata == {"k": "v"}
    assert sandbox.files.get_info(f"{work_dir}/b.txt").metadata == {"k": "v"}

    # A file without any has none (not an empty map).
    plain = sandbox.files.write(f"{work_dir}/c.txt", "gamma")
    assert plain.metadata is None
    assert sandbox.files.get_info(f"{work_dir}/c.txt").metadata is None


def test_metadata_keys_lowercased_and_replaced(sandbox: Sandbox, work_dir: str) -> None:
    path = f"{work_dir}/case.txt"
    sandbox.files.write(path, "one", metadata={"Reviewer": "Ana"})
    assert sandbox.files.get_info(path).metadata == {"reviewer": "Ana"}

    # Each upload replaces what the file had: none left after a plain write.
    sandbox.files.write(path, "two", metadata={"stage": "2"})
    assert sandbox.files.get_info(path).metadata == {"stage": "2"}
    sandbox.files.write(path, "three")
    assert sandbox.files.get_info(path).metadata is None


def test_metadata_in_batches_listings_moves(sandbox: Sandbox, work_dir: str) -> None:
    infos = sandbox.files.write_files(
        [WriteEntry(path=f"{work_dir}/m1", data="1"), WriteEntry(path=f"{work_dir}/m2", data="2")],
        metadata={"batch": "7"},
    )
    assert [i.metadata for i in infos] == [{"batch": "7"}, {"batch": "7"}]

    listed = {e.name: e.metadata for e in sandbox.files.list(work_dir)}
    assert listed == {"m1": {"batch": "7"}, "m2": {"batch": "7"}}

    moved = sandbox.files.rename(f"{work_dir}/m1", f"{work_dir}/moved")
    assert moved.metadata == {"batch": "7"}


def test_metadata_set_by_a_command_is_seen(sandbox: Sandbox, work_dir: str) -> None:
    path = f"{work_dir}/x.txt"
    sandbox.files.write(path, "x")
    # Out of band: the attribute set from inside the sandbox, not by an upload.
    sandbox.commands.run(
        f"python3 -c \"import os; os.setxattr('{path}', 'user.e2b.origin', b'shell')\""
    )
    assert sandbox.files.get_info(path).metadata == {"origin": "shell"}
    # Attributes outside the user.e2b. namespace are not metadata.
    sandbox.commands.run(f"python3 -c \"import os; os.setxattr('{path}', 'user.other', b'no')\"")
    assert sandbox.files.get_info(path).metadata == {"origin": "shell"}


# --- snapshots and forks ------------------------------------------------------


def test_snapshot_seeds_new_sandboxes(sandbox: Sandbox, work_dir: str) -> None:
    sandbox.files.write(f"{work_dir}/seed.txt", "from the original")
    name = f"conf-{uuid.uuid4().hex[:8]}"
    snap = sandbox.create_snapshot(name=name)
    try:
        assert snap.snapshot_id and name in snap.names
        # The snapshot is a picture: later changes to the source are not in it.
        sandbox.files.write(f"{work_dir}/seed.txt", "changed later")

        first = Sandbox.create(snap.snapshot_id, timeout=60)
        second = Sandbox.create(snap.snapshot_id, timeout=60)
        try:
            assert first.files.read(f"{work_dir}/seed.txt") == "from the original"
            first.files.write(f"{work_dir}/seed.txt", "first's own")
            # Each sandbox has its own copy.
            assert second.files.read(f"{work_dir}/seed.txt") == "from the original"
            assert first.commands.run(f"cat {work_dir}/seed.txt").stdout == "first's own"
        finally:
            first.kill()
            second.kill()
    finally:
        assert Sandbox.delete_snapshot(snap.snapshot_id) is True
    # Gone: a second delete finds nothing, and nothing can start from it.
    assert Sandbox.delete_snapshot(snap.snapshot_id) is False
    with pytest.raises(SandboxException):
        Sandbox.create(snap.snapshot_id, timeout=30)


def test_snapshot_listing_filters_and_pages(sandbox: Sandbox) -> None:
    other = Sandbox.create(timeout=60)
    tag = uuid.uuid4().hex[:8]
    made = [
        sandbox.create_snapshot(name=f"list-{tag}-a"),
        Sandbox.create_snapshot(sandbox.sandbox_id, name=f"list-{tag}-b"),
        other.create_snapshot(),
    ]
    try:
        mine = [
            s.snapshot_id
            for s in Sandbox.list_snapshots(sandbox_id=sandbox.sandbox_id).next_items()
        ]
        assert made[0].snapshot_id in mine and made[1].snapshot_id in mine
        assert made[2].snapshot_id not in mine

        named = Sandbox.list_snapshots(name=f"list-{tag}-b").next_items()
        assert [s.snapshot_id for s in named] == [made[1].snapshot_id]
        assert Sandbox.list_snapshots(name=f"list-{tag}-none").next_items() == []

        # One per page: every snapshot is seen once, then no next page.
        pages = Sandbox.list_snapshots(limit=1)
        seen: list[str] = []
        while pages.has_next:
            items = pages.next_items()
            assert len(items) <= 1
            seen += [s.snapshot_id for s in items]
        assert len(seen) == len(set(seen))
        assert {s.snapshot_id for s in made} <= set(seen)
    finally:
        for snap in made:
            Sandbox.delete_snapshot(snap.snapshot_id)
        other.kill()


def test_fork_copies_files_and_runs_on_its_own(sandbox: Sandbox, work_dir: str) -> None:
    sandbox.files.write(f"{work_dir}/f.txt", "before the fork")
    forks = sandbox.fork(count=2, timeout=60)
    assert len(forks) == 2 and all(isinstance(f, Sandbox) for f in forks)
    try:
        ids = {f.sandbox_id for f in forks}
        assert len(ids) == 2 and sandbox.sandbox_id not in ids
        assert sandbox.is_running()
        for f in forks:
            assert f.is_running()
            assert f.files.read(f"{work_dir}/f.txt") == "before the fork"
        forks[0].files.write(f"{work_dir}/f.txt", "in the fork")
        assert sandbox.files.read(f"{work_dir}/f.txt") == "before the fork"
        assert forks[1].files.read(f"{work_dir}/f.txt") == "before the fork"
        # The fork keeps the source's metadata.
        info = Sandbox.get_info(forks[0].sandbox_id)
        assert info.metadata.get("suite") == "state"
        # Once a fork is gone, forking it finds nothing.
        forks[1].kill()
        with pytest.raises(SandboxNotFoundException):
            forks[1].fork()
    finally:
        for f in forks:
            if isinstance(f, Sandbox):
                f.kill()


# --- pause without memory, auto-pause, auto-resume ------------------------------

BOOT_ID = "/proc/sys/kernel/random/boot_id"


def wait_for_state(sbx: Sandbox, state: SandboxState) -> None:
    for _ in range(300):
        if Sandbox.get_info(sbx.sandbox_id).state == state:
            return
        time.sleep(0.1)
    raise AssertionError(f"{sbx.sandbox_id} never reached {state}")


def test_each_sandbox_is_a_machine_with_its_own_boot_id(sandbox: Sandbox) -> None:
    other = Sandbox.create(timeout=60)
    try:
        mine = sandbox.files.read(BOOT_ID).strip()
        assert len(mine) == 36
        # Commands see the same one as the file service.
        assert sandbox.commands.run(f"cat {BOOT_ID}").stdout.strip() == mine
        assert other.files.read(BOOT_ID).strip() != mine
    finally:
        other.kill()


def test_pause_without_memory_keeps_files_and_boots_anew(emulator: Emulator) -> None:
    sbx = Sandbox.create(timeout=120)
    try:
        sbx.files.write("/home/user/kept.txt", "on disk")
        sbx.commands.run("sleep 600", background=True)
        boot = sbx.files.read(BOOT_ID).strip()

        assert sbx.pause(keep_memory=False)
        assert Sandbox.get_info(sbx.sandbox_id).state == SandboxState.PAUSED
        resumed = sbx.connect()
        assert resumed.sandbox_id == sbx.sandbox_id
        assert resumed.files.read("/home/user/kept.txt") == "on disk"
        # A cold boot: another boot id, and no process survived it.
        assert resumed.files.read(BOOT_ID).strip() != boot
        assert [p.cmd for p in resumed.commands.list() if "sleep" in p.cmd] == []
        assert resumed.commands.run("echo up").stdout.strip() == "up"
    finally:
        Sandbox.kill(sbx.sandbox_id)


def test_timeout_pauses_instead_of_killing(emulator: Emulator) -> None:
    sbx = Sandbox.create(timeout=120, lifecycle={"on_timeout": "pause", "auto_resume": False})
    try:
        assert Sandbox.get_info(sbx.sandbox_id).lifecycle == {
            "on_timeout": "pause",
            "auto_resume": False,
        }
        boot = sbx.files.read(BOOT_ID).strip()
        sbx.set_timeout(0)
        wait_for_state(sbx, SandboxState.PAUSED)
        assert not sbx.is_running()
        resumed = sbx.connect()
        assert Sandbox.get_info(sbx.sandbox_id).state == SandboxState.RUNNING
        # Paused with its memory: the same boot.
        assert resumed.files.read(BOOT_ID).strip() == boot
    finally:
        Sandbox.kill(sbx.sandbox_id)


def test_traffic_resumes_an_auto_resume_sandbox(emulator: Emulator) -> None:
    sbx = Sandbox.create(timeout=120, lifecycle={"on_timeout": "pause", "auto_resume": True})
    try:
        sbx.files.write("/home/user/wake.txt", "awake")
        sbx.set_timeout(0)
        wait_for_state(sbx, SandboxState.PAUSED)
        # No connect: the request itself wakes it.
        assert sbx.files.read("/home/user/wake.txt") == "awake"
        assert Sandbox.get_info(sbx.sandbox_id).state == SandboxState.RUNNING
    finally:
        Sandbox.kill(sbx.sandbox_id)


def test_filesystem_only_auto_pause_cannot_auto_resume(emulator: Emulator) -> None:
    # Refused by the API itself (the SDK checks it too, so ask directly).
    body = {
        "templateID": "base",
        "timeout": 30,
        "autoPause": True,
        "autoPauseMemory": False,
        "autoResume": {"enabled": True},
    }
    request = urllib.request.Request(
        f"{emulator.url}/sandboxes",
        data=json.dumps(body).encode(),
        headers={"X-API-Key": emulator.env["E2B_API_KEY"], "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400
    assert "connect" in json.load(refused.value)["message"]

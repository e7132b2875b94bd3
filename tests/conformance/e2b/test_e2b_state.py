"""Conformance: what an E2B sandbox keeps, through the official SDK.

File metadata (kept as the file's ``user.e2b.*`` extended attributes, as
envd does), snapshots of a running sandbox (made, listed, deleted, and
sandboxes started from them), forks, and a pause that keeps only the file
system. Each test fails against an emulator that lacks the feature.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from conftest import Emulator
from e2b import Sandbox
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

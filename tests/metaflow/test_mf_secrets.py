"""API keys never reach Metaflow's output, metadata, datastore or a step.

Issue 8 §6 (docs/security.md): with recognisable DAYTONA_API_KEY /
E2B_API_KEY values and G_MESSAGES_DEBUG=all, `flow.py --with
sandbox:backend=daytona|e2b run` (against the emulators) must not show the
key in its output, in any file under the run's datastore and local
metadata (.metaflow, gzip blobs decompressed), or in the environment the
step sees inside the sandbox (which needs no key: the extension talks to
the provider from the host).
"""

from __future__ import annotations

import gzip
import secrets

import pytest

from conftest import PYTHON, main_metaflow
from test_mf_remote import Emulator

KEYS = {"daytona": "sk-canary-{}", "e2b": "e2b_sk-canary-{}"}


def _texts(root) -> list[tuple[str, bytes]]:
    out = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except OSError:
                pass
        out.append((str(path), data))
    return out


@pytest.mark.parametrize("backend", ["daytona", "e2b"])
def test_key_nowhere(mf, tmp_path, monkeypatch, backend):
    if not main_metaflow():
        pytest.skip("remote backends are tested on the main Metaflow version only (CI time)")
    hex_part = secrets.token_hex(8)
    key = KEYS[backend].format(hex_part)
    monkeypatch.setenv(f"{backend.upper()}_EMULATOR_API_KEY", key)
    emu = Emulator(backend, tmp_path / "emu")
    try:
        assert emu.env[f"{backend.upper()}_API_KEY"] == key
        mf.env.update(emu.env)
        mf.env["G_MESSAGES_DEBUG"] = "all"
        mf.env["METAFLOW_SANDBOX_DEBUG"] = "1"
        mf.env["METAFLOW_SANDBOX_PYTHON"] = PYTHON
        flow = mf.copy_flow("secrets_flow.py")
        proc = mf.run(flow, "--with", f"sandbox:backend={backend}", "run")
        assert emu.live() == 0, "sandboxes left behind"
    finally:
        emu.stop()

    output = proc.output
    assert "SECRETS-FLOW-ENV-DUMP" in output and "SECRETS-FLOW-END" in output
    assert "-DEBUG:" in output or "DEBUG" in output
    assert hex_part not in output, "the key is in the run's output"

    files = _texts(mf.base) + _texts(mf.cwd)
    # The step's environment reached the datastore (log and artifact), so
    # the search below covers what the sandbox saw.
    assert any(b"SECRETS-FLOW-ENV-DUMP" in data for _, data in files)
    assert any(b"env_seen" in data or b"PATH" in data for _, data in files)
    leaks = [name for name, data in files if hex_part.encode() in data]
    assert leaks == [], f"the key is in {leaks}"

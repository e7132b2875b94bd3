"""Fixtures: one Daytona emulator process for the whole session.

The emulator program comes from $DAYTONA_EMULATOR (set by the TAP wrapper);
its DAYTONA_API_URL / DAYTONA_API_KEY go into the environment, where the
official SDK reads them.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator

import pytest
from conformance_util import start_emulator
from daytona import Daytona


class Emulator:
    def __init__(self, proc: subprocess.Popen[str], env: dict[str, str]) -> None:
        self.proc = proc
        self.api_url = env["DAYTONA_API_URL"]
        self.api_key = env["DAYTONA_API_KEY"]

    @property
    def base(self) -> str:
        return self.api_url.removesuffix("/api")

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.base}/_emulator/stats", timeout=10) as resp:
            return json.load(resp)


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    program = os.environ.get("DAYTONA_EMULATOR")
    if not program:
        pytest.fail("DAYTONA_EMULATOR is not set: run through test-daytona-conformance.sh")
    proc, env = start_emulator([program, "--state-delay-ms", "50"])
    os.environ["DAYTONA_API_URL"] = env["DAYTONA_API_URL"]
    os.environ["DAYTONA_API_KEY"] = env["DAYTONA_API_KEY"]
    os.environ.pop("DAYTONA_TARGET", None)
    yield Emulator(proc, env)
    proc.terminate()
    proc.wait(30)


@pytest.fixture(scope="session")
def daytona(emulator: Emulator) -> Daytona:
    return Daytona()

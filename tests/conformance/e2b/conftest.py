"""Fixtures for the E2B conformance test: the emulator program, and TAP output.

The emulator (tests/emulators/e2b-emulator) is started once per session; its
URLs and API key go into the environment the official SDK reads
(E2B_API_URL, E2B_SANDBOX_URL, E2B_API_KEY), so the SDK runs unmodified.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conformance_util import environ, start_emulator


def _emulator_program() -> str:
    builddir = os.environ.get("TOP_BUILDDIR")
    if builddir:
        return str(Path(builddir) / "tests" / "emulators" / "e2b-emulator")
    return os.environ["E2B_EMULATOR"]


class Emulator:
    def __init__(self, env: dict[str, str], process: subprocess.Popen[str]) -> None:
        self.env = env
        self.process = process

    @property
    def url(self) -> str:
        return self.env["E2B_API_URL"]

    def live(self) -> int:
        with urllib.request.urlopen(f"{self.url}/_emulator/live", timeout=10) as r:
            return int(json.load(r)["live"])


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    process, env = start_emulator([_emulator_program()])
    try:
        with environ({**env, "E2B_DEBUG": None, "E2B_DOMAIN": None}):
            yield Emulator(env, process)
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- TAP: the wrapper script prints what this collects ---------------------

_results: list[tuple[bool, str, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    name = report.nodeid.split("::")[-1]
    if report.when == "call" or (report.when == "setup" and not report.passed):
        reason = ""
        if report.skipped and isinstance(report.longrepr, tuple):
            reason = f" # SKIP {report.longrepr[2]}"
        _results.append((not report.failed, name, reason))
    elif report.when == "teardown" and report.failed:
        _results.append((False, f"{name} (teardown)", ""))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get("E2B_CONFORMANCE_TAP")
    if not path:
        return
    lines = [f"1..{len(_results)}"]
    for i, (ok, name, reason) in enumerate(_results, 1):
        lines.append(f"{'ok' if ok else 'not ok'} {i} - {name}{reason}")
    if not _results:
        lines = ["1..0 # SKIP no test was collected"]
    Path(path).write_text("\n".join(lines) + "\n")

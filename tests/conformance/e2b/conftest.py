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
    process = subprocess.Popen([_emulator_program()], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    env: dict[str, str] = {}
    for line in process.stdout:
        line = line.strip()
        if line == "READY":
            break
        key, _, value = line.partition("=")
        env[key] = value
    else:
        process.wait()
        pytest.fail("the E2B emulator exited before it was ready")
    saved = {k: os.environ.get(k) for k in (*env, "E2B_DEBUG", "E2B_DOMAIN")}
    os.environ.update(env)
    os.environ.pop("E2B_DEBUG", None)
    os.environ.pop("E2B_DOMAIN", None)
    try:
        yield Emulator(env, process)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
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

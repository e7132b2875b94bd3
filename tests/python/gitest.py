# libsandbox - what the GI tests in Python share
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Helpers for the tests that drive libsandbox through GObject-Introspection.

Imported after the test has called gi.require_version("Sandbox", "1.0"):

- run_async: an _async call and its _finish, on a main loop of its own,
  with a guard that fails the test instead of hanging;
- start_emulator: a provider emulator of tests/emulators, started and read
  up to READY (its URLs and API key);
- set_environ, restore_environ: its variables in the environment, where
  the backends read them, for the time of a test class.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from typing import Any

from gi.repository import Gio, GLib

LOOP_GUARD_S = 60


def run_async(
    start: Callable[[Callable[[Any, Gio.AsyncResult], None]], None],
    finish: Callable[[Gio.AsyncResult], Any],
) -> Any:
    """Call start(callback) and run a main loop until finish(result) is known.

    Returns what finish returned, or raises the GLib.Error it raised; an
    AssertionError when no result came within LOOP_GUARD_S seconds.
    """
    loop = GLib.MainLoop()
    box: dict[str, Any] = {}

    def done(_source: Any, result: Gio.AsyncResult) -> None:
        try:
            box["value"] = finish(result)
        except GLib.Error as error:
            box["error"] = error
        loop.quit()

    def guard() -> bool:
        box["timeout"] = AssertionError(f"no result after {LOOP_GUARD_S} s")
        loop.quit()
        return GLib.SOURCE_REMOVE

    guard_id = GLib.timeout_add_seconds(LOOP_GUARD_S, guard)
    start(done)
    loop.run()
    if "timeout" in box:
        raise box["timeout"]
    GLib.source_remove(guard_id)
    if "error" in box:
        raise box["error"]
    return box["value"]


def start_emulator(program: str, *args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start tests/emulators/PROGRAM of the build tree with ARGS; return it
    with the KEY=VALUE lines it printed before READY."""
    builddir = os.environ.get("TOP_BUILDDIR", os.getcwd())
    path = os.path.join(builddir, "tests", "emulators", program)
    proc = subprocess.Popen([path, *args], stdout=subprocess.PIPE, text=True)
    env: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.strip()
        if line == "READY":
            return proc, env
        key, _, value = line.partition("=")
        env[key] = value
    raise RuntimeError(f"{program} exited before it was ready")


def set_environ(values: dict[str, str]) -> dict[str, str | None]:
    """Set the variables of `values`; return what restore_environ needs."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    return saved


def restore_environ(saved: dict[str, str | None]) -> None:
    """Put back the variables set_environ changed."""
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value

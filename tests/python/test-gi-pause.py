#!/usr/bin/python3
# libsandbox - pause, resume and metrics through GObject-Introspection
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Pause/resume and metrics seen from Python: the local backend's (sync
and async), Sandbox.Metrics built by a Python backend, and the clear
refusal of an instance whose backend implements neither."""

from __future__ import annotations

import os
import sys
import time
import unittest

# taptest.py lives beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gi
import taptest
from gitest import run_async

gi.require_version("Sandbox", "1.0")
from gi.repository import Gio, GLib, Sandbox  # noqa: E402

# Appends the time 20 times a second: paused, it cannot, so the longest gap
# between ticks is at least the pause (no timing of the test itself).
TICKER = (
    "setsid sh -c 'while :; do date +%s.%N >> /tmp/ticks; sleep 0.05; done'"
    " </dev/null >/dev/null 2>&1 &"
)
LONGEST_GAP_MS = (
    "awk 'NR > 1 && $1 - p > m { m = $1 - p } { p = $1 } END { printf \"%d\\n\", m * 1000 }'"
    " /tmp/ticks"
)


class MetricsInstance(Sandbox.Instance):
    """Implements only get_metrics, with a Sandbox.Metrics built from Python."""

    def do_get_metrics(self, cancellable: Gio.Cancellable | None, task: Gio.Task) -> None:
        task.return_value(
            Sandbox.Metrics(
                cpu_percent=12.5,
                cpu_count=4,
                memory_used=1 << 20,
                memory_total=1 << 30,
                disk_used=5 << 20,
                disk_total=10 << 30,
            )
        )


class BareInstance(Sandbox.Instance):
    """Implements none of the optional vfuncs."""


class TestRefusal(unittest.TestCase):
    def assert_not_supported(self, error: GLib.Error, what: str) -> None:
        self.assertEqual(error.domain, "sandbox-error-quark", error.message)
        self.assertEqual(error.code, int(Sandbox.Error.NOT_SUPPORTED), error.message)
        self.assertIn(what, error.message)

    def test_pause_resume_refused(self) -> None:
        instance = MetricsInstance(id="py-1")
        with self.assertRaises(GLib.Error) as ctx:
            instance.pause(None)
        self.assert_not_supported(ctx.exception, "pause")
        with self.assertRaises(GLib.Error) as ctx:
            instance.resume(None)
        self.assert_not_supported(ctx.exception, "resume")
        # A refused pause leaves the state alone.
        self.assertNotEqual(instance.get_state(), Sandbox.InstanceState.STOPPED)

    def test_metrics_refused(self) -> None:
        instance = BareInstance(id="plain")
        with self.assertRaises(GLib.Error) as ctx:
            instance.get_metrics(None)
        self.assert_not_supported(ctx.exception, "metrics")

    def test_metrics_from_python(self) -> None:
        metrics = MetricsInstance(id="py-2").get_metrics(None)
        self.assertIsInstance(metrics, Sandbox.Metrics)
        self.assertEqual(metrics.get_cpu_percent(), 12.5)
        self.assertEqual(metrics.get_cpu_seconds(), -1.0)  # not measured
        self.assertEqual(metrics.get_cpu_count(), 4)
        self.assertEqual(metrics.get_memory_used(), 1 << 20)
        self.assertEqual(metrics.get_memory_total(), 1 << 30)
        self.assertEqual(metrics.get_disk_used(), 5 << 20)
        self.assertEqual(metrics.props.disk_total, 10 << 30)


class TestLocal(unittest.TestCase):
    def setUp(self) -> None:
        self.backend = Sandbox.Backend.new_for_name("local")
        self.instance = self.backend.create(Sandbox.Spec(), None)

    def tearDown(self) -> None:
        self.instance.destroy(None)

    def sh(self, script: str) -> str:
        result = self.instance.exec(Sandbox.Command.new(["sh", "-c", script]), None)
        self.assertTrue(result.get_success())
        return bytes(result.get_stdout().get_data() or b"").decode()

    def ticks(self) -> int:
        return int(self.sh("cat /tmp/ticks 2>/dev/null | wc -l").strip())

    def ticks_after(self, than: int) -> int:
        value = 0
        for _ in range(200):
            value = self.ticks()
            if value > than:
                break
            time.sleep(0.05)
        return value

    def test_capabilities(self) -> None:
        caps = self.backend.get_capabilities()
        self.assertTrue(caps & Sandbox.BackendCapabilities.PAUSE)
        self.assertTrue(caps & Sandbox.BackendCapabilities.METRICS)

    def test_pause_resume_async(self) -> None:
        self.sh("echo kept > /tmp/file; " + TICKER)
        self.assertGreater(self.ticks_after(1), 1)

        self.assertTrue(
            run_async(
                lambda cb: self.instance.pause_async(None, cb),
                lambda res: self.instance.pause_finish(res),
            )
        )
        self.assertEqual(self.instance.get_state(), Sandbox.InstanceState.STOPPED)
        with self.assertRaises(GLib.Error) as ctx:
            self.instance.exec(Sandbox.Command.new(["true"]), None)
        self.assertIn("resume", ctx.exception.message)
        # Another process's view: the backend finds it paused.
        found = Sandbox.Backend.new_for_name("local").get_instance(self.instance.get_id(), None)
        self.assertEqual(found.get_state(), Sandbox.InstanceState.STOPPED)

        time.sleep(2)  # 40 ticks, were the ticker running
        self.assertTrue(
            run_async(
                lambda cb: self.instance.resume_async(None, cb),
                lambda res: self.instance.resume_finish(res),
            )
        )
        self.assertEqual(self.instance.get_state(), Sandbox.InstanceState.RUNNING)
        self.assertEqual(self.sh("cat /tmp/file"), "kept\n")
        after = self.ticks()
        self.assertGreater(self.ticks_after(after), after)
        self.assertGreaterEqual(int(self.sh(LONGEST_GAP_MS)), 1900)

    def test_metrics_async(self) -> None:
        self.sh("head -c 2097152 /dev/zero > /tmp/big")
        metrics = run_async(
            lambda cb: self.instance.get_metrics_async(None, cb),
            lambda res: self.instance.get_metrics_finish(res),
        )
        self.assertGreaterEqual(metrics.get_cpu_seconds(), 0)
        self.assertGreaterEqual(metrics.get_cpu_count(), 1)
        self.assertGreater(metrics.get_memory_used(), 0)
        self.assertGreaterEqual(metrics.get_memory_total(), metrics.get_memory_used())
        # The 2 MiB file is the sandbox's.
        self.assertGreaterEqual(metrics.get_disk_used(), 2 << 20)
        self.assertGreaterEqual(metrics.get_disk_total(), metrics.get_disk_used())


if __name__ == "__main__":
    taptest.main()

#!/usr/bin/python3
# libsandbox - commands on a terminal (SandboxCommand:tty) through
# GObject-Introspection, on the local backend and on the E2B backend against
# the E2B emulator (when it is built)
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A command on a terminal: window size, resize, input and echo, signals."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
import unittest
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gi
import taptest
from gitest import LOOP_GUARD_S, restore_environ, set_environ, start_emulator

gi.require_version("Sandbox", "1.0")
from gi.repository import Gio, GLib, Sandbox  # noqa: E402


class Running:
    """A command started with exec_async, its live output and its result."""

    def __init__(self, instance: Sandbox.Instance, command: Sandbox.Command) -> None:
        self.command = command
        # A pipe, drained by a thread (so that a full pipe never holds up
        # the main loop that writes to it): what arrived so far.
        self.read_fd, write_fd = os.pipe()
        self.seen = b""
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()
        command.set_stdout_stream(Gio.UnixOutputStream.new(write_fd, True))
        self.box: dict[str, Any] = {}
        self.context = GLib.MainContext.default()

        def done(_source: Any, result: Gio.AsyncResult) -> None:
            try:
                self.box["value"] = instance.exec_finish(result)
            except GLib.Error as error:
                self.box["error"] = error

        instance.exec_async(command, None, done)

    def _drain(self) -> None:
        while chunk := os.read(self.read_fd, 65536):
            with self.lock:
                self.seen += chunk
        os.close(self.read_fd)

    def output(self) -> bytes:
        with self.lock:
            return self.seen

    def wait_for(self, what: Callable[[], bool], why: str) -> None:
        guard = {"hit": False}

        def fire() -> bool:
            guard["hit"] = True
            return GLib.SOURCE_REMOVE

        guard_id = GLib.timeout_add_seconds(LOOP_GUARD_S, fire)
        # The reader thread does not wake the main loop: look again now
        # and then (a wake-up, not a time limit).
        tick_id = GLib.timeout_add(50, lambda: GLib.SOURCE_CONTINUE)
        while not what():
            if guard["hit"]:
                GLib.source_remove(tick_id)
                raise AssertionError(f"{why}: not after {LOOP_GUARD_S} s; output {self.output()!r}")
            self.context.iteration(True)
        GLib.source_remove(guard_id)
        GLib.source_remove(tick_id)

    def wait_output(self, needle: bytes) -> None:
        self.wait_for(
            lambda: needle in self.output() or "value" in self.box or "error" in self.box,
            f"waiting for {needle!r}",
        )
        if needle not in self.output():
            raise AssertionError(f"{needle!r} never came; output {self.output()!r}, {self.box}")

    def result(self) -> Sandbox.ExecResult:
        self.wait_for(lambda: "value" in self.box or "error" in self.box, "waiting for the end")
        if "error" in self.box:
            raise self.box["error"]
        return self.box["value"]


def tty_command(script: str, rows: int = 24, cols: int = 80) -> Sandbox.Command:
    command = Sandbox.Command.new(["/bin/sh", "-c", script])
    command.set_tty(True)
    command.resize_tty(rows, cols)
    return command


class TtyTests:
    """Mixed into a unittest.TestCase whose setUp makes self.instance."""

    instance: Sandbox.Instance
    assertEqual: Callable[..., None]
    assertIn: Callable[..., None]
    assertGreaterEqual: Callable[..., None]
    assertTrue: Callable[..., None]
    assertFalse: Callable[..., None]
    assertRegex: Callable[..., None]

    def test_capability(self) -> None:
        caps = self.instance.get_backend().get_capabilities()
        self.assertTrue(caps & Sandbox.BackendCapabilities.TTY)

    def test_window_size_and_terminal(self) -> None:
        command = tty_command(
            "stty size; tty; test -t 0 && test -t 1 && test -t 2 && echo all-tty", 33, 101
        )
        self.assertTrue(command.get_tty())
        self.assertEqual(command.get_tty_size(), (33, 101))
        running = Running(self.instance, command)
        result = running.result()
        out = running.output()
        self.assertEqual(result.get_exit_status(), 0, out)
        self.assertIn(b"33 101\r\n", out)
        self.assertRegex(out, rb"/dev/pts/[0-9]+\r\n")
        self.assertIn(b"all-tty\r\n", out)

    def test_stderr_merged(self) -> None:
        running = Running(self.instance, tty_command("echo to-err >&2; echo to-out"))
        result = running.result()
        self.assertEqual(result.get_exit_status(), 0)
        self.assertIn(b"to-err\r\n", running.output())
        self.assertIn(b"to-out\r\n", running.output())
        self.assertEqual((result.get_stderr() or GLib.Bytes.new(b"")).get_data() or b"", b"")

    def test_resize_while_running(self) -> None:
        running = Running(
            self.instance,
            tty_command("trap 'echo winch' WINCH; echo ready; read line; stty size", 24, 80),
        )
        running.wait_output(b"ready")
        running.command.resize_tty(40, 120)
        self.assertEqual(running.command.get_tty_size(), (40, 120))
        self.assertTrue(running.command.send_input(GLib.Bytes.new(b"go\n")))
        result = running.result()
        self.assertEqual(result.get_exit_status(), 0, running.output())
        self.assertIn(b"40 120\r\n", running.output())

    def test_input_echoed_and_read(self) -> None:
        running = Running(self.instance, tty_command('echo ready; read x; echo "got:$x"'))
        running.wait_output(b"ready")
        self.assertTrue(running.command.send_input(GLib.Bytes.new(b"hello\n")))
        result = running.result()
        out = running.output()
        self.assertEqual(result.get_exit_status(), 0, out)
        # The terminal echoes what is typed, then the command reads it.
        self.assertIn(b"hello\r\n", out)
        self.assertIn(b"got:hello\r\n", out)

    def test_large_input_while_output_flows(self) -> None:
        # More than the terminal's input queue holds, to a command that
        # echoes it back: typing must never block the reading of output.
        lines = b"".join(b"line-%05d-" % i + b"x" * 50 + b"\n" for i in range(3000))
        running = Running(self.instance, tty_command("echo ready; cat"))
        running.wait_output(b"ready")
        self.assertTrue(running.command.send_input(GLib.Bytes.new(lines)))
        self.assertTrue(running.command.send_input(GLib.Bytes.new(b"\x04")))
        result = running.result()
        self.assertEqual(result.get_exit_status(), 0)
        # Written by cat: at least once. (The terminal echoes it too, but the
        # kernel drops echoes it has no room for while the reader lags, as
        # any terminal does; cat's own writes wait for room and are never
        # dropped.)
        self.assertGreaterEqual(running.output().count(b"line-02999-"), 1)

    def test_stdin_bytes_typed_at_start(self) -> None:
        command = tty_command('read x; echo "first:$x"')
        command.set_stdin(GLib.Bytes.new(b"typed\n"))
        running = Running(self.instance, command)
        self.assertEqual(running.result().get_exit_status(), 0)
        self.assertIn(b"first:typed\r\n", running.output())

    def test_sigint_to_foreground(self) -> None:
        running = Running(self.instance, tty_command("echo ready; exec sleep 600"))
        running.wait_output(b"ready")
        self.assertTrue(running.command.send_signal(signal.SIGINT))
        result = running.result()
        self.assertEqual(result.get_term_signal(), signal.SIGINT)
        self.assertFalse(result.get_success())
        # Once it has ended, nothing takes signals or input.
        self.assertFalse(running.command.send_signal(signal.SIGINT))
        self.assertFalse(running.command.send_input(GLib.Bytes.new(b"x")))

    def test_ctrl_c_typed(self) -> None:
        running = Running(self.instance, tty_command("echo ready; exec sleep 600"))
        running.wait_output(b"ready")
        self.assertTrue(running.command.send_input(GLib.Bytes.new(b"\x03")))
        self.assertEqual(running.result().get_term_signal(), signal.SIGINT)

    def test_sigterm(self) -> None:
        running = Running(self.instance, tty_command("echo ready; exec sleep 600"))
        running.wait_output(b"ready")
        self.assertTrue(running.command.send_signal(signal.SIGTERM))
        self.assertEqual(running.result().get_term_signal(), signal.SIGTERM)

    def test_not_running(self) -> None:
        command = tty_command("true")
        self.assertFalse(command.send_signal(signal.SIGTERM))
        self.assertFalse(command.send_input(GLib.Bytes.new(b"x")))


class TestLocalTty(TtyTests, unittest.TestCase):
    def setUp(self) -> None:
        self.root = tempfile.mkdtemp(prefix="sbx-tty-root-")
        os.environ["SANDBOX_LOCAL_ROOT"] = self.root
        self.backend = Sandbox.Backend.new_for_name("local")
        self.instance = self.backend.create(Sandbox.Spec(), None)

    def tearDown(self) -> None:
        try:
            self.instance.destroy(None)
        except GLib.Error:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def test_no_host_terminal(self) -> None:
        # The terminal is the sandbox's own: its devpts has only the
        # sandbox's terminals, so the one the command has is pts 0.
        running = Running(self.instance, tty_command("tty; ls /dev/pts"))
        running.result()
        self.assertIn(b"/dev/pts/0\r\n", running.output())


class EmulatorCase(unittest.TestCase):
    program = ""
    backend_name = ""

    @classmethod
    def setUpClass(cls) -> None:
        cls.root = tempfile.mkdtemp(prefix="sbx-tty-emu-")
        os.environ["SANDBOX_LOCAL_ROOT"] = cls.root
        cls.emulator, cls.env = start_emulator(cls.program)
        cls.saved = set_environ(cls.env)

    @classmethod
    def tearDownClass(cls) -> None:
        restore_environ(cls.saved)
        cls.emulator.terminate()
        cls.emulator.wait(timeout=30)
        shutil.rmtree(cls.root, ignore_errors=True)

    def setUp(self) -> None:
        self.backend = Sandbox.Backend.new_for_name(self.backend_name)
        self.instance = self.backend.create(Sandbox.Spec(), None)

    def tearDown(self) -> None:
        try:
            self.instance.destroy(None)
        except GLib.Error:
            pass


class TestE2bTty(TtyTests, EmulatorCase):
    """envd's PTY (Start with "pty", SendInput "pty", Update), emulated."""

    program = "e2b-emulator"
    backend_name = "e2b"

    def test_other_signals_refused(self) -> None:
        running = Running(self.instance, tty_command("echo ready; read x"))
        running.wait_output(b"ready")
        # envd delivers only SIGKILL and SIGTERM (and the terminal's keys).
        self.assertFalse(running.command.send_signal(signal.SIGUSR1))
        self.assertTrue(running.command.send_input(GLib.Bytes.new(b"x\n")))
        self.assertEqual(running.result().get_exit_status(), 0)


class TestDaytonaTty(TtyTests, EmulatorCase):
    """The toolbox's PTY sessions (POST /process/pty, its WebSocket, resize), emulated."""

    program = "daytona-emulator"
    backend_name = "daytona"

    def test_sigterm(self) -> None:
        # The daemon has no signal call: SIGTERM deletes the session, which
        # kills what runs in it with SIGKILL.
        running = Running(self.instance, tty_command("echo ready; exec sleep 600"))
        running.wait_output(b"ready")
        self.assertTrue(running.command.send_signal(signal.SIGTERM))
        self.assertEqual(running.result().get_term_signal(), signal.SIGKILL)

    def test_other_signals_refused(self) -> None:
        running = Running(self.instance, tty_command("echo ready; read x"))
        running.wait_output(b"ready")
        self.assertFalse(running.command.send_signal(signal.SIGUSR1))
        self.assertTrue(running.command.send_input(GLib.Bytes.new(b"x\n")))
        self.assertEqual(running.result().get_exit_status(), 0)

    def test_no_trace_of_the_typed_line(self) -> None:
        # The line typed into the session's shell, its prompt and echo are
        # not the command's output.
        running = Running(self.instance, tty_command("echo only-this"))
        self.assertEqual(running.result().get_exit_status(), 0)
        self.assertEqual(running.output(), b"only-this\r\n")


if __name__ == "__main__":
    taptest.main()

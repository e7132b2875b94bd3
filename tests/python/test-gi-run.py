#!/usr/bin/python3
# libsandbox - Sandbox.Backend.run: one command in a sandbox made for it (PyGObject)
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Sandbox.Backend.run(_async) through gi.repository.Sandbox: the local
backend's one-shot path (pid 1 gets the command's connection at start) is
taken, isolates as a sandbox made by create does, and leaves nothing behind;
a backend without a run of its own gets create, exec and destroy."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import unittest
from typing import Any

# taptest.py lives beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gi
import taptest
from gitest import run_async

gi.require_version("Sandbox", "1.0")
from gi.repository import Gio, GLib, Sandbox  # noqa: E402

# What a command sees of its own confinement: the same in a sandbox made by
# create and in one made by run (the id and namespaces aside).
PROBE = (
    "grep -E '^(NoNewPrivs|Seccomp|Seccomp_filters|CapEff|CapBnd|CapPrm|Uid|Gid):' "
    "/proc/self/status; "
    "tr '\\0' '\\n' < /proc/1/cmdline | grep -vx -e --once -e '[0-9-]*'; "
    "id -u; cat /proc/self/uid_map; ls /; "
    "touch /etc/probe-run 2>/dev/null && echo etc-writable || echo etc-read-only; "
    "touch /tmp/t && echo tmp-writable; "
    "ls /proc/1/fd 2>&1 | head -1 | cut -c1-40"
)


def output(data: GLib.Bytes | None) -> str:
    return (data.get_data() or b"").decode() if data is not None else ""


def processes_with(marker: str) -> list[int]:
    """Pids of this machine's processes whose command line holds MARKER."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(entry))
        except OSError:
            pass
    return found


class LocalRunTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.root = tempfile.mkdtemp(prefix="sbx-gi-run-")
        os.environ["SANDBOX_LOCAL_ROOT"] = self.root
        self.backend = Sandbox.Backend.new_for_name("local")

    def tearDown(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def left(self) -> list[str]:
        """The sandbox directories left in SANDBOX_LOCAL_ROOT."""
        return [n for n in os.listdir(self.root) if n.startswith("sbx-")]

    def hide_socket(self, command: Sandbox.Command) -> list[str]:
        """As soon as the sandbox's socket exists (well before its pid 1 is
        up), move it away: a client that connects to pid 1 fails from then on;
        the one-shot command, sent on its own connection at start, runs."""
        moved: list[str] = []

        def poll() -> bool:
            sandbox_id = command.get_sandbox_id()
            if sandbox_id is None:
                return GLib.SOURCE_CONTINUE
            sock = os.path.join(self.root, sandbox_id, "sock")
            try:
                os.rename(sock, sock + ".moved")
            except FileNotFoundError:
                return GLib.SOURCE_CONTINUE
            moved.append(sock)
            return GLib.SOURCE_REMOVE

        GLib.timeout_add(1, poll)
        return moved


class TestLocalRun(LocalRunTestCase):
    def test_result_id_env_and_nothing_left(self) -> None:
        command = Sandbox.Command.new(
            ["sh", "-c", 'echo "$SBX_ID $(hostname)"; echo e >&2; exit 3']
        )
        command.set_id_env("SBX_ID")
        self.assertEqual(command.get_id_env(), "SBX_ID")
        self.assertIsNone(command.get_sandbox_id())
        result = self.backend.run(Sandbox.Spec(), command, None)
        sandbox_id = command.get_sandbox_id()
        self.assertTrue(sandbox_id.startswith("sbx-"))
        self.assertEqual(result.get_exit_status(), 3)
        self.assertEqual(output(result.get_stdout()), f"{sandbox_id} {sandbox_id}\n")
        self.assertEqual(output(result.get_stderr()), "e\n")
        self.assertEqual(self.left(), [])
        with self.assertRaises(GLib.Error):
            self.backend.get_instance(sandbox_id, None)

    def test_one_shot_needs_no_connection(self) -> None:
        command = Sandbox.Command.new(["echo", "ran"])
        moved = self.hide_socket(command)
        result = run_async(
            lambda done: self.backend.run_async(Sandbox.Spec(), command, None, done),
            lambda res: self.backend.run_finish(res),
        )
        self.assertEqual(len(moved), 1)
        self.assertTrue(result.get_success())
        self.assertEqual(output(result.get_stdout()), "ran\n")
        self.assertEqual(self.left(), [])

    def test_hidden_socket_stops_a_normal_exec(self) -> None:
        # The premise of the test above: an exec that connects fails.
        instance = self.backend.create(Sandbox.Spec(), None)
        try:
            sock = os.path.join(self.root, instance.get_id(), "sock")
            os.rename(sock, sock + ".moved")
            with self.assertRaises(GLib.Error) as ctx:
                instance.exec(Sandbox.Command.new(["true"]), None)
            self.assertEqual(
                ctx.exception.code, int(Sandbox.Error.UNAVAILABLE), ctx.exception.message
            )
        finally:
            instance.destroy(None)

    def test_isolates_as_a_created_sandbox(self) -> None:
        spec = Sandbox.Spec()
        instance = self.backend.create(spec, None)
        try:
            created = instance.exec(Sandbox.Command.new(["sh", "-c", PROBE]), None)
        finally:
            instance.destroy(None)
        ran = self.backend.run(spec, Sandbox.Command.new(["sh", "-c", PROBE]), None)
        self.assertTrue(created.get_success(), output(created.get_stderr()))
        self.assertTrue(ran.get_success(), output(ran.get_stderr()))
        probe = output(ran.get_stdout())
        for line in (
            "NoNewPrivs:\t1",
            "Seccomp:\t2",
            "CapEff:\t0000000000000000",
            "etc-read-only",
            "tmp-writable",
        ):
            self.assertIn(line, probe)
        # pid 1 is the server (--user: it makes the sandbox user's
        # namespace itself, where bwrap leaves it the capabilities for it).
        self.assertRegex(probe, r"/run/libsandbox/sandbox-exec-helper\n(--user\n)?--server\n")
        self.assertNotIn("etc-writable", probe)
        self.assertEqual(probe, output(created.get_stdout()))
        # The same pid 1, started for one command.
        once = self.backend.run(
            spec, Sandbox.Command.new(["grep", "-c", "--", "--once", "/proc/1/cmdline"]), None
        )
        self.assertEqual(output(once.get_stdout()), "1\n")

    def test_mounts_env_workdir(self) -> None:
        host = tempfile.mkdtemp(prefix="sbx-gi-run-mount-")
        try:
            with open(os.path.join(host, "in"), "w") as f:
                f.write("from host\n")
            spec = Sandbox.Spec()
            spec.set_workdir("/work")
            spec.add_mount(host, "/data", True)
            spec.set_env("SPEC_VAR", "spec")
            command = Sandbox.Command.new(
                [
                    "sh",
                    "-c",
                    'pwd; cat /data/in; echo "$SPEC_VAR $CMD_VAR"; touch /data/x || echo ro',
                ]
            )
            command.set_env("CMD_VAR", "cmd")
            result = self.backend.run(spec, command, None)
            self.assertEqual(output(result.get_stdout()), "/work\nfrom host\nspec cmd\nro\n")
        finally:
            shutil.rmtree(host, ignore_errors=True)

    def test_mount_no_links(self) -> None:
        host = tempfile.mkdtemp(prefix="sbx-gi-run-nolinks-")
        try:
            spec = Sandbox.Spec()
            spec.add_mount_full(host, "/data", Sandbox.MountFlags.NO_LINKS)
            (mount,) = spec.get_mounts()
            self.assertEqual(mount.get_flags(), Sandbox.MountFlags.NO_LINKS)
            self.assertFalse(mount.get_read_only())
            caps = self.backend.get_capabilities()
            self.assertTrue(caps & Sandbox.BackendCapabilities.MOUNT_NO_LINKS)
            command = Sandbox.Command.new(
                [
                    "sh",
                    "-c",
                    "echo x > /data/f && echo file; ln -s /etc /data/l || echo no-link; "
                    "ln -s /etc /tmp/l && echo tmp-link",
                ]
            )
            result = self.backend.run(spec, command, None)
            self.assertEqual(output(result.get_stdout()), "file\nno-link\ntmp-link\n")
            self.assertEqual(sorted(os.listdir(host)), ["f"])
        finally:
            shutil.rmtree(host, ignore_errors=True)

    def test_signal_timeout_and_leftovers(self) -> None:
        marker = f"{os.getpid()}-leftover"
        command = Sandbox.Command.new(
            ["sh", "-c", f"setsid sh -c 'sleep 600; echo {marker}' >/dev/null 2>&1 & kill -TERM $$"]
        )
        result = self.backend.run(Sandbox.Spec(), command, None)
        self.assertEqual(result.get_term_signal(), 15)
        self.assertEqual(processes_with(marker), [])
        self.assertEqual(self.left(), [])

        command = Sandbox.Command.new(["sleep", "600"])
        command.set_timeout_ms(300)
        result = self.backend.run(Sandbox.Spec(), command, None)
        self.assertTrue(result.get_timed_out())
        self.assertEqual(self.left(), [])

    def test_cancel_kills_and_removes(self) -> None:
        marker = f"{os.getpid()}-cancelled"
        command = Sandbox.Command.new(["sh", "-c", f"sleep 600; echo {marker}"])
        cancellable = Gio.Cancellable()
        command.connect("notify::sandbox-id", lambda *_: GLib.timeout_add(300, cancellable.cancel))
        with self.assertRaises(GLib.Error) as ctx:
            run_async(
                lambda done: self.backend.run_async(Sandbox.Spec(), command, cancellable, done),
                lambda res: self.backend.run_finish(res),
            )
        self.assertTrue(ctx.exception.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED))
        self.assertIsNotNone(command.get_sandbox_id())
        self.assertEqual(processes_with(marker), [])
        self.assertEqual(self.left(), [])

    def test_command_cannot_start(self) -> None:
        with self.assertRaises(GLib.Error) as ctx:
            self.backend.run(Sandbox.Spec(), Sandbox.Command.new(["/no/such/program"]), None)
        self.assertEqual(ctx.exception.code, int(Sandbox.Error.EXEC), ctx.exception.message)
        self.assertEqual(self.left(), [])


def children(pid: int) -> int:
    """How many processes (zombies too) have PID as their parent."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    count += 1
        except (OSError, IndexError, ValueError):
            pass
    return count


class TestForkedChild(LocalRunTestCase):
    def test_forked_child_reaps_its_bwraps(self) -> None:
        """A process forked (without exec) after the library reaped its first
        bwrap has no reaper thread of its parent's: it starts its own, and
        leaves no zombie (multiprocessing's fork, say)."""
        result = self.backend.run(Sandbox.Spec(), Sandbox.Command.new(["true"]), None)
        self.assertEqual(result.get_exit_status(), 0)
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                backend = Sandbox.Backend.new_for_name("local")
                for _ in range(3):
                    command = Sandbox.Command.new(["sh", "-c", "exit 3"])
                    if backend.run(Sandbox.Spec(), command, None).get_exit_status() != 3:
                        os._exit(2)
                for _ in range(200):
                    if children(os.getpid()) == 0:
                        status = 0
                        break
                    GLib.usleep(20000)
            finally:
                os._exit(status)
        _, wait_status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(wait_status), 0)
        self.assertEqual(self.left(), [])


class CountingInstance(Sandbox.Instance):
    calls: list[str] = []

    def do_exec(self, command: Sandbox.Command, cancellable: Any, task: Gio.Task) -> None:
        CountingInstance.calls.append("exec " + " ".join(command.get_argv()))
        env = command.get_env()
        out = f"{env.get(command.get_id_env() or '', '')}\n".encode()
        task.return_value(Sandbox.ExecResult(exit_status=4, stdout=GLib.Bytes.new(out)))

    def do_destroy(self, cancellable: Any, task: Gio.Task) -> None:
        CountingInstance.calls.append("destroy")
        self.set_state(Sandbox.InstanceState.DESTROYED)
        task.return_boolean(True)


class NoRunBackend(Sandbox.Backend):
    """A backend with create only: run falls back to create, exec, destroy."""

    def do_create(self, spec: Sandbox.Spec, cancellable: Any, task: Gio.Task) -> None:
        CountingInstance.calls.append("create")
        task.return_value(CountingInstance(id="py-run-1", backend=self))


Sandbox.Backend.register("py-run-fallback", NoRunBackend.__gtype__, 0)


class TestFallback(unittest.TestCase):
    def test_create_exec_destroy(self) -> None:
        CountingInstance.calls = []
        backend = Sandbox.Backend.new_for_name("py-run-fallback")
        command = Sandbox.Command.new(["hello"])
        command.set_id_env("THE_ID")
        result = backend.run(Sandbox.Spec(), command, None)
        self.assertEqual(result.get_exit_status(), 4)
        self.assertEqual(output(result.get_stdout()), "py-run-1\n")
        self.assertEqual(command.get_sandbox_id(), "py-run-1")
        self.assertEqual(CountingInstance.calls, ["create", "exec hello", "destroy"])


if __name__ == "__main__":
    taptest.main()

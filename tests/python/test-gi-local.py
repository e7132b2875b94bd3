#!/usr/bin/python3
# libsandbox - the local backend through GObject-Introspection (PyGObject)
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Drive the local (bubblewrap) backend only through gi.repository.Sandbox."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

# taptest.py lives beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gi
import taptest
from gitest import run_async

gi.require_version("Sandbox", "1.0")
from gi.repository import Gio, GLib, Sandbox  # noqa: E402


def closed_bytes(stream: Gio.MemoryOutputStream) -> bytes:
    """The bytes written to a memory stream (closing it)."""
    stream.close(None)
    return stream.steal_as_bytes().get_data() or b""


def captured(data: GLib.Bytes | None) -> bytes:
    return data.get_data() or b"" if data is not None else b""


class LocalTestCase(unittest.TestCase):
    """Each test gets its own SANDBOX_LOCAL_ROOT and scratch directory."""

    def setUp(self) -> None:
        self.root = tempfile.mkdtemp(prefix="sbx-gi-root-")
        self.scratch = tempfile.mkdtemp(prefix="sbx-gi-files-")
        os.environ["SANDBOX_LOCAL_ROOT"] = self.root
        # Set before the backend exists: it must never reach the sandbox.
        os.environ["LIBSANDBOX_SECRET"] = "x"
        self.backend = Sandbox.Backend.new_for_name("local")
        self.instances: list[Sandbox.Instance] = []

    def tearDown(self) -> None:
        for instance in self.instances:
            try:
                instance.destroy(None)
            except GLib.Error:
                pass
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.scratch, ignore_errors=True)

    def create(
        self, labels: dict[str, str] | None = None, env: dict[str, str] | None = None
    ) -> Sandbox.Instance:
        spec = Sandbox.Spec()
        for key, value in (labels or {}).items():
            spec.set_label(key, value)
        for key, value in (env or {}).items():
            spec.set_env(key, value)
        instance = self.backend.create(spec, None)
        self.instances.append(instance)
        return instance

    def assert_error(self, error: GLib.Error, code: Sandbox.Error) -> None:
        self.assertEqual(error.domain, "sandbox-error-quark", error.message)
        self.assertEqual(error.code, int(code), error.message)


class TestRegistry(LocalTestCase):
    def test_list_names_has_local(self) -> None:
        self.assertIn("local", Sandbox.Backend.list_names())
        self.assertEqual(self.backend.get_name(), "local")

    def test_unknown_backend(self) -> None:
        with self.assertRaises(GLib.Error) as ctx:
            Sandbox.Backend.new_for_name("nope")
        self.assert_error(ctx.exception, Sandbox.Error.UNKNOWN_BACKEND)
        self.assertTrue(ctx.exception.matches(Sandbox.error_quark(), Sandbox.Error.UNKNOWN_BACKEND))
        self.assertIn("nope", ctx.exception.message)
        self.assertIn("local", ctx.exception.message)

    def test_abstract_types(self) -> None:
        with self.assertRaises((TypeError, NotImplementedError)):
            Sandbox.Backend()
        with self.assertRaises((TypeError, NotImplementedError)):
            Sandbox.Instance()


class TestExec(LocalTestCase):
    def test_exec_async_live_stdout_captured_stderr(self) -> None:
        instance = self.create(labels={"suite": "gi-local"}, env={"SPEC_VAR": "spec-value"})
        self.assertTrue(instance.get_id().startswith("sbx-"))
        self.assertEqual(instance.get_labels().get("suite"), "gi-local")

        out = Gio.MemoryOutputStream.new_resizable()
        command = Sandbox.Command.new(["sh", "-c", "echo out; echo err >&2; exit 3"])
        command.set_stdout_stream(out)
        result = run_async(lambda cb: instance.exec_async(command, None, cb), instance.exec_finish)

        self.assertIsInstance(result, Sandbox.ExecResult)
        self.assertEqual(result.get_exit_status(), 3)
        self.assertEqual(result.get_exit_code(), 3)
        self.assertFalse(result.get_success())
        self.assertFalse(result.get_timed_out())
        self.assertEqual(closed_bytes(out), b"out\n")
        # Streamed output is not also captured; stderr had no stream.
        self.assertIsNone(result.get_stdout())
        self.assertEqual(captured(result.get_stderr()), b"err\n")

    def test_env_spec_visible_host_hidden(self) -> None:
        instance = self.create(env={"SPEC_VAR": "spec-value"})
        command = Sandbox.Command.new_shell('echo "${SPEC_VAR-unset}:${LIBSANDBOX_SECRET-unset}"')
        result = instance.exec(command, None)
        self.assertEqual(result.get_exit_status(), 0, captured(result.get_stderr()))
        self.assertEqual(captured(result.get_stdout()), b"spec-value:unset\n")

    def test_command_timeout(self) -> None:
        instance = self.create()
        command = Sandbox.Command.new(["sleep", "30"])
        command.set_timeout_ms(300)
        result = instance.exec(command, None)
        self.assertTrue(result.get_timed_out())
        self.assertFalse(result.get_success())

    def test_cancel_exec_async(self) -> None:
        instance = self.create()
        cancellable = Gio.Cancellable()
        command = Sandbox.Command.new(["sleep", "30"])

        def cancel() -> bool:
            cancellable.cancel()
            return GLib.SOURCE_REMOVE

        GLib.timeout_add(200, cancel)
        with self.assertRaises(GLib.Error) as ctx:
            run_async(
                lambda cb: instance.exec_async(command, cancellable, cb),
                instance.exec_finish,
            )
        self.assertTrue(
            ctx.exception.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED),
            ctx.exception.message,
        )


class TestFiles(LocalTestCase):
    def test_upload_download_file_and_directory(self) -> None:
        instance = self.create()
        blob = bytes(range(256)) * 64 + b"tail\n"
        src_file = os.path.join(self.scratch, "blob.bin")
        with open(src_file, "wb") as f:
            f.write(blob)
        src_dir = os.path.join(self.scratch, "tree")
        os.makedirs(os.path.join(src_dir, "sub"))
        with open(os.path.join(src_dir, "a.txt"), "wb") as f:
            f.write(b"alpha\n")
        with open(os.path.join(src_dir, "sub", "b.txt"), "wb") as f:
            f.write(b"beta\n")

        self.assertTrue(
            instance.upload(Gio.File.new_for_path(src_file), "/workspace/in/blob.bin", None)
        )
        self.assertTrue(instance.upload(Gio.File.new_for_path(src_dir), "/workspace/tree", None))

        result = instance.exec(Sandbox.Command.new(["cat", "/workspace/in/blob.bin"]), None)
        self.assertEqual(result.get_exit_status(), 0, captured(result.get_stderr()))
        self.assertEqual(captured(result.get_stdout()), blob)
        result = instance.exec(
            Sandbox.Command.new(["cat", "/workspace/tree/a.txt", "/workspace/tree/sub/b.txt"]),
            None,
        )
        self.assertEqual(result.get_exit_status(), 0, captured(result.get_stderr()))
        self.assertEqual(captured(result.get_stdout()), b"alpha\nbeta\n")

        back_file = os.path.join(self.scratch, "blob.back")
        back_dir = os.path.join(self.scratch, "tree.back")
        self.assertTrue(
            instance.download("/workspace/in/blob.bin", Gio.File.new_for_path(back_file), None)
        )
        self.assertTrue(instance.download("/workspace/tree", Gio.File.new_for_path(back_dir), None))
        with open(back_file, "rb") as f:
            self.assertEqual(f.read(), blob)
        with open(os.path.join(back_dir, "a.txt"), "rb") as f:
            self.assertEqual(f.read(), b"alpha\n")
        with open(os.path.join(back_dir, "sub", "b.txt"), "rb") as f:
            self.assertEqual(f.read(), b"beta\n")

    def test_download_missing(self) -> None:
        instance = self.create()
        dest = Gio.File.new_for_path(os.path.join(self.scratch, "never"))
        with self.assertRaises(GLib.Error) as ctx:
            instance.download("/workspace/does-not-exist", dest, None)
        self.assert_error(ctx.exception, Sandbox.Error.NOT_FOUND)
        self.assertFalse(os.path.exists(dest.get_path()))


class TestLifecycle(LocalTestCase):
    def test_find_list_destroy(self) -> None:
        run = os.path.basename(self.root)
        instance = self.create(labels={"suite": "gi-local", "run": run})
        sandbox_id = instance.get_id()

        # A second backend object (as another process would) finds it.
        other = Sandbox.Backend.new_for_name("local")
        found = other.get_instance(sandbox_id, None)
        self.assertEqual(found.get_id(), sandbox_id)
        self.assertEqual(found.get_labels().get("run"), run)
        result = found.exec(Sandbox.Command.new(["true"]), None)
        self.assertTrue(result.get_success())

        ids = [i.get_id() for i in other.list({"suite": "gi-local", "run": run}, None)]
        self.assertIn(sandbox_id, ids)
        ids = [i.get_id() for i in other.list({"suite": "something-else"}, None)]
        self.assertNotIn(sandbox_id, ids)
        ids = [i.get_id() for i in other.list(None, None)]
        self.assertIn(sandbox_id, ids)

        self.assertTrue(found.destroy(None))
        with self.assertRaises(GLib.Error) as ctx:
            other.get_instance(sandbox_id, None)
        self.assert_error(ctx.exception, Sandbox.Error.NOT_FOUND)
        self.assertNotIn(sandbox_id, [i.get_id() for i in other.list(None, None)])
        # Destroying what is already gone succeeds, through either object.
        self.assertTrue(found.destroy(None))
        self.assertTrue(instance.destroy(None))

    def test_die_with_owner(self) -> None:
        """A die-with-owner sandbox ends when its creator is SIGKILLed; one
        without the property outlives its creator (control)."""
        child_code = (
            "import gi, sys, time\n"
            "gi.require_version('Sandbox', '1.0')\n"
            "from gi.repository import Sandbox\n"
            "spec = Sandbox.Spec()\n"
            "spec.set_die_with_owner(sys.argv[1] == '1')\n"
            "spec.props.die_with_owner == (sys.argv[1] == '1') or sys.exit(3)\n"
            "i = Sandbox.Backend.new_for_name('local').create(spec, None)\n"
            "print(i.get_id(), flush=True)\n"
            "time.sleep(600)\n"
        )
        backend = Sandbox.Backend.new_for_name("local")
        for owned in (True, False):
            child = subprocess.Popen(
                [sys.executable, "-c", child_code, "1" if owned else "0"],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert child.stdout is not None
            sandbox_id = child.stdout.readline().strip()
            self.assertTrue(sandbox_id.startswith("sbx-"), sandbox_id)
            child.send_signal(signal.SIGKILL)
            child.wait()
            # Allow for a loaded machine; the server reacts to the lease's
            # end-of-file at once.
            deadline = time.monotonic() + 20
            gone = False
            while time.monotonic() < deadline and not gone:
                try:
                    found = backend.get_instance(sandbox_id, None)
                    gone = found.get_state() != Sandbox.InstanceState.RUNNING
                except GLib.Error as error:
                    self.assert_error(error, Sandbox.Error.NOT_FOUND)
                    gone = True
                if not gone and not owned:
                    break
                time.sleep(0.05)
            if owned:
                self.assertTrue(gone, f"{sandbox_id} outlived its owner")
                with self.assertRaises(GLib.Error) as ctx:
                    backend.get_instance(sandbox_id, None)
                self.assert_error(ctx.exception, Sandbox.Error.NOT_FOUND)
            else:
                found = backend.get_instance(sandbox_id, None)
                result = found.exec(Sandbox.Command.new(["true"]), None)
                self.assertTrue(result.get_success())
                self.assertTrue(found.destroy(None))


if __name__ == "__main__":
    taptest.main()

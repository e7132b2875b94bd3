#!/usr/bin/python3
# libsandbox - a backend written in Python, used through the C API
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Subclass Sandbox.Backend and Sandbox.Instance in Python, register the
backend by name and drive it through the C wrappers (new_for_name, create,
exec, list, destroy), which must dispatch into the Python vfuncs."""

from __future__ import annotations

import http.server
import os
import shutil
import sys
import tempfile
import threading
import unittest
import urllib.error
import urllib.request
from typing import Any, ClassVar

# taptest.py lives beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gi
import taptest
from gitest import run_async

gi.require_version("Sandbox", "1.0")
from gi.repository import Gio, GLib, GObject, Sandbox  # noqa: E402


class PyInstance(Sandbox.Instance):
    """A sandbox that echoes its commands and keeps uploaded files in memory."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.files: dict[str, bytes] = {}
        self.calls: list[str] = []

    def do_exec(
        self,
        command: Sandbox.Command,
        cancellable: Gio.Cancellable | None,
        task: Gio.Task,
    ) -> None:
        self.calls.append("exec")
        argv = command.get_argv()
        if argv[:1] == ["cat"]:
            data = b"".join(self.files.get(path, b"") for path in argv[1:])
        else:
            data = f"echo: {' '.join(argv)}\n".encode()
        status = 7 if argv[:1] == ["fail"] else 0
        stream = command.get_stdout_stream()
        if stream is not None:
            # Live output: write it to the caller's stream, capture nothing.
            stream.write_all(data, cancellable)
            task.return_value(Sandbox.ExecResult(exit_status=status))
        else:
            task.return_value(Sandbox.ExecResult(exit_status=status, stdout=GLib.Bytes.new(data)))

    def do_upload(
        self,
        source: Gio.File,
        destination: str,
        cancellable: Gio.Cancellable | None,
        task: Gio.Task,
    ) -> None:
        self.calls.append("upload")
        _ok, contents, _etag = source.load_contents(cancellable)
        self.files[destination] = bytes(contents)
        task.return_boolean(True)

    def do_download(
        self,
        source: str,
        destination: Gio.File,
        cancellable: Gio.Cancellable | None,
        task: Gio.Task,
    ) -> None:
        self.calls.append("download")
        if source not in self.files:
            task.return_error(
                GLib.Error.new_literal(
                    Sandbox.error_quark(), f"no {source}", Sandbox.Error.NOT_FOUND
                )
            )
            return
        destination.replace_contents(
            self.files[source], None, False, Gio.FileCreateFlags.NONE, cancellable
        )
        task.return_boolean(True)

    def do_destroy(self, cancellable: Gio.Cancellable | None, task: Gio.Task) -> None:
        self.calls.append("destroy")
        PyBackend.instances.pop(self.get_id(), None)
        self.set_state(Sandbox.InstanceState.DESTROYED)
        task.return_boolean(True)


def label_dict(labels: Any) -> dict[str, str]:
    """The labels a vfunc received, as Python strings."""
    return dict(labels or {})


class PyBackend(Sandbox.Backend):
    """A backend whose sandboxes live in a class-wide table, like a remote service."""

    instances: ClassVar[dict[str, PyInstance]] = {}
    counter: ClassVar[int] = 0
    # What the last do_list call received, for the tests to look at.
    last_list_labels: ClassVar[Any] = None

    def do_create(
        self, spec: Sandbox.Spec, cancellable: Gio.Cancellable | None, task: Gio.Task
    ) -> None:
        PyBackend.counter += 1
        instance = PyInstance(id=f"py-{PyBackend.counter}", backend=self)
        instance.set_labels(spec.get_labels())
        instance.set_state(Sandbox.InstanceState.RUNNING)
        PyBackend.instances[instance.get_id()] = instance
        task.return_value(instance)

    def do_get_instance(
        self, sandbox_id: str, cancellable: Gio.Cancellable | None, task: Gio.Task
    ) -> None:
        instance = PyBackend.instances.get(sandbox_id)
        if instance is None:
            task.return_error(
                GLib.Error.new_literal(
                    Sandbox.error_quark(),
                    f"No sandbox {sandbox_id}",
                    Sandbox.Error.NOT_FOUND,
                )
            )
        else:
            task.return_value(instance)

    def do_list(self, labels: Any, cancellable: Gio.Cancellable | None, task: Gio.Task) -> None:
        PyBackend.last_list_labels = labels
        wanted = label_dict(labels)
        store = Gio.ListStore(item_type=Sandbox.Instance)
        for instance in PyBackend.instances.values():
            have = instance.get_labels()
            if all(have.get(key) == value for key, value in wanted.items()):
                store.append(instance)
        task.return_value(store)


class NotConfiguredBackend(PyBackend):
    """A backend whose configuration check fails, as with a missing API key."""

    def do_check_configured(self) -> bool:
        raise GLib.Error.new_literal(
            Sandbox.error_quark(), "Set PYECHO_API_KEY", Sandbox.Error.NOT_CONFIGURED
        )


Sandbox.Backend.register("pyecho", PyBackend.__gtype__, 0)
Sandbox.Backend.register("pyecho-unconfigured", NotConfiguredBackend.__gtype__, 0)


class CapableBackend(PyBackend):
    """A backend that declares what its sandboxes can do."""

    def do_get_capabilities(self) -> Sandbox.BackendCapabilities:
        return Sandbox.BackendCapabilities.MOUNTS | Sandbox.BackendCapabilities.NETWORK_POLICY

    def do_dup_default_workdir(self) -> str:
        return "/srv/py"


Sandbox.Backend.register("pyecho-capable", CapableBackend.__gtype__, 0)


class ProviderHandler(http.server.BaseHTTPRequestHandler):
    """A provider's API on the loopback: GET /sandboxes/ID answers the status
    the ID names ("429", "404", ...), with a JSON body saying why; "none" is
    a 503 with no body."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        name = self.path.rsplit("/", 1)[-1]
        status = 503 if name == "none" else int(name)
        body = b"" if name == "none" else b'{"message": "said by the provider \x1b[2J"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class HttpBackend(PyBackend):
    """A remote backend that asks a provider's REST API over HTTP, and reports
    its failed answers as the built-in remote backends do, with
    Sandbox.Error.new_for_http_status: the same codes and the same advice."""

    url: ClassVar[str] = ""

    def do_get_instance(
        self, sandbox_id: str, cancellable: Gio.Cancellable | None, task: Gio.Task
    ) -> None:
        endpoint = f"sandboxes/{sandbox_id}"
        try:
            with urllib.request.urlopen(f"{HttpBackend.url}/{endpoint}", timeout=30):
                pass
        except urllib.error.HTTPError as e:
            try:
                error = Sandbox.Error.new_for_http_status(
                    "PyHttp",
                    "GET",
                    endpoint,
                    e.code,
                    e.reason,
                    GLib.Bytes.new(e.read()),
                    "Check PYHTTP_API_KEY.",
                )
            except Exception as bug:  # a task must be completed, whatever happens
                error = GLib.Error.new_literal(
                    Sandbox.error_quark(), str(bug), Sandbox.Error.FAILED
                )
            task.return_error(error)
            return
        task.return_value(PyInstance(id=sandbox_id, backend=self))


Sandbox.Backend.register("pyhttp", HttpBackend.__gtype__, 0)


class SubclassTestCase(unittest.TestCase):
    def setUp(self) -> None:
        PyBackend.instances.clear()
        PyBackend.last_list_labels = None
        self.scratch = tempfile.mkdtemp(prefix="sbx-gi-sub-")
        self.backend = Sandbox.Backend.new_for_name("pyecho")

    def tearDown(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def create(self, **labels: str) -> Sandbox.Instance:
        spec = Sandbox.Spec()
        for key, value in labels.items():
            spec.set_label(key, value)
        return self.backend.create(spec, None)


class TestRegistry(SubclassTestCase):
    def test_registered_by_name(self) -> None:
        names = Sandbox.Backend.list_names()
        self.assertIn("pyecho", names)
        self.assertIn("local", names)
        self.assertIsInstance(self.backend, PyBackend)
        self.assertEqual(self.backend.get_name(), "pyecho")
        self.assertTrue(self.backend.check_configured())

    def test_python_types_are_gtypes(self) -> None:
        self.assertTrue(GObject.type_is_a(PyBackend.__gtype__, Sandbox.Backend.__gtype__))
        self.assertTrue(GObject.type_is_a(PyInstance.__gtype__, Sandbox.Instance.__gtype__))


class TestDispatch(SubclassTestCase):
    def test_create_sync(self) -> None:
        instance = self.create(team="a")
        # The object that comes back through the C finish is the Python one.
        self.assertIsInstance(instance, PyInstance)
        self.assertIs(PyBackend.instances[instance.get_id()], instance)
        self.assertTrue(instance.get_id().startswith("py-"))
        self.assertIs(instance.get_backend(), self.backend)
        self.assertEqual(instance.get_labels(), {"team": "a"})
        self.assertEqual(instance.get_state(), Sandbox.InstanceState.RUNNING)

    def test_create_async(self) -> None:
        spec = Sandbox.Spec()
        spec.set_label("mode", "async")
        instance = run_async(
            lambda cb: self.backend.create_async(spec, None, cb),
            self.backend.create_finish,
        )
        self.assertIsInstance(instance, PyInstance)
        self.assertEqual(instance.get_labels(), {"mode": "async"})

    def test_exec_sync_captured(self) -> None:
        instance = self.create()
        result = instance.exec(Sandbox.Command.new(["fail", "now"]), None)
        self.assertIsInstance(result, Sandbox.ExecResult)
        self.assertEqual(result.get_exit_status(), 7)
        self.assertFalse(result.get_success())
        self.assertEqual(result.get_stdout().get_data(), b"echo: fail now\n")
        self.assertEqual(instance.calls, ["exec"])

    def test_exec_async_live(self) -> None:
        instance = self.create()
        out = Gio.MemoryOutputStream.new_resizable()
        command = Sandbox.Command.new(["hello", "world"])
        command.set_stdout_stream(out)
        result = run_async(lambda cb: instance.exec_async(command, None, cb), instance.exec_finish)
        self.assertEqual(result.get_exit_status(), 0)
        self.assertTrue(result.get_success())
        self.assertIsNone(result.get_stdout())
        out.close(None)
        self.assertEqual(out.steal_as_bytes().get_data(), b"echo: hello world\n")

    def test_upload_download(self) -> None:
        instance = self.create()
        src = os.path.join(self.scratch, "in.txt")
        with open(src, "wb") as f:
            f.write(b"payload\x00\xff\n")
        self.assertTrue(instance.upload(Gio.File.new_for_path(src), "/data/in.txt", None))
        result = instance.exec(Sandbox.Command.new(["cat", "/data/in.txt"]), None)
        self.assertEqual(result.get_stdout().get_data(), b"payload\x00\xff\n")
        dest = os.path.join(self.scratch, "out.txt")
        self.assertTrue(instance.download("/data/in.txt", Gio.File.new_for_path(dest), None))
        with open(dest, "rb") as f:
            self.assertEqual(f.read(), b"payload\x00\xff\n")
        with self.assertRaises(GLib.Error) as ctx:
            instance.download("/data/missing", Gio.File.new_for_path(dest + ".2"), None)
        self.assertTrue(ctx.exception.matches(Sandbox.error_quark(), Sandbox.Error.NOT_FOUND))
        self.assertEqual(instance.calls, ["upload", "exec", "download", "download"])

    def test_get_instance_list_destroy(self) -> None:
        first = self.create(team="a")
        second = self.create(team="b")
        other = Sandbox.Backend.new_for_name("pyecho")
        self.assertIs(other.get_instance(first.get_id(), None), first)

        everything = other.list(None, None)
        self.assertEqual(
            sorted(i.get_id() for i in everything),
            sorted([first.get_id(), second.get_id()]),
        )
        self.assertTrue(all(isinstance(i, PyInstance) for i in everything))

        self.assertTrue(first.destroy(None))
        self.assertEqual(first.calls, ["destroy"])
        self.assertEqual(first.get_state(), Sandbox.InstanceState.DESTROYED)
        with self.assertRaises(GLib.Error) as ctx:
            other.get_instance(first.get_id(), None)
        self.assertTrue(ctx.exception.matches(Sandbox.error_quark(), Sandbox.Error.NOT_FOUND))
        self.assertEqual([i.get_id() for i in other.list(None, None)], [second.get_id()])
        # Destroying again still succeeds.
        self.assertTrue(first.destroy(None))

    def test_destroy_async(self) -> None:
        instance = self.create()
        ok = run_async(lambda cb: instance.destroy_async(None, cb), instance.destroy_finish)
        self.assertTrue(ok)
        self.assertNotIn(instance.get_id(), PyBackend.instances)

    def test_list_with_labels(self) -> None:
        first = self.create(team="a")
        self.create(team="b")
        found = self.backend.list({"team": "a"}, None)
        self.assertEqual(PyBackend.last_list_labels, {"team": "a"})
        self.assertEqual([i.get_id() for i in found], [first.get_id()])
        self.assertEqual(self.backend.list({"team": "c"}, None), [])


class TestNotConfigured(SubclassTestCase):
    def test_check_configured_fails_create(self) -> None:
        backend = Sandbox.Backend.new_for_name("pyecho-unconfigured")
        with self.assertRaises(GLib.Error) as ctx:
            backend.check_configured()
        self.assertTrue(ctx.exception.matches(Sandbox.error_quark(), Sandbox.Error.NOT_CONFIGURED))
        with self.assertRaises(GLib.Error) as ctx:
            backend.create(Sandbox.Spec(), None)
        self.assertTrue(ctx.exception.matches(Sandbox.error_quark(), Sandbox.Error.NOT_CONFIGURED))
        self.assertEqual(ctx.exception.message, "Set PYECHO_API_KEY")
        # The C wrapper stopped before the vfunc: nothing was created.
        self.assertEqual(PyBackend.instances, {})
        with self.assertRaises(GLib.Error) as ctx:
            run_async(lambda cb: backend.list_async(None, None, cb), backend.list_finish)
        self.assertTrue(ctx.exception.matches(Sandbox.error_quark(), Sandbox.Error.NOT_CONFIGURED))


class TestHttpErrors(SubclassTestCase):
    """A Python remote backend turns its provider's failed answers into the
    library's errors with Sandbox.Error.new_for_http_status."""

    def setUp(self) -> None:
        super().setUp()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ProviderHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        HttpBackend.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.backend = Sandbox.Backend.new_for_name("pyhttp")

    def tearDown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
        super().tearDown()

    def failure(self, sandbox_id: str) -> GLib.Error:
        with self.assertRaises(GLib.Error) as ctx:
            self.backend.get_instance(sandbox_id, None)
        return ctx.exception

    def test_codes_and_advice(self) -> None:
        for status, code, advice in (
            ("401", Sandbox.Error.AUTHENTICATION, "Check PYHTTP_API_KEY."),
            ("404", Sandbox.Error.NOT_FOUND, "sandboxctl ls"),
            ("429", Sandbox.Error.RATE_LIMITED, "retry later"),
            ("402", Sandbox.Error.QUOTA, "quota"),
            ("422", Sandbox.Error.INVALID_ARGUMENT, "check the spec"),
            ("500", Sandbox.Error.UNAVAILABLE, "retry later"),
        ):
            error = self.failure(status)
            self.assertTrue(error.matches(Sandbox.error_quark(), code), (status, error.message))
            self.assertIn(f"PyHttp answered HTTP {status} to GET sandboxes/{status}", error.message)
            self.assertIn("said by the provider", error.message)
            self.assertIn(advice, error.message)
            # The provider's escape sequence reaches no terminal as it came.
            self.assertNotIn("\x1b", error.message)

    def test_reason_when_the_body_says_nothing(self) -> None:
        error = self.failure("none")
        self.assertTrue(error.matches(Sandbox.error_quark(), Sandbox.Error.UNAVAILABLE))
        self.assertIn(
            "answered HTTP 503 to GET sandboxes/none: Service Unavailable.", error.message
        )


class TestCapabilities(SubclassTestCase):
    def test_default_is_none(self) -> None:
        self.assertEqual(self.backend.get_capabilities(), Sandbox.BackendCapabilities.NONE)

    def test_declared_by_python(self) -> None:
        # Through the C wrapper, sandbox_backend_get_capabilities ().
        caps = Sandbox.Backend.new_for_name("pyecho-capable").get_capabilities()
        self.assertEqual(
            caps,
            Sandbox.BackendCapabilities.MOUNTS | Sandbox.BackendCapabilities.NETWORK_POLICY,
        )
        self.assertFalse(caps & Sandbox.BackendCapabilities.SHARES_HOST_FS)

    def test_default_workdir(self) -> None:
        # None unless declared; a Python backend's own answer comes back
        # through the C wrapper, sandbox_backend_dup_default_workdir ().
        self.assertIsNone(self.backend.dup_default_workdir())
        self.assertEqual(
            Sandbox.Backend.new_for_name("pyecho-capable").dup_default_workdir(), "/srv/py"
        )
        self.assertEqual(Sandbox.Backend.new_for_name("local").dup_default_workdir(), "/workspace")
        self.assertEqual(Sandbox.Backend.new_for_name("e2b").dup_default_workdir(), "/home/user")

    def test_builtins(self) -> None:
        caps = Sandbox.Backend.new_for_name("local").get_capabilities()
        self.assertTrue(caps & Sandbox.BackendCapabilities.SHARES_HOST_FS)
        self.assertTrue(caps & Sandbox.BackendCapabilities.MOUNTS)
        for name in ("daytona", "e2b"):
            caps = Sandbox.Backend.new_for_name(name).get_capabilities()
            self.assertFalse(caps & Sandbox.BackendCapabilities.MOUNTS, name)
            self.assertTrue(caps & Sandbox.BackendCapabilities.IMAGES, name)


if __name__ == "__main__":
    taptest.main()

#!/usr/bin/python3
# libsandbox - exposed ports and named volumes through PyGObject
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Port URLs and volumes from Python: the local backend, and the Daytona
backend against its emulator program (tests/emulators/daytona-emulator)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request
import uuid
from typing import Any

# taptest.py lives beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gi
import taptest
from gitest import restore_environ, run_async, set_environ, start_emulator

gi.require_version("Sandbox", "1.0")
from gi.repository import GLib, Sandbox  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PortsVolumesCase:
    """The bodies, for any backend with both capabilities."""

    backend: Sandbox.Backend
    instances: list[Sandbox.Instance]

    def assert_error(self, error: GLib.Error, code: Sandbox.Error) -> None:
        case: Any = self
        case.assertEqual(error.domain, "sandbox-error-quark", error.message)
        case.assertEqual(error.code, int(code), error.message)

    def create(
        self, network: bool = False, volumes: dict[str, str] | None = None
    ) -> Sandbox.Instance:
        spec = Sandbox.Spec()
        spec.set_network(network)
        spec.set_timeout(600)
        for name, path in (volumes or {}).items():
            spec.add_volume(name, path)
        instance = self.backend.create(spec, None)
        self.instances.append(instance)
        return instance

    def destroy_all(self) -> None:
        for instance in self.instances:
            try:
                instance.destroy(None)
            except GLib.Error:
                pass

    def shell(self, instance: Sandbox.Instance, script: str) -> bytes:
        result = instance.exec(Sandbox.Command.new(["sh", "-c", script]), None)
        case: Any = self
        case.assertEqual(result.get_exit_status(), 0)
        out = result.get_stdout()
        return out.get_data() or b"" if out is not None else b""

    def test_capabilities(self) -> None:
        case: Any = self
        caps = self.backend.get_capabilities()
        case.assertTrue(caps & Sandbox.BackendCapabilities.PORTS)
        case.assertTrue(caps & Sandbox.BackendCapabilities.VOLUMES)

    def test_port_url_reaches_server(self) -> None:
        case: Any = self
        instance = self.create(network=True)
        port = free_port()
        marker = f"from-python-{uuid.uuid4().hex[:8]}"
        started = self.shell(
            instance,
            f"mkdir -p /tmp/www && cd /tmp/www && echo {marker} > index.html && "
            f"(setsid python3 -m http.server {port} --bind 127.0.0.1 >/dev/null 2>&1 &) && "
            "for i in $(seq 100); do python3 -c 'import socket; "
            f'socket.create_connection(("127.0.0.1", {port}))\' 2>/dev/null && echo up && break; '
            "sleep 0.1; done",
        )
        case.assertEqual(started, b"up\n")
        url, token = instance.dup_port_url(port, None)
        got = run_async(
            lambda cb: instance.dup_port_url_async(port, None, cb), instance.dup_port_url_finish
        )
        case.assertEqual(tuple(got), (url, token))
        headers = {"x-daytona-preview-token": token} if token else {}
        request = urllib.request.Request(f"{url}/index.html", headers=headers)
        with urllib.request.urlopen(request, timeout=30) as reply:
            case.assertIn(marker.encode(), reply.read())

    def test_bad_port_refused(self) -> None:
        case: Any = self
        instance = self.create()
        with case.assertRaises(GLib.Error) as ctx:
            instance.dup_port_url(70000, None)
        self.assert_error(ctx.exception, Sandbox.Error.INVALID_ARGUMENT)

    def test_volume_shared_between_sandboxes(self) -> None:
        case: Any = self
        name = f"py-{uuid.uuid4().hex[:10]}"
        with case.assertRaises(GLib.Error) as ctx:
            self.backend.create_volume("../up", None)
        self.assert_error(ctx.exception, Sandbox.Error.INVALID_ARGUMENT)
        case.assertFalse(Sandbox.volume_name_is_valid("a/b"))
        case.assertTrue(Sandbox.volume_name_is_valid(name))

        case.assertTrue(self.backend.create_volume(name, None))
        case.assertIn(name, self.backend.list_volumes(None))
        writer = self.create(volumes={name: "/data"})
        self.shell(writer, "echo kept > /data/note")
        writer.destroy(None)
        reader = self.create(volumes={name: "/elsewhere"})
        case.assertEqual(self.shell(reader, "cat /elsewhere/note"), b"kept\n")
        reader.destroy(None)
        case.assertTrue(self.backend.delete_volume(name, None))
        case.assertNotIn(name, self.backend.list_volumes(None))
        with case.assertRaises(GLib.Error) as ctx:
            self.backend.delete_volume(name, None)
        self.assert_error(ctx.exception, Sandbox.Error.NOT_FOUND)


class TestLocal(PortsVolumesCase, unittest.TestCase):
    def setUp(self) -> None:
        self.root = tempfile.mkdtemp(prefix="sbx-gi-ports-")
        os.environ["SANDBOX_LOCAL_ROOT"] = os.path.join(self.root, "local")
        self.backend = Sandbox.Backend.new_for_name("local")
        self.instances = []

    def tearDown(self) -> None:
        self.destroy_all()
        shutil.rmtree(self.root, ignore_errors=True)

    def test_no_network_refused_with_remedy(self) -> None:
        instance = self.create(network=False)
        with self.assertRaises(GLib.Error) as ctx:
            instance.dup_port_url(8000, None)
        self.assert_error(ctx.exception, Sandbox.Error.NOT_SUPPORTED)
        self.assertIn("--network", ctx.exception.message)

    def test_volumes_live_beside_the_sandboxes(self) -> None:
        self.backend.create_volume("beside", None)
        self.assertTrue(os.path.isdir(os.path.join(self.root, "volumes", "beside")))


class TestDaytona(PortsVolumesCase, unittest.TestCase):
    proc: subprocess.Popen[str]
    saved: dict[str, str | None]

    @classmethod
    def setUpClass(cls) -> None:
        cls.root = tempfile.mkdtemp(prefix="sbx-gi-ports-")
        os.environ["SANDBOX_LOCAL_ROOT"] = os.path.join(cls.root, "local")
        cls.proc, env = start_emulator("daytona-emulator", "--state-delay-ms", "20")
        cls.saved = set_environ(env)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.proc.terminate()
        cls.proc.wait(timeout=60)
        restore_environ(cls.saved)
        shutil.rmtree(cls.root, ignore_errors=True)

    def setUp(self) -> None:
        self.backend = Sandbox.Backend.new_for_name("daytona")
        self.instances = []

    def tearDown(self) -> None:
        self.destroy_all()

    def test_preview_needs_its_token(self) -> None:
        instance = self.create(network=True)
        url, token = instance.dup_port_url(free_port(), None)
        self.assertIsNotNone(token)
        with self.assertRaises(urllib.error.HTTPError) as ctx:
            urllib.request.urlopen(f"{url}/", timeout=30)
        self.assertEqual(ctx.exception.code, 401)


if __name__ == "__main__":
    taptest.main()

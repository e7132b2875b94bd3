# libsandbox - the remote backends through PyGObject, against the emulators
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Drive the daytona and e2b backends only through gi.repository.Sandbox.

Each backend talks to its emulator program (tests/emulators/), started here
on 127.0.0.1 and found through the backend's usual environment variables.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gi
import taptest
from gitest import restore_environ, run_async, set_environ, start_emulator

gi.require_version("Sandbox", "1.0")
from gi.repository import Gio, GLib, Sandbox  # noqa: E402

# backend name -> (emulator program, URL of its live-sandbox count)
EMULATORS = {
    "daytona": ("daytona-emulator", "{DAYTONA_API_URL}/../_emulator/stats"),
    "e2b": ("e2b-emulator", "{E2B_API_URL}/_emulator/live"),
}


class RemoteCase:
    """The test bodies; a subclass per backend makes them a TestCase."""

    backend_name = ""

    @classmethod
    def setUpClass(cls) -> None:
        program, cls.live_url = EMULATORS[cls.backend_name]
        cls.emulator, cls.env = start_emulator(
            program, *(["--state-delay-ms", "20"] if program == "daytona-emulator" else [])
        )
        cls.saved = set_environ(cls.env)

    @classmethod
    def tearDownClass(cls) -> None:
        restore_environ(cls.saved)
        cls.emulator.terminate()
        cls.emulator.wait(timeout=30)

    def setUp(self) -> None:
        self.scratch = tempfile.mkdtemp(prefix=f"sbx-gi-{self.backend_name}-")
        self.backend = Sandbox.Backend.new_for_name(self.backend_name)

    def tearDown(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def live(self) -> int:
        url = os.path.normpath(self.live_url.format(**self.env)).replace(":/", "://", 1)
        with urllib.request.urlopen(url, timeout=10) as reply:
            return int(json.load(reply)["live"])

    def create(self, **labels: str) -> Sandbox.Instance:
        spec = Sandbox.Spec()
        spec.set_env("SPEC_VAR", "from-spec")
        for key, value in labels.items():
            spec.set_label(key, value)
        return self.backend.create(spec, None)

    def test_exec_live_output(self) -> None:
        instance = self.create()
        out = Gio.MemoryOutputStream.new_resizable()
        command = Sandbox.Command.new(
            ["sh", "-c", "echo out; echo err >&2; echo $SPEC_VAR; exit 3"]
        )
        command.set_stdout_stream(out)
        result = run_async(lambda cb: instance.exec_async(command, None, cb), instance.exec_finish)
        out.close(None)
        self.assertEqual(bytes(out.steal_as_bytes().get_data()), b"out\nfrom-spec\n")
        self.assertEqual(result.get_exit_status(), 3)
        self.assertEqual(bytes(result.get_stderr().get_data()), b"err\n")
        self.assertTrue(instance.destroy(None))
        self.assertEqual(self.live(), 0)

    def test_files_round_trip(self) -> None:
        instance = self.create()
        tree = os.path.join(self.scratch, "tree", "sub")
        os.makedirs(tree)
        payload = os.urandom(200_000)
        with open(os.path.join(tree, "blob.bin"), "wb") as f:
            f.write(payload)
        source = Gio.File.new_for_path(os.path.join(self.scratch, "tree"))
        self.assertTrue(instance.upload(source, "/tmp/tree", None))
        result = instance.exec(Sandbox.Command.new(["wc", "-c", "/tmp/tree/sub/blob.bin"]), None)
        self.assertEqual(bytes(result.get_stdout().get_data()).split()[0], b"200000")
        back = os.path.join(self.scratch, "back")
        self.assertTrue(instance.download("/tmp/tree", Gio.File.new_for_path(back), None))
        with open(os.path.join(back, "sub", "blob.bin"), "rb") as f:
            self.assertEqual(f.read(), payload)
        with self.assertRaises(GLib.Error) as ctx:
            instance.download("/tmp/no-such-file", Gio.File.new_for_path(back + "2"), None)
        self.assertTrue(ctx.exception.matches(Sandbox.error_quark(), Sandbox.Error.NOT_FOUND))
        instance.destroy(None)

    def test_find_list_destroy(self) -> None:
        team = f"t{os.getpid()}"
        instance = self.create(team=team)
        other = Sandbox.Backend.new_for_name(self.backend_name)
        found = other.get_instance(instance.get_id(), None)
        self.assertEqual(found.get_labels().get("team"), team)
        listed = [i.get_id() for i in other.list({"team": team}, None)]
        self.assertEqual(listed, [instance.get_id()])
        self.assertEqual(other.list({"team": "nobody"}, None), [])
        self.assertTrue(found.destroy(None))
        with self.assertRaises(GLib.Error) as ctx:
            other.get_instance(instance.get_id(), None)
        self.assertTrue(ctx.exception.matches(Sandbox.error_quark(), Sandbox.Error.NOT_FOUND))
        self.assertTrue(instance.destroy(None))  # idempotent
        self.assertEqual(self.live(), 0)


class TestDaytona(RemoteCase, unittest.TestCase):
    backend_name = "daytona"


class TestE2b(RemoteCase, unittest.TestCase):
    backend_name = "e2b"


if __name__ == "__main__":
    taptest.main()

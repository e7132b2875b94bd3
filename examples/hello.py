#!/usr/bin/python3
# libsandbox hello world in Python: create a sandbox, put a file in it, run a
# command whose output streams to this terminal, then destroy the sandbox.
# Run it with /usr/bin/python3 (it needs PyGObject); see README.md.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import sys
import tempfile

import gi

gi.require_version("Sandbox", "1.0")
from gi.repository import Gio, GLib, Sandbox  # noqa: E402

try:
    # "local" runs sandboxes on this machine with bubblewrap; None would use
    # $SANDBOX_BACKEND. check_configured() says what is missing, if anything.
    backend = Sandbox.Backend.new_for_name("local")
    backend.check_configured()

    spec = Sandbox.Spec()
    spec.set_label("example", "hello")
    sandbox = backend.create(spec, None)
    print(f"Created sandbox {sandbox.get_id()}", flush=True)

    # Copy a local file into the sandbox's working directory.
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("Hello from the host!\n")
    sandbox.upload(Gio.File.new_for_path(f.name), "/workspace/hello.txt", None)
    os.unlink(f.name)

    # Stream the command's output live to our own stdout and stderr.
    command = Sandbox.Command.new_shell("uname -a; id; cat /workspace/hello.txt")
    command.set_stdout_stream(Gio.UnixOutputStream.new(sys.stdout.fileno(), False))
    command.set_stderr_stream(Gio.UnixOutputStream.new(sys.stderr.fileno(), False))
    result = sandbox.exec(command, None)
    print(f"Exit code: {result.get_exit_code()}")

    sandbox.destroy(None)
    print("Destroyed.")
except GLib.Error as error:
    # libsandbox messages say what to do next.
    sys.exit(f"hello.py: {error.message}")

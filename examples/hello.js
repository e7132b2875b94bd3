#!/usr/bin/env gjs
// libsandbox hello world in JavaScript (gjs): create a sandbox, put a file in
// it, run a command whose output streams to this terminal, then destroy it.
// See README.md for how to run it.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

imports.gi.versions.Sandbox = '1.0';
const {Gio, GLib, Sandbox} = imports.gi;

try {
    // "local" runs sandboxes on this machine with bubblewrap; null would use
    // $SANDBOX_BACKEND. check_configured() says what is missing, if anything.
    const backend = Sandbox.Backend.new_for_name('local');
    backend.check_configured();

    const spec = new Sandbox.Spec();
    spec.set_label('example', 'hello');
    const sandbox = backend.create(spec, null);
    print(`Created sandbox ${sandbox.get_id()}`);

    // Copy a local file into the sandbox's working directory.
    const [file, stream] = Gio.File.new_tmp('hello-XXXXXX.txt');
    stream.output_stream.write_all(new TextEncoder().encode('Hello from the host!\n'), null);
    stream.close(null);
    sandbox.upload(file, '/workspace/hello.txt', null);
    file.delete(null);

    // Stream the command's output live to our own stdout and stderr.
    const command = Sandbox.Command.new_shell('uname -a; id; cat /workspace/hello.txt');
    command.set_stdout_stream(Gio.UnixOutputStream.new(1, false));
    command.set_stderr_stream(Gio.UnixOutputStream.new(2, false));
    const result = sandbox.exec(command, null);
    print(`Exit code: ${result.get_exit_code()}`);

    sandbox.destroy(null);
    print('Destroyed.');
} catch (error) {
    // libsandbox messages say what to do next.
    printerr(`hello.js: ${error.message}`);
    imports.system.exit(1);
}

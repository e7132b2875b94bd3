// libsandbox - the remote backends through GObject-Introspection (gjs),
// against the emulator programs of tests/emulators/
//
// SPDX-License-Identifier: LGPL-2.1-or-later

imports.gi.versions.Sandbox = '1.0';
const {Gio, GLib, Sandbox} = imports.gi;

imports.searchPath.unshift(GLib.path_get_dirname(imports.system.programPath));
const {TapRunner, assert, assertEqual, assertThrows, decode, removeTree} = imports.taptest;

Gio._promisify(Sandbox.Instance.prototype, 'exec_async', 'exec_finish');

const isSandboxError = code => e => e instanceof GLib.Error && e.matches(Sandbox.Error, code);
const builddir = GLib.getenv('TOP_BUILDDIR') ?? GLib.get_current_dir();

// Starts an emulator program; returns [process, {VAR: value}] once it is READY.
function startEmulator(program, args) {
    const path = GLib.build_filenamev([builddir, 'tests', 'emulators', program]);
    const proc = Gio.Subprocess.new([path, ...args], Gio.SubprocessFlags.STDOUT_PIPE);
    const lines = new Gio.DataInputStream({base_stream: proc.get_stdout_pipe()});
    const env = {};
    for (;;) {
        const [line] = lines.read_line_utf8(null);
        if (line === null)
            throw new Error(`${program} exited before it was ready`);
        if (line === 'READY')
            return [proc, env];
        const at = line.indexOf('=');
        env[line.slice(0, at)] = line.slice(at + 1);
    }
}

const t = new TapRunner();

for (const [name, program, args] of [
    ['daytona', 'daytona-emulator', ['--state-delay-ms', '20']],
    ['e2b', 'e2b-emulator', []],
]) {
    t.test(`${name}: create, exec with live output, files, find, destroy`, async () => {
        const [proc, env] = startEmulator(program, args);
        const scratch = GLib.dir_make_tmp(`sbx-gjs-${name}-XXXXXX`);
        try {
            for (const [key, value] of Object.entries(env))
                GLib.setenv(key, value, true);
            const backend = Sandbox.Backend.new_for_name(name);
            const spec = new Sandbox.Spec();
            spec.set_label('team', 'gjs');
            spec.set_env('SPEC_VAR', 'from-spec');
            const sandbox = backend.create(spec, null);

            const out = Gio.MemoryOutputStream.new_resizable();
            const command = Sandbox.Command.new(['sh', '-c', 'echo out; echo $SPEC_VAR; exit 3']);
            command.set_stdout_stream(out);
            const result = await sandbox.exec_async(command, null);
            out.close(null);
            assertEqual(decode(out.steal_as_bytes()), 'out\nfrom-spec\n');
            assertEqual(result.get_exit_status(), 3);

            const local = GLib.build_filenamev([scratch, 'up.txt']);
            GLib.file_set_contents(local, 'through gjs\n');
            assert(sandbox.upload(Gio.File.new_for_path(local), '/tmp/up.txt', null));
            const back = GLib.build_filenamev([scratch, 'back.txt']);
            assert(sandbox.download('/tmp/up.txt', Gio.File.new_for_path(back), null));
            assertEqual(new TextDecoder().decode(GLib.file_get_contents(back)[1]), 'through gjs\n');

            const other = Sandbox.Backend.new_for_name(name);
            assertEqual(other.get_instance(sandbox.get_id(), null).get_id(), sandbox.get_id());
            assertEqual(other.list({team: 'gjs'}, null).map(i => i.get_id()), [sandbox.get_id()]);
            assert(sandbox.destroy(null));
            assertThrows(() => other.get_instance(sandbox.get_id(), null),
                isSandboxError(Sandbox.Error.NOT_FOUND));
        } finally {
            proc.send_signal(15);
            proc.wait(null);
            removeTree(scratch);
        }
    });
}

t.run();

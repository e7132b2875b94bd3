// libsandbox - the local backend through GObject-Introspection (gjs)
//
// SPDX-License-Identifier: LGPL-2.1-or-later

imports.gi.versions.Sandbox = '1.0';
const {Gio, GLib, Sandbox} = imports.gi;

imports.searchPath.unshift(GLib.path_get_dirname(imports.system.programPath));
const {TapRunner, assert, assertEqual, assertThrows, assertRejects, decode, removeTree} = imports.taptest;

Gio._promisify(Sandbox.Backend.prototype, 'create_async', 'create_finish');
Gio._promisify(Sandbox.Backend.prototype, 'get_instance_async', 'get_instance_finish');
Gio._promisify(Sandbox.Instance.prototype, 'exec_async', 'exec_finish');
Gio._promisify(Sandbox.Instance.prototype, 'upload_async', 'upload_finish');
Gio._promisify(Sandbox.Instance.prototype, 'download_async', 'download_finish');
Gio._promisify(Sandbox.Instance.prototype, 'destroy_async', 'destroy_finish');

const isSandboxError = code => e => e instanceof GLib.Error && e.matches(Sandbox.Error, code);

// Temporary directories, removed after each test.
let tempDirs = [];

function tempDir(prefix) {
    const dir = GLib.dir_make_tmp(`${prefix}-XXXXXX`);
    tempDirs.push(dir);
    return dir;
}

// Every test gets its own SANDBOX_LOCAL_ROOT (read when the backend is made).
function freshBackend() {
    const root = tempDir('sbx-gjs-root');
    GLib.setenv('SANDBOX_LOCAL_ROOT', root, true);
    return Sandbox.Backend.new_for_name('local');
}

function writeFile(path, text) {
    GLib.mkdir_with_parents(GLib.path_get_dirname(path), 0o755);
    GLib.file_set_contents(path, text);
}

function readFile(path) {
    const [, contents] = GLib.file_get_contents(path);
    return new TextDecoder().decode(contents);
}

// Not passed on to sandboxes: must not be visible inside.
GLib.setenv('LIBSANDBOX_SECRET', 'x', true);

const t = new TapRunner();
t.afterEach(() => {
    tempDirs.forEach(removeTree);
    tempDirs = [];
});

t.test('list_names has local, unknown name fails', () => {
    assert(Sandbox.Backend.list_names().includes('local'), 'local is listed');
    const error = assertThrows(() => Sandbox.Backend.new_for_name('nope'),
        isSandboxError(Sandbox.Error.UNKNOWN_BACKEND));
    assert(error.message.includes('local'), 'the message lists the known backends');
});

t.test('create, exec_async with live stdout and captured stderr', async () => {
    const backend = freshBackend();
    const spec = new Sandbox.Spec();
    spec.set_label('suite', 'gjs-local');
    spec.set_env('SPEC_VAR', 'spec-value');
    const instance = await backend.create_async(spec, null);
    assert(instance.get_id().startsWith('sbx-'), `id ${instance.get_id()}`);
    assertEqual(instance.get_labels().suite, 'gjs-local');

    const out = Gio.MemoryOutputStream.new_resizable();
    const command = Sandbox.Command.new(['sh', '-c', 'echo out; echo err >&2; exit 3']);
    command.set_stdout_stream(out);
    const result = await instance.exec_async(command, null);
    out.close(null);
    assertEqual(decode(out.steal_as_bytes()), 'out\n', 'live stdout');
    assertEqual(result.get_exit_status(), 3);
    assertEqual(result.get_stdout(), null, 'streamed output is not captured');
    assertEqual(decode(result.get_stderr()), 'err\n', 'captured stderr');

    const env = instance.exec(Sandbox.Command.new_shell('echo "${SPEC_VAR-unset}:${LIBSANDBOX_SECRET-unset}"'), null);
    assertEqual(decode(env.get_stdout()), 'spec-value:unset\n', 'spec env set, host env hidden');
    assert(await instance.destroy_async(null), 'destroy');
});

t.test('upload and download a file and a directory', async () => {
    const backend = freshBackend();
    const instance = backend.create(new Sandbox.Spec(), null);
    const scratch = tempDir('sbx-gjs-files');
    writeFile(`${scratch}/note.txt`, 'hello from gjs\n');
    writeFile(`${scratch}/tree/sub/b.txt`, 'beta\n');

    assert(await instance.upload_async(Gio.File.new_for_path(`${scratch}/note.txt`), '/workspace/note.txt', null));
    assert(await instance.upload_async(Gio.File.new_for_path(`${scratch}/tree`), '/workspace/tree', null));
    const cat = await instance.exec_async(
        Sandbox.Command.new(['cat', '/workspace/note.txt', '/workspace/tree/sub/b.txt']), null);
    assertEqual(cat.get_exit_status(), 0, decode(cat.get_stderr()));
    assertEqual(decode(cat.get_stdout()), 'hello from gjs\nbeta\n');

    assert(await instance.download_async('/workspace/note.txt', Gio.File.new_for_path(`${scratch}/note.back`), null));
    assert(await instance.download_async('/workspace/tree', Gio.File.new_for_path(`${scratch}/tree.back`), null));
    assertEqual(readFile(`${scratch}/note.back`), 'hello from gjs\n');
    assertEqual(readFile(`${scratch}/tree.back/sub/b.txt`), 'beta\n');

    await assertRejects(instance.download_async('/workspace/missing', Gio.File.new_for_path(`${scratch}/x`), null),
        isSandboxError(Sandbox.Error.NOT_FOUND), 'missing file');
    instance.destroy(null);
});

t.test('cancel exec_async', async () => {
    const instance = freshBackend().create(new Sandbox.Spec(), null);
    const cancellable = new Gio.Cancellable();
    GLib.timeout_add(GLib.PRIORITY_DEFAULT, 200, () => {
        cancellable.cancel();
        return GLib.SOURCE_REMOVE;
    });
    await assertRejects(instance.exec_async(Sandbox.Command.new(['sleep', '30']), cancellable),
        e => e instanceof GLib.Error && e.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED));
    instance.destroy(null);
});

t.test('find by id from another backend, list by label, destroy', async () => {
    const backend = freshBackend();
    const spec = new Sandbox.Spec();
    spec.set_label('suite', 'gjs-local');
    const instance = backend.create(spec, null);
    const id = instance.get_id();

    const other = Sandbox.Backend.new_for_name('local');
    const found = await other.get_instance_async(id, null);
    assertEqual(found.get_id(), id);
    assertEqual(other.list({suite: 'gjs-local'}, null).map(i => i.get_id()), [id]);
    assertEqual(other.list({suite: 'other'}, null).length, 0);

    assert(found.destroy(null));
    await assertRejects(other.get_instance_async(id, null), isSandboxError(Sandbox.Error.NOT_FOUND));
    assert(instance.destroy(null), 'destroying again succeeds');
});

t.test('port URL (out parameter) and a volume shared by two sandboxes', () => {
    const backend = freshBackend();
    // Volumes live beside the sandboxes' directory unless told: here, in a temporary one.
    GLib.setenv('SANDBOX_LOCAL_VOLUMES', tempDir('sbx-gjs-volumes'), true);
    const caps = backend.get_capabilities();
    assert(caps & Sandbox.BackendCapabilities.PORTS, 'local has ports');
    assert(caps & Sandbox.BackendCapabilities.VOLUMES, 'local has volumes');

    const online = new Sandbox.Spec();
    online.set_network(true);
    const served = backend.create(online, null);
    const [url, token] = served.dup_port_url(8123, null);
    assertEqual(url, 'http://127.0.0.1:8123');
    assertEqual(token, null);
    assert(served.destroy(null));
    const offline = backend.create(new Sandbox.Spec(), null);
    assertThrows(() => offline.dup_port_url(8123, null), isSandboxError(Sandbox.Error.NOT_SUPPORTED));
    assert(offline.destroy(null));

    assertThrows(() => backend.create_volume('../x', null), isSandboxError(Sandbox.Error.INVALID_ARGUMENT));
    assert(backend.create_volume('gjs-vol', null));
    assertEqual(backend.list_volumes(null), ['gjs-vol']);
    const writer = new Sandbox.Spec();
    writer.add_volume('gjs-vol', '/data');
    const first = backend.create(writer, null);
    assertEqual(first.exec(Sandbox.Command.new(['sh', '-c', 'echo gjs > /data/f']), null).get_exit_status(), 0);
    assert(first.destroy(null));
    const reader = new Sandbox.Spec();
    reader.add_volume('gjs-vol', '/v');
    const second = backend.create(reader, null);
    assertEqual(decode(second.exec(Sandbox.Command.new(['cat', '/v/f']), null).get_stdout()), 'gjs\n');
    assert(second.destroy(null));
    assert(backend.delete_volume('gjs-vol', null));
    assertEqual(backend.list_volumes(null), []);
    GLib.unsetenv('SANDBOX_LOCAL_VOLUMES');
});

t.run();

// libsandbox - a backend written in JavaScript, used through the C API
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Subclasses Sandbox.Backend and Sandbox.Instance with GObject.registerClass,
// registers the backend by name and drives it through the C wrappers
// (new_for_name, create, exec, list, destroy), which must dispatch into the
// vfunc_ methods. gjs cannot override a vfunc that takes a callback; these
// take the GTask made by the public _async method instead.

imports.gi.versions.Sandbox = '1.0';
const {Gio, GLib, GObject, Sandbox} = imports.gi;

imports.searchPath.unshift(GLib.path_get_dirname(imports.system.programPath));
const {TapRunner, assert, assertEqual, assertThrows, assertRejects, decode} = imports.taptest;

Gio._promisify(Sandbox.Backend.prototype, 'create_async', 'create_finish');
Gio._promisify(Sandbox.Instance.prototype, 'exec_async', 'exec_finish');
Gio._promisify(Sandbox.Instance.prototype, 'destroy_async', 'destroy_finish');

const isSandboxError = code => e => e instanceof GLib.Error && e.matches(Sandbox.Error, code);
const encode = text => new TextEncoder().encode(text);

// The sandboxes of the JS backend, shared by all its backend objects.
const sandboxes = new Map();
let counter = 0;
// What the last vfunc_list call received.
let lastListLabels;

const JsInstance = GObject.registerClass(
class JsInstance extends Sandbox.Instance {
    _init(params) {
        super._init(params);
        this.files = new Map();
        this.calls = [];
    }

    vfunc_exec(command, cancellable, task) {
        this.calls.push('exec');
        const argv = command.get_argv();
        const text = argv[0] === 'cat'
            ? argv.slice(1).map(p => this.files.get(p) ?? '').join('')
            : `echo: ${argv.join(' ')}\n`;
        const status = argv[0] === 'fail' ? 7 : 0;
        const stream = command.get_stdout_stream();
        if (stream) {
            // Live output: written to the caller's stream, nothing captured.
            stream.write_all(encode(text), cancellable);
            task.return_value(new Sandbox.ExecResult({exit_status: status}));
        } else {
            task.return_value(new Sandbox.ExecResult({
                exit_status: status,
                stdout: new GLib.Bytes(encode(text)),
            }));
        }
    }

    vfunc_upload(source, destination, cancellable, task) {
        this.calls.push('upload');
        const [, contents] = source.load_contents(cancellable);
        this.files.set(destination, new TextDecoder().decode(contents));
        task.return_boolean(true);
    }

    vfunc_download(source, destination, cancellable, task) {
        this.calls.push('download');
        if (!this.files.has(source)) {
            task.return_error(new GLib.Error(Sandbox.Error, Sandbox.Error.NOT_FOUND, `No ${source}`));
            return;
        }
        destination.replace_contents(encode(this.files.get(source)), null, false,
            Gio.FileCreateFlags.NONE, cancellable);
        task.return_boolean(true);
    }

    vfunc_destroy(cancellable, task) {
        this.calls.push('destroy');
        sandboxes.delete(this.get_id());
        this.set_state(Sandbox.InstanceState.DESTROYED);
        task.return_boolean(true);
    }
});

const JsBackend = GObject.registerClass(
class JsBackend extends Sandbox.Backend {
    vfunc_create(spec, cancellable, task) {
        const instance = new JsInstance({id: `js-${++counter}`, backend: this});
        instance.set_labels(spec.get_labels());
        instance.set_state(Sandbox.InstanceState.RUNNING);
        sandboxes.set(instance.get_id(), instance);
        // gjs 1.74 converts the object to the GValue itself.
        task.return_value(instance);
    }

    vfunc_get_instance(id, cancellable, task) {
        const instance = sandboxes.get(id);
        if (instance)
            task.return_value(instance);
        else
            task.return_error(new GLib.Error(Sandbox.Error, Sandbox.Error.NOT_FOUND, `No sandbox ${id}`));
    }

    vfunc_list(labels, cancellable, task) {
        lastListLabels = labels;
        const wanted = Object.entries(labels ?? {});
        const store = new Gio.ListStore({item_type: Sandbox.Instance});
        for (const instance of sandboxes.values()) {
            const have = instance.get_labels();
            if (wanted.every(([k, v]) => have[k] === v))
                store.append(instance);
        }
        task.return_value(store);
    }
});

const UnconfiguredBackend = GObject.registerClass(
class UnconfiguredBackend extends JsBackend {
    vfunc_check_configured() {
        throw new GLib.Error(Sandbox.Error, Sandbox.Error.NOT_CONFIGURED, 'Set JSECHO_API_KEY');
    }
});

Sandbox.Backend.register('jsecho', JsBackend.$gtype, 0);

const CapableBackend = GObject.registerClass(
class CapableBackend extends JsBackend {
    vfunc_get_capabilities() {
        return Sandbox.BackendCapabilities.IMAGES | Sandbox.BackendCapabilities.GPU;
    }

    vfunc_dup_default_workdir() {
        return '/srv/js';
    }
});
Sandbox.Backend.register('jsecho-capable', CapableBackend.$gtype, 0);

// A remote backend's provider answered 429: the error the built-in remote
// backends give for it, made with Sandbox.Error.new_for_http_status.
const RateLimitedBackend = GObject.registerClass(
class RateLimitedBackend extends JsBackend {
    vfunc_get_instance(id, cancellable, task) {
        let error;
        try {
            error = Sandbox.Error.new_for_http_status('JsHttp', 'GET', `sandboxes/${id}`, 429,
                'Too Many Requests', new GLib.Bytes(encode('{"message": "slow down \u001b[2J"}')),
                null);
        } catch (e) {  // a task must be completed, whatever happens
            error = new GLib.Error(Sandbox.Error, Sandbox.Error.FAILED, String(e));
        }
        task.return_error(error);
    }
});
Sandbox.Backend.register('jsecho-rate-limited', RateLimitedBackend.$gtype, 0);
Sandbox.Backend.register('jsecho-unconfigured', UnconfiguredBackend.$gtype, 0);

function createSandbox(backend, labels = {}) {
    const spec = new Sandbox.Spec();
    for (const [k, v] of Object.entries(labels))
        spec.set_label(k, v);
    return backend.create(spec, null);
}

const t = new TapRunner();
t.afterEach(() => sandboxes.clear());

t.test('registered by name', () => {
    const names = Sandbox.Backend.list_names();
    assert(names.includes('jsecho') && names.includes('local'), `names ${names}`);
    const backend = Sandbox.Backend.new_for_name('jsecho');
    assert(backend instanceof JsBackend, 'new_for_name made the JS class');
    assertEqual(backend.get_name(), 'jsecho');
    assert(backend.check_configured(), 'configured by default');
});

t.test('create (sync and async) dispatches to vfunc_create', async () => {
    const backend = Sandbox.Backend.new_for_name('jsecho');
    const instance = createSandbox(backend, {team: 'a'});
    assert(instance instanceof JsInstance, 'the JS object comes back');
    assert(sandboxes.get(instance.get_id()) === instance, 'the very same object');
    assert(instance.get_backend() === backend, 'backend property');
    assertEqual(instance.get_labels(), {team: 'a'});
    assertEqual(instance.get_state(), Sandbox.InstanceState.RUNNING);

    const spec = new Sandbox.Spec();
    spec.set_label('mode', 'async');
    const other = await backend.create_async(spec, null);
    assert(other instanceof JsInstance && other !== instance, 'a second sandbox');
    assertEqual(other.get_labels(), {mode: 'async'});
});

t.test('exec sync (captured) and async (live stream)', async () => {
    const instance = createSandbox(Sandbox.Backend.new_for_name('jsecho'));
    const captured = instance.exec(Sandbox.Command.new(['fail', 'now']), null);
    assertEqual(captured.get_exit_status(), 7);
    assertEqual(decode(captured.get_stdout()), 'echo: fail now\n');

    const out = Gio.MemoryOutputStream.new_resizable();
    const command = Sandbox.Command.new(['hello', 'world']);
    command.set_stdout_stream(out);
    const live = await instance.exec_async(command, null);
    out.close(null);
    assertEqual(live.get_exit_status(), 0);
    assertEqual(live.get_stdout(), null);
    assertEqual(decode(out.steal_as_bytes()), 'echo: hello world\n');
    assertEqual(instance.calls, ['exec', 'exec']);
});

t.test('upload, download', () => {
    const instance = createSandbox(Sandbox.Backend.new_for_name('jsecho'));
    const [src] = Gio.File.new_tmp('sbx-gjs-sub-XXXXXX');
    const dest = Gio.File.new_for_path(`${src.get_path()}.back`);
    try {
        src.replace_contents(encode('payload\n'), null, false, Gio.FileCreateFlags.NONE, null);
        assert(instance.upload(src, '/data/in.txt', null));
        assertEqual(decode(instance.exec(Sandbox.Command.new(['cat', '/data/in.txt']), null).get_stdout()),
            'payload\n');
        assert(instance.download('/data/in.txt', dest, null));
        assertEqual(new TextDecoder().decode(dest.load_contents(null)[1]), 'payload\n');
        assertThrows(() => instance.download('/data/missing', dest, null),
            isSandboxError(Sandbox.Error.NOT_FOUND));
        assertEqual(instance.calls, ['upload', 'exec', 'download', 'download']);
    } finally {
        src.delete(null);
        dest.delete(null);
    }
});

t.test('get_instance, list, destroy', async () => {
    const backend = Sandbox.Backend.new_for_name('jsecho');
    const first = createSandbox(backend, {team: 'a'});
    const second = createSandbox(backend, {team: 'b'});
    const other = Sandbox.Backend.new_for_name('jsecho');
    assert(other.get_instance(first.get_id(), null) === first, 'found by id');
    assertEqual(other.list(null, null).map(i => i.get_id()).sort(),
        [first.get_id(), second.get_id()].sort());

    assert(await first.destroy_async(null), 'destroy');
    assertEqual(first.calls, ['destroy']);
    assertEqual(first.get_state(), Sandbox.InstanceState.DESTROYED);
    assertThrows(() => other.get_instance(first.get_id(), null), isSandboxError(Sandbox.Error.NOT_FOUND));
    assertEqual(other.list(null, null).map(i => i.get_id()), [second.get_id()]);
    assert(first.destroy(null), 'destroying again succeeds');
});

t.test('list with labels', () => {
        const backend = Sandbox.Backend.new_for_name('jsecho');
        const first = createSandbox(backend, {team: 'a'});
        createSandbox(backend, {team: 'b'});
        const found = backend.list({team: 'a'}, null);
        assertEqual(lastListLabels, {team: 'a'});
        assertEqual(found.map(i => i.get_id()), [first.get_id()]);
        assertEqual(backend.list({team: 'c'}, null).length, 0);
    }, {isolated: true});

t.test('check_configured throwing makes create fail', async () => {
    const backend = Sandbox.Backend.new_for_name('jsecho-unconfigured');
    assertThrows(() => backend.check_configured(), isSandboxError(Sandbox.Error.NOT_CONFIGURED));
    const error = assertThrows(() => backend.create(new Sandbox.Spec(), null),
        isSandboxError(Sandbox.Error.NOT_CONFIGURED));
    assertEqual(error.message, 'Set JSECHO_API_KEY');
    await assertRejects(backend.create_async(new Sandbox.Spec(), null),
        isSandboxError(Sandbox.Error.NOT_CONFIGURED));
    assertEqual(sandboxes.size, 0, 'vfunc_create never ran');
});

t.test('a provider\'s HTTP answer as a SANDBOX_ERROR: Sandbox.Error.new_for_http_status', () => {
    const backend = Sandbox.Backend.new_for_name('jsecho-rate-limited');
    const error = assertThrows(() => backend.get_instance('x', null),
        isSandboxError(Sandbox.Error.RATE_LIMITED));
    assert(error.message.startsWith('JsHttp answered HTTP 429 to GET sandboxes/x: slow down'),
        error.message);
    assert(error.message.includes('retry later'), error.message);
    assert(!error.message.includes('\u001b'), 'the escape sequence is made harmless');
    const none = Sandbox.Error.new_for_http_status('JsHttp', 'DELETE', 'sandboxes/y', 503,
        'Service Unavailable', null, null);
    assert(none.matches(Sandbox.Error, Sandbox.Error.UNAVAILABLE));
    assert(none.message.includes('HTTP 503 to DELETE sandboxes/y: Service Unavailable.'), none.message);
});

t.test('capabilities: none by default, declared by vfunc_get_capabilities', () => {
    assertEqual(Sandbox.Backend.new_for_name('jsecho').get_capabilities(),
        Sandbox.BackendCapabilities.NONE);
    assertEqual(Sandbox.Backend.new_for_name('jsecho-capable').get_capabilities(),
        Sandbox.BackendCapabilities.IMAGES | Sandbox.BackendCapabilities.GPU);
    const local = Sandbox.Backend.new_for_name('local').get_capabilities();
    assert(local & Sandbox.BackendCapabilities.SHARES_HOST_FS, 'local shares the host fs');
});

t.test('default workdir: none by default, declared by vfunc_dup_default_workdir', () => {
    assertEqual(Sandbox.Backend.new_for_name('jsecho').dup_default_workdir(), null);
    assertEqual(Sandbox.Backend.new_for_name('jsecho-capable').dup_default_workdir(), '/srv/js');
    assertEqual(Sandbox.Backend.new_for_name('local').dup_default_workdir(), '/workspace');
});

// Pause, resume and metrics from JavaScript: the optional vfuncs, and the
// refusal of an instance that has none of them.
const JsPausable = GObject.registerClass(
class JsPausable extends Sandbox.Instance {
    vfunc_pause(cancellable, task) {
        this.paused = true;
        task.return_boolean(true);
    }

    vfunc_resume(cancellable, task) {
        this.paused = false;
        task.return_boolean(true);
    }

    vfunc_get_metrics(cancellable, task) {
        task.return_value(new Sandbox.Metrics({cpu_percent: 50, cpu_count: 2,
            memory_used: 1024, memory_total: 4096, disk_used: 10, disk_total: 100}));
    }
});

t.test('pause, resume and metrics: JavaScript vfuncs, refusal without them', () => {
    const pausable = new JsPausable({id: 'js-pausable'});
    assert(pausable.pause(null), 'pause');
    assert(pausable.paused, 'vfunc_pause ran');
    assertEqual(pausable.get_state(), Sandbox.InstanceState.STOPPED);
    assert(pausable.resume(null), 'resume');
    assertEqual(pausable.get_state(), Sandbox.InstanceState.RUNNING);
    const metrics = pausable.get_metrics(null);
    assertEqual(metrics.get_cpu_percent(), 50);
    assertEqual(metrics.get_cpu_seconds(), -1);
    assertEqual(metrics.get_memory_total(), 4096);
    const bare = new JsInstance({id: 'js-bare'});
    assertThrows(() => bare.pause(null), isSandboxError(Sandbox.Error.NOT_SUPPORTED));
    assertThrows(() => bare.get_metrics(null), isSandboxError(Sandbox.Error.NOT_SUPPORTED));
});

t.run();

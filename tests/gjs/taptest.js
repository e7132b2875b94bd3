// libsandbox - a tiny TAP harness for gjs 1.74 (which has no jsUnit)
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Usage, from a test script in this directory:
//
//   imports.searchPath.unshift(GLib.path_get_dirname(imports.system.programPath));
//   const {TapRunner, assert, assertEqual, assertThrows} = imports.taptest;
//   const t = new TapRunner();
//   t.test('name', async () => { assertEqual(1 + 1, 2); });
//   t.run();   // prints "1..N" and one "ok"/"not ok" line per test, exits 1 on failure
//
// Test functions may be async; they run one after the other on a GLib main
// loop. t.todo(reason, ...) marks a known bug ("not ok ... # TODO"); an
// isolated test runs in a child gjs process so that a crash or a GLib
// critical fails that test only.

/* exported TapRunner, assert, assertEqual, assertThrows, assertRejects, decode, removeTree */

const {Gio, GLib} = imports.gi;
const System = imports.system;

const CHILD_ENV = 'TAPTEST_ISOLATED';
const GUARD_S = 120;

function _show(value) {
    try {
        return JSON.stringify(value);
    } catch (e) {
        return String(value);
    }
}

function assert(condition, message = 'assertion failed') {
    if (!condition)
        throw new Error(message);
}

function assertEqual(actual, expected, message = '') {
    const a = _show(actual), e = _show(expected);
    if (a !== e)
        throw new Error(`${message ? `${message}: ` : ''}expected ${e}, got ${a}`);
}

// Calls fn, which must throw; check(error) must then return true.
function assertThrows(fn, check, message = 'expected an error') {
    let error = null;
    try {
        fn();
    } catch (e) {
        error = e;
    }
    assert(error !== null, `${message}: nothing was thrown`);
    assert(check(error), `${message}: wrong error ${error}`);
    return error;
}

async function assertRejects(promise, check, message = 'expected an error') {
    let error = null;
    try {
        await promise;
    } catch (e) {
        error = e;
    }
    assert(error !== null, `${message}: nothing was thrown`);
    assert(check(error), `${message}: wrong error ${error}`);
    return error;
}

// GLib.Bytes (or null) -> string
function decode(bytes) {
    return bytes ? new TextDecoder().decode(bytes.toArray()) : '';
}

// Deletes a local file or directory tree (symbolic links are not followed).
function removeTree(path) {
    const file = Gio.File.new_for_path(path);
    const type = file.query_file_type(Gio.FileQueryInfoFlags.NOFOLLOW_SYMLINKS, null);
    if (type === Gio.FileType.UNKNOWN)
        return;
    if (type === Gio.FileType.DIRECTORY) {
        const children = file.enumerate_children('standard::name',
            Gio.FileQueryInfoFlags.NOFOLLOW_SYMLINKS, null);
        let info;
        while ((info = children.next_file(null)) !== null)
            removeTree(GLib.build_filenamev([path, info.get_name()]));
        children.close(null);
    }
    file.delete(null);
}

var TapRunner = class TapRunner {
    constructor() {
        this._tests = [];
        this._afterEach = [];
    }

    // fn runs after every test, passed or failed.
    afterEach(fn) {
        this._afterEach.push(fn);
    }

    test(name, fn, options = {}) {
        this._tests.push({name, fn, todo: options.todo ?? null, isolated: options.isolated ?? false});
    }

    // A test that fails because of a known bug, described by reason.
    todo(reason, name, fn, options = {}) {
        this.test(name, fn, {...options, todo: reason});
    }

    _runChild(name) {
        const launcher = new Gio.SubprocessLauncher({
            flags: Gio.SubprocessFlags.STDOUT_PIPE | Gio.SubprocessFlags.STDERR_MERGE,
        });
        launcher.setenv(CHILD_ENV, name, true);
        const debug = (GLib.getenv('G_DEBUG') ?? '').split(',').filter(f => f);
        launcher.setenv('G_DEBUG', [...debug, 'fatal-criticals'].join(','), true);
        // The same gjs binary that runs this script.
        const gjs = GLib.file_read_link('/proc/self/exe');
        const proc = launcher.spawnv([gjs, System.programPath]);
        const [, output] = proc.communicate_utf8(null, null);
        if (!proc.get_if_exited() || proc.get_exit_status() !== 0) {
            const how = proc.get_if_signaled() ? `signal ${proc.get_term_sig()}`
                : `status ${proc.get_exit_status()}`;
            throw new Error(`child process ended with ${how}\n${output}`);
        }
    }

    async _runAll() {
        const only = GLib.getenv(CHILD_ENV);
        const tests = only ? this._tests.filter(t => t.name === only) : this._tests;
        let failed = 0;

        print(`1..${tests.length}`);
        for (const [i, t] of tests.entries()) {
            let error = null;
            try {
                if (t.isolated && !only)
                    this._runChild(t.name);
                else
                    await t.fn();
            } catch (e) {
                error = e;
            }
            for (const fn of this._afterEach) {
                try {
                    fn();
                } catch (e) {
                    error ??= e;
                }
            }
            let line = `${error ? 'not ok' : 'ok'} ${i + 1} - ${t.name}`;
            if (t.todo)
                line += ` # TODO ${t.todo}${error ? '' : ' (now passes: remove the todo marker)'}`;
            print(line);
            if (error) {
                const text = `${error}\n${error.stack ?? ''}`.trimEnd();
                for (const l of text.split('\n'))
                    print(`# ${l}`);
            }
            // An isolated child reports whether the test body passed; its
            // parent applies the todo marker.
            if (only ? error : error ? !t.todo : t.todo)
                failed++;
        }
        return failed;
    }

    run() {
        const loop = new GLib.MainLoop(null, false);
        let failed = 1;
        GLib.timeout_add_seconds(GLib.PRIORITY_DEFAULT, GUARD_S * 2, () => {
            print('Bail out! The tests did not finish in time');
            loop.quit();
            return GLib.SOURCE_REMOVE;
        });
        this._runAll().then(n => {
            failed = n;
        }).catch(e => {
            print(`Bail out! ${e}`);
        }).finally(() => loop.quit());
        loop.run();
        System.exit(failed === 0 ? 0 : 1);
    }
};

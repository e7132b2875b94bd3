// libsandbox - the OCI image store through GObject-Introspection (gjs)
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Layers are made with Sandbox.archive_write from directories made here.

imports.gi.versions.Sandbox = '1.0';
const {Gio, GLib, Sandbox} = imports.gi;

imports.searchPath.unshift(GLib.path_get_dirname(imports.system.programPath));
const {TapRunner, assert, assertEqual, assertThrows, removeTree} = imports.taptest;

Gio._promisify(Sandbox.ImageStore.prototype, 'import_async', 'import_finish');
Gio._promisify(Sandbox.ImageStore.prototype, 'remove_async', 'remove_finish');
Gio._promisify(Sandbox.ImageStore.prototype, 'list_async', 'list_finish');
Gio._promisify(Sandbox.ImageStore.prototype, 'lookup_async', 'lookup_finish');

let tempDirs = [];

function tempDir(prefix) {
    const dir = GLib.dir_make_tmp(`${prefix}-XXXXXX`);
    tempDirs.push(dir);
    return dir;
}

function writeFile(path, text) {
    GLib.mkdir_with_parents(GLib.path_get_dirname(path), 0o755);
    GLib.file_set_contents(path, text);
}

// A tar of the directory DIR, as GLib.Bytes.
function tarOf(dir) {
    const out = Gio.MemoryOutputStream.new_resizable();
    Sandbox.archive_write(Gio.File.new_for_path(dir), null, out, null);
    out.close(null);
    return out.steal_as_bytes();
}

function putBlob(layout, bytes) {
    const hex = GLib.compute_checksum_for_bytes(GLib.ChecksumType.SHA256, bytes);
    const dir = GLib.build_filenamev([layout, 'blobs', 'sha256']);
    GLib.mkdir_with_parents(dir, 0o755);
    GLib.file_set_contents(GLib.build_filenamev([dir, hex]), bytes.toArray());
    return {digest: `sha256:${hex}`, size: bytes.get_size()};
}

function jsonBytes(value) {
    return new GLib.Bytes(new TextEncoder().encode(JSON.stringify(value)));
}

function makeLayout() {
    const lower = tempDir('gjs-layer1');
    writeFile(`${lower}/etc/motd`, 'lower\n');
    writeFile(`${lower}/gone`, 'x\n');
    const upper = tempDir('gjs-layer2');
    writeFile(`${upper}/.wh.gone`, '');
    writeFile(`${upper}/added`, 'upper\n');

    const layout = tempDir('gjs-layout');
    const layers = [tarOf(lower), tarOf(upper)];
    const config = putBlob(layout, jsonBytes({
        architecture: 'amd64', os: 'linux',
        config: {Env: ['A=1'], WorkingDir: '/w', Entrypoint: ['/bin/sh']},
        rootfs: {type: 'layers', diff_ids: []},
    }));
    const manifest = putBlob(layout, jsonBytes({
        schemaVersion: 2, config,
        layers: layers.map(l => Object.assign(putBlob(layout, l),
            {mediaType: 'application/vnd.oci.image.layer.v1.tar'})),
    }));
    GLib.file_set_contents(`${layout}/index.json`,
        JSON.stringify({schemaVersion: 2, manifests: [manifest]}));
    return layout;
}

const t = new TapRunner();
t.afterEach(() => {
    tempDirs.forEach(removeTree);
    tempDirs = [];
});

t.test('import_async, list, lookup, remove_async', async () => {
    const store = Sandbox.ImageStore.new(tempDir('gjs-store'));
    const layout = makeLayout();
    const image = await store.import_async(Gio.File.new_for_path(layout), 'gjs/app:1', null);

    assert(image.get_id().startsWith('sha256:'), 'an id');
    assertEqual(image.get_names(), ['gjs/app:1']);
    assertEqual(image.get_env(), ['A=1']);
    assertEqual(image.get_workdir(), '/w');
    assertEqual(image.get_entrypoint(), ['/bin/sh']);
    assertEqual(image.get_layers().length, 2);
    const root = image.get_rootfs();
    assert(GLib.file_test(`${root}/added`, GLib.FileTest.EXISTS), 'the upper layer is there');
    assert(GLib.file_test(`${root}/etc/motd`, GLib.FileTest.EXISTS), 'the lower layer is there');
    assert(!GLib.file_test(`${root}/gone`, GLib.FileTest.EXISTS), 'the whiteout applied');

    assertEqual(store.list(null).map(i => i.get_id()), [image.get_id()]);
    assertEqual(store.lookup('gjs/app:1', null).get_id(), image.get_id());
    assertEqual((await store.list_async(null)).map(i => i.get_id()), [image.get_id()]);
    assertEqual((await store.lookup_async('gjs/app:1', null)).get_names(), ['gjs/app:1']);
    const error = assertThrows(() => store.lookup('gjs/other', null),
        e => e instanceof GLib.Error && e.matches(Sandbox.Error, Sandbox.Error.NOT_FOUND));
    assert(error.message.includes('sandboxctl image import'), 'the message names the import command');

    assert(await store.remove_async('gjs/app:1', null), 'removed');
    assertEqual(store.list(null).length, 0);
});

t.run();

"""Local datastore + remote backend: move one task's datastore subset in and out.

The sandbox gets the datastore at the *same absolute path* R as on this
machine (so nothing recorded in metadata needs rewriting), filled with exactly
what the task reads:

* its own task directory and the run's and step's ``_meta`` (written by the
  runtime before launch),
* each input task's files (not its ``_meta``) and every blob its
  ``*.data.json`` references, each blob once,
* the code package blob.

After the step, everything the task wrote below R (newer than a marker made
before the step) comes back through two tar streams (libsandbox
``download_archive`` + ``archive_extract``): first the new blobs (kept if
already present: the store is content addressed), then metadata, logs and
cards, with every ``DONE.lock`` last.  Each file is written under a temporary
name and renamed, so parallel tasks sharing the store never see half a file
and a broken download leaves no ``DONE.lock``.

Only ``gi`` objects passed in by the caller are used; no module-level gi import.
"""

import json
import os
import threading
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

MARKER_NAME = ".mf_sandbox_sync_marker"


class SyncStats:
    """What a task's sync moved. (A plain class: importing dataclasses
    cost a remote task's process ~5 ms of its start, sandbox_remote.)"""

    def __init__(self) -> None:
        self.up_files = 0
        self.up_bytes = 0
        self.down_files = 0
        self.down_bytes = 0
        self.blobs_up = 0
        self.blobs_down = 0
        self.details: List[str] = []

    def summary(self) -> str:
        """The task's whole sync on one line (the executor logs it once per
        task, under METAFLOW_SANDBOX_DEBUG only)."""
        line = "datastore sync: sent %d files (%s), received %d files (%s)" % (
            self.up_files,
            _human(self.up_bytes),
            self.down_files,
            _human(self.down_bytes),
        )
        if self.details:
            line += " [%s]" % "; ".join(self.details)
        return line


class private_dir:
    """A new private (0700) directory for a few files, removed with them
    on exit: tempfile.TemporaryDirectory without importing tempfile (and
    shutil, random), which cost a remote task's process ~3 ms of its start
    (sandbox_remote); that module only if $TMPDIR or /tmp will not do."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.path = ""

    def __enter__(self) -> str:
        base = os.environ.get("TMPDIR") or "/tmp"
        for _ in range(16):
            path = os.path.join(base, self.prefix + os.urandom(6).hex())
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                continue
            except OSError:
                break
            self.path = path
            return path
        import tempfile

        self.path = tempfile.mkdtemp(prefix=self.prefix)
        return self.path

    def __exit__(self, *exc: Any) -> None:
        try:
            with os.scandir(self.path) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        import shutil

                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)
            os.rmdir(self.path)
        except OSError:
            pass


def _human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return ("%d %s" % (value, unit)) if unit == "B" else ("%.1f %s" % (value, unit))
        value /= 1024
    return "%d B" % n


def _blob_rel(flow: str, sha: str) -> str:
    return "/".join((flow, "data", sha[:2], sha))


def _input_task_dirs(run_id: str, input_paths: Optional[str]) -> List[str]:
    if not input_paths:
        return []
    from metaflow import util

    return [p for p in util.decompress_list(input_paths) if p]


# What a step never reads of its input tasks' files (Metaflow only writes
# them: the task's logs, "<attempt>.<source>_<stream>.log", and its
# runtime's marks). The logs are as long as what the task printed: sent into
# the sandbox of every task that follows it, they cost bytes (on the real
# services, seconds for a chatty step) and a file each for nothing. They
# stay in the host's datastore, where the client reads them.
_INPUT_FILES_NOT_READ = (".log", ".runtime", ".task_begin", ".task_end")


def _read_by_a_step(name: str) -> bool:
    """Whether a step may read its input task's file @name (its attempt,
    DONE.lock and data.json, and anything not known to be write-only)."""
    return not name.endswith(_INPUT_FILES_NOT_READ)


def upload_set(
    root: str,
    flow: str,
    run_id: str,
    step: str,
    task_id: str,
    input_paths: Optional[str],
    package_url: Optional[str],
    input_tasks: Optional[List[str]] = None,
) -> Tuple[List[str], Set[str], int]:
    """Relative paths below root to send (files or directories), the blob
    paths among them, and the total byte count. The input tasks are
    @input_paths (Metaflow's compressed list) or, without importing
    Metaflow, @input_tasks (run/step/task pathspecs)."""
    paths: List[str] = []
    seen: Set[str] = set()
    blobs: Set[str] = set()
    total = 0

    def add(rel: str) -> None:
        nonlocal total
        if rel in seen:
            return
        full = os.path.join(root, rel)
        if os.path.isdir(full):
            for dirpath, _dirs, files in os.walk(full):
                for name in files:
                    total += os.path.getsize(os.path.join(dirpath, name))
        elif os.path.isfile(full):
            total += os.path.getsize(full)
        else:
            return
        seen.add(rel)
        paths.append(rel)

    # What the runtime wrote for this task, its step and its run.
    add("/".join((flow, run_id, "_meta")))
    add("/".join((flow, run_id, step, "_meta")))
    add("/".join((flow, run_id, step, task_id)))
    # The inputs: files of each input task and the blobs they reference.
    if input_tasks is None:
        input_tasks = _input_task_dirs(run_id, input_paths)
    for pathspec in input_tasks:
        task_dir = "/".join((flow, pathspec))
        full = os.path.join(root, task_dir)
        if not os.path.isdir(full):
            continue
        for name in sorted(os.listdir(full)):
            if (
                name == "_meta"
                or not _read_by_a_step(name)
                or not os.path.isfile(os.path.join(full, name))
            ):
                continue
            add(task_dir + "/" + name)
            if name.endswith(".data.json"):
                try:
                    with open(os.path.join(full, name), "rb") as f:
                        objects = json.load(f).get("objects", {})
                except (OSError, ValueError):
                    continue
                for sha in sorted(set(objects.values())):
                    rel = _blob_rel(flow, sha)
                    for candidate in (rel, rel + "_meta"):
                        before = len(paths)
                        add(candidate)
                        if len(paths) > before:
                            blobs.add(candidate)
    # The code package blob (the bootstrap extracts it at its local path).
    if package_url and os.path.isabs(package_url):
        real = os.path.realpath(package_url)
        if real.startswith(root.rstrip("/") + "/"):
            rel = os.path.relpath(real, root)
            for candidate in (rel, rel + "_meta"):
                before = len(paths)
                add(candidate)
                if len(paths) > before:
                    blobs.add(candidate)
    return paths, blobs, total


def _count_files(root: str, paths: Iterable[str]) -> int:
    n = 0
    for rel in paths:
        full = os.path.join(root, rel)
        if os.path.isdir(full):
            n += sum(len(files) for _d, _s, files in os.walk(full))
        else:
            n += 1
    return n


def _pipe_transfer(
    Gio,
    producer: Callable[[Any], None],
    consumer: Callable[[Any], None],
    threaded: str,
) -> None:
    """Runs producer(output stream) and consumer(input stream) joined by a
    pipe, one of them ("producer" or "consumer") in a thread: the tar stream
    never sits whole anywhere.  The sandbox call must stay in this thread
    (a backend's HTTP session belongs to the thread that made it)."""
    rfd, wfd = os.pipe()
    out = Gio.UnixOutputStream.new(wfd, True)
    inp = Gio.UnixInputStream.new(rfd, True)
    errors: List[BaseException] = []

    def run(side: str) -> None:
        try:
            if side == "producer":
                producer(out)
            else:
                consumer(inp)
        except BaseException as ex:  # noqa: BLE001 - re-raised below
            errors.append(ex)
        finally:
            (out if side == "producer" else inp).close(None)

    other = "consumer" if threaded == "producer" else "producer"
    thread = threading.Thread(target=run, args=(threaded,), daemon=True)
    thread.start()
    try:
        run(other)
    finally:
        thread.join()
    if errors:
        raise errors[0]


def _sync_waiter(instance, name: str, *args):
    """instance.<name>(*args): the default, blocking way of waiting."""
    return getattr(instance, name)(*args)


def send_inputs(
    Gio,
    Sandbox,
    instance,
    root: str,
    paths: List[str],
    cancellable,
    stats: SyncStats,
    wait: Callable[..., Any] = _sync_waiter,
) -> None:
    """wait(instance, method, *args) runs a sandbox call; the executor's runs
    the _async variant on its main loop, so that signals are handled."""
    base = Gio.File.new_for_path(root)
    _pipe_transfer(
        Gio,
        lambda out: Sandbox.archive_write(base, paths, out, cancellable),
        lambda inp: wait(instance, "upload_archive", inp, root, cancellable),
        threaded="producer",
    )


def marker_path(workdir: str) -> str:
    return workdir.rstrip("/") + "/" + MARKER_NAME


def list_outputs(
    Sandbox,
    instance,
    root: str,
    marker: str,
    cancellable,
    wait: Callable[..., Any] = _sync_waiter,
) -> Dict[str, int]:
    """Files below root in the sandbox written after the marker: {rel: size}."""
    command = Sandbox.Command.new(
        [
            "find",
            root,
            "-newer",
            marker,
            "-type",
            "f",
            "-printf",
            "%s\\t%P\\0",
        ]
    )
    result = wait(instance, "exec", command, cancellable)
    _check_exec(result, "listing the task's outputs")
    files = _parse_listing(bytes(result.get_stdout().get_data() or b""))
    return {rel: size for rel, size in files.items() if ".sbx-" not in os.path.basename(rel)}


def _is_blob(flow: str, rel: str) -> bool:
    parts = rel.split("/")
    return len(parts) == 4 and parts[0] == flow and parts[1] == "data"


def task_prefixes(flow: str, run_id: str, step: str, task_id: str) -> Tuple[str, ...]:
    """The directories below the datastore root where a task's own files go
    (its datastore, its metadata, its cards); its blobs are <flow>/data/."""
    return (
        "%s/%s/%s/%s/" % (flow, run_id, step, task_id),
        "mf.cards/%s/runs/%s/steps/%s/tasks/%s/" % (flow, run_id, step, task_id),
    )


def check_outputs(outputs: Dict[str, int], flow: str, prefixes: Sequence[str]) -> None:
    """Refuses a listing of a task's outputs that names a file which is not
    the task's: the listing and the files come from the sandbox, whose
    command could otherwise write any file of the datastore on this side
    (another task's DONE.lock or artifacts, another flow's)."""
    for rel in outputs:
        parts = rel.split("/")
        ok = "" not in parts and "." not in parts and ".." not in parts
        if ok and not _is_blob(flow, rel):
            ok = any(rel.startswith(p) for p in prefixes)
        if not ok:
            raise RuntimeError(
                "the sandbox lists %s among the task's outputs, which is not one of "
                "the task's files (%s or %s/data/): nothing was copied back"
                % (_shown(rel), " or ".join(prefixes), flow)
            )


def _shown(rel: str) -> str:
    return repr(rel.encode("utf-8", "surrogateescape"))[1:]


def fetch_outputs(
    Gio,
    Sandbox,
    instance,
    root: str,
    flow: str,
    outputs: Dict[str, int],
    sent_blobs: Set[str],
    cancellable,
    stats: SyncStats,
    wait: Callable[..., Any] = _sync_waiter,
    prefixes: Sequence[str] = (),
) -> None:
    """Blobs first (kept if present), then everything else, DONE.lock last:
    only the task's files (below @prefixes and its flow's blobs), and of the
    tar streams only the files listed."""
    check_outputs(outputs, flow, prefixes)
    blobs = sorted(r for r in outputs if _is_blob(flow, r) and r not in sent_blobs)
    blobs_new = [r for r in blobs if not os.path.exists(os.path.join(root, r))]
    rest = [r for r in outputs if not _is_blob(flow, r)]
    rest.sort(key=lambda r: (r.endswith("DONE.lock"), r))
    dest = Gio.File.new_for_path(root)
    for group, flags in (
        (blobs_new, Sandbox.ArchiveFlags.KEEP_EXISTING),
        (rest, Sandbox.ArchiveFlags.NONE),
    ):
        if not group:
            continue
        _pipe_transfer(
            Gio,
            lambda out, group=group: wait(
                instance, "download_archive", root, group, out, cancellable
            ),
            lambda inp, flags=flags, group=group: Sandbox.archive_extract_paths(
                inp, dest, group, flags, cancellable
            ),
            threaded="consumer",
        )
        stats.down_files += len(group)
        stats.down_bytes += sum(outputs[r] for r in group)
        stats.details.append(
            "received %d %s (%s)"
            % (
                len(group),
                "blobs" if group is blobs_new else "files",
                _human(sum(outputs[r] for r in group)),
            )
        )
    stats.blobs_down = len(blobs_new)


# Packs what the task wrote into two tar files in the sandbox, in one exec:
# new blobs (<flow>/data/xx/sha), then everything else with every DONE.lock
# last; prints the listing as list_outputs' find does (size, tab, path, NUL).
# Each file is then one plain download, where download_archive costs a tar
# exec, a download and an rm exec per group, after list_outputs' find.
# One walk of the copy (it was four `find`s): each new file goes to the
# blobs' list, the DONE.lock list or the rest's, and to the listing on
# stdout; the rest's tar takes every DONE.lock last. (GNU find creates
# each -fprintf file even when nothing is written to it.)
# (find's -fprintf and tar -c -f create or truncate the files they write.)
_PACK_SCRIPT = r"""set -e
root=$1; marker=$2; flow=$3; blobs=$4; rest=$5
cd "$root"
find . -newer "$marker" -type f ! -name '*.sbx-*' \( \
  -path "./$flow/data/*/*" ! -path "./$flow/data/*/*/*" -fprintf "$blobs.lst" '%P\0' \
  -o -name DONE.lock -fprintf "$rest.done" '%P\0' \
  -o -fprintf "$rest.lst" '%P\0' \) -printf '%s\t%P\0'
tar -c -f "$blobs" --null --no-recursion -T "$blobs.lst"
tar -c -f "$rest" --null --no-recursion -T "$rest.lst" -T "$rest.done"
"""


def pack_files(pack_dir: str) -> Tuple[str, str, str]:
    """Where the pack of a task's outputs is left in the sandbox: the tar
    of its new blobs, the tar of its other files, and their listing."""
    base = pack_dir.rstrip("/")
    return base + "/.mf-outputs-blobs.tar", base + "/.mf-outputs.tar", base + "/.mf-outputs.lst"


def pack_script() -> str:
    """The shell script that packs the outputs (arguments: root, marker,
    flow, blobs tar, rest tar; the listing on its stdout); both tar files
    exist afterwards, empty or not."""
    return _PACK_SCRIPT


def fetch_packed_outputs(
    Gio,
    Sandbox,
    instance,
    root: str,
    flow: str,
    marker: str,
    pack_dir: str,
    cancellable,
    stats: SyncStats,
    wait: Callable[..., Any] = _sync_waiter,
    wait_all: Optional[Callable[[List[Tuple[Any, str, tuple]]], List[Any]]] = None,
    packed: bool = False,
    prefixes: Sequence[str] = (),
) -> None:
    """What list_outputs + fetch_outputs do, in one exec and at most two
    plain downloads (at the same time with @wait_all, which runs a list of
    (object, method, args) calls together): the task's new blobs (kept if
    present: the store is content addressed), then its other files, every
    DONE.lock last. The tar files stay in @pack_dir in the sandbox until the
    next task's pack replaces them or the sandbox goes."""
    blobs_tar, rest_tar, listing_file = pack_files(pack_dir)
    if packed:
        # The task's command packed them after the step (remote_script):
        # the listing and both tar files come down at once, no exec.
        with private_dir("mf-sandbox-out-") as tmp:
            files = [
                Gio.File.new_for_path(os.path.join(tmp, os.path.basename(remote)))
                for remote in (listing_file, blobs_tar, rest_tar)
            ]
            calls = [
                (instance, "download", (remote, local, cancellable))
                for remote, local in zip((listing_file, blobs_tar, rest_tar), files)
            ]
            if wait_all is not None:
                wait_all(calls)
            else:
                for obj, name, args in calls:
                    wait(obj, name, *args)
            with open(files[0].get_path(), "rb") as f:
                outputs = _parse_listing(f.read())
            _extract_outputs(
                Gio, Sandbox, root, flow, outputs, files[1], files[2], cancellable, stats, prefixes
            )
        return
    command = Sandbox.Command.new(
        ["/bin/sh", "-c", _PACK_SCRIPT, "sh", root, marker, flow, blobs_tar, rest_tar]
    )
    result = wait(instance, "exec", command, cancellable)
    _check_exec(result, "packing the task's outputs")
    outputs = _parse_listing(bytes(result.get_stdout().get_data() or b""))
    check_outputs(outputs, flow, prefixes)
    with private_dir("mf-sandbox-out-") as tmp:
        blobs_file, rest_file = (
            Gio.File.new_for_path(os.path.join(tmp, os.path.basename(remote)))
            for remote in (blobs_tar, rest_tar)
        )
        # Only the tar files that hold something were written.
        calls = [
            (instance, "download", (remote, local, cancellable))
            for is_blob, remote, local in (
                (True, blobs_tar, blobs_file),
                (False, rest_tar, rest_file),
            )
            if any(_is_blob(flow, r) == is_blob for r in outputs)
        ]
        if wait_all is not None and len(calls) > 1:
            wait_all(calls)
        else:
            for obj, name, args in calls:
                wait(obj, name, *args)
        _extract_outputs(
            Gio, Sandbox, root, flow, outputs, blobs_file, rest_file, cancellable, stats, prefixes
        )


def _check_exec(result, what: str) -> None:
    """Raises RuntimeError("@what failed: ...") unless the exec's @result
    is a success: with what the command wrote on stderr, else its exit
    status (or signal)."""
    if result.get_success():
        return
    err = result.get_stderr()
    said = bytes(err.get_data() or b"").decode("utf-8", "replace").strip() if err else ""
    if not said:
        signum = result.get_term_signal()
        said = "killed by signal %d" % signum if signum else "exit %d" % result.get_exit_code()
    raise RuntimeError("%s failed: %s" % (what, said))


def _parse_listing(listing: bytes) -> Dict[str, int]:
    """A listing of `find -printf '%s\\t%P\\0'` (size, tab, path, NUL):
    {path: size}."""
    outputs: Dict[str, int] = {}
    for item in listing.split(b"\0"):
        if item:
            size, _, rel = item.decode("utf-8", "surrogateescape").partition("\t")
            outputs[rel] = int(size)
    return outputs


def _extract_outputs(
    Gio, Sandbox, root, flow, outputs, blobs_file, rest_file, cancellable, stats, prefixes
):
    """Unpacks the two downloaded tar files of @outputs (path -> size; a
    file whose group is empty is not read): blobs first (a DONE.lock never
    names data that is not there yet). The sandbox wrote the listing and
    the tar files: only the task's own files are taken (@prefixes), and of
    each tar only the files its group lists."""
    check_outputs(outputs, flow, prefixes)
    blobs = [r for r in outputs if _is_blob(flow, r)]
    rest = [r for r in outputs if not _is_blob(flow, r)]
    dest = Gio.File.new_for_path(root)
    for group, local, flags in (
        (blobs, blobs_file, Sandbox.ArchiveFlags.KEEP_EXISTING),
        (rest, rest_file, Sandbox.ArchiveFlags.NONE),
    ):
        if not group:
            continue
        stream = local.read(cancellable)
        try:
            Sandbox.archive_extract_paths(stream, dest, group, flags, cancellable)
        finally:
            stream.close(None)
        size = sum(outputs[r] for r in group)
        stats.down_files += len(group)
        stats.down_bytes += size
        stats.details.append(
            "received %d %s (%s)"
            % (len(group), "blobs" if group is blobs else "files", _human(size))
        )
    stats.blobs_down = len(blobs)


__all__ = [
    "SyncStats",
    "upload_set",
    "send_inputs",
    "list_outputs",
    "fetch_outputs",
    "fetch_packed_outputs",
    "marker_path",
    "_count_files",
]

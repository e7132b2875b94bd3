"""The sandboxes of one run on a remote backend, kept for its next tasks.

Creating a hosted sandbox and sending it the code package is most of what a
short task costs there. The runtime makes one private directory per run
(mode 0700, ``METAFLOW_SANDBOX_POOL`` for its trampolines); every sandbox a
task creates is recorded in it as one file, ``<key>-<random>.json``, where
the key is a digest of everything that makes two sandboxes differ (backend,
image, resources, network, time to live, the secrets in the sandbox's own
environment, work directory). The file says which sandbox it is, when it was
made and which code package is unpacked in it.

A task holds an exclusive ``flock`` on its sandbox's file from the moment it
takes or creates it until it exits, so two tasks never use one sandbox at
the same time (the kernel drops the lock when the process dies, however it
dies). A task that ends well empties its work directory and the datastore
copy in the sandbox and leaves the file for the run's next task with the
same key; a task that fails, times out or is interrupted destroys its
sandbox and removes the file. At the end of the run (also a failed or
interrupted one) the runtime destroys every sandbox still listed and
removes the directory: a sandbox never outlives its run, and no other run
or flow can find it.

The runtime holds an exclusive ``flock`` on the directory's ``owner.lock``
for as long as it lives. A run that could not drain its pool (SIGKILL, a
crash of the machine) leaves the directory, and its sandboxes until their
time to live; the next run with a pool finds such a directory by its free
lock (abandoned_pool_dirs) and drains it (sandboxes its orphaned tasks
still hold are left to their time to live, and the directory with them).
"""

import fcntl
import json
import os
import stat
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

POOL_ENV = "METAFLOW_SANDBOX_POOL"
# A sandbox older than this is not given to another task: its time to live
# (the step's run-time limit + 600 s, _build_spec) must still cover the task.
MAX_AGE_S = 540.0


def pool_key(**fields: Any) -> str:
    """A digest of what the sandbox was created with (never stored in clear:
    the secrets are part of it)."""
    import hashlib

    blob = json.dumps(fields, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


POOL_PREFIX = "mf-sandbox-pool-"
OWNER_LOCK = "owner.lock"
# The runtime's lock on its pool's owner.lock, for the process's life.
_owner_fd: Optional[int] = None


def new_pool_dir() -> str:
    """A new private directory for one run's pool, locked as this process's
    (its lock goes with the process, however it ends)."""
    import tempfile

    global _owner_fd
    pool_dir = tempfile.mkdtemp(prefix=POOL_PREFIX)
    fd = os.open(
        os.path.join(pool_dir, OWNER_LOCK),
        os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
        0o600,
    )
    fcntl.flock(fd, fcntl.LOCK_EX)
    if _owner_fd is not None:
        os.close(_owner_fd)
    _owner_fd = fd
    return pool_dir


def abandoned_pool_dirs() -> List[str]:
    """This user's pools in the temporary directory whose run ended without
    draining them: nobody holds their owner.lock. (A pool made before the
    lock existed has none and is left alone.)"""
    import tempfile

    base = tempfile.gettempdir()
    found: List[str] = []
    try:
        names = os.listdir(base)
    except OSError:
        return found
    for name in names:
        if not name.startswith(POOL_PREFIX):
            continue
        path = os.path.join(base, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            continue
        try:
            fd = os.open(os.path.join(path, OWNER_LOCK), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # its run is alive
        finally:
            os.close(fd)
        found.append(path)
    return found


class Lease:
    """One sandbox of the pool, held by this process (an exclusive flock)."""

    def __init__(self, fd: int, path: str, info: Dict[str, Any]) -> None:
        self.fd = fd
        self.path = path
        self.info = info
        # How the task got it: "pooled", "prepared" (by the runtime's
        # helper) or "created".
        self.how = "pooled"

    @property
    def sandbox_id(self) -> Optional[str]:
        return self.info.get("id")

    def write(self, **info: Any) -> None:
        """Records @info (the sandbox id first of all) in the pool file."""
        self.info.update(info)
        _rewrite(self.fd, self.info)
        if self.path.endswith(".tmp"):
            # Visible to other tasks only now that it names a sandbox (they
            # skip *.tmp; drain() does not).
            final = self.path[: -len(".tmp")] + ".json"
            os.rename(self.path, final)
            self.path = final

    def note(self, **info: Any) -> None:
        """Records @info in the entry without making it visible to other
        tasks (a sandbox being prepared: drain() still finds its id)."""
        self.info.update(info)
        _rewrite(self.fd, self.info)

    def take_mark(self) -> bool:
        """A task took this sandbox: removes the mark of a prepared one
        (prepare_lease), so that other tasks no longer wait for it
        (preparing()). Returns whether it was one."""
        if self.info.pop("preparing", None) is None:
            return False
        _rewrite(self.fd, self.info)
        return True

    def release(self) -> None:
        """Leaves the sandbox in the pool for the run's next task."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def drop(self) -> None:
        """The sandbox is gone (or kept for debugging): out of the pool."""
        try:
            os.unlink(self.path)
        except OSError:
            pass
        self.release()


def _open_locked(path: str) -> Optional[int]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _rewrite(fd: int, info: Dict[str, Any]) -> None:
    """The entry's new content, never empty on the way: the new text over
    the old, then the old's longer tail cut (preparing() reads entries that
    their holder is rewriting; truncating first let it see an empty entry,
    and a task then created a sandbox of its own beside the prepared one)."""
    data = json.dumps(info).encode()
    os.pwrite(fd, data, 0)
    os.ftruncate(fd, len(data))


def _read(fd: int) -> Dict[str, Any]:
    """The entry's content; what follows its JSON object is ignored (the
    old tail of one being rewritten, see _rewrite)."""
    try:
        data = os.pread(fd, 65536, 0)
        info = json.JSONDecoder().raw_decode(data.decode())[0] if data else {}
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def acquire(
    pool_dir: str, key: str, skip: Optional[List[str]] = None
) -> Tuple[List[Lease], Optional[Lease]]:
    """Takes a free sandbox of the pool made with @key: (leases of sandboxes
    too old to give to a task, which the caller destroys and drops; the
    sandbox to use, or None: create one with create_lease()). Entries whose
    path is in @skip are passed over."""
    stale: List[Lease] = []
    try:
        names = sorted(os.listdir(pool_dir))
    except OSError:
        return stale, None
    for name in names:
        if not (name.startswith(key + "-") and name.endswith(".json")):
            continue
        path = os.path.join(pool_dir, name)
        if skip and path in skip:
            continue
        fd = _open_locked(path)
        if fd is None:
            continue  # in use by another task (or gone)
        if not os.path.exists(path):
            # Dropped between listdir and the lock.
            os.close(fd)
            continue
        lease = Lease(fd, path, _read(fd))
        if not lease.sandbox_id:
            lease.drop()
        elif time.time() - float(lease.info.get("created", 0)) < MAX_AGE_S:
            return stale, lease
        else:
            stale.append(lease)
    return stale, None


def create_lease(pool_dir: str, key: str, backend: str) -> Lease:
    """A new entry (locked, not yet visible to others) for a sandbox this
    task is about to create."""
    # (os.urandom, not the secrets module: a remote task's process imports
    # this module, and secrets' imports cost its start ~3 ms.)
    path = os.path.join(pool_dir, "%s-%s.tmp" % (key, os.urandom(8).hex()))
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return Lease(fd, path, {"backend": backend, "created": time.time()})


def prepare_lease(pool_dir: str, key: str, backend: str) -> Lease:
    """A new entry for a sandbox that the runtime's helper prepares ahead of
    the run's first task (sandbox_remote.prepare): like create_lease(), and
    marked so that a task with the same key waits for it (preparing())
    instead of creating a sandbox of its own."""
    lease = create_lease(pool_dir, key, backend)
    lease.note(preparing=True)
    return lease


def preparing(pool_dir: str, key: str) -> bool:
    """Whether a sandbox with @key is being prepared for the run, or is
    prepared and not yet taken: an entry marked by prepare_lease() whose
    helper still holds it (a helper that died before the sandbox was ready
    has no lock: nothing to wait for; drain() destroys its sandbox), and one
    the helper has made ready (.json, "preparing": false), held or not,
    until a task takes it (Lease.take_mark, at once, so that others do not
    wait for it). A task looks for a free sandbox (acquire) and then here:
    the helper may make its sandbox ready and let it go between the two
    looks, and a task that found it neither free nor being prepared created
    a second sandbox beside it (a loaded machine, session mfx19). It looks
    again instead."""
    try:
        names = os.listdir(pool_dir)
    except OSError:
        return False
    for name in names:
        if not (name.startswith(key + "-") and name.endswith((".tmp", ".json"))):
            continue
        path = os.path.join(pool_dir, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            if not name.endswith(".tmp"):
                continue
            # Made ready (Lease.write renames .tmp to .json) between the
            # listing and the open: the entry is there under its new name.
            # Skipping it let a task on a loaded machine create a second
            # sandbox beside the prepared one (session mfx21).
            name = name[: -len(".tmp")] + ".json"
            try:
                fd = os.open(
                    os.path.join(pool_dir, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
                )
            except OSError:
                continue
        try:
            info = _read(fd)
            if "preparing" not in info:
                continue
            if info["preparing"] is False and info.get("id") and name.endswith(".json"):
                return True  # ready: acquire() takes it (or another task did)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True  # its helper is at work
        finally:
            os.close(fd)
    return False


# How many sandboxes the drain destroys at the same time: a destroy on a
# remote backend is two round trips (look the sandbox up, delete it), so a
# run that ends with N pooled sandboxes waited 2N round trips one after
# another; at most this many are under way at once (the provider's rate
# limits, the runtime's sockets).
DRAIN_CONCURRENCY = 8


def drain(
    pool_dir: str,
    destroy: Callable[[List[Tuple[str, str]]], List[str]],
    before: Optional[Callable[[Dict[str, Any]], None]] = None,
    only_free: bool = False,
) -> None:
    """The end of the run: before(info) for every sandbox listed, free or
    not (the tasks have ended), then destroy([(backend, id), ...]) once for
    all of them (concurrently: sandbox_executor.destroy_pooled), which
    returns the ids it could not destroy; and remove the directory.
    @only_free (an abandoned pool): only the sandboxes no task holds, and
    the directory only if that was all of them. A sandbox whose destroy
    failed (said by destroy, with its id) stays listed and the directory
    stays: once this run has ended, the next run with a pool finds it
    abandoned and tries again (abandoned_pool_dirs), so that no sandbox of
    the run is forgotten while it may still run."""
    try:
        names = os.listdir(pool_dir)
    except OSError:
        return
    held = False
    listed: List[Tuple[str, str, str]] = []  # (file, backend, id)
    for name in names:
        if name == OWNER_LOCK:
            continue
        path = os.path.join(pool_dir, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if only_free:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    held = True
                    continue
            info = _read(fd)
        finally:
            os.close(fd)
        if info.get("id") and info.get("backend"):
            if before is not None:
                before(info)
            listed.append((path, str(info["backend"]), str(info["id"])))
    failed = set(destroy([(backend, sandbox_id) for _path, backend, sandbox_id in listed]))
    if held or failed:
        for path, _backend, sandbox_id in listed:
            if sandbox_id not in failed:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        return
    import shutil

    shutil.rmtree(pool_dir, ignore_errors=True)

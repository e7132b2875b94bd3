"""Runs inside the sandbox: the step command with mflog-structured logs.

``python -m metaflow_extensions.libsandbox.plugins.sandbox_runner`` (from the
extracted code package).  It starts ``$MF_SANDBOX_STEP_CLI`` and, for each
line the task prints,

* appends the mflog-structured line to $MFLOG_STDOUT / $MFLOG_STDERR (what
  ``save_logs`` stores as the task log, i.e. what ``Task.stdout`` shows), and
* writes the same structured line, its text prefixed with the sandbox id, to
  its own stdout / stderr, which the trampoline streams live to the runtime.
  The runtime prints structured lines but does not store them again, so every
  line ends up in the task's logs exactly once.

When the task has exited and both streams are drained, it stores the logs
with ``metaflow.mflog.save_logs`` (unless $MF_SANDBOX_SAVE_LOGS is ``host``:
then the trampoline stores them) and exits with the task's status.

Only the standard library is imported here (no Metaflow, no gi).
"""

import datetime
import os
import signal
import subprocess
import sys
import threading
import uuid
from typing import BinaryIO

from .sandbox_output import write_all

# After the task exits, how long at most to wait for output from processes
# it left behind that still hold the pipes open (both pipes together), and
# how long such a process may stay silent before the wait ends. The wait
# used to be 10 s for each pipe, always: a step that timed out (or
# returned) leaving a quiet child behind ended 20 s late, its @timeout and
# @retry with it (session mfx21).
DRAIN_TIMEOUT = 10.0
DRAIN_IDLE = 0.5


def no_core_dump() -> None:
    """This process dies of the task's signal without a core file: the
    task's core (if any) was the sandbox's business, not a copy here (also
    sandbox_remote.die_of, on the host)."""
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    except (ValueError, OSError):
        pass


def _timestamp() -> bytes:
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%f").encode("ascii")


def decorate(line: bytes) -> bytes:
    """Same format as metaflow.mflog.mflog.decorate (source "task")."""
    return b"".join(
        (
            b"[MFLOG|0|",
            _timestamp(),
            b"Z|task|",
            str(uuid.uuid4()).encode("ascii"),
            b"]",
            line,
        )
    )


class Pump(threading.Thread):
    """Copies the task's lines from @src to the mflog file @log_path and,
    structured and prefixed, to @out_fd. progress counts the lines done,
    busy says a line is on its way (read, not yet written out: a slow
    reader of @out_fd holds it there), for drain()."""

    def __init__(self, src: BinaryIO, log_path: str, out_fd: int, prefix: bytes) -> None:
        super().__init__(daemon=True)
        self.args_ = (src, log_path, out_fd, prefix)
        self.progress = 0
        self.busy = False

    def run(self) -> None:
        src, log_path, out_fd, prefix = self.args_
        with open(log_path, "ab", buffering=0) as log:
            for line in iter(src.readline, b""):
                self.busy = True
                if not line.endswith(b"\n"):
                    line += b"\n"
                structured = decorate(line)
                log.write(structured)
                header, body = structured.split(b"]", 1)
                write_all(out_fd, header + b"]" + prefix + body)
                self.progress += 1
                self.busy = False


def drain(pumps, timeout: float = DRAIN_TIMEOUT, idle: float = DRAIN_IDLE) -> None:
    """Waits for the @pumps to reach the end of their pipes (the task has
    exited): while output keeps coming or is being written out, up to
    @timeout in all; once every pump has waited @idle for a line that does
    not come, the pipes are held by a process the task left behind that
    has nothing to say, and the wait ends."""
    import time

    deadline = time.monotonic() + timeout
    seen = None
    quiet_since = time.monotonic()
    while any(p.is_alive() for p in pumps):
        now = time.monotonic()
        if now >= deadline:
            return
        state = [(p.progress, p.busy) for p in pumps]
        if state != seen or any(busy for _n, busy in state):
            seen, quiet_since = state, now
        elif now - quiet_since >= idle:
            return
        for p in pumps:
            if p.is_alive():
                p.join(min(0.05, deadline - now))
                break


def seed_local_metadata(seed_json: str) -> None:
    """Writes the local-metadata records the executor sent (relative paths
    under the current directory), keeping any that exist."""
    import json

    for rel, text in json.loads(seed_json).items():
        if os.path.isabs(rel) or ".." in rel.split("/"):
            continue
        if os.path.exists(rel):
            continue
        os.makedirs(os.path.dirname(rel), exist_ok=True)
        with open(rel, "w", encoding="utf-8") as f:
            f.write(text)


def main() -> int:
    seed = os.environ.pop("MF_SANDBOX_META_SEED", None)
    if seed:
        seed_local_metadata(seed)
    step_cli = os.environ.pop("MF_SANDBOX_STEP_CLI")
    prefix = os.environ.pop("MF_SANDBOX_LOG_PREFIX", "").encode("utf-8")
    python = os.environ.get("MF_SANDBOX_PYTHON", sys.executable)
    stdout_log = os.environ["MFLOG_STDOUT"]
    stderr_log = os.environ["MFLOG_STDERR"]

    # The step's command line is POSIX sh; an imported image need not have
    # bash (docs/metaflow.md, Local sandboxes on an image).
    shell = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
    proc = subprocess.Popen(
        [shell, "-c", step_cli],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    pumps = [
        Pump(proc.stdout, stdout_log, 1, prefix),
        Pump(proc.stderr, stderr_log, 2, prefix),
    ]
    for thread in pumps:
        thread.start()
    status = proc.wait()
    drain(pumps)

    if os.environ.pop("MF_SANDBOX_SAVE_LOGS", "") != "host":
        # Store the task's logs in the datastore; its diagnostics stay quiet.
        # (With "host", the trampoline, which has Metaflow loaded already,
        # fetches the two files and stores them: no third Metaflow import.)
        subprocess.call(
            [python, "-m", "metaflow.mflog.save_logs"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    if status < 0:
        # Die of the task's signal: the trampoline passes it on to the runtime.
        sys.stdout.flush()
        sys.stderr.flush()
        no_core_dump()
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        return 128 - status
    return status


if __name__ == "__main__":
    sys.exit(main())

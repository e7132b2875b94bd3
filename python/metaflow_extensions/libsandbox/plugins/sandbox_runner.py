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

# After the task exits, how long to wait for output from processes it left
# behind that still hold the pipes open.
DRAIN_TIMEOUT = 10.0


def _no_core_dump() -> None:
    """The task's core (if any) was the sandbox's business, not a copy here."""
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


def pump(src: BinaryIO, log_path: str, out_fd: int, prefix: bytes) -> None:
    with open(log_path, "ab", buffering=0) as log:
        for line in iter(src.readline, b""):
            if not line.endswith(b"\n"):
                line += b"\n"
            structured = decorate(line)
            log.write(structured)
            header, body = structured.split(b"]", 1)
            write_all(out_fd, header + b"]" + prefix + body)


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
        threading.Thread(target=pump, args=(proc.stdout, stdout_log, 1, prefix), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, stderr_log, 2, prefix), daemon=True),
    ]
    for thread in pumps:
        thread.start()
    status = proc.wait()
    for thread in pumps:
        thread.join(DRAIN_TIMEOUT)

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
        _no_core_dump()
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        return 128 - status
    return status


if __name__ == "__main__":
    sys.exit(main())

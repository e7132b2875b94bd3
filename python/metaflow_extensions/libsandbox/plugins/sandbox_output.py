"""A sandboxed step's output, passed on to the Metaflow runtime line by line.

Both processes the runtime starts for a task in a sandbox (the ``sandbox
step`` trampoline, sandbox_executor._run_step, and the remote task,
sandbox_remote.run) hand libsandbox their own stdout and stderr, the pipes
the runtime reads the task's log lines from. The runtime reads each pipe
with one ``readline()`` per poll wake-up, through a buffered reader: when
several lines are in the pipe at once (a remote backend delivers a step's
output in chunks), the first is shown and the others wait in the reader's
buffer, where poll does not see them, until more output comes on that pipe
or the task ends. The step's stdout then showed up after its later stderr,
or only at the end of the step.

So the step's output goes through a pipe of this process, and a thread
writes it to the runtime's pipe one line at a time, each once the runtime
has taken the one before (the pipe is empty again; FIONREAD). The order
libsandbox received stdout and stderr in is kept: it writes them one at a
time, in that order.

No Metaflow here (sandbox_remote does not load it) and no ``gi`` at module
level (the task inside the sandbox imports the plugins without PyGObject).
"""

import fcntl
import os
import stat
import struct
import termios
import threading
import time
from typing import List, Optional

# How long a line waits for the runtime to take the one before; a runtime
# that takes longer gets the lines anyway (as it would without this).
LINE_WAIT_S = 0.5


def fd_stream(fd: int, close_fd: bool = False):
    """A GOutputStream writing straight to @fd."""
    import gi

    try:
        gi.require_version("GioUnix", "2.0")
        from gi.repository import GioUnix

        return GioUnix.OutputStream.new(fd, close_fd)
    except (ValueError, ImportError, AttributeError):
        from gi.repository import Gio

        return Gio.UnixOutputStream.new(fd, close_fd)


def _unread(fd: int) -> int:
    """Bytes written to the pipe @fd that its reader has not read yet."""
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return 0


def write_all(fd: int, data: bytes) -> bool:
    """Writes all of @data to @fd; False when its reader is gone."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        except OSError:
            return False  # the runtime is gone: drop the rest
        view = view[n:]
    return True


def _wait_taken(fd: int) -> None:
    # The runtime usually takes a line within a few dozen microseconds:
    # look again at once a few times before sleeping (a sleep is ~0.1 ms).
    for _ in range(20):
        if not _unread(fd):
            return
        os.sched_yield()
    deadline = time.monotonic() + LINE_WAIT_S
    delay = 0.0001
    while _unread(fd) and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.005)


def _forward_lines(src: int, dest: int) -> None:
    pending = b""
    alive = True
    while True:
        try:
            data = os.read(src, 65536)
        except InterruptedError:
            continue
        except OSError:
            data = b""
        if not data:
            break
        if not alive:
            continue  # keep draining, so libsandbox's writes never block
        pending += data
        start = 0
        while alive:
            end = pending.find(b"\n", start)
            if end < 0:
                break
            alive = write_all(dest, pending[start : end + 1])
            start = end + 1
            if alive:
                _wait_taken(dest)
        pending = pending[start:]
    if pending and alive:
        write_all(dest, pending)  # a last line without its newline
    os.close(src)


class LineOutput:
    """stdout and stderr streams for a Sandbox.Command that forward to this
    process's @fds line by line (above). Where an fd is not a pipe (a
    terminal, a file) the stream writes to it directly. close() once the
    command has ended: it waits until every line is passed on (at most
    @timeout seconds per stream; the threads do not keep the process
    alive)."""

    def __init__(self) -> None:
        self._streams: List = []
        self._threads: List[threading.Thread] = []

    def stream(self, fd: int):
        try:
            is_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)
        except OSError:
            is_pipe = False
        if not is_pipe:
            return fd_stream(fd)
        read_end, write_end = os.pipe()
        thread = threading.Thread(
            target=_forward_lines, args=(read_end, fd), name="output-%d" % fd, daemon=True
        )
        thread.start()
        stream = fd_stream(write_end, close_fd=True)
        self._streams.append(stream)
        self._threads.append(thread)
        return stream

    def close(self, timeout: Optional[float] = 30.0) -> None:
        streams, self._streams = self._streams, []
        for stream in streams:
            try:
                stream.close(None)
            except Exception:  # noqa: BLE001 - a failed close still ends the pipe
                pass
        threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout)

# libsandbox - `sandboxctl exec -t` and `run -t` driven from a real
# pseudo-terminal (os.openpty), against the local backend, then `exec -t`
# against the Daytona emulator (the toolbox's PTY sessions). Prints TAP.
#
# sandboxctl runs with the slave side of a pseudo-terminal as its stdin,
# stdout, stderr and controlling terminal; this script is the "user" at the
# master side: it reads what the terminal shows, types keys, resizes the
# window (the kernel sends sandboxctl SIGWINCH) and checks that the
# terminal's modes are given back when sandboxctl ends.

from __future__ import annotations

import fcntl
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
from pathlib import Path

BUILDDIR = Path(os.environ.get("TOP_BUILDDIR", "."))
CTL = os.environ.get("SANDBOXCTL", str(BUILDDIR / "tools" / "sandboxctl"))
# A limit on every wait, so that a broken run fails instead of hanging (not
# a timing assertion: a working run never comes near it).
GUARD_S = 60

results: list[tuple[bool, str]] = []


def check(ok: bool, name: str, detail: object = "") -> None:
    results.append((bool(ok), name if ok else f"{name}: {detail!r}"))


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Session:
    """sandboxctl ARGS on a new pseudo-terminal of ROWS x COLS."""

    def __init__(self, args: list[str], rows: int = 24, cols: int = 80) -> None:
        self.master, slave = os.openpty()
        set_size(slave, rows, cols)
        self.modes = termios.tcgetattr(slave)
        self.slave_name = os.ttyname(slave)

        def make_controlling() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            [CTL, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=make_controlling,
        )
        self.slave = slave
        self.seen = b""

    def wait_for(self, needle: bytes) -> bool:
        while needle not in self.seen:
            ready, _, _ = select.select([self.master], [], [], GUARD_S)
            if not ready:
                return False
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return False
            if not chunk:
                return False
            self.seen += chunk
        return True

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def finish(self) -> int:
        # Read while it runs, so sandboxctl never blocks on a full terminal;
        # then what is left.
        guard = 0.0
        while self.proc.poll() is None and guard < GUARD_S:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            guard += 0.1
            if ready:
                self.seen += os.read(self.master, 65536)
        if self.proc.poll() is None:
            self.proc.kill()
        rc = self.proc.wait()
        while select.select([self.master], [], [], 0)[0]:
            chunk = os.read(self.master, 65536)
            if not chunk:
                break
            self.seen += chunk
        return rc

    def modes_restored(self) -> bool:
        return termios.tcgetattr(self.slave) == self.modes

    def close(self) -> None:
        os.close(self.slave)
        os.close(self.master)


def daytona_cases() -> None:
    """exec -t --backend daytona, against tests/emulators/daytona-emulator."""
    program = BUILDDIR / "tests" / "emulators" / "daytona-emulator"
    if not program.exists():
        check(False, "daytona: the emulator is built", str(program))
        return
    emu = subprocess.Popen(
        [str(program), "--state-delay-ms", "20"], stdout=subprocess.PIPE, text=True
    )
    assert emu.stdout is not None
    try:
        for line in emu.stdout:
            key, _, value = line.strip().partition("=")
            if key == "READY":
                break
            os.environ[key] = value
        ctl = [CTL, "--backend", "daytona"]
        made = subprocess.run([*ctl, "create"], capture_output=True, text=True, check=False)
        sandbox_id = made.stdout.strip()
        check(made.returncode == 0 and sandbox_id != "", "daytona: create", made.stderr)

        # Our window size, a terminal, typed keys echoed and read, the status.
        s = Session(
            [
                "--backend",
                "daytona",
                "exec",
                "-t",
                sandbox_id,
                "--",
                "sh",
                "-c",
                'stty size; test -t 0 && echo IS-TTY; echo ready; read x; echo "got:$x"; exit 4',
            ],
            33,
            101,
        )
        check(s.wait_for(b"ready"), "daytona exec -t: the command starts", s.seen)
        s.type(b"hello\r")
        rc = s.finish()
        check(rc == 4, "daytona exec -t: exits with the command's status", (rc, s.seen))
        check(b"33 101\r\n" in s.seen, "daytona exec -t: our window size", s.seen)
        check(b"IS-TTY" in s.seen, "daytona exec -t: stdin is a terminal", s.seen)
        check(
            b"hello\r\n" in s.seen and b"got:hello" in s.seen, "daytona exec -t: typed keys", s.seen
        )
        check(
            b"__libsandbox_" not in s.seen, "daytona exec -t: no trace of the typed command", s.seen
        )
        check(s.modes_restored(), "daytona exec -t: our terminal's modes are restored")
        s.close()

        # A resize of our window reaches the command's (POST …/resize).
        s = Session(
            [
                "--backend",
                "daytona",
                "exec",
                "-t",
                sandbox_id,
                "--",
                "sh",
                "-c",
                "trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 0.1; done",
            ]
        )
        check(s.wait_for(b"ready"), "daytona exec -t (resize): the command starts", s.seen)
        set_size(s.master, 50, 132)
        rc = s.finish()
        check(rc == 0 and b"50 132\r\n" in s.seen, "daytona exec -t: a resize", (rc, s.seen))
        s.close()

        # Ctrl-C ends the command by SIGINT (130).
        s = Session(
            [
                "--backend",
                "daytona",
                "exec",
                "-t",
                sandbox_id,
                "--",
                "sh",
                "-c",
                "echo ready; exec sleep 600",
            ]
        )
        check(s.wait_for(b"ready"), "daytona exec -t (Ctrl-C): the command starts", s.seen)
        s.type(b"\x03")
        rc = s.finish()
        check(rc == 130, "daytona exec -t: Ctrl-C ends the command by SIGINT (130)", (rc, s.seen))
        check(s.modes_restored(), "daytona exec -t: modes restored after Ctrl-C")
        s.close()
        subprocess.run([*ctl, "rm", "-f", sandbox_id], capture_output=True, check=False)

        # The toolbox reads a shell's code 128 + N as "signal N": a command
        # that exits with 147 was "killed by SIGSTOP", and run --raise-signal
        # stopped sandboxctl itself for good (killed here after GUARD_S).
        # Now a signal that ends no process is the exit status it came from.
        s = Session(
            ["--backend", "daytona", "run", "-t", "--raise-signal", "--", "sh", "-c", "exit 147"]
        )
        rc = s.finish()
        check(rc == 147, "daytona run -t --raise-signal: exit 147 is no SIGSTOP", (rc, s.seen))
        s.close()
        # A signal that does end a process is still raised.
        s = Session(
            [
                "--backend",
                "daytona",
                "run",
                "-t",
                "--raise-signal",
                "--",
                "sh",
                "-c",
                "kill -TERM $$",
            ]
        )
        rc = s.finish()
        check(rc == -15, "daytona run -t --raise-signal: SIGTERM is raised", (rc, s.seen))
        s.close()
    finally:
        emu.terminate()
        emu.wait(30)


def main() -> int:
    work = tempfile.mkdtemp(prefix="test-sandboxctl-tty.")
    os.environ["SANDBOX_LOCAL_ROOT"] = os.path.join(work, "root")
    os.makedirs(os.environ["SANDBOX_LOCAL_ROOT"])
    os.environ.pop("SANDBOX_BACKEND", None)
    try:
        # The window size, the terminal, and the modes given back.
        s = Session(
            ["run", "-t", "--", "sh", "-c", "stty size; tty; test -t 0 && echo IS-TTY"], 33, 101
        )
        rc = s.finish()
        check(rc == 0, "run -t exits with the command's status", (rc, s.seen))
        check(b"33 101\r\n" in s.seen, "run -t: the command's terminal has our window size", s.seen)
        check(b"/dev/pts/" in s.seen and b"IS-TTY" in s.seen, "run -t: stdin is a terminal", s.seen)
        check(s.modes_restored(), "run -t: our terminal's modes are restored")
        s.close()

        # Keys typed here reach an interactive read, echoed by its terminal.
        s = Session(["run", "-t", "--", "sh", "-c", 'echo ready; read x; echo "got:$x"'])
        check(s.wait_for(b"ready"), "run -t: the command starts", s.seen)
        s.type(b"hello\r")
        rc = s.finish()
        check(rc == 0 and b"got:hello" in s.seen, "run -t: typed keys reach read", (rc, s.seen))
        check(b"hello\r\n" in s.seen, "run -t: the command's terminal echoes them", s.seen)
        s.close()

        # Resizing our window resizes the command's (SIGWINCH).
        # (The command waits for its SIGWINCH: a key typed after the resize
        # could overtake the signal on its way through sandboxctl.)
        s = Session(
            [
                "run",
                "-t",
                "--",
                "sh",
                "-c",
                "trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 0.1; done",
            ],
            24,
            80,
        )
        check(s.wait_for(b"ready"), "run -t (resize): the command starts", s.seen)
        set_size(s.master, 50, 132)
        rc = s.finish()
        check(
            rc == 0 and b"50 132\r\n" in s.seen,
            "run -t: a resize reaches the command",
            (rc, s.seen),
        )
        s.close()

        # Ctrl-C interrupts the command in the sandbox, not sandboxctl: the
        # command ends by SIGINT (130), and the modes are restored.
        s = Session(["run", "-t", "--", "sh", "-c", "echo ready; exec sleep 600"])
        check(s.wait_for(b"ready"), "run -t (Ctrl-C): the command starts", s.seen)
        s.type(b"\x03")
        rc = s.finish()
        check(rc == 130, "run -t: Ctrl-C ends the command by SIGINT (130)", (rc, s.seen))
        check(s.modes_restored(), "run -t: modes restored after Ctrl-C")
        s.close()

        # exec -t into an existing sandbox; an error (exit 127 inside) too.
        made = subprocess.run([CTL, "create"], capture_output=True, text=True, check=False)
        sandbox_id = made.stdout.strip()
        check(made.returncode == 0 and sandbox_id != "", "create for exec -t", made.stderr)
        s = Session(["exec", "-t", sandbox_id, "--", "sh", "-c", "tty; exit 7"])
        rc = s.finish()
        check(
            rc == 7 and b"/dev/pts/" in s.seen,
            "exec -t: runs on a terminal, its status",
            (rc, s.seen),
        )
        check(s.modes_restored(), "exec -t: modes restored")
        s.close()
        s = Session(["exec", "-t", sandbox_id, "--", "no-such-program-here"])
        rc = s.finish()
        check(rc == 5, "exec -t: a command that cannot start exits 5", (rc, s.seen))
        check(s.modes_restored(), "exec -t: modes restored after an error")
        s.close()

        # Without a terminal, -t fails clearly.
        done = subprocess.run(
            [CTL, "exec", "-t", sandbox_id, "--", "true"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        check(
            done.returncode == 2 and "terminal" in done.stderr,
            "exec -t without a terminal: usage error that says why",
            (done.returncode, done.stderr),
        )
        subprocess.run([CTL, "rm", "-f", sandbox_id], capture_output=True, check=False)

        daytona_cases()
    finally:
        subprocess.run([CTL, "gc", "--all"], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)

    print(f"1..{len(results)}")
    for i, (ok, name) in enumerate(results, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

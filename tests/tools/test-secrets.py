# libsandbox - API keys never leak (issue 8 §6; docs/security.md)
#
# Sets recognisable keys (DAYTONA_API_KEY, E2B_API_KEY containing
# "canary-<random hex>"), runs the daytona and e2b backends against their
# emulators with G_MESSAGES_DEBUG=all through the C library (sandboxctl,
# text and --json, successes and failures: 401, 500, bad image, unknown
# sandbox, failing command) and through PyGObject, and asserts that the
# random part appears in no output, no error message, no environment seen
# inside a sandbox, and no command line (/proc/PID/cmdline) of any process
# on the machine while all this runs. Prints TAP.
#
# The Metaflow side (metadata, datastore, step environment) is
# tests/metaflow/test_mf_secrets.py.

from __future__ import annotations

import http.server
import os
import secrets
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

BUILDDIR = Path(os.environ.get("TOP_BUILDDIR", "."))
CTL = os.environ.get("SANDBOXCTL", str(BUILDDIR / "tools" / "sandboxctl"))
HEX = secrets.token_hex(8)
KEYS = {"daytona": f"sk-canary-{HEX}", "e2b": f"e2b_sk-canary-{HEX}"}
TIMEOUT = 120

results: list[tuple[bool, str]] = []
captured: list[tuple[str, str]] = []  # (what, text): everything scanned at the end


def check(ok: bool, name: str) -> None:
    results.append((bool(ok), name))


# ---- argv of every process, sampled while the test runs ----

argv_hits: list[str] = []
stop_scan = threading.Event()
scans = [0]


def scan_cmdlines() -> None:
    me = str(os.getpid())
    while not stop_scan.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or pid == me:
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if HEX.encode() in cmdline:
                argv_hits.append(f"{pid}: {cmdline!r}")
        scans[0] += 1
        stop_scan.wait(0.02)


# ---- emulators and a failing server ----


def start_emulator(name: str, tmp: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    program = BUILDDIR / "tests" / "emulators" / f"{name}-emulator"
    # The key goes by environment, never on a command line.
    env = dict(os.environ, SANDBOX_LOCAL_ROOT=str(tmp / name))
    env[f"{name.upper()}_EMULATOR_API_KEY"] = KEYS[name]
    args = [str(program)] + (["--state-delay-ms", "20"] if name == "daytona" else [])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
    out: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.strip()
        if line == "READY":
            break
        key, _, value = line.partition("=")
        out[key] = value
    assert out.get(f"{name.upper()}_API_KEY") == KEYS[name], (
        "the emulator ignored the configured key"
    )
    return proc, out


class Failing(http.server.BaseHTTPRequestHandler):
    """Answers every request with a 500 (and a JSON body naming no key)."""

    def _fail(self) -> None:
        body = b'{"message":"internal error","statusCode":500}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _fail

    def log_message(self, *args: object) -> None:
        pass


# ---- drivers ----


def run(
    what: str, args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        args, env=env, input=stdin, capture_output=True, text=True, timeout=TIMEOUT
    )
    captured.append((f"{what} stdout", proc.stdout))
    captured.append((f"{what} stderr", proc.stderr))
    return proc


def drive_sandboxctl(backend: str, env: dict[str, str], tmp: Path) -> None:
    b = ["--backend", backend]
    create = run(f"{backend} create", [CTL, *b, "create", "--label", "secrets=1"], env)
    check(create.returncode == 0, f"{backend}: sandboxctl create")
    sid = create.stdout.strip().splitlines()[-1] if create.stdout.strip() else "none"
    inside = run(f"{backend} exec env", [CTL, *b, "exec", sid, "--", "sh", "-c", "env; id -u"], env)
    check(
        inside.returncode == 0 and "PATH=" in inside.stdout, f"{backend}: exec env in the sandbox"
    )
    check(HEX not in inside.stdout, f"{backend}: the key is not in the sandbox's environment")
    src = tmp / f"{backend}-up.txt"
    src.write_text("payload\n")
    up = run(f"{backend} cp up", [CTL, *b, "cp", str(src), f"{sid}:/tmp/up.txt"], env)
    down = run(
        f"{backend} cp down",
        [CTL, *b, "cp", f"{sid}:/tmp/up.txt", str(tmp / f"{backend}-down.txt")],
        env,
    )
    check(
        up.returncode == 0
        and down.returncode == 0
        and (tmp / f"{backend}-down.txt").read_text() == "payload\n",
        f"{backend}: cp up and down",
    )
    ls = run(f"{backend} ls", [CTL, *b, "ls"], env)
    lsj = run(f"{backend} ls --json", [CTL, *b, "--json", "ls"], env)
    check(sid in ls.stdout and sid in lsj.stdout, f"{backend}: ls and ls --json")
    fail = run(f"{backend} exec false", [CTL, *b, "exec", sid, "--", "sh", "-c", "exit 7"], env)
    nocmd = run(f"{backend} exec missing", [CTL, *b, "exec", sid, "--", "no-such-command-xyz"], env)
    check(fail.returncode == 7 and nocmd.returncode != 0, f"{backend}: failing commands")
    rm = run(f"{backend} rm", [CTL, *b, "rm", sid], env)
    check(rm.returncode == 0, f"{backend}: rm")
    gone = run(f"{backend} exec gone", [CTL, *b, "--json", "exec", sid, "--", "true"], env)
    check(gone.returncode == 4, f"{backend}: exec in a removed sandbox fails (not found)")
    # The emulators build any image, so this may succeed; its output is
    # searched all the same, and what it made is removed.
    bad_image = run(
        f"{backend} bad image", [CTL, *b, "--json", "create", "--image", "no-such-image:0"], env
    )
    if bad_image.returncode == 0:
        run(f"{backend} rm bad image", [CTL, *b, "gc", "--all"], env)
    # A wrong key (that also contains the canary): 401, in text and JSON.
    wrong = dict(env)
    wrong[f"{backend.upper()}_API_KEY"] = KEYS[backend] + "-wrong"
    auth = run(f"{backend} 401", [CTL, *b, "ls"], wrong)
    authj = run(f"{backend} 401 --json", [CTL, *b, "--json", "create"], wrong)
    check(
        auth.returncode != 0
        and authj.returncode != 0
        and ("key" in auth.stderr.lower() or "auth" in auth.stderr.lower()),
        f"{backend}: 401 fails naming the key",
    )


PY_DRIVER = r"""
import sys
import gi
gi.require_version("Sandbox", "1.0")
from gi.repository import Gio, GLib, Sandbox
backend = Sandbox.Backend.new_for_name(sys.argv[1])
spec = Sandbox.Spec()
spec.set_label("secrets", "py")
inst = backend.create(spec, None)
out = Gio.MemoryOutputStream.new_resizable()
cmd = Sandbox.Command.new(["sh", "-c", "env; echo done"])
cmd.set_stdout_stream(out)
r = inst.exec(cmd, None)
out.close(None)
print(out.steal_as_bytes().get_data().decode())
src = Gio.File.new_for_path(sys.argv[2])
inst.upload(src, "/tmp/py.txt", None)
inst.download("/tmp/py.txt", Gio.File.new_for_path(sys.argv[2] + ".back"), None)
print([i.get_id() for i in backend.list({"secrets": "py"}, None)])
inst.destroy(None)
for attempt in (lambda: backend.get_instance("sbx-000000000000", None),
                lambda: inst.exec(Sandbox.Command.new(["true"]), None)):
    try:
        attempt()
    except GLib.Error as e:
        print("error:", e.domain, e.code, e.message)
"""


def drive_python(backend: str, env: dict[str, str], tmp: Path) -> None:
    src = tmp / f"{backend}-py.txt"
    src.write_text("py\n")
    proc = run(f"{backend} python", [sys.executable, "-c", PY_DRIVER, backend, str(src)], env)
    check(
        proc.returncode == 0 and "done" in proc.stdout and proc.stdout.count("error:") == 2,
        f"{backend}: PyGObject create/exec/upload/download/list/destroy and errors",
    )
    wrong = dict(env)
    wrong[f"{backend.upper()}_API_KEY"] = KEYS[backend] + "-wrong"
    bad = run(f"{backend} python 401", [sys.executable, "-c", PY_DRIVER, backend, str(src)], wrong)
    check(bad.returncode != 0 and "GLib.GError" in bad.stderr, f"{backend}: PyGObject 401 raises")


def drive_500(backend: str, env: dict[str, str]) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    broken = dict(env, SANDBOX_HTTP_TIMEOUT="5")
    if backend == "daytona":
        broken["DAYTONA_API_URL"] = url + "/api"
    else:
        broken["E2B_API_URL"] = url
    ls = run(f"{backend} 500", [CTL, "--backend", backend, "ls"], broken)
    create = run(f"{backend} 500 create", [CTL, "--backend", backend, "--json", "create"], broken)
    server.shutdown()
    check(
        ls.returncode != 0
        and create.returncode != 0
        and "500" in ls.stderr + create.stderr + create.stdout,
        f"{backend}: 500 fails",
    )


def main() -> int:
    scanner = threading.Thread(target=scan_cmdlines, daemon=True)
    scanner.start()
    emulators = []
    with tempfile.TemporaryDirectory(prefix="test-secrets-") as tmpdir:
        tmp = Path(tmpdir)
        try:
            for backend in ("daytona", "e2b"):
                proc, emu_env = start_emulator(backend, tmp)
                emulators.append(proc)
                env = dict(os.environ, G_MESSAGES_DEBUG="all", **emu_env)
                env.pop("SANDBOX_BACKEND", None)
                drive_sandboxctl(backend, env, tmp)
                drive_python(backend, env, tmp)
                drive_500(backend, env)
        finally:
            for proc in emulators:
                proc.terminate()
                proc.wait(30)
            stop_scan.set()
            scanner.join()
        files = [p for p in tmp.rglob("*") if p.is_file()]
        for path in files:
            captured.append((str(path), path.read_bytes().decode("utf-8", "replace")))

    debug = sum(1 for what, text in captured if "-DEBUG:" in text)
    check(debug > 10, f"G_MESSAGES_DEBUG=all: {debug} outputs with debug messages were searched")
    leaks = [what for what, text in captured if HEX in text]
    for what in leaks:
        print(
            f"# leaked in {what}: "
            + next(t for w, t in captured if w == what)[:2000].replace("\n", "\n# ")
        )
    check(not leaks, f"the key appears in none of {len(captured)} outputs and files")
    for hit in argv_hits[:5]:
        print(f"# in argv: {hit}")
    check(
        scans[0] > 10 and not argv_hits,
        f"the key is in no process's argv ({scans[0]} scans of /proc)",
    )

    print(f"1..{len(results)}")
    for i, (ok, name) in enumerate(results, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/bin/bash
# An emulator killed with SIGKILL (a crashed test, an aborted CI job) takes
# its sandboxes with it: each emulated sandbox is a local sandbox with
# die-with-owner, so no bwrap is left running on the machine. Prints TAP.
set -u
builddir=${TOP_BUILDDIR:-.}
root=$(mktemp -d "${TMPDIR:-/tmp}/emulators-killed-XXXXXX")
trap 'rm -rf "$root"' EXIT
export SANDBOX_LOCAL_ROOT="$root"

exec /usr/bin/python3 - "$builddir" "$root" <<'PY'
import json, os, signal, subprocess, sys, time, urllib.request

builddir, root = sys.argv[1], sys.argv[2]
print("1..4")
n = 0

def ok(cond, what):
    global n
    n += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (n, what))
    sys.stdout.flush()

def live():
    count = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]) == b"bwrap" and any(root.encode() in a for a in argv):
            count += 1
    return count

def wait_for(pred, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()

def post(url, headers, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers=dict(headers, **{"Content-Type": "application/json"}))
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)

for prog in ("e2b-emulator", "daytona-emulator"):
    p = subprocess.Popen([os.path.join(builddir, "tests", "emulators", prog)],
                         stdout=subprocess.PIPE, text=True)
    env = {}
    for line in p.stdout:
        line = line.strip()
        if line == "READY":
            break
        k, _, v = line.partition("=")
        env[k] = v
    if prog == "e2b-emulator":
        post(env["E2B_API_URL"] + "/sandboxes", {"X-API-Key": env["E2B_API_KEY"]},
             {"templateID": "base", "timeout": 300})
    else:
        post(env["DAYTONA_API_URL"] + "/sandbox",
             {"Authorization": "Bearer " + env["DAYTONA_API_KEY"]}, {})
    ok(wait_for(lambda: live() >= 1, 30), "%s: its sandbox runs" % prog)
    p.send_signal(signal.SIGKILL)
    p.wait()
    ok(wait_for(lambda: live() == 0, 10),
       "%s killed with SIGKILL: no bwrap of its sandboxes left (%d)" % (prog, live()))
PY

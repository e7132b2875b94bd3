#!/bin/bash
# The Daytona emulator's --request-log: a first line saying when its clock
# started in local time (as Metaflow stamps its log lines), then one line
# per request, milliseconds since then. Prints TAP.
set -u
builddir=${TOP_BUILDDIR:-.}
dir=$(mktemp -d "${TMPDIR:-/tmp}/request-log-XXXXXX")
trap 'rm -rf "$dir"' EXIT

exec /usr/bin/python3 - "$builddir" "$dir" <<'PY'
import datetime, os, re, subprocess, sys, time, urllib.request

builddir, tmp = sys.argv[1], sys.argv[2]
log = os.path.join(tmp, "requests.log")
print("1..3")
before = datetime.datetime.now()
proc = subprocess.Popen([os.path.join(builddir, "tests/emulators/daytona-emulator"),
                         "--request-log", log], stdout=subprocess.PIPE, text=True)
found = {}
for line in proc.stdout:
    line = line.strip()
    if line == "READY":
        break
    key, _, value = line.partition("=")
    found[key] = value
try:
    req = urllib.request.Request(found["DAYTONA_API_URL"] + "/sandbox",
                                 headers={"Authorization": "Bearer " + found["DAYTONA_API_KEY"]})
    urllib.request.urlopen(req, timeout=30).read()
finally:
    proc.terminate()
    proc.wait(30)
after = datetime.datetime.now()
lines = open(log).read().splitlines()
m = re.fullmatch(r"# 0\.0 = (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})", lines[0] if lines else "")
print(("ok" if m else "not ok") + " 1 - the first line gives the clock's start: %r" % (lines[:1],))
start = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f") if m else None
ok = start is not None and before - datetime.timedelta(seconds=1) <= start <= after
print(("ok" if ok else "not ok") + " 2 - in local time, between the emulator's start and end (%s)" % start)
ok = len(lines) == 2 and re.fullmatch(r"\d+\.\d GET /api/sandbox", lines[1]) is not None
print(("ok" if ok else "not ok") + " 3 - then one line per request: %r" % (lines[1:],))
PY

#!/bin/bash
# sandboxctl port-url, volume and --volume (issue 18): the local backend,
# and daytona against its emulator program. Prints TAP.

if [ -z "${BASH_VERSION:-}" ]; then
  exec bash "$0" "$@"
fi

set -u

: "${SANDBOXCTL:?SANDBOXCTL must name the sandboxctl to test}"
CTL=$SANDBOXCTL
BUILD=${TOP_BUILDDIR:-$(pwd)}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/test-sandboxctl-ports.XXXXXX")
export SANDBOX_LOCAL_ROOT="$WORK/root/local"
mkdir -p "$SANDBOX_LOCAL_ROOT"
unset SANDBOX_BACKEND SANDBOX_BWRAP SANDBOX_LOCAL_VOLUMES
PY=/usr/bin/python3
EMU_PID=

cleanup () {
  "$CTL" gc --all --backend local >/dev/null 2>&1
  if [ -n "$EMU_PID" ]; then
    "$CTL" gc --all --backend daytona >/dev/null 2>&1
    kill "$EMU_PID" 2>/dev/null
    wait "$EMU_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

n=0
check () {
  local name=$1
  shift
  n=$((n + 1))
  if "$@"; then
    echo "ok $n - $name"
  else
    echo "not ok $n - $name"
    echo "# failed: $*"
    sed 's/^/# err: /' "$WORK/err" 2>/dev/null | head -5
  fi
}
ctl () {
  "$CTL" "$@" >"$WORK/out" 2>"$WORK/err"
  rc=$?
}
rc_is () { [ "$rc" -eq "$1" ]; }
out_is () { [ "$(cat "$WORK/out")" = "$1" ]; }
out_has () { grep -q -e "$1" "$WORK/out"; }
err_has () { grep -q -e "$1" "$WORK/err"; }
json_ok () { "$PY" -c "import json, sys; j = json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$WORK/out"; }
free_port () { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

if ! "$CTL" run -- true >"$WORK/out" 2>"$WORK/err"; then
  echo "1..0 # SKIP the local backend cannot run here: $(head -c 200 "$WORK/err" | tr '\n' ' ')"
  exit 0
fi

# Starts a web server on PORT in sandbox ID, serving index.html = MARKER.
serve () {
  "$CTL" exec "$@" -- sh -c "mkdir -p /tmp/www && cd /tmp/www && echo $MARKER > index.html && \
    (setsid python3 -m http.server $PORT --bind 127.0.0.1 >/dev/null 2>&1 &) && \
    for i in \$(seq 100); do python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", $PORT))' \
    2>/dev/null && exit 0; sleep 0.1; done; exit 1" >/dev/null 2>&1
}
# fetch URL [TOKEN]: the body of URL/index.html, or nothing.
fetch () {
  "$PY" - "$1" "${2:-}" <<'PYEOF'
import sys, urllib.request
headers = {"x-daytona-preview-token": sys.argv[2]} if sys.argv[2] else {}
try:
    with urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/index.html", headers=headers), timeout=30) as r:
        sys.stdout.write(r.read().decode())
except Exception as e:
    print("error:", e, file=sys.stderr)
PYEOF
}

backend_tests () {
  local b=$1 id vol
  vol="ctl-$RANDOM$RANDOM"

  # --- volumes ------------------------------------------------------------
  ctl volume create --backend "$b" "$vol"
  check "$b: volume create prints the name" eval 'rc_is 0 && out_is "$vol"'
  ctl volume ls --backend "$b"
  check "$b: volume ls lists it under NAME" eval 'rc_is 0 && out_has "^NAME" && out_has "^$vol\$"'
  ctl volume ls --backend "$b" --json
  check "$b: volume ls --json" json_ok "any(v['name'] == '$vol' for v in j)"
  ctl run --backend "$b" --volume "$vol:/data" -- sh -c 'echo through-the-volume > /data/f'
  check "$b: run --volume writes into the volume" rc_is 0
  id=$("$CTL" create --backend "$b" --volume "$vol:/vol" 2>"$WORK/err")
  check "$b: create --volume" [ -n "$id" ]
  ctl exec --backend "$b" "$id" -- cat /vol/f
  check "$b: a second sandbox reads what the first wrote" eval 'rc_is 0 && out_is through-the-volume'
  "$CTL" rm --backend "$b" "$id" >/dev/null 2>&1
  # (mfx23) One volume at two paths: the second replaced the first, silently.
  ctl create --backend "$b" --volume "$vol:/data" --volume "$vol:/other"
  check "$b: --volume twice at two paths is refused, naming both" \
    eval 'rc_is 2 && err_has /data && err_has /other && [ ! -s "$WORK/out" ]'
  ctl create --backend "$b" --volume "no-such-volume-$RANDOM:/data"
  check "$b: create with a missing volume fails" eval '! rc_is 0'
  ctl volume rm --backend "$b" --json "$vol"
  check "$b: volume rm --json" eval 'rc_is 0 && json_ok "j == [{\"name\": \"$vol\"}]"'
  ctl volume rm --backend "$b" "$vol"
  check "$b: volume rm of a missing volume exits 4" rc_is 4

  # --- port-url -------------------------------------------------------------
  PORT=$(free_port)
  MARKER="ctl-served-$RANDOM"
  id=$("$CTL" create --backend "$b" --network 2>"$WORK/err")
  check "$b: create --network" [ -n "$id" ]
  serve --backend "$b" "$id"
  check "$b: a server starts inside" [ $? -eq 0 ]
  ctl port-url --backend "$b" --json "$id" "$PORT"
  check "$b: port-url --json" json_ok "j['id'] == '$id' and j['port'] == $PORT and j['url'].startswith('http')"
  url=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$WORK/out")
  token=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"] or "")' "$WORK/out")
  check "$b: the server answers through the URL" [ "$(fetch "$url" "$token")" = "$MARKER" ]
  ctl port-url --backend "$b" "$id" "$PORT"
  check "$b: port-url prints the URL first" eval 'rc_is 0 && [ "$(head -n1 "$WORK/out")" = "$url" ]'
  ctl port-url --backend "$b" "$id" 0
  check "$b: port-url refuses port 0 (usage)" rc_is 2
  "$CTL" rm --backend "$b" "$id" >/dev/null 2>&1
}

backend_tests local

ctl volume create ../escape
check "local: a volume name with a slash or .. is a usage error" eval 'rc_is 2 && err_has "volume name"'
ctl create --volume justaname
check "local: --volume without :PATH is a usage error" rc_is 2
# (mfx23) Two volumes, or a volume and a mount, at one path: one hid the other.
"$CTL" volume create mfx-a mfx-b >/dev/null 2>&1
mkdir -p "$WORK/m"
ctl run --volume mfx-a:/data --volume mfx-b:/data -- true
check "local: two volumes at one path are refused, naming both" \
  eval 'rc_is 2 && err_has mfx-a && err_has mfx-b'
ctl run --volume mfx-a:/data --mount "$WORK/m:/data" -- true
check "local: a volume and a mount at one path are refused, naming both" \
  eval 'rc_is 2 && err_has mfx-a && err_has "$WORK/m"'
"$CTL" volume rm mfx-a mfx-b >/dev/null 2>&1
id=$("$CTL" create 2>"$WORK/err")
ctl port-url "$id" 8080
check "local: port-url without network says what to do" eval 'rc_is 1 && err_has "--network"'
"$CTL" rm "$id" >/dev/null 2>&1
ctl volume ls --backend e2b
check "e2b: volume is refused clearly" eval '! rc_is 0 && err_has "volumes"'

# --- daytona, against its emulator ------------------------------------------
"$BUILD/tests/emulators/daytona-emulator" --state-delay-ms 20 >"$WORK/emu" 2>"$WORK/emu-err" &
EMU_PID=$!
for _ in $(seq 300); do
  grep -q '^READY' "$WORK/emu" 2>/dev/null && break
  sleep 0.1
done
DAYTONA_API_URL=$(sed -n 's/^DAYTONA_API_URL=//p' "$WORK/emu")
DAYTONA_API_KEY=$(sed -n 's/^DAYTONA_API_KEY=//p' "$WORK/emu")
export DAYTONA_API_URL DAYTONA_API_KEY
backend_tests daytona

# A remote sandbox's labels are whatever was set through the account's API
# (another user of the organisation, a script): ls printed them as they
# came, so their escape sequences reached the terminal (here a window
# title). The table shows control characters escaped; --json keeps them.
esc=$(printf '\033]0;PWNED\007')
hostile_id=$("$CTL" create --backend daytona --label "x=${esc}v" 2>"$WORK/err")
ctl ls --backend daytona
check "daytona: ls shows a label's escape sequence escaped" \
  eval 'rc_is 0 && ! grep -q "$(printf "\033")" "$WORK/out" && grep -qF "x=\x1b]0;PWNED\x07v" "$WORK/out"'
ctl ls --backend daytona --json
check "daytona: ls --json keeps the label" json_ok 'any(i["labels"].get("x") == "\x1b]0;PWNED\x07v" for i in j)'
"$CTL" rm --backend daytona "$hostile_id" >/dev/null 2>&1

echo "1..$n"

#!/usr/bin/env bash
# Captures seed inputs for the fuzz targets from the emulators (run by hand
# when the protocols change; the result is committed in fuzz/corpus/):
#   fuzz/capture-seeds.sh BUILDDIR
# BUILDDIR is a normal build (tests/emulators/*-emulator, the exec helper).
set -euo pipefail
B=$(cd "${1:?usage: capture-seeds.sh BUILDDIR}" && pwd)
S=$(cd "$(dirname "$0")" && pwd)
C=$S/corpus
export SANDBOX_EXEC_HELPER=$B/backends/local/sandbox-exec-helper
export SANDBOX_REMOTE_MODULE=$B/backends/.libs/libsandbox-remote.so
export SANDBOX_LOCAL_ROOT=$(mktemp -d)
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$tmp" "$SANDBOX_LOCAL_ROOT"' EXIT
mkdir -p "$C"/{daytona,e2b,connect,multipart,tar}

start() {   # start NAME: the emulator's KEY=VALUE lines into $tmp/NAME.env
  "$B/tests/emulators/$1-emulator" > "$tmp/$1.env" 2>"$tmp/$1.err" &
  pids+=($!)
  for _ in $(seq 100); do grep -q READY "$tmp/$1.env" && return; sleep 0.1; done
  cat "$tmp/$1.err" >&2; exit 1
}

# Daytona: control plane and toolbox
start daytona
. <(grep = "$tmp/daytona.env" | sed 's/^/export /')
D=(-sS -H "Authorization: Bearer $DAYTONA_API_KEY" -H "Content-Type: application/json")
curl "${D[@]}" -X POST "$DAYTONA_API_URL/sandbox" -d '{"labels":{"fuzz":"seed"},"autoStopInterval":5}' > "$C/daytona/sandbox.json"
id=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' < "$C/daytona/sandbox.json")
for _ in $(seq 50); do
  curl "${D[@]}" "$DAYTONA_API_URL/sandbox/$id" > "$C/daytona/sandbox-get.json"
  grep -q '"state":"started"' "$C/daytona/sandbox-get.json" && break; sleep 0.1
done
curl "${D[@]}" "$DAYTONA_API_URL/sandbox?limit=200" > "$C/daytona/list.json"
tb=$(/usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("toolboxProxyUrl") or "")' < "$C/daytona/sandbox-get.json")
tb=${tb%/}/$id
curl "${D[@]}" -X POST "$tb/process/session" -d '{"sessionId":"seed"}' > /dev/null
curl "${D[@]}" -X POST "$tb/process/session/seed/exec" \
  -d '{"command":"sh -c \"mkdir -p /tmp/d/e; echo hi; echo err >&2; echo x > /tmp/d/f; exit 3\"","runAsync":true}' > "$C/daytona/exec.json"
cmd=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["cmdId"])' < "$C/daytona/exec.json")
for _ in $(seq 50); do
  curl "${D[@]}" "$tb/process/session/seed/command/$cmd" > "$C/daytona/command.json"
  grep -q '"exitCode":[0-9]' "$C/daytona/command.json" && break; sleep 0.1
done
curl "${D[@]}" "$tb/process/session/seed/command/$cmd/logs" > "$C/daytona/logs.json"
curl "${D[@]}" "$tb/process/session/seed" > "$C/daytona/session.json"
curl "${D[@]}" "$tb/files?path=/tmp/d" > "$C/daytona/files.json"
curl "${D[@]}" "$tb/files/info?path=/tmp/d" > "$C/daytona/info.json"
curl "${D[@]}" -X POST "$tb/files/bulk-download" -d '{"paths":["/tmp/d/f","/tmp/missing"]}' \
  -D "$tmp/bulk.h" > "$tmp/bulk.body"
# multipart seeds: the boundary on the first line, then the body
{ sed -n 's/.*boundary=\([^;[:space:]]*\).*/\1/Ip' "$tmp/bulk.h"; cat "$tmp/bulk.body"; } > "$C/multipart/bulk-download"
curl "${D[@]}" -X DELETE "$DAYTONA_API_URL/sandbox/$id" > /dev/null

# E2B: control plane and envd
start e2b
. <(grep = "$tmp/e2b.env" | sed 's/^/export /')
E=(-sS -H "X-API-Key: $E2B_API_KEY" -H "Content-Type: application/json")
curl "${E[@]}" -X POST "$E2B_API_URL/sandboxes" -d '{"templateID":"base","timeout":60,"metadata":{"fuzz":"seed"}}' > "$C/e2b/sandbox.json"
eid=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["sandboxID"])' < "$C/e2b/sandbox.json")
tok=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("envdAccessToken") or "")' < "$C/e2b/sandbox.json")
curl "${E[@]}" "$E2B_API_URL/v2/sandboxes" > "$C/e2b/list.json"
curl "${E[@]}" "$E2B_API_URL/sandboxes/$eid" > "$C/e2b/detail.json"
V=(-sS -H "X-Access-Token: $tok" -H "E2b-Sandbox-Id: $eid" -H "E2b-Sandbox-Port: 49983" -H "Connect-Protocol-Version: 1")
envd=${E2B_SANDBOX_URL%/}
# a Connect request: one envelope (flags 0, big-endian length, JSON)
envelope() { /usr/bin/python3 -c 'import sys,struct; p=sys.argv[1].encode(); sys.stdout.buffer.write(b"\0"+struct.pack(">I",len(p))+p)' "$1"; }
envelope '{"process":{"cmd":"/bin/sh","args":["-c","mkdir -p /tmp/d/e; echo x > /tmp/d/f; echo out; echo err >&2; exit 4"],"envs":{}},"stdin":false}' > "$tmp/start.req"
curl "${V[@]}" -H "Content-Type: application/connect+json" --data-binary @"$tmp/start.req" \
  "$envd/process.Process/Start" > "$C/connect/process-start"
cp "$C/connect/process-start" "$C/e2b/process-start.stream"
curl "${V[@]}" -H "Content-Type: application/json" -d '{"path":"/tmp/d"}' "$envd/filesystem.Filesystem/Stat" > "$C/e2b/stat.json"
curl "${V[@]}" -H "Content-Type: application/json" -d '{"path":"/tmp/d","depth":1}' "$envd/filesystem.Filesystem/ListDir" > "$C/e2b/listdir.json"
curl "${V[@]}" -H "Content-Type: application/json" -d '{"path":"/nope"}' "$envd/filesystem.Filesystem/Stat" > "$C/connect/error-body.json"
curl "${E[@]}" -X DELETE "$E2B_API_URL/sandboxes/$eid" > /dev/null
ls -l "$C"/*/

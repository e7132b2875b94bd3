#!/bin/bash
# sandboxctl end to end against the local backend. Prints TAP.
#
# Needs $SANDBOXCTL (the built tool) and the uninstalled-library environment
# that tests/Makefile.am sets. Every sandbox lives under a fresh
# SANDBOX_LOCAL_ROOT, so the user's own sandboxes are never touched.

if [ -z "${BASH_VERSION:-}" ]; then
  exec bash "$0" "$@"
fi

set -u

: "${SANDBOXCTL:?SANDBOXCTL must name the sandboxctl to test}"
CTL=$SANDBOXCTL

WORK=$(mktemp -d "${TMPDIR:-/tmp}/test-sandboxctl.XXXXXX")
export SANDBOX_LOCAL_ROOT="$WORK/root"
mkdir -p "$SANDBOX_LOCAL_ROOT"
unset SANDBOX_BACKEND SANDBOX_BWRAP
PY=/usr/bin/python3

cleanup () {
  "$CTL" gc --all >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

n=0
# check NAME COMMAND...: one test point, passing when COMMAND succeeds.
check () {
  local name=$1
  shift
  n=$((n + 1))
  if "$@"; then
    echo "ok $n - $name"
  else
    echo "not ok $n - $name"
    echo "# failed: $*"
    # What the last sandboxctl said, to tell a real failure from noise
    # (a sanitizer's report, a message from the system).
    echo "# last sandboxctl: exit status ${rc:-?}; its stderr:"
    head -c 2000 "$WORK/err" 2>/dev/null | sed 's/^/#   /'
  fi
}

# Runs sandboxctl with its stdout in $WORK/out, stderr in $WORK/err and
# exit status in $rc.
ctl () {
  "$CTL" "$@" >"$WORK/out" 2>"$WORK/err"
  rc=$?
}

rc_is () { [ "$rc" -eq "$1" ]; }
out_is () { [ "$(cat "$WORK/out")" = "$1" ]; }
out_has () { grep -q -e "$1" "$WORK/out"; }
err_has () { grep -q -e "$1" "$WORK/err"; }
out_empty () { [ ! -s "$WORK/out" ]; }
valid_id () { rc_is 0 && [[ "$1" =~ ^[A-Za-z0-9_-]+$ ]]; }
help_ok () { rc_is 0 && grep -q "sandboxctl $1" "$WORK/out"; }
# json_ok PYTHON-EXPRESSION: true when the expression over the JSON `j` in
# $WORK/out is true.
json_ok () { "$PY" -c "import json, sys; j = json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$WORK/out"; }

# Without working bubblewrap (no user namespaces here) nothing can run.
if ! "$CTL" run -- true >"$WORK/out" 2>"$WORK/err"; then
  echo "1..0 # SKIP the local backend cannot run here: $(head -c 200 "$WORK/err" | tr '\n' ' ')"
  exit 0
fi

# --- run: output live in the right streams, exit status -------------------

ctl run --backend local -- sh -c 'echo hi; echo err >&2; exit 3'
check "run exits with the command's status" rc_is 3
check "run passes stdout through" out_is hi
check "run passes stderr through" [ "$(cat "$WORK/err")" = err ]

# A setting the backend cannot apply is refused, not ignored.
ctl run --backend local --gpu 1 -- true
check "run --gpu on local is refused (exit 1)" rc_is 1
check "run --gpu on local names the setting" err_has "cannot apply gpu 1"

# --cpu inf (GOption reads it) is refused, not taken as no limit or cast
# out of range.
ctl run --backend local --cpu inf -- true
check "run --cpu inf is a usage error" eval 'rc_is 2 && err_has "number of CPUs"'

# memory-mb and pids-max are rlimits that hold bubblewrap too: one too small
# for it to start is named, not blamed on user namespaces or a broken pipe.
if [ -z "${SANDBOX_CGROUP_PARENT:-}" ]; then
  ctl run --backend local --memory 1 -- true
  check "run --memory 1: bubblewrap cannot start, said as the limit" \
    eval 'rc_is 5 && err_has "memory-mb (1)" && ! err_has "seccomp" && ! err_has "unprivileged"'
  # pids-max 1: RLIMIT_NPROC (not root) or the cgroup v1 backstop (root)
  # stops bubblewrap; as root without a v1 pids hierarchy nothing does.
  ctl run --backend local --pids 1 -- true
  check "run --pids 1 that cannot start names the limit" \
    eval 'rc_is 0 || { rc_is 5 && err_has "pids-max (1)" && ! err_has "unprivileged"; }'
  check "a sandbox that could not start leaves nothing" [ -z "$(ls -A "$SANDBOX_LOCAL_ROOT" | grep '^sbx-')" ]
fi

ctl run --backend local -- sh -c 'getent hosts example.com || ping -c1 1.1.1.1'
check "run has no network by default" [ "$rc" -ne 0 ]

ctl run -- sh -c 'exit 42'
check "run propagates exit status 42" rc_is 42

# Renames and hard links across directories (uv's cache renames its
# downloads into place): a Landlock layer that does not handle REFER
# refuses them with EXDEV.
ctl run --backend local -- sh -c 'mkdir /tmp/a /tmp/b && touch /tmp/a/f && ln /tmp/a/f /tmp/b/f && echo linked'
check "run: a hard link across directories works (no EXDEV)" out_is linked

ctl run -- sh -c 'kill -TERM $$'
check "run reports a signalled command as 128+signal" rc_is 143

ctl run --cmd-timeout 1 -- sleep 30
check "run --cmd-timeout exits 124" rc_is 124
check "run --cmd-timeout says so" err_has "timed out"

# The sandbox's own time limit (not the command's): said as such, and the
# sandbox is gone.
ctl run --timeout 1 -- sleep 30
check "run --timeout ends the command and fails" rc_is 1
check "run --timeout names the sandbox's time limit" err_has "reached its time limit (1 s"
check "run --timeout leaves no sandbox" [ -z "$(ls -A "$SANDBOX_LOCAL_ROOT" | grep '^sbx-')" ]

ctl run -- no-such-program-here
check "run of a missing program exits 5" rc_is 5
check "run of a missing program names it" err_has "no-such-program-here"

ctl run --env GREETING=hello --cwd /tmp -- sh -c 'echo "$GREETING $(pwd)"'
check "run --env and --cwd reach the command" out_is "hello /tmp"
# A relative --cwd was taken from the sandbox's / (tmp ran in /tmp).
ctl run --cwd tmp -- pwd
check "run --cwd with a relative path is refused" eval 'rc_is 2 && err_has "absolute path" && out_empty'

# A bare --env NAME passes sandboxctl's own value (off the command line);
# an unset NAME is not set.
FROM_HOST=via-environment ctl run --env FROM_HOST --env NOT_SET_HERE -- \
  sh -c 'echo "${FROM_HOST}-${NOT_SET_HERE-unset}"'
check "run --env NAME passes sandboxctl's own value" out_is "via-environment-unset"

# The last --env of a name wins, as with env(1) and docker: a bare NAME
# that sandboxctl does not have unsets an earlier NAME=VALUE (it kept it).
unset DROPPED
ctl run --env DROPPED=1 --env DROPPED --env TWICE=a --env TWICE=b -- \
  sh -c 'echo "${DROPPED-unset}-$TWICE"'
check "run --env: the last one of a name wins, a bare unset NAME unsets" out_is "unset-b"

ctl run --id-env MY_SANDBOX_ID -- sh -c 'echo "$MY_SANDBOX_ID $(hostname)"'
id_and_host () {
  local id host
  read -r id host <"$WORK/out"
  rc_is 0 && [[ "$id" == sbx-* ]] && [ "$id" = "$host" ]
}
check "run --id-env gives the command the sandbox's id (its hostname)" id_and_host
# A value that is no variable name was dropped ('') or set nothing after a
# critical warning (A=B), and the command ran without it.
for bad in 'A=B' ''; do
  ctl run --id-env "$bad" -- true
  check "run --id-env '$bad' is a usage error naming the option" \
    eval 'rc_is 2 && err_has "id-env needs the name" && ! err_has CRITICAL'
done

ctl run --raise-signal -- sh -c 'kill -TERM $$'
check "run --raise-signal ends by the command's signal" rc_is 143
ctl run --raise-signal -- sh -c 'exit 7'
check "run --raise-signal keeps an ordinary exit status" rc_is 7
"$PY" -c 'import subprocess, sys; sys.exit(0 if subprocess.run(sys.argv[1:]).returncode == -11 else 1)' \
  "$CTL" run --raise-signal -- sh -c 'kill -SEGV $$'
check "run --raise-signal: the parent sees SIGSEGV" [ $? -eq 0 ]

ctl run --json -- sh -c 'echo hi; echo err >&2; exit 3'
check "run --json keeps the exit status" rc_is 3
check "run --json prints the result" json_ok 'j["exit_code"] == 3 and j["stdout"] == "hi\n" and j["stderr"] == "err\n" and j["timed_out"] is False'

echo piped-in | "$CTL" run --stdin -- cat >"$WORK/out" 2>"$WORK/err"
check "run --stdin gives the command our input" out_is piped-in

mkdir -p "$WORK/share"
echo shared >"$WORK/share/file"
ctl run --mount "$WORK/share:/workspace/share:ro" -- sh -c 'cat /workspace/share/file; echo x > /workspace/share/new'
check "run --mount shows the host directory" out_has '^shared$'
check "run --mount :ro is read-only" test "$rc" -ne 0 -a ! -e "$WORK/share/new"

# A target with ".." was bwrap's /etc but not the set-up's (it compares
# paths as strings): bubblewrap failed (blaming user namespaces) after it
# made a directory in the host's mounted one. (The quotes are matched by
# "." : in a C locale, as in the rpm's %check, GLib prints them as "?".)
mkdir -p "$WORK/dotdot"
ctl run --mount "$WORK/dotdot:/data/../etc" -- true
check "run --mount with a .. target is refused, naming it" \
  eval 'rc_is 2 && err_has "/data/\.\./etc. has a .*component" && [ -z "$(ls -A "$WORK/dotdot")" ]'
ctl run --mount "$WORK/dotdot:/data/./x" -- true
check "run --mount with a . target is refused" rc_is 2
ctl run --workdir /workspace/../etc -- true
check "run --workdir with .. is refused" rc_is 2

# Two mounts at one target: the second hid the first, silently. Refused,
# naming both sources (also when the paths differ only by a slash).
mkdir -p "$WORK/first" "$WORK/second"
ctl run --mount "$WORK/first:/data" --mount "$WORK/second:/data/" -- true
check "run --mount twice at one target is refused, naming both" \
  eval 'rc_is 2 && err_has "$WORK/first" && err_has "$WORK/second"'
ctl run --mount "$WORK/first:/data:ro" --mount "$WORK/first:/data:rw" -- true
check "run --mount of one source at one target, ro then rw, is refused" rc_is 2
ctl run --mount "$WORK/share:/data:ro" --mount "$WORK/share:/data:ro" -- cat /data/file
check "run --mount of the same mount twice is fine (it hides nothing)" out_is shared

# The sandbox's own /run, /proc, /dev: a read-write mount at /run had
# bwrap make libsandbox/ (the helper's mount point) in the user's
# directory; one at /proc failed blaming user namespaces.
mkdir -p "$WORK/own"
for target in /run /proc /dev /run/libsandbox /run/libsandbox/x; do
  ctl run --mount "$WORK/own:$target" -- true
  check "run --mount at $target is refused as the sandbox's own" \
    eval 'rc_is 2 && err_has "sandbox.s own" && [ -z "$(ls -A "$WORK/own")" ]'
done
# The workdir is bound as a mount is: at /proc bwrap failed blaming user
# namespaces, at /dev it hid the device nodes.
for target in /proc /dev /run; do
  ctl run --workdir "$target" -- true
  check "run --workdir $target is refused as the sandbox's own" eval 'rc_is 2 && err_has "sandbox.s own"'
done
ctl run --mount "$WORK/own:/run/data" -- sh -c 'echo x > /run/data/f'
check "run --mount below /run works" eval 'rc_is 0 && [ "$(ls -A "$WORK/own")" = f ]'
rm -f "$WORK/own/f"

# :nolinks: files and directories, but no link or FIFO, in the mount; both
# still in /tmp. (Also :ro:nolinks parses.)
mkdir -p "$WORK/nolinks"
ctl run --mount "$WORK/nolinks:/data:nolinks" --mount "$WORK/share:/ro:ro:nolinks" -- sh -c \
  'echo f > /data/file && mkdir /data/dir && echo MADE;
   ln -s /etc /data/link 2>/dev/null || echo NO-LINK;
   mkfifo /data/fifo 2>/dev/null || echo NO-FIFO;
   ln -s /etc /tmp/link && mkfifo /tmp/fifo && echo TMP-OK; cat /ro/file'
check "run --mount :nolinks refuses links and FIFOs in the mount only" \
  out_is "$(printf 'MADE\nNO-LINK\nNO-FIFO\nTMP-OK\nshared')"
check "run --mount :nolinks leaves nothing but a file and a directory" \
  [ "$(cd "$WORK/nolinks" && find . -mindepth 1 ! -type f ! -type d | wc -l)" -eq 0 -a -f "$WORK/nolinks/file" -a -d "$WORK/nolinks/dir" ]
# :ro and :rw both: ro won, silently.
ctl run --mount "$WORK/share:/data:rw:ro" -- true
check "run --mount with both :ro and :rw is refused" eval 'rc_is 2 && err_has ":ro and :rw"'
ctl run --mount "$WORK/nolinks:/data:nolink" -- true
check "run --mount with an unknown suffix names the forms" err_has 'HOST\[:SANDBOX\]\[:ro|:nolinks\]'

ctl ls
check "run leaves no sandbox behind" out_empty

# --- create, exec, cp, ls, rm ---------------------------------------------

ctl create --label suite=ctl --label role=main
id=$(cat "$WORK/out")
check "create prints the new sandbox's id" valid_id "$id"

ctl exec "$id" -- sh -c 'echo made > /workspace/state'
ctl exec --env V=2 "$id" -- sh -c 'cat /workspace/state; echo "v$V"'
check "exec runs in the same sandbox each time" out_is "$(printf 'made\nv2')"

# Each sandboxctl is a new process: it enters the namespaces the sandbox got
# at create (same /tmp, same pid namespace), not new ones.
ctl exec "$id" -- sh -c 'echo t > /tmp/ctl-state; sleep 4545 >/dev/null 2>&1 & echo $!'
bg=$(cat "$WORK/out")
ctl exec "$id" -- sh -c "cat /tmp/ctl-state; kill -0 $bg && echo alive"
check "exec from another process enters the same namespaces" out_is "$(printf 't\nalive')"

ctl exec "$id" sh -c 'exit 9'
check "exec without -- runs the command and exits with its status" rc_is 9

ctl exec --json "$id" -- sh -c 'echo out'
check "exec --json prints the result" json_ok 'j["id"] == "'"$id"'" and j["exit_code"] == 0 and j["stdout"] == "out\n"'

printf 'line one\nline two\n' >"$WORK/file.txt"
mkdir -p "$WORK/tree/sub/deeper"
echo top >"$WORK/tree/top"
echo deep >"$WORK/tree/sub/deeper/leaf"
head -c 100000 /dev/urandom >"$WORK/tree/sub/blob"

ctl cp "$WORK/file.txt" "$id:/workspace/file.txt"
check "cp uploads a file" rc_is 0
ctl exec "$id" -- cat /workspace/file.txt
check "the uploaded file has the same contents" cmp -s "$WORK/out" "$WORK/file.txt"

ctl cp "$WORK/tree" "$id:/workspace/tree"
check "cp uploads a directory" rc_is 0
ctl exec "$id" -- cat /workspace/tree/sub/deeper/leaf
check "the uploaded directory is complete" out_is deep

ctl cp "$WORK/file.txt" "$id:/workspace/into/"
ctl exec "$id" -- cat /workspace/into/file.txt
check "cp into ID:/dir/ keeps the file's name" cmp -s "$WORK/out" "$WORK/file.txt"

mkdir -p "$WORK/back"
ctl cp "$id:/workspace/file.txt" "$WORK/back/copy.txt"
check "cp downloads a file" cmp -s "$WORK/back/copy.txt" "$WORK/file.txt"

ctl cp "$id:/workspace/tree" "$WORK/back/tree"
check "cp downloads a directory with the same contents" diff -r "$WORK/tree" "$WORK/back/tree"

ctl cp "$id:/workspace/tree/top" "$WORK/back"
check "cp into a local directory keeps the file's name" cmp -s "$WORK/back/top" "$WORK/tree/top"

ctl cp "$id:/workspace/missing" "$WORK/back/missing"
check "cp of a missing file exits 4" rc_is 4

ctl cp "$WORK/file.txt" "$WORK/elsewhere"
check "cp between two local paths is a usage error" rc_is 2

# --- cp progress: on a terminal, for a copy that takes more than 2 s ------
# The sandbox's file service is stopped (SIGSTOP) while cp runs, so the
# copy takes as long as the test wants; `script` gives cp a terminal.
if ! command -v script >/dev/null 2>&1; then
  n=$((n + 1))
  echo "ok $n # SKIP cp progress: no script(1) to give cp a terminal"
else
  init_pid=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["init_pid"])' \
    "$SANDBOX_LOCAL_ROOT/$id/instance.json")
  head -c 3000000 /dev/urandom >"$WORK/big.bin"
  # cp_stalled OUT WAIT-FOR CP-ARGS...: runs cp on a terminal (its output in
  # OUT) with the sandbox stopped until OUT matches WAIT-FOR (at most 60 s;
  # an empty WAIT-FOR waits 3 s, beyond the 2 s after which progress shows).
  cp_stalled () {
    local out=$1 wait_for=$2 pid i
    shift 2
    kill -STOP "$init_pid"
    # Emptied here, not only by the redirection below: that one happens in
    # the background job, maybe after the first look for WAIT-FOR, which
    # would then find the previous copy's output.
    : >"$out"
    script -qec "$(printf '%q ' "$@")" /dev/null >"$out" 2>&1 </dev/null &
    pid=$!
    for i in $(seq 120); do
      if [ -n "$wait_for" ]; then grep -q -e "$wait_for" "$out" && break; elif [ "$i" -gt 6 ]; then break; fi
      sleep 0.5
    done
    kill -CONT "$init_pid"
    wait "$pid"
    rc=$?
  }
  cp_stalled "$WORK/pty" '%)' env LC_ALL=C "$CTL" cp "$WORK/big.bin" "$id:/workspace/big.bin"
  check "cp on a terminal succeeds after a slow copy" rc_is 0
  check "a slow cp shows progress, with the size" grep -q "0 bytes of 3.0.MB (0%), 0 bytes/s" "$WORK/pty"
  check "cp's progress ends complete, on its own line" grep -q $'3.0.MB of 3.0.MB (100%), .*/s\r*$' "$WORK/pty"
  check "cp's progress is updated in place" grep -q $'\r' "$WORK/pty"
  ctl cp "$id:/workspace/big.bin" "$WORK/big.back"
  check "the slow copy is complete" cmp -s "$WORK/big.bin" "$WORK/big.back"

  cp_stalled "$WORK/pty" 'bytes/s' env LC_ALL=C "$CTL" cp "$id:/workspace/big.bin" "$WORK/big.down"
  check "a slow download shows progress (the local backend knows the size)" \
    grep -q '3.0.MB of 3.0.MB (100%)' "$WORK/pty"
  check "the slow download is complete" cmp -s "$WORK/big.bin" "$WORK/big.down"
  cat -v "$WORK/pty" | tr "\r" "\n" | tail -3 | sed "s/^/# pty: /"

  kill -STOP "$init_pid"
  "$CTL" cp "$WORK/big.bin" "$id:/workspace/big2.bin" >"$WORK/out" 2>"$WORK/err" &
  pid=$!
  sleep 3
  kill -CONT "$init_pid"
  wait "$pid"
  rc=$?
  check "cp without a terminal succeeds after a slow copy" rc_is 0
  check "cp without a terminal shows no progress" [ ! -s "$WORK/err" ] && out_empty

  cp_stalled "$WORK/pty" '' "$CTL" cp --json "$WORK/big.bin" "$id:/workspace/big3.bin"
  check "cp --json on a terminal succeeds after a slow copy" rc_is 0
  check "cp --json shows no progress" bash -c '! grep -q "%)" "$1"' _ "$WORK/pty"
  check "cp --json describes the copy" grep -q '"direction" : "upload"' "$WORK/pty"

  cp_stalled "$WORK/pty" '' env LC_ALL=C "$CTL" cp --progress "$WORK/file.txt" "$id:/workspace/file2.txt"
  check "cp --progress shows progress from the start" grep -q '(100%)' "$WORK/pty"
fi

ctl ls
check "ls lists the sandbox" out_has "^$id "
check "ls shows its state and labels" out_has "running.*role=main,suite=ctl"

ctl ls --json
check "ls --json describes the sandbox" json_ok 'len(j) == 1 and j[0]["id"] == "'"$id"'" and j[0]["backend"] == "local" and j[0]["state"] == "running" and j[0]["labels"] == {"suite": "ctl", "role": "main"}'

ctl ls --label suite=other
check "ls --label filters" out_empty

# One key twice with two values: no sandbox has both, so ls listed nothing
# (and create kept the last). Refused; the same value twice is fine.
ctl ls --label suite=ctl --label suite=other
check "ls --label with one key twice is refused" \
  eval 'rc_is 2 && err_has "suite=ctl" && err_has "suite=other" && out_empty'
ctl ls --label suite=ctl --label suite=ctl
check "ls --label with one label twice lists it" out_has "^$id "
ctl create --label k=v --label k=w
check "create --label with one key twice is refused" eval 'rc_is 2 && out_empty'

ctl exec sbx-doesnotexist -- true
check "exec in an unknown sandbox exits 4" rc_is 4
check "exec in an unknown sandbox, no backend chosen: hints at --backend" err_has "another backend, name it with --backend"
ctl exec --backend local sbx-doesnotexist -- true
check "exec with --backend chosen: no hint" eval '! err_has "another backend"'

ctl rm "$id"
check "rm removes the sandbox" rc_is 0
check "rm says what it removed" out_has "$id"

ctl ls
check "ls after rm shows nothing" out_empty
ctl ls --json
check "ls --json after rm is an empty array" json_ok 'j == []'

ctl rm "$id"
check "rm of a gone sandbox exits 4" rc_is 4
check "rm of a gone sandbox says so" err_has "$id"
ctl rm --force "$id"
check "rm --force of a gone sandbox succeeds" rc_is 0

# --- pause, resume, metrics ----------------------------------------------------

ctl create --label suite=pause
pid_id=$(cat "$WORK/out")
# A ticker appends the time 20 times a second: paused, it cannot, so the
# longest gap between ticks is at least the pause (no timing of the test).
ctl exec "$pid_id" -- sh -c 'echo kept > /tmp/paused; setsid sh -c "while :; do date +%s.%N >> /tmp/ticks; sleep 0.05; done" </dev/null >/dev/null 2>&1 &'
ticks () { ctl exec "$pid_id" -- sh -c 'cat /tmp/ticks 2>/dev/null | wc -l'; cat "$WORK/out"; }
for _ in $(seq 200); do
  [ "$(ticks)" -gt 1 ] && break
  sleep 0.05
done
ctl pause "$pid_id"
check "pause exits 0" rc_is 0
check "pause says what it paused" out_has "Paused $pid_id"
ctl ls --json --label suite=pause
check "ls shows a paused sandbox as stopped" json_ok 'j[0]["state"] == "stopped"'
ctl exec "$pid_id" -- true
check "exec in a paused sandbox fails" rc_is 1
check "exec in a paused sandbox says to resume it" err_has "resume"
sleep 2
ctl resume "$pid_id"
check "resume exits 0" rc_is 0
check "resume says what it resumed" out_has "Resumed $pid_id"
after=$(ticks)
for _ in $(seq 200); do
  [ "$(ticks)" -gt "$after" ] && break
  sleep 0.05
done
check "the ticker runs again after resume" [ "$(ticks)" -gt "$after" ]
ctl exec "$pid_id" -- awk 'NR > 1 && $1 - p > m { m = $1 - p } { p = $1 } END { printf "%d\n", m * 1000 }' /tmp/ticks
check "nothing ran while paused: the ticks have a gap of the pause (2 s)" [ "$(cat "$WORK/out")" -ge 1900 ]
ctl exec "$pid_id" -- cat /tmp/paused
check "files are kept across pause and resume" out_is kept
ctl metrics "$pid_id"
check "metrics prints cpu, memory and disk" eval 'rc_is 0 && out_has "^CPU:" && out_has "^Memory:" && out_has "^Disk:"'
ctl metrics --json "$pid_id"
check "metrics --json describes the usage" json_ok 'j["id"] == "'"$pid_id"'" and j["cpu_count"] >= 1 and 0 < j["memory_used"] <= j["memory_total"] and j["disk_used"] <= j["disk_total"] and j["cpu_seconds"] >= 0'
ctl pause "$pid_id"
ctl rm "$pid_id"
check "a paused sandbox can be removed" rc_is 0
ctl ls --label suite=pause
check "nothing is left of the paused sandbox" out_empty
ctl pause sbx-doesnotexist
check "pause of an unknown sandbox exits 4" rc_is 4
ctl metrics
check "metrics without an id exits 2" rc_is 2

# --- gc ---------------------------------------------------------------------

ctl create --label batch=1 --label n=a; a=$(cat "$WORK/out")
ctl create --label batch=1 --label n=b; b=$(cat "$WORK/out")
ctl create --label batch=2; c=$(cat "$WORK/out")

ctl gc
check "gc without --label refuses" rc_is 2
ctl ls --json
check "gc without --label removed nothing" json_ok 'len(j) == 3'

ctl gc --label batch=1
check "gc --label succeeds" rc_is 0
check "gc --label prints what it removed" [ "$(grep -c -e "$a" -e "$b" "$WORK/out")" -eq 2 ]
ctl ls --json
check "gc --label removes only the labelled sandboxes" json_ok '[s["id"] for s in j] == ["'"$c"'"]'

# --all with --label: one of them would be ignored.
ctl gc --all --label batch=2
check "gc --all with --label is refused" rc_is 2
ctl ls --json
check "gc --all with --label removed nothing" json_ok '[s["id"] for s in j] == ["'"$c"'"]'

ctl gc --all --json
check "gc --all --json lists what it removed" json_ok '[s["id"] for s in j] == ["'"$c"'"]'

# --- backends and configuration errors -------------------------------------

ctl backends --json
check "backends --json lists local as configured" json_ok 'any(b["name"] == "local" and b["configured"] for b in j)'

ctl run --backend no-such-backend -- true
check "an unknown backend exits 3" rc_is 3
check "an unknown backend lists the known ones" err_has "Known backends:.*local"

SANDBOX_BACKEND=no-such-backend "$CTL" ls >"$WORK/out" 2>"$WORK/err"; rc=$?
check "SANDBOX_BACKEND picks the backend" rc_is 3

env PATH=/usr/local/nothing "$CTL" run -- true >"$WORK/out" 2>"$WORK/err"; rc=$?
check "run without bwrap on PATH exits 3" rc_is 3
check "run without bwrap says how to install it" err_has "apt-get install bubblewrap"

# --- usage and help ----------------------------------------------------------

ctl --help
check "sandboxctl --help exits 0" rc_is 0
check "sandboxctl --help lists the exit statuses" out_has "124"

for cmd in backends create exec cp ls rm run gc pause resume metrics; do
  ctl "$cmd" --help
  check "sandboxctl $cmd --help shows its usage" help_ok "$cmd"
done

ctl run --no-such-option -- true
check "an unknown option exits 2" rc_is 2
ctl frobnicate
check "an unknown command exits 2" rc_is 2
ctl create --label novalue
check "a label without = exits 2" rc_is 2
ctl run --
check "run without a command exits 2" rc_is 2

# --- SIGINT during run: the sandbox is removed -------------------------------

"$CTL" run -- sleep 30 >"$WORK/sig-out" 2>"$WORK/sig-err" &
pid=$!
for _ in $(seq 200); do
  [ -n "$("$CTL" ls 2>/dev/null)" ] && break
  sleep 0.1
done
kill -INT "$pid"
for _ in $(seq 200); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
  kill -KILL "$pid"
fi
wait "$pid"
rc=$?
check "SIGINT makes run exit 130" rc_is 130
check "SIGINT during run says the sandbox is destroyed" grep -q "destroying sandbox" "$WORK/sig-err"
ctl ls
check "SIGINT during run leaves no sandbox" out_empty

# Only what the command needs is loaded (issue 14): the local backend loads
# neither libsoup (the module of the remote backends) nor libarchive.
LD_DEBUG=files "$CTL" run --backend local -- true >"$WORK/out" 2>"$WORK/err"
rc=$?
check "run --backend local works with LD_DEBUG=files" eval 'rc_is 0 && grep -q "file=[^ ]*libsandbox-1.0.so" "$WORK/err"'
check "run --backend local loads neither libsoup nor libarchive" \
  eval '! grep -E "file=[^ ]*(libsoup|libarchive|libsandbox-remote)" "$WORK/err"'
LD_DEBUG=files "$CTL" backends >"$WORK/out" 2>"$WORK/err"
rc=$?
check "backends loads the remote module and lists daytona and e2b" \
  eval 'rc_is 0 && grep -q "file=[^ ]*libsandbox-remote.so" "$WORK/err" && out_has "^daytona" && out_has "^e2b"'

# Killed while bwrap starts: bwrap writes the sandbox's pid to the caller
# before it lets the sandbox go on; that write found no reader, SIGPIPE
# killed bwrap, and its child stayed blocked for ever (a bwrap per killed
# caller, never reaped). A bwrap that starts a second late makes the window
# certain. The run's sandbox (die-with-owner) must end by itself.
printf '#!/bin/sh\nsleep 1\nexec %s "$@"\n' "$(command -v bwrap)" >"$WORK/slow-bwrap"
chmod +x "$WORK/slow-bwrap"
SANDBOX_BWRAP="$WORK/slow-bwrap" "$CTL" run -- sleep 300 >/dev/null 2>&1 &
pid=$!
sleep 0.3
kill -KILL "$pid"
wait "$pid" 2>/dev/null
left=1
for _ in $(seq 100); do
  left=$(pgrep -f -- "--bind $SANDBOX_LOCAL_ROOT/" | wc -l)
  [ "$left" = 0 ] && break
  sleep 0.1
done
check "run killed while bwrap starts leaves no bwrap running ($left)" [ "$left" = 0 ]
pkill -KILL -f -- "--bind $SANDBOX_LOCAL_ROOT/" 2>/dev/null

# scripts/uninstalled-env (the README's way to use the built tree, issue 14):
# `sandboxctl` on its PATH is the program itself, not libtool's wrapper
# script (which doubled the time of a run), and it works from any directory.
if [ -n "${TOP_SRCDIR:-}" ] && [ -x "$TOP_SRCDIR/scripts/uninstalled-env" ] && [ -n "${TOP_BUILDDIR:-}" ]; then
  (cd "$WORK" && BUILDDIR="$TOP_BUILDDIR" "$TOP_SRCDIR/scripts/uninstalled-env" \
     sh -c 'command -v sandboxctl; sandboxctl run --backend local -- sh -c "echo via-env; exit 4"; echo "rc=$?"; pwd') \
    >"$WORK/out" 2>"$WORK/err"
  check "uninstalled-env finds the sandboxctl program, not a script" \
    eval '[ "$(head -c 4 "$(head -n1 "$WORK/out")")" = "$(printf "\177ELF")" ]'
  check "uninstalled-env runs sandboxctl with its exit status, in the caller's directory" \
    eval '[ "$(sed -n 2,4p "$WORK/out")" = "$(printf "via-env\nrc=4\n%s" "$WORK")" ]'
fi

echo "1..$n"

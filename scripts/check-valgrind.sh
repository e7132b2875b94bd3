#!/usr/bin/env bash
# `make check-valgrind` in the normal build directory (issue 8,
# docs/security.md "Sanitizers and valgrind"): the C tests under valgrind's
# memcheck, 0 definitely lost blocks and 0 invalid accesses allowed.
# Ends with one line: N passed, N failed (test cases; each sandboxctl run
# with a valgrind error counts as one more failure).
#
# Environment: BUILDDIR (default _build; set up by scripts/setup.sh).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${BUILDDIR:-$top/_build}

"$top/scripts/setup.sh" >"${TMPDIR:-/tmp}/check-valgrind-setup.log" 2>&1 || {
  tail -20 "${TMPDIR:-/tmp}/check-valgrind-setup.log"; echo "0 passed, 1 failed"; exit 1; }
cd "$builddir" || { echo "0 passed, 1 failed"; exit 1; }

make -j"$(nproc)" check-valgrind >check-valgrind.log 2>&1
status=$?
grep -E '^(FAIL|ERROR|XPASS|SKIP)' check-valgrind.log || true
grep -E '^check-valgrind:' check-valgrind.log || true
[ "$status" = 0 ] || tail -60 check-valgrind.log

count() { grep -E "^# $1: +[0-9]+" test-suite.log | awk '{s += $3} END {print s + 0}'; }
pass=$(( $(count PASS) + $(count SKIP) + $(count XFAIL) ))
fail=$(( $(count FAIL) + $(count XPASS) + $(count ERROR) ))
bad=$(sed -nE 's/^check-valgrind: [0-9]+ sandboxctl runs, ([0-9]+) with errors.*/\1/p' check-valgrind.log | tail -n1)
fail=$(( fail + ${bad:-0} ))
if [ "$status" != 0 ] && [ "$fail" = 0 ]; then fail=1; fi
echo "$pass passed, $fail failed"
exit "$status"

#!/usr/bin/env bash
# Every test: set up everything, run `make check`, then print one summary
# line "N passed, N failed, N skipped" counted over every test case.
# Set DISTCHECK=1 to also run `make distcheck`.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${BUILDDIR:-$top/_build}
"$top/scripts/setup.sh" || { echo "0 passed, 1 failed"; exit 1; }

. "$top/scripts/venv-dirs"
export METAFLOW_PYTHON="$venv/bin/python"
export SDK_PYTHON="$METAFLOW_PYTHON"

cd "$builddir"
find . -name '*.trs' -delete
make -k -j"$(nproc)" check
status=$?

# `make distcheck` (DISTCHECK=1) builds and checks the tarball in its own
# directory; it runs beside the second Metaflow run below, which mostly
# waits on flows, so that CI stays well inside its budget. The tarball's own
# make check skips the Metaflow suite (it runs twice here, from the same
# sources).
distcheck_pid=
if [ "$status" = 0 ] && [ "${DISTCHECK:-0}" = 1 ]; then
  env -u METAFLOW_PYTHON make -j"$(nproc)" distcheck >distcheck.log 2>&1 &
  distcheck_pid=$!
fi

# The Metaflow extension again, with the older supported Metaflow; the
# first run's results are kept under another name so both are counted.
if [ -x "$old_venv/bin/python" ] && [ -f tests/metaflow/test-metaflow.trs ]; then
  mv tests/metaflow/test-metaflow.trs tests/metaflow/test-metaflow-latest.trs
  mv tests/metaflow/test-metaflow.log tests/metaflow/test-metaflow-latest.log
  # check-TESTS: the tree is built; no make of `all` beside the distcheck.
  make check-TESTS TESTS=tests/metaflow/test-metaflow.sh METAFLOW_PYTHON="$old_venv/bin/python" || status=1
fi
if [ -n "$distcheck_pid" ] && ! wait "$distcheck_pid"; then
  echo "make distcheck failed: see $builddir/distcheck.log"
  tail -40 distcheck.log
  # Name the failing tests and show the end of their logs (the distcheck
  # tree is left in place when it fails).
  for trs in $(grep -lE '^:test-result: (FAIL|XPASS|ERROR)' \
                 $(find libsandbox-*/_build -name '*.trs' 2>/dev/null) /dev/null); do
    echo "=== distcheck failure: ${trs%.trs}.log"
    grep -E '^(not ok|ok .*# TODO|# FAIL|Bail out)' "${trs%.trs}.log" | head -20
    tail -60 "${trs%.trs}.log"
  done
  status=1
fi

pass=$(cat $(find . -name '*.trs') /dev/null | grep -cE '^:test-result: (PASS|XFAIL)')
fail=$(cat $(find . -name '*.trs') /dev/null | grep -cE '^:test-result: (FAIL|XPASS|ERROR)')
skip=$(cat $(find . -name '*.trs') /dev/null | grep -cE '^:test-result: SKIP')
if [ "$status" != 0 ] && [ "$fail" = 0 ]; then fail=1; fi
# The failing tests by name, just above the summary (CI shows the tail).
if [ "$fail" != 0 ]; then
  echo "failed:"
  grep -hE '^(FAIL|ERROR|XPASS): ' $(find . -name test-suite.log) distcheck.log 2>/dev/null | sort -u | head -20
fi
echo "$pass passed, $fail failed, $skip skipped"
exit "$status"

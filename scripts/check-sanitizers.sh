#!/usr/bin/env bash
# The C tests under AddressSanitizer + UndefinedBehaviorSanitizer (issue 8,
# docs/security.md "Sanitizers and valgrind"). Configures a separate build
# directory with --enable-sanitizers, builds it and runs `make check` on the
# tests written in C (GTest programs, and sandboxctl's script, whose program
# is sanitized). Python and gjs tests are left out: they load libsandbox
# through the typelib into an interpreter that is not linked with ASan.
# Ends with one line: N passed, N failed.
#
# Environment: SAN_BUILDDIR (default _build-asan), SAN_TESTS (the tests).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${SAN_BUILDDIR:-$top/_build-asan}
tests=${SAN_TESTS:-"tests/unit/test-core tests/unit/test-rest tests/unit/test-connect \
  tests/backends/test-e2b tests/backends/test-daytona tests/backends/test-contract \
  tests/backends/test-local tests/tools/test-sandboxctl.sh"}

fail() { echo "$1"; echo "0 passed, 1 failed"; exit 1; }

cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ]; then
  NOCONFIGURE=1 ./autogen.sh >/dev/null 2>&1 || fail "autogen.sh failed"
fi
mkdir -p "$builddir" && cd "$builddir" || fail "cannot make $builddir"
if [ ! -f Makefile ]; then
  # No introspection: the g-ir-scanner dumper would load ASan late.
  # -O1 keeps the stack traces readable and the build quick.
  "$top/configure" --enable-sanitizers --disable-introspection CFLAGS="-g -O1" \
    GI_PYTHON=/usr/bin/python3 >configure.log 2>&1 || { tail -20 configure.log; fail "configure failed: see $builddir/configure.log"; }
fi
make -j"$(nproc)" >make.log 2>&1 || { tail -40 make.log; fail "build failed: see $builddir/make.log"; }

# Any report ends the process with an error, so the test fails. LSan checks
# for leaks at exit; tests/sanitizers/lsan.supp lists GLib's own.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:fast_unwind_on_malloc=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export LSAN_OPTIONS="suppressions=$top/tests/sanitizers/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# GSlice would hide GObjects and GBytes from LeakSanitizer.
export G_SLICE=always-malloc

find . -name '*.trs' -delete
make -k check TESTS="$tests" >check.log 2>&1
status=$?
grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP)' check.log | grep -vE '^PASS' || true
for log in $(grep -lE 'Sanitizer|runtime error:' $(find tests -name '*.log') 2>/dev/null); do
  echo "--- sanitizer report in $builddir/$log"
  grep -E -A25 '^==[0-9]+==ERROR|runtime error:' "$log" | head -60
done

pass=$(cat $(find . -name '*.trs') /dev/null | grep -cE '^:test-result: (PASS|XFAIL|SKIP)')
nfail=$(cat $(find . -name '*.trs') /dev/null | grep -cE '^:test-result: (FAIL|XPASS|ERROR)')
if [ "$status" != 0 ] && [ "$nfail" = 0 ]; then nfail=1; fi
echo "$pass passed, $nfail failed"
exit "$status"

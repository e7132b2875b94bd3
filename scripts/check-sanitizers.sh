#!/usr/bin/env bash
# The C tests under AddressSanitizer + UndefinedBehaviorSanitizer (issue 8,
# docs/security.md "Sanitizers and valgrind"). Configures a separate build
# directory with --enable-sanitizers, builds it and runs `make check` on the
# tests written in C (GTest programs, and sandboxctl's script, whose program
# is sanitized), with leak detection. Then the Python and gjs tests, which
# load libsandbox through the typelib into an interpreter not linked with
# ASan: with the ASan runtime preloaded and without leak detection (the
# interpreters' own allocations are not ours), so they catch invalid
# accesses and undefined behaviour on the GI paths.
# Ends with one line: N passed, N failed.
#
# Environment: SAN_BUILDDIR (default _build-asan), SAN_TESTS (the C tests),
#              SAN_GI_TESTS (the interpreted ones; empty: none).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${SAN_BUILDDIR:-$top/_build-asan}
tests=${SAN_TESTS:-"tests/unit/test-core tests/unit/test-rest tests/unit/test-connect \
  tests/backends/test-e2b tests/backends/test-daytona tests/backends/test-contract \
  tests/backends/test-local tests/tools/test-sandboxctl.sh \
  tests/unit/test-archive tests/unit/test-tls tests/backends/test-local-attacks \
  tests/backends/test-hostile-listing tests/reliability/test-cancel \
  tests/reliability/test-faults"}
gi_tests=${SAN_GI_TESTS-"tests/python/test-gi-local.py tests/python/test-gi-subclass.py \
  tests/python/test-gi-remote.py"}
if command -v gjs >/dev/null && [ -z "${SAN_GI_TESTS+set}" ]; then
  gi_tests="$gi_tests tests/gjs/test-gi-local.js tests/gjs/test-gi-subclass.js tests/gjs/test-gi-remote.js"
fi

fail() { echo "$1"; echo "0 passed, 1 failed"; exit 1; }

# The packages (gcc's libasan and libubsan come with build-essential) and
# the venvs; quick when they are there already.
"$top/scripts/setup.sh" >"${TMPDIR:-/tmp}/check-sanitizers-setup.log" 2>&1 ||
  { tail -20 "${TMPDIR:-/tmp}/check-sanitizers-setup.log"; fail "scripts/setup.sh failed"; }
cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ]; then
  NOCONFIGURE=1 ./autogen.sh >/dev/null 2>&1 || fail "autogen.sh failed"
fi
mkdir -p "$builddir" && cd "$builddir" || fail "cannot make $builddir"
if [ ! -f Makefile ] || ! ./config.status --config | grep -q -- --enable-introspection; then
  # -O1 keeps the stack traces readable and the build quick.
  "$top/configure" --enable-sanitizers --enable-introspection CFLAGS="-g -O1" \
    GI_PYTHON=/usr/bin/python3 >configure.log 2>&1 || { tail -20 configure.log; fail "configure failed: see $builddir/configure.log"; }
fi
# The g-ir-scanner dumper links the sanitized library into a program that
# Python runs: ASan comes late there, and the dumper's leaks are not ours.
ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0 make -j"$(nproc)" >make.log 2>&1 ||
  { tail -40 make.log; fail "build failed: see $builddir/make.log"; }

# Any report ends the process with an error, so the test fails. LSan checks
# for leaks at exit; tests/sanitizers/lsan.supp lists GLib's own.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:fast_unwind_on_malloc=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export LSAN_OPTIONS="suppressions=$top/tests/sanitizers/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# GSlice would hide GObjects and GBytes from LeakSanitizer.
export G_SLICE=always-malloc

find . -name '*.trs' -delete
# test-tls: LeakSanitizer's tracer crashes (SIGSEGV) stopping GnuTLS's
# threads, so that one runs with ASan and UBSan but without leak checks.
noleak="tests/unit/test-tls"
leak_tests=""
for t in $tests; do case " $noleak " in *" $t "*) ;; *) leak_tests="$leak_tests $t" ;; esac; done
make -k -j"$(nproc)" check TESTS="$leak_tests" >check.log 2>&1
status=$?
for t in $noleak; do
  case " $tests " in *" $t "*) ;; *) continue ;; esac
  ASAN_OPTIONS="${ASAN_OPTIONS/detect_leaks=1/detect_leaks=0}" \
    make -k check TESTS="$t" >check-noleak.log 2>&1 || status=1
  cat check-noleak.log >>check.log
done
if [ -n "$gi_tests" ]; then
  . "$top/scripts/venv-dirs"
  [ -x "$venv/bin/python" ] && export SDK_PYTHON="$venv/bin/python"
  # Preloaded for the tests only (TESTS_ENVIRONMENT), not for make.
  asan=$("${CC:-gcc}" -print-file-name=libasan.so)
  make -k -j"$(nproc)" check TESTS="$gi_tests" TESTS_ENVIRONMENT="export LD_PRELOAD=$asan \
    ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:verify_asan_link_order=0;" >check-gi.log 2>&1 || status=1
  cat check-gi.log >>check.log
fi
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

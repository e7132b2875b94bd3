#!/bin/sh
# The local sandbox's seccomp program built at build time
# (backends/local/gen-seccomp-program) must be the one libseccomp builds
# here and now from the same rules: the library loads it instead of
# building its own when libseccomp, the architecture and the kernel's API
# level are the ones it was built with. A stale or wrong header fails here.
# TAP.
set -u
gen="$TOP_BUILDDIR/backends/local/gen-seccomp-program"
header="$TOP_BUILDDIR/backends/local/sandbox-local-seccomp-program.h"
echo "1..3"
if [ ! -x "$gen" ] || [ ! -f "$header" ]; then
  echo "not ok 1 - gen-seccomp-program and its header are built"
  echo "ok 2 # SKIP nothing to compare"
  echo "ok 3 # SKIP nothing to compare"
  exit 0
fi
echo "ok 1 - gen-seccomp-program and its header are built"
now=$("$gen")
if grep -q '^#define SBX_SECCOMP_PREBUILT_LEN 0$' "$header"; then
  echo "ok 2 # SKIP no program built at build time (a cross build, or no seccomp here)"
else
  echo "ok 2 - a program was built at build time"
fi
if [ "$now" = "$(cat "$header")" ]; then
  echo "ok 3 - the program built at build time is the one built now"
else
  echo "not ok 3 - the program built at build time is the one built now"
  printf '%s\n' "$now" | diff "$header" - | head -20 | sed 's/^/# /'
fi

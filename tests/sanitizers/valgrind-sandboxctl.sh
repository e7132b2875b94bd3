#!/bin/sh
# sandboxctl under valgrind, for `make check-valgrind` (tests/sanitizers/
# Makefile.am): the test script runs this in place of the tool. valgrind's
# report goes to a file in $VALGRIND_LOG_DIR, not to stderr, so that the
# tool's output and exit status stay what the script checks; the make rule
# then fails on any log with errors. The program itself is run, not its
# libtool wrapper, and VALGRIND is an absolute path: one test runs the tool
# with a PATH that has nothing on it (LD_LIBRARY_PATH finds the library).
: "${TOP_BUILDDIR:?}" "${VALGRIND_LOG_DIR:?}"
prog=$TOP_BUILDDIR/tools/.libs/sandboxctl
[ -x "$prog" ] || prog=$TOP_BUILDDIR/tools/.libs/lt-sandboxctl
# shellcheck disable=SC2086 # VALGRIND_FLAGS is a list of options
exec "${VALGRIND:-valgrind}" $VALGRIND_FLAGS \
  --log-file="$VALGRIND_LOG_DIR/sandboxctl.%p.log" "$prog" "$@"

#!/bin/sh
# Regenerates the build system. Run ./autogen.sh [configure options], or
# NOCONFIGURE=1 ./autogen.sh to stop before configure.
set -e
srcdir=$(dirname "$0")
test -n "$srcdir" || srcdir=.
(cd "$srcdir" && autoreconf --force --install --verbose) || exit 1
if test -z "$NOCONFIGURE"; then
  exec "$srcdir/configure" "$@"
fi

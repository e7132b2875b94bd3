#!/usr/bin/env bash
# Installs what libsandbox needs on Debian 12 (apt and pip), then builds it.
# Used by the README's two commands (scripts/demo.sh, scripts/test.sh) and CI.
# Idempotent: packages already present are not reinstalled, and an existing
# build is only brought up to date.
#
# Environment: BUILDDIR (default _build), VENV (default .venv, see venv-dirs),
#              CONFIGURE_FLAGS (extra flags for configure).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${BUILDDIR:-$top/_build}
. "$top/scripts/venv-dirs"

apt_packages=(
  build-essential autoconf automake libtool autoconf-archive pkg-config gettext autopoint
  libglib2.0-dev libsoup-3.0-dev libjson-glib-dev libarchive-dev libseccomp-dev
  gobject-introspection libgirepository1.0-dev gir1.2-soup-3.0
  python3 python3-gi python3-venv gjs bubblewrap
  clang libclang-rt-14-dev
  valgrind
  musl-tools
)

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "setup: run as root or install sudo: cannot run $*" >&2; exit 1; fi
}

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python packages for the Metaflow extension and the SDK conformance tests:
# a venv made from Debian's python3 so that it sees python3-gi (notes, B4).
if [ ! -x "$venv/bin/python" ]; then
  mkdir -p "$(dirname "$venv")"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
reqs=()
for r in "$top"/python/requirements-test.txt "$top"/tests/conformance/*/requirements.txt; do
  [ -f "$r" ] && reqs+=(-r "$r")
done
stamp="$venv/.requirements-stamp"
want=$(cat "$top"/python/requirements-test.txt "$top"/tests/conformance/*/requirements.txt 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ ${#reqs[@]} -gt 0 ] && [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "${reqs[@]}"
  echo "$want" > "$stamp"
fi

# The older supported Metaflow, for the extension's tests: its own venv.
old_reqs="$top/python/requirements-test-2.15.txt"
if [ -f "$old_reqs" ]; then
  [ -x "$old_venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$old_venv"
  want_old=$(sha256sum < "$old_reqs" | cut -d' ' -f1)
  if [ "$(cat "$old_venv/.requirements-stamp" 2>/dev/null)" != "$want_old" ]; then
    echo "setup: installing the older Metaflow into $old_venv"
    "$old_venv/bin/pip" install -q --disable-pip-version-check -r "$old_reqs"
    echo "$want_old" > "$old_venv/.requirements-stamp"
  fi
fi

cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ]; then
  NOCONFIGURE=1 ./autogen.sh >/dev/null 2>&1 || { NOCONFIGURE=1 ./autogen.sh; exit 1; }
fi
mkdir -p "$builddir"
cd "$builddir"
if [ ! -f Makefile ]; then
  # --enable-strict: g-ir-scanner warnings are errors.
  "$top/configure" --enable-introspection --enable-strict GI_PYTHON=/usr/bin/python3 ${CONFIGURE_FLAGS:-} >/dev/null
fi
make -j"$(nproc)" >/dev/null
# The Metaflow extension runs from python/ (uninstalled-env puts it on
# PYTHONPATH): its bytecode made now, so that a launcher, each task and each
# sandboxed step do not compile it again where PYTHONDONTWRITEBYTECODE is set
# (or python/ is read-only, as inside a sandbox).
"$venv/bin/python" -m compileall -q "$top/python" >/dev/null || true
echo "setup: built in $builddir"

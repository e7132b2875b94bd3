#!/bin/bash
# Builds the Debian packages of libsandbox from a clean copy of the source
# tree (what a fresh clone would hold: tracked files plus new files that are
# not ignored), in OUTDIR (default: a new temporary directory), with
# `dpkg-buildpackage -us -uc -b`. Installs the build dependencies first.
# Prints the directory that holds the .debs on its last line.
#
# Usage: tests/packaging/build-debs.sh [OUTDIR]
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$(mktemp -d "${TMPDIR:-/tmp}/libsandbox-debs.XXXXXX")}
mkdir -p "$out"
src=$out/libsandbox-$(sed -n "1s/.*(\([^-)]*\).*/\1/p" "$top/debian/changelog")

as_root () { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Build tools, then the Build-Depends of debian/control (apt reads them from
# the source directory).
need=(dpkg-dev debhelper lintian cpio)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] || ! (cd "$top" && dpkg-checkbuilddeps >/dev/null 2>&1); then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq "$top" >/dev/null
fi

rm -rf "$src"
mkdir -p "$src"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$top" && git ls-files -z --cached --others --exclude-standard \
     | while IFS= read -r -d '' f; do
         case $f in _build*|.venv/*) continue ;; esac
         [ -e "$f" ] && printf '%s\0' "$f"
       done | cpio -0 -pdm --quiet "$src")
else
  tar -C "$top" --exclude='./_build*' --exclude=./.venv --exclude=./.git -cf - . | tar -C "$src" -xf -
fi

cd "$src"
# Generated in the source tree by an earlier build: rebuild them from the .po files.
rm -f po/*.gmo po/stamp-po po/libsandbox-1.0.pot
log=$out/dpkg-buildpackage.log
if ! dpkg-buildpackage -us -uc -b -j"$(nproc)" >"$log" 2>&1; then
  tail -60 "$log" >&2
  echo "build-debs: dpkg-buildpackage failed: see $log" >&2
  exit 1
fi
echo "$out"

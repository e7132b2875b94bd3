#!/bin/bash
# Builds the RPMs from the `make dist` tarball with rpm/libsandbox.spec (made
# by configure), with `rpmbuild --nodeps -ba` since Debian has no rpm
# database of the build dependencies (notes, pitfall P17); %check runs
# make check. Installs rpm with apt-get if it is missing. Run by .ci/run.
# Prints TAP and a final "N passed, N failed" line.
#
# Usage: tests/packaging/test-rpm.sh [TARBALL]
#   TARBALL: use this libsandbox-*.tar.xz instead of making one.
set -uo pipefail
unset GI_TYPELIB_PATH LD_LIBRARY_PATH PYTHONPATH SANDBOX_EXEC_HELPER SANDBOX_REMOTE_MODULE METAFLOW_PYTHON SDK_PYTHON

top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/libsandbox-rpm.XXXXXX")
as_root () { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
pass=0 fail=0 n=0
ok () { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
trap 'rm -rf "$work"; echo "1..$n"; echo "$pass passed, $fail failed"; [ "$fail" = 0 ]' EXIT

if ! command -v rpmbuild >/dev/null; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rpm >/dev/null
fi

# The tarball: from a fresh configure of a clean copy, as a release would be made.
# (`make dist` runs serially: gettext's po/ rules race under -j.)
if [ $# -ge 1 ]; then
  tarball=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
else
  src=$work/src
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
  log=$work/dist.log
  if (cd "$src" && NOCONFIGURE=1 ./autogen.sh && mkdir _dist && cd _dist &&
      ../configure --enable-introspection GI_PYTHON=/usr/bin/python3 && make dist) >"$log" 2>&1; then
    tarball=$(ls "$src"/_dist/libsandbox-*.tar.xz | head -n1)
    ok "make dist makes $(basename "$tarball")"
  else
    not_ok "make dist" "$(tail -20 "$log")"; exit 1
  fi
fi

spec=$work/libsandbox.spec
if tar -xOf "$tarball" --wildcards '*/rpm/libsandbox.spec.in' >/dev/null 2>&1 && \
   tar -xOf "$tarball" --wildcards '*/rpm/libsandbox.spec' > "$spec" 2>/dev/null && [ -s "$spec" ]; then
  ok "the tarball carries rpm/libsandbox.spec, made by configure"
else
  not_ok "the tarball carries rpm/libsandbox.spec, made by configure"; exit 1
fi

top_rpm=$work/rpmbuild
mkdir -p "$top_rpm"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}
cp "$tarball" "$top_rpm/SOURCES/"
cp "$spec" "$top_rpm/SPECS/"
log=$work/rpmbuild.log
if rpmbuild --define "_topdir $top_rpm" --nodeps -ba "$top_rpm/SPECS/libsandbox.spec" >"$log" 2>&1; then
  ok "rpmbuild --nodeps -ba libsandbox.spec"
else
  not_ok "rpmbuild --nodeps -ba libsandbox.spec" "$(tail -40 "$log")"
fi
if grep -q '^+ make check' "$log" && grep -qE '^# FAIL: +0$' "$log"; then
  ok "%check ran make check and it passed ($(grep -E '^# TOTAL' "$log" | tail -n1))"
else
  # Which tests, and the end of their logs: the build tree goes with $work.
  failed=$(grep -E '^(FAIL|ERROR): ' "$log" | head -20)
  details=""
  for t in $(printf '%s\n' "$failed" | sed -nE 's/^(FAIL|ERROR): ([^ ]+).*/\2/p' | sort -u | head -5); do
    tlog=$(find "$top_rpm/BUILD" -path "*/$t.log" 2>/dev/null | head -n1)
    [ -n "$tlog" ] && details="$details
--- $t.log (end)
$(grep -vE 'DEBUG' "$tlog" | tail -30)"
  done
  not_ok "%check ran make check and it passed" "$failed$details"
fi
for p in libsandbox libsandbox-devel sandbox-tools python3-metaflow-sandbox libsandbox-doc; do
  f=$(ls "$top_rpm"/RPMS/*/"$p"-0*.rpm 2>/dev/null | head -n1)
  if [ -n "$f" ]; then ok "built $(basename "$f")"; else not_ok "built the $p package"; fi
done
srpm=$(ls "$top_rpm"/SRPMS/*.src.rpm 2>/dev/null | head -n1)
if [ -n "$srpm" ]; then ok "built $(basename "$srpm")"; else not_ok "built the source rpm"; fi
# The split: files where they belong.
# (Each listing is read whole before grep: `rpm -qlp | grep -q` under
# pipefail fails when grep exits before rpm has written a long listing.)
q () { rpm -qlp "$(ls "$top_rpm"/RPMS/*/"$1"-0*.rpm | head -n1)" 2>/dev/null; }
has () { local list; list=$(q "$1"); grep -qF -- "$2" <<<"$list" || { echo "# the $1 package has no $2"; return 1; }; }
if has libsandbox 'libsandbox-1.0.so.0' && has libsandbox 'Sandbox-1.0.typelib' && \
   has libsandbox 'sandbox-exec-helper' && has libsandbox 'de/LC_MESSAGES/libsandbox-1.0.mo' && \
   has libsandbox 'libsandbox-1.0/libsandbox-remote.so' && \
   has libsandbox-devel 'sandbox-1.0.pc' && has libsandbox-devel 'Sandbox-1.0.gir' && \
   has sandbox-tools 'bin/sandboxctl' && has python3-metaflow-sandbox 'metaflow_extensions/libsandbox/plugins' && \
   has libsandbox-doc 'reference/index.html'; then
  ok "the packages hold the library, remote module, devel files, tool, extension and reference"
else
  not_ok "the packages hold the library, remote module, devel files, tool, extension and reference"
fi

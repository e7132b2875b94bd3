#!/bin/bash
# The installed-package test (run by .ci/run, not by make check):
#   1. builds the .debs from a clean copy of the tree (tests/packaging/build-debs.sh),
#   2. installs them with apt-get (which pulls their dependencies),
#   3. with no GI_TYPELIB_PATH, LD_LIBRARY_PATH, PYTHONPATH or SANDBOX_EXEC_HELPER:
#      builds a C program with `pkg-config sandbox-1.0` and runs it (local
#      sandbox: create, exec, destroy); runs a Python and a gjs script against
#      the installed typelib; runs `sandboxctl run --backend local`; checks a
#      translated message; runs a Metaflow flow with a sandboxed step through
#      the installed extension (Metaflow from PyPI in a venv made from
#      /usr/bin/python3 --system-site-packages);
#   4. purges the packages.
# Prints TAP and a final "N passed, N failed" line. Needs root (or sudo).
#
# Usage: tests/packaging/test-installed.sh [DEBDIR]
#   DEBDIR: use the .debs already built there instead of building them.
# Environment: MF_VENV (default /var/tmp/libsandbox-mf-venv): where Metaflow is
#   installed; METAFLOW_VERSION (default: the one in python/requirements-test.txt).

set -uo pipefail
unset GI_TYPELIB_PATH LD_LIBRARY_PATH PYTHONPATH SANDBOX_EXEC_HELPER SANDBOX_BWRAP \
      SANDBOX_REMOTE_MODULE SANDBOX_LIBARCHIVE SANDBOX_LOCALEDIR SANDBOX_BACKEND SANDBOX_BACKEND_PATH SANDBOX_LOCAL_ROOT

top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/tests/packaging
work=$(mktemp -d "${TMPDIR:-/tmp}/libsandbox-installed.XXXXXX")
as_root () { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pass=0 fail=0 n=0
ok () { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
skip () { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
# check NAME CMD...: passes when CMD exits 0; its output goes to the TAP diagnostics otherwise
check () {
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "exit status $?" "${out//$'\n'/$'\n'# }"; fi
}

packages=(libsandbox-1.0-0 libsandbox-1.0-common libsandbox-1.0-dev gir1.2-sandbox-1.0
          sandbox-tools python3-metaflow-sandbox libsandbox-doc)
purge () {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${packages[@]}" >/dev/null 2>&1
}
finish () {
  purge
  rm -rf "$work"
  echo "1..$n"
  echo "$pass passed, $fail failed"
  [ "$fail" = 0 ]
}
trap 'finish; exit $?' EXIT

echo "# build: .debs"
if [ $# -ge 1 ]; then
  debdir=$1
else
  if debdir=$("$here/build-debs.sh" "$work/debs" | tail -n1); then :; else
    not_ok "the .debs build (dpkg-buildpackage -us -uc -b)"; exit 1; fi
fi
debs=()
for p in "${packages[@]}"; do
  f=$(ls "$debdir"/${p}_*.deb 2>/dev/null | head -n1)
  if [ -n "$f" ]; then debs+=("$f"); else not_ok "package $p was built" "no ${p}_*.deb in $debdir"; fi
done
[ ${#debs[@]} = ${#packages[@]} ] && ok "all ${#packages[@]} packages were built"

# lintian: no errors (warnings are reported, not fatal).
if command -v lintian >/dev/null; then
  changes=$(ls "$debdir"/*.changes 2>/dev/null | head -n1)
  lint=$(lintian --fail-on error ${changes:-"${debs[@]}"} 2>&1); st=$?
  if [ $st = 0 ]; then ok "lintian reports no errors"; else not_ok "lintian reports no errors" "${lint//$'\n'/$'\n'# }"; fi
fi

purge
out=$(as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${debs[@]}" 2>&1); st=$?
if [ $st = 0 ]; then ok "apt-get install ./*.deb"; else not_ok "apt-get install ./*.deb" "$out"; exit 1; fi

# Files where the packages put them.
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
check "typelib, helper, remote module, .pc, man page, reference and catalogs are installed" test -f "/usr/lib/$ma/girepository-1.0/Sandbox-1.0.typelib" \
  -a -x "/usr/lib/$ma/libsandbox-1.0/sandbox-exec-helper" -a -f "/usr/lib/$ma/libsandbox-1.0/libsandbox-remote.so" -a -f "/usr/lib/$ma/pkgconfig/sandbox-1.0.pc" \
  -a -f /usr/share/man/man1/sandboxctl.1.gz -a -f /usr/share/doc/libsandbox-1.0/reference/index.html \
  -a -f /usr/share/locale/de/LC_MESSAGES/libsandbox-1.0.mo -a -f /usr/share/locale/fr/LC_MESSAGES/libsandbox-1.0.mo

export SANDBOX_LOCAL_ROOT=$work/root
mkdir -p "$SANDBOX_LOCAL_ROOT"
cd "$work" || exit 1

# C, with pkg-config only.
if out=$(gcc -o consumer "$here/consumer.c" $(pkg-config --cflags --libs sandbox-1.0) 2>&1); then
  ok "a C program builds with pkg-config --cflags --libs sandbox-1.0"
  out=$(./consumer 2>&1); st=$?
  if [ $st = 0 ] && grep -q '^hello from sbx-' <<<"$out" && grep -q 'exit code 7' <<<"$out"; then
    ok "the C program creates a local sandbox, runs a command in it and destroys it"
  else not_ok "the C program creates a local sandbox, runs a command in it and destroys it" "status $st: $out"; fi
else
  not_ok "a C program builds with pkg-config --cflags --libs sandbox-1.0" "$out"
fi

# Python against the installed typelib.
cat > test.py <<'PYEOF'
import gi
gi.require_version("Sandbox", "1.0")
from gi.repository import Gio, Sandbox

backend = Sandbox.Backend.new_for_name("local")
spec = Sandbox.Spec()
spec.set_label("installed-test", "python")
inst = backend.create(spec, None)
out = Gio.MemoryOutputStream.new_resizable()
cmd = Sandbox.Command.new(["sh", "-c", "echo python-ok; exit 3"])
cmd.set_stdout_stream(out)
r = inst.exec(cmd, None)
out.close(None)
assert r.get_exit_status() == 3, r.get_exit_status()
assert out.steal_as_bytes().get_data() == b"python-ok\n"
assert [i.get_id() for i in backend.list({"installed-test": "python"}, None)] == [inst.get_id()]
inst.destroy(None)
assert list(backend.list({"installed-test": "python"}, None)) == []
print(Sandbox.__file__ if hasattr(Sandbox, "__file__") else "ok")
PYEOF
check "Python (python3-gi) uses the installed typelib: create, exec, list, destroy" /usr/bin/python3 test.py

# gjs against the installed typelib.
if command -v gjs >/dev/null; then
  cat > test.js <<'JSEOF'
imports.gi.versions.Sandbox = '1.0';
const {Sandbox} = imports.gi;
const backend = Sandbox.Backend.new_for_name('local');
const inst = backend.create(new Sandbox.Spec(), null);
const r = inst.exec(Sandbox.Command.new(['sh', '-c', 'echo gjs-ok; exit 4']), null);
const text = new TextDecoder().decode(r.get_stdout().toArray());
inst.destroy(null);
if (r.get_exit_status() !== 4 || text !== 'gjs-ok\n')
    throw new Error(`unexpected result: ${r.get_exit_status()} ${text}`);
JSEOF
  check "gjs uses the installed typelib: create, exec, destroy" gjs test.js
else
  skip "gjs uses the installed typelib" "gjs is not installed"
fi

# sandboxctl.
out=$(sandboxctl run --backend local -- echo hi 2>&1); st=$?
if [ $st = 0 ] && [ "$out" = hi ]; then ok "sandboxctl run --backend local -- echo hi"
else not_ok "sandboxctl run --backend local -- echo hi" "status $st: $out"; fi
out=$(sandboxctl run --backend local -- sh -c 'exit 9' 2>&1); st=$?
if [ $st = 9 ]; then ok "sandboxctl run exits with the command's status"; else not_ok "sandboxctl run exits with the command's status" "status $st: $out"; fi
# Only what a command needs is loaded (issue 14): libarchive at the first tar
# stream, libsoup with the remote backends' module, asked for by name.
out=$(LD_DEBUG=files sandboxctl run --backend local -- true 2>&1); st=$?
if [ $st = 0 ] && ! grep -qE 'file=[^ ]*(libsoup|libarchive|libsandbox-remote)' <<<"$out"; then
  ok "sandboxctl run --backend local loads neither libsoup nor libarchive"
else not_ok "sandboxctl run --backend local loads neither libsoup nor libarchive" "status $st" \
  "$(grep -E 'file=[^ ]*(libsoup|libarchive|libsandbox-remote)' <<<"$out" | head -5)"; fi
out=$(sandboxctl backends --json 2>&1)
if grep -q '"daytona"' <<<"$out" && grep -q '"e2b"' <<<"$out"; then
  ok "sandboxctl backends lists daytona and e2b (the installed module)"
else not_ok "sandboxctl backends lists daytona and e2b (the installed module)" "$out"; fi
out=$(env -u DAYTONA_API_KEY sandboxctl run --backend daytona -- true 2>&1)
if grep -q 'DAYTONA_API_KEY' <<<"$out"; then ok "sandboxctl run --backend daytona loads the module and asks for a key"
else not_ok "sandboxctl run --backend daytona loads the module and asks for a key" "$out"; fi
mkdir -p tree/sub && echo tar-ok > tree/sub/f
cat > tar.py <<'PYEOF'
import gi
gi.require_version("Sandbox", "1.0")
from gi.repository import Gio, Sandbox

out = Gio.MemoryOutputStream.new_resizable()
assert Sandbox.archive_write(Gio.File.new_for_path("tree"), None, out, None)
out.close(None)
data = Gio.MemoryInputStream.new_from_bytes(out.steal_as_bytes())
assert Sandbox.archive_extract(data, Gio.File.new_for_path("untarred"), Sandbox.ArchiveFlags.NONE, None)
assert open("untarred/sub/f").read() == "tar-ok\n"
PYEOF
check "a tar round trip (libarchive loaded at first use)" /usr/bin/python3 tar.py
check "man sandboxctl is installed" sh -c 'zcat /usr/share/man/man1/sandboxctl.1.gz | grep -q "^.TH SANDBOXCTL 1"'

# Translations from the installed catalogs.
out=$(env LANG=C.UTF-8 LANGUAGE=de sandboxctl run --backend nosuch -- true 2>&1)
if grep -qF 'Unbekanntes Sandbox-Backend „nosuch“' <<<"$out"; then ok "LANGUAGE=de sandboxctl run --backend nosuch prints German"
else not_ok "LANGUAGE=de sandboxctl run --backend nosuch prints German" "$out"; fi
out=$(env LANG=C.UTF-8 LANGUAGE=fr sandboxctl run --backend nosuch -- true 2>&1)
if grep -qF 'Moteur de bac à sable « nosuch » inconnu' <<<"$out"; then ok "LANGUAGE=fr sandboxctl run --backend nosuch prints French"
else not_ok "LANGUAGE=fr sandboxctl run --backend nosuch prints French" "$out"; fi

# Metaflow, with the installed extension (python3-metaflow-sandbox).
ext=$(/usr/bin/python3 -c 'import metaflow_extensions.libsandbox, os; print(os.path.dirname(metaflow_extensions.libsandbox.__path__[0]))' 2>/dev/null)
if [ "$ext" = /usr/lib/python3/dist-packages/metaflow_extensions ]; then
  ok "the extension is installed in /usr/lib/python3/dist-packages"
else
  not_ok "the extension is installed in /usr/lib/python3/dist-packages" "found: ${ext:-nothing}"
fi
if [ ! -d "$top/python/metaflow_extensions/libsandbox/plugins" ]; then
  skip "a Metaflow flow with a sandboxed step" "python/ has no flow support yet"
else
  venv=${MF_VENV:-/var/tmp/libsandbox-mf-venv}
  mfver=${METAFLOW_VERSION:-$(sed -n 's/^metaflow==//p' "$top/python/requirements-test.txt" 2>/dev/null)}
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import metaflow' 2>/dev/null; then
    rm -rf "$venv"
    /usr/bin/python3 -m venv --system-site-packages "$venv" &&
      "$venv/bin/pip" install -q --disable-pip-version-check "metaflow${mfver:+==$mfver}" >"$work/pip.log" 2>&1 ||
      { not_ok "Metaflow installs from PyPI into a venv" "$(tail -5 "$work/pip.log")"; venv=; }
  fi
  if [ -n "$venv" ]; then
    mkdir -p "$work/flow" "$work/mfhome"
    cat > "$work/flow/installed_flow.py" <<'PYEOF'
import platform

from metaflow import FlowSpec, sandbox, step


class InstalledFlow(FlowSpec):
    @sandbox(backend="local", memory=512)
    @step
    def start(self):
        self.where = platform.node()
        self.value = 6 * 7
        self.next(self.end)

    @step
    def end(self):
        print("sandboxed start ran in", self.where, "value", self.value)


if __name__ == "__main__":
    InstalledFlow()
PYEOF
    cd "$work/flow" || exit 1
    mfenv=(env METAFLOW_HOME="$work/mfhome" METAFLOW_DATASTORE_SYSROOT_LOCAL="$work/flow"
           METAFLOW_DEFAULT_DATASTORE=local METAFLOW_DEFAULT_METADATA=local METAFLOW_USER=tester
           USERNAME=tester PYTHONDONTWRITEBYTECODE=1)
    out=$("${mfenv[@]}" "$venv/bin/python" installed_flow.py --no-pylint run 2>&1); st=$?
    if [ $st = 0 ] && grep -qE 'sandboxed start ran in sbx-[0-9a-f]{12} value 42' <<<"$out"; then
      ok "a Metaflow flow with a @sandbox step runs through the installed extension"
    else
      not_ok "a Metaflow flow with a @sandbox step runs through the installed extension" "status $st" "$(tail -30 <<<"$out")"
    fi
    left=$(ls "$SANDBOX_LOCAL_ROOT" 2>/dev/null | wc -l)
    if [ "$left" = 0 ]; then ok "the flow left no sandbox behind"; else not_ok "the flow left no sandbox behind" "$(ls "$SANDBOX_LOCAL_ROOT")"; fi
    cd "$work" || exit 1
  fi
fi

# Purge: nothing of the packages is left.
purge
if [ ! -e "/usr/lib/$ma/libsandbox-1.0.so.0" ] && [ ! -e /usr/bin/sandboxctl ] && \
   [ ! -e "/usr/lib/$ma/girepository-1.0/Sandbox-1.0.typelib" ] && \
   [ ! -d /usr/lib/python3/dist-packages/metaflow_extensions/libsandbox ]; then
  ok "apt-get purge removes everything"
else
  not_ok "apt-get purge removes everything"
fi

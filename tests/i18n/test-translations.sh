#!/bin/bash
# Translations: failing commands under LANGUAGE=de and LANGUAGE=fr print
# their remediation text in German and French, from the build tree's
# catalogs (po/*.gmo, else compiled here from po/*.po) installed into a
# temporary locale directory that SANDBOX_LOCALEDIR points the library and
# sandboxctl at. Also checks that the catalogs are complete. Prints TAP.
#
# Needs $SANDBOXCTL, $TOP_SRCDIR and the uninstalled-library environment
# that tests/Makefile.am sets.

if [ -z "${BASH_VERSION:-}" ]; then
  exec bash "$0" "$@"
fi
set -u

: "${SANDBOXCTL:?SANDBOXCTL must name the sandboxctl to test}"
: "${TOP_SRCDIR:?TOP_SRCDIR must name the source tree}"
CTL=$SANDBOXCTL
PO=$TOP_SRCDIR/po
DOMAIN=libsandbox-1.0
PY=${GI_PYTHON:-/usr/bin/python3}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/test-translations.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export SANDBOX_LOCAL_ROOT="$WORK/root"
mkdir -p "$SANDBOX_LOCAL_ROOT"
unset SANDBOX_BACKEND SANDBOX_BWRAP LC_ALL LC_MESSAGES

echo "1..15"
n=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }

# The standard layout: $WORK/locale/<lang>/LC_MESSAGES/<domain>.mo
export SANDBOX_LOCALEDIR="$WORK/locale"
for lang in de fr; do
  mkdir -p "$SANDBOX_LOCALEDIR/$lang/LC_MESSAGES"
  mo=$SANDBOX_LOCALEDIR/$lang/LC_MESSAGES/$DOMAIN.mo
  if [ -f "$PO/$lang.gmo" ] && [ ! "$PO/$lang.po" -nt "$PO/$lang.gmo" ]; then
    cp "$PO/$lang.gmo" "$mo"
  else
    msgfmt -o "$mo" "$PO/$lang.po"
  fi
done

# LANGUAGE is ignored under the C locale: C.UTF-8 is not "C" for glibc and
# exists on every Debian system, so it needs no locales package.
LOCALE=C.UTF-8
if ! locale -a 2>/dev/null | grep -qix 'c\.utf-\?8'; then
  LOCALE=$(locale -a 2>/dev/null | grep -i 'utf-\?8' | head -n1)
fi

# run LANGUAGE [VAR=VALUE...] -- ARGS...: sandboxctl's stderr in $err, status in $status
run () {
  local language=$1; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  err=$(env LANG="$LOCALE" LANGUAGE="$language" "${envs[@]}" "$CTL" "$@" 2>&1 >/dev/null)
  status=$?
}

# expect NAME PATTERN: $err contains PATTERN (fixed string)
expect () {
  if grep -qF -- "$2" <<<"$err"; then ok "$1"; else not_ok "$1" "expected: $2" "got (status $status): $err"; fi
}

# 1-3: an unknown backend, in English (no translation), German and French.
run "" -- run --backend nosuch -- true
expect "unknown backend: English without LANGUAGE" "Unknown sandbox backend “nosuch”"
run de -- run --backend nosuch -- true
expect "unknown backend: German under LANGUAGE=de" "Unbekanntes Sandbox-Backend „nosuch“"
run fr -- run --backend nosuch -- true
expect "unknown backend: French under LANGUAGE=fr" "Moteur de bac à sable « nosuch » inconnu"

# 4-5: bubblewrap missing: the remediation (how to install it) is translated.
run de SANDBOX_BWRAP="$WORK/no-bwrap" -- run --backend local -- true
expect "bwrap missing: German remediation" "Installieren Sie es mit „sudo apt-get install bubblewrap“"
run fr SANDBOX_BWRAP="$WORK/no-bwrap" -- run --backend local -- true
expect "bwrap missing: French remediation" "Installez-le avec « sudo apt-get install bubblewrap »"

# 6: sandboxctl's own usage error (the tool's strings, not the library's).
run de -- run --cpu -1 -- true
expect "sandboxctl option error: German" "darf nicht negativ sein"

# 7: the library translates for any program that sets the locale, here Python.
out=$(env LANG="$LOCALE" LANGUAGE=fr "$PY" - 2>&1 <<'PYEOF'
import locale
locale.setlocale(locale.LC_ALL, "")
import gi
gi.require_version("Sandbox", "1.0")
from gi.repository import GLib, Sandbox
try:
    Sandbox.Backend.new_for_name("nosuch")
except GLib.Error as e:
    print(e.message)
PYEOF
)
err=$out; status=0
expect "library error in Python under LANGUAGE=fr" "Moteur de bac à sable « nosuch » inconnu"

# 8-9: the catalogs are valid (format strings match) and complete.
for lang in de fr; do
  stats=$(msgfmt -c --statistics -o /dev/null "$PO/$lang.po" 2>&1)
  if [ $? = 0 ] && ! grep -qE 'fuzzy|untranslated' <<<"$stats"; then
    ok "$lang.po is valid and fully translated ($stats)"
  else
    not_ok "$lang.po is valid and fully translated" "$stats"
  fi
done

# 10: every C file with a translatable string is listed in po/POTFILES.in.
potfiles=$(grep -v '^#' "$PO/POTFILES.in" | sed '/^[[:space:]]*$/d')
missing=()
while IFS= read -r f; do
  rel=${f#"$TOP_SRCDIR"/}
  grep -qxF "$rel" <<<"$potfiles" || missing+=("$rel")
done < <(grep -lE '\b(N?_|C_|NC_)\(' "$TOP_SRCDIR"/libsandbox/*.c "$TOP_SRCDIR"/backends/*.c \
           "$TOP_SRCDIR"/backends/*/*.c "$TOP_SRCDIR"/tools/*.c 2>/dev/null)
if [ ${#missing[@]} = 0 ]; then ok "po/POTFILES.in lists every C file with _() strings"
else not_ok "po/POTFILES.in lists every C file with _() strings" "missing: ${missing[*]}"; fi

# 11-12: no message of the current sources is missing from a catalog: a
# new string needs `make -C po update-po` (in the build tree) and a translation.
existing=()
while IFS= read -r f; do [ -f "$TOP_SRCDIR/$f" ] && existing+=("$f"); done <<<"$potfiles"
(cd "$TOP_SRCDIR" && xgettext --from-code=UTF-8 --keyword=_ --keyword=N_ --keyword=C_:1c,2 \
   --keyword=NC_:1c,2 --keyword=ngettext:1,2 --keyword=gettext -o "$WORK/fresh.pot" "${existing[@]}") 2>"$WORK/xgettext.err"
for lang in de fr; do
  if [ ! -s "$WORK/fresh.pot" ]; then not_ok "$lang.po covers the sources" "$(cat "$WORK/xgettext.err")"; continue; fi
  if cmp_out=$(msgcmp "$PO/$lang.po" "$WORK/fresh.pot" 2>&1); then
    ok "$lang.po translates every message of the current sources"
  else
    not_ok "$lang.po translates every message of the current sources" \
      "run make -C po update-po in the build tree, then translate:" \
      "$(grep -v 'warning:' <<<"$cmp_out" | head -n 10 | tr '\n' ' ')"
  fi
done

# 13-14: the Metaflow extension's own messages (Python gettext, same domain
# and catalogs): a decorator validation error under LANGUAGE=de and fr. With
# Metaflow ($METAFLOW_PYTHON) through the decorator's code; without it,
# through the extension's translation module.
MFPY=${METAFLOW_PYTHON:-}
if [ -z "$MFPY" ] || ! "$MFPY" -c 'import metaflow' >/dev/null 2>&1; then MFPY=""; fi
for pair in "de|Ungültiger cpu-Wert *x* für den Schritt *start*: er muss eine Zahl sein." \
            "fr|Valeur cpu *x* invalide pour l’étape *start* : ce doit être un nombre."; do
  lang=${pair%%|*} want=${pair#*|}
  if [ -n "$MFPY" ]; then
    err=$(env LANG="$LOCALE" LANGUAGE="$lang" PYTHONPATH="$TOP_SRCDIR/python" "$MFPY" -c '
import metaflow  # noqa: F401 - loads the extension first (its plugins import metaflow)
from metaflow_extensions.libsandbox.plugins.sandbox_decorator import _as_number
try:
    _as_number("x", "cpu", "start")
except Exception as ex:
    print(ex)
' 2>&1)
  else
    err=$(env LANG="$LOCALE" LANGUAGE="$lang" PYTHONPATH="$TOP_SRCDIR/python" "$PY" -c '
from metaflow_extensions.libsandbox.plugins.sandbox_i18n import _
print(_("Invalid %s value *%s* for step *%s*: it must be a number.") % ("cpu", "x", "start"))
' 2>&1)
  fi
  status=0
  expect "Metaflow extension message under LANGUAGE=$lang" "$want"
done

# 15: no msgid is cut short by a format macro (G_GSIZE_FORMAT & co.):
# xgettext stops a msgid at the macro, so the message is never translated.
cut=$(grep -nE '_\("([^"\\]|\\.)*"[[:space:]]*G_G[A-Z0-9]*_(FORMAT|MODIFIER)' \
        "$TOP_SRCDIR"/libsandbox/*.c "$TOP_SRCDIR"/backends/*/*.c "$TOP_SRCDIR"/tools/*.c 2>/dev/null)
if [ -z "$cut" ]; then ok "no msgid contains a format macro"
else not_ok "no msgid contains a format macro" "$cut"; fi

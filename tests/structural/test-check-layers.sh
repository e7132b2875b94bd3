#!/bin/bash
# test-check-layers.sh - the structural check catches what it must, and only that
#
# Builds a tiny fake source tree that keeps every layer rule, checks that
# check-layers passes on it, then breaks one rule at a time in a copy and
# checks that check-layers fails, reporting that rule (and no other) and the
# offending FILE:LINE. Prints TAP.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

set -u

here=$(cd "$(dirname "$0")" && pwd)
CHECK=${CHECK_LAYERS:-$here/check-layers}
work=$(mktemp -d "${TMPDIR:-/tmp}/test-check-layers.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

# ------------------------------------------------------------------ #
# A clean tree                                                        #

clean=$work/clean
mkdir -p "$clean"/{libsandbox,introspection,backends/one,backends/two,tools,tests/structural} \
         "$clean"/python/metaflow_extensions/libsandbox/plugins

cat > "$clean/Makefile.am" <<'EOF'
EXTRA_DIST =
include libsandbox/Makefile.am
include introspection/Makefile.am
EOF

cat > "$clean/libsandbox/Makefile.am" <<'EOF'
# libsandbox/ fragment
sandbox_public_headers = \
	libsandbox/sandbox.h \
	libsandbox/sandbox-version-macros.h \
	libsandbox/sandbox-foo.h

sandbox_public_sources = \
	libsandbox/sandbox-foo.c

sandbox_private_sources = libsandbox/sandbox-private.h

libsandbox/sandbox-enums.h: $(sandbox_public_headers)
	$(AM_V_GEN) echo libsandbox/sandbox-private.h > $@

sandboxincludedir = $(includedir)/libsandbox-1.0/libsandbox
sandboxinclude_HEADERS = $(sandbox_public_headers)
nodist_sandboxinclude_HEADERS = \
	libsandbox/sandbox-version.h
noinst_HEADERS = backends/one/sandbox-one-private.h
EOF

cat > "$clean/introspection/Makefile.am" <<'EOF'
if HAVE_INTROSPECTION
introspection_Sandbox_1_0_gir_FILES = \
	$(sandbox_public_headers) \
	$(sandbox_public_sources) \
	libsandbox/sandbox-version.h
endif
EOF

guard='#if !defined (__SANDBOX_INSIDE__) && !defined (SANDBOX_COMPILATION)
#error "Only <libsandbox/sandbox.h> can be included directly."
#endif'

cat > "$clean/libsandbox/sandbox.h" <<'EOF'
#pragma once
#define __SANDBOX_INSIDE__
#include "sandbox-version.h"
#include "sandbox-version-macros.h"
#include "sandbox-foo.h"
#undef __SANDBOX_INSIDE__
EOF

cat > "$clean/libsandbox/sandbox-version.h.in" <<EOF
#pragma once
$guard
#define SANDBOX_MAJOR_VERSION (@SANDBOX_MAJOR_VERSION@)
EOF

cat > "$clean/libsandbox/sandbox-version-macros.h" <<EOF
#pragma once
$guard
#include <glib.h>
#define SANDBOX_AVAILABLE_IN_0_1 extern
EOF

cat > "$clean/libsandbox/sandbox-foo.h" <<EOF
#pragma once
$guard
#include <glib-object.h>
#include "sandbox-version-macros.h"

G_BEGIN_DECLS

/**
 * SandboxFoo: mentions sandbox_foo_new () in a comment, which is not a prototype
 */
#define SANDBOX_TYPE_FOO (sandbox_foo_get_type ())
SANDBOX_AVAILABLE_IN_0_1
G_DECLARE_DERIVABLE_TYPE (SandboxFoo, sandbox_foo, SANDBOX, FOO, GObject)

struct _SandboxFooClass
{
  GObjectClass parent_class;
  void (*run) (SandboxFoo *self, GTask *task);
};

SANDBOX_AVAILABLE_IN_0_1
SandboxFoo *sandbox_foo_new       (const char *name,
                                   GError    **error);
SANDBOX_AVAILABLE_IN_0_1
GType
sandbox_foo_kind_get_type (void) G_GNUC_CONST;
SANDBOX_AVAILABLE_IN_0_1 void sandbox_foo_run (SandboxFoo *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SandboxFooThing, sandbox_foo_thing_unref)

G_END_DECLS
EOF

cat > "$clean/libsandbox/sandbox-private.h" <<'EOF'
#pragma once
#include "sandbox.h"
void _sandbox_register_builtin_backends (void);
EOF

cat > "$clean/libsandbox/sandbox-foo.c" <<'EOF'
#include "config.h"
#include "sandbox-private.h"
/* #include "one/sandbox-one-backend.h" is in a comment */
static const char *pattern = "/* not a comment: backends/one/sandbox-one-backend.h";
EOF

cat > "$clean/backends/sandbox-builtins.c" <<'EOF'
#include "config.h"
#include "sandbox-private.h"
#include "one/sandbox-one-backend.h"
#include "two/sandbox-two-backend.h"
EOF

for b in one two; do
  cat > "$clean/backends/$b/sandbox-$b-backend.h" <<'EOF'
#pragma once
#include "sandbox-private.h"
EOF
  cat > "$clean/backends/$b/sandbox-$b-private.h" <<EOF
#pragma once
#include <json-glib/json-glib.h>
#include "sandbox-$b-backend.h"
EOF
  cat > "$clean/backends/$b/sandbox-$b-backend.c" <<EOF
#include "config.h"
#include <string.h>
#include "sandbox-$b-private.h"
#include "sandbox-private.h"
EOF
done

cat > "$clean/tools/sandboxctl.c" <<'EOF'
#include "config.h"
#include <glib.h>
#include <glib/gi18n.h>
#include <libsandbox/sandbox.h>
#include "sandboxctl-util.h"
EOF
cat > "$clean/tools/sandboxctl-util.h" <<'EOF'
#pragma once
#include "sandbox.h"
EOF
# A private header that needs only GLib: a tool compiles its one file in
# (libsandbox/sandbox-display-private.h) and may include it.
cat > "$clean/libsandbox/sandbox-shown-private.h" <<'EOF'
#pragma once
#include <glib.h>
EOF
echo '#include "sandbox-shown-private.h"' >> "$clean/tools/sandboxctl-util.h"

cat > "$clean/python/metaflow_extensions/libsandbox/plugins/sandbox_decorator.py" <<'EOF'
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gi.repository import Sandbox


def backend(name: str) -> Sandbox.Backend:
    import gi

    gi.require_version("Sandbox", "1.0")
    from gi.repository import Sandbox

    return Sandbox.Backend.new_for_name(name)


class SandboxDecorator:
    name = "sandbox"

    def run(self) -> None:
        glib = importlib.import_module("gi.repository.GLib")
        print(glib)
EOF

# ------------------------------------------------------------------ #
# Helpers                                                             #

n=0
failures=0
out=

ok () {
  n=$((n + 1))
  echo "ok $n - $1"
}

not_ok () {
  n=$((n + 1))
  failures=$((failures + 1))
  echo "not ok $n - $1"
  shift
  for line in "$@"; do echo "# $line"; done
  printf '%s\n' "$out" | sed 's/^/#   | /'
}

# run DIR [ARGS...]: runs check-layers on DIR; sets $out and $rc
run () {
  local dir=$1
  shift
  out=$(TOP_SRCDIR= bash "$CHECK" --root "$dir" "$@" 2>&1)
  rc=$?
}

append () {   # append FILE LINE...: adds lines to FILE, sets $line to the last one's number
  local file=$1
  shift
  printf '%s\n' "$@" >> "$file"
  line=$(wc -l < "$file")
}

# expect_violation NAME RULE WHERE MUTATION...: copies the clean tree, runs
# MUTATION in it, and checks that exactly rule RULE fails, naming WHERE
expect_violation () {
  local name=$1 rule=$2 where=$3
  shift 3
  local dir=$work/case$((n + 1))
  cp -a "$clean" "$dir"
  line=0
  if ! cd "$dir" || ! eval "$*"; then
    cd "$work" || exit 1
    not_ok "$name" "setting up the case failed"
    return
  fi
  cd "$work" || exit 1
  where=$(cd "$dir" && eval "echo \"$where\"")
  run "$dir"

  local problems=()
  [ "$rc" -ne 0 ] || problems+=("check-layers exited 0")
  grep -q "^not ok $rule " <<<"$out" || problems+=("rule $rule was not reported broken")
  grep -q "^# $where: .*\[rule $rule " <<<"$out" || problems+=("no diagnostic names $where under rule $rule")
  local others
  others=$(grep '^not ok ' <<<"$out" | grep -v "^not ok $rule ")
  [ -z "$others" ] || problems+=("other rules failed too: $others")
  if [ ${#problems[@]} -eq 0 ]; then ok "$name"; else not_ok "$name" "${problems[@]}"; fi
}

# ------------------------------------------------------------------ #

echo "1..24"

run "$clean"
if [ "$rc" -eq 0 ] && [ "$(grep -c '^ok [1-7] ' <<<"$out")" -eq 7 ] && ! grep -q '^not ok' <<<"$out" \
   && grep -q '^1\.\.7$' <<<"$out"; then
  ok "a clean tree passes all 7 rules"
else
  not_ok "a clean tree passes all 7 rules" "exit status $rc"
fi

# Run by hand with no environment and no --root: it checks the tree it lives in.
own=$work/own
cp -a "$clean" "$own"
cp "$CHECK" "$own/tests/structural/check-layers"
out=$(cd / && env -u TOP_SRCDIR bash "$own/tests/structural/check-layers" 2>&1); rc=$?
if [ "$rc" -eq 0 ] && grep -q "^# source tree: $(cd "$own" && pwd -P)\$" <<<"$out"; then
  ok "without --root or TOP_SRCDIR it checks the tree it lives in"
else
  not_ok "without --root or TOP_SRCDIR it checks the tree it lives in" "exit status $rc"
fi
append "$own/libsandbox/sandbox-foo.c" '#include "one/sandbox-one-backend.h"'
out=$(cd / && env -u TOP_SRCDIR bash "$own/tests/structural/check-layers" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && grep -q "^# libsandbox/sandbox-foo.c:$line: " <<<"$out"; then
  ok "... and fails on that tree's violations"
else
  not_ok "... and fails on that tree's violations" "exit status $rc"
fi

out=$(bash "$CHECK" --root "$work/nonexistent" 2>&1); rc=$?
if [ "$rc" -eq 2 ] && grep -q '^Bail out!' <<<"$out"; then
  ok "a directory that is not a source tree bails out"
else
  not_ok "a directory that is not a source tree bails out" "exit status $rc"
fi

# Rule 1: the core never includes a backend header
expect_violation "core including a backend header by path" 1 'libsandbox/sandbox-foo.c:$line' \
  "append libsandbox/sandbox-foo.c '#include \"one/sandbox-one-backend.h\"'"
expect_violation "core including a backend header found through -I" 1 'libsandbox/sandbox-foo.c:$line' \
  "append libsandbox/sandbox-foo.c '#include <sandbox-two-private.h>'"
expect_violation "a core header including a backend header" 1 'libsandbox/sandbox-private.h:$line' \
  "append libsandbox/sandbox-private.h '#include \"backends/one/sandbox-one-backend.h\"'"

# Rule 2: backends are independent
expect_violation "a backend including another backend" 2 'backends/two/sandbox-two-backend.c:$line' \
  "append backends/two/sandbox-two-backend.c '#include \"../one/sandbox-one-private.h\"'"
expect_violation "a backend including a tools/ header" 2 'backends/one/sandbox-one-backend.c:$line' \
  "append backends/one/sandbox-one-backend.c '#include \"tools/sandboxctl-util.h\"'"
expect_violation "a backend including a tests/ header" 2 'backends/one/sandbox-one-private.h:$line' \
  "append backends/one/sandbox-one-private.h '#include \"../../tests/unit/test-util.h\"'"

# Rule 3: tools use the umbrella only
expect_violation "a tool including a private header" 3 'tools/sandboxctl.c:$line' \
  "append tools/sandboxctl.c '#include \"sandbox-private.h\"'"
expect_violation "a tool including a private header that includes more than GLib" 3 'tools/sandboxctl.c:$line' \
  "append libsandbox/sandbox-shown-private.h '#include \"sandbox-private.h\"'; append tools/sandboxctl.c '#include \"sandbox-shown-private.h\"'"
expect_violation "a tool including a public header other than the umbrella" 3 'tools/sandboxctl-util.h:$line' \
  "append tools/sandboxctl-util.h '#include <libsandbox/sandbox-foo.h>'"
expect_violation "a tool including a backend header" 3 'tools/sandboxctl.c:$line' \
  "append tools/sandboxctl.c '#include \"one/sandbox-one-backend.h\"'"

# Rule 4: no gi at import time
py=python/metaflow_extensions/libsandbox/plugins/sandbox_decorator.py
expect_violation "python importing gi at module level" 4 "$py:\$line" \
  "append $py 'import gi'"
expect_violation "python importing gi.repository in a class body" 4 "$py:\$line" \
  "append $py 'class Late:' '    from gi.repository import Sandbox'"
expect_violation "python importing gi in a top-level try" 4 "$py:\$((line - 2))" \
  "append $py 'try:' '    import gi.repository.GLib as GLib' 'except ImportError:' '    GLib = None'"

# Rule 5: only public headers installed and scanned
expect_violation "a private header listed in sandbox_public_headers" 5 'libsandbox/Makefile.am:5' \
  "sed -i 's|libsandbox/sandbox-foo.h\$|libsandbox/sandbox-foo-private.h|' libsandbox/Makefile.am"
expect_violation "a backend source scanned by g-ir-scanner" 5 'introspection/Makefile.am:$line' \
  "append introspection/Makefile.am 'introspection_Sandbox_1_0_gir_FILES += \\' '	\$(srcdir)/backends/one/sandbox-one-backend.c'"
expect_violation "a private header installed through nodist_sandboxinclude_HEADERS" 5 'libsandbox/Makefile.am:$line' \
  "append libsandbox/Makefile.am 'nodist_sandboxinclude_HEADERS += libsandbox/sandbox-private.h'"

# Rule 6: public headers are guarded and in the umbrella
expect_violation "a public header that can be included directly" 6 'libsandbox/sandbox-foo.h:2' \
  "sed -i '/__SANDBOX_INSIDE__/,/#endif/d' libsandbox/sandbox-foo.h"
expect_violation "a public header missing from the umbrella" 6 'libsandbox/sandbox-bar.h:1' \
  "printf '%s\n' '#pragma once' '$guard' > libsandbox/sandbox-bar.h"

# Rule 7: prototypes carry SANDBOX_AVAILABLE_IN_*
expect_violation "a public function without SANDBOX_AVAILABLE_IN_" 7 'libsandbox/sandbox-foo.h:$line' \
  "sed -i '/^G_END_DECLS/d' libsandbox/sandbox-foo.h" \
  "&& append libsandbox/sandbox-foo.h 'SANDBOX_AVAILABLE_IN_0_1' 'void sandbox_foo_a (void);' 'void sandbox_foo_b (SandboxFoo *self,' '                   int n);'" \
  "&& line=\$((line - 1))"
expect_violation "a G_DECLARE_ type without SANDBOX_AVAILABLE_IN_" 7 'libsandbox/sandbox-foo.h:$line' \
  "append libsandbox/sandbox-foo.h 'G_DECLARE_FINAL_TYPE (SandboxBaz, sandbox_baz, SANDBOX, BAZ, GObject)'"

[ "$n" -eq 24 ] || echo "# planned 24 tests, ran $n"
[ "$failures" -eq 0 ]

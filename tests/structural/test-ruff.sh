#!/bin/bash
# Style: every Python file in the tree (the extension, tests, examples,
# benchmarks) is ruff-clean under the one configuration in ruff.toml
# (which extends python/pyproject.toml). ruff comes from the test venv
# (python/requirements-test.txt), beside $METAFLOW_PYTHON, or from $RUFF.
# Prints TAP.
set -u
: "${TOP_SRCDIR:?TOP_SRCDIR must name the source tree}"

ruff=${RUFF:-}
if [ -z "$ruff" ] && [ -n "${METAFLOW_PYTHON:-}" ]; then
  ruff=$(dirname "$METAFLOW_PYTHON")/ruff
fi
if [ -z "$ruff" ] || [ ! -x "$ruff" ]; then
  echo "1..0 # SKIP ruff not installed (pip install -r python/requirements-test.txt, set METAFLOW_PYTHON or RUFF)"
  exit 0
fi

echo "1..3"
cd "$TOP_SRCDIR" || exit 1
# --no-cache: the source tree is read-only under `make distcheck`.
if out=$("$ruff" check --no-cache --output-format concise python tests examples bench fuzz 2>&1); then
  echo "ok 1 - ruff check: no findings"
else
  echo "not ok 1 - ruff check: findings"
  sed 's/^/# /' <<<"$out"
fi

if out=$("$ruff" format --no-cache --check python tests examples bench fuzz 2>&1); then
  echo "ok 2 - ruff format: every file formatted"
else
  echo "not ok 2 - ruff format: files to reformat (run ruff format python tests examples bench fuzz)"
  sed 's/^/# /' <<<"$out"
fi

# The check must be able to fail: a file with an unused import is reported.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-ruff.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
printf 'import os\n' > "$tmp/bad.py"
if "$ruff" check --no-cache --config "$TOP_SRCDIR/ruff.toml" "$tmp/bad.py" >/dev/null 2>&1; then
  echo "not ok 3 - ruff reports an unused import"
else
  echo "ok 3 - ruff reports an unused import"
fi

#!/bin/bash
# Runs the Metaflow extension tests (tests/metaflow/*.py, pytest) and prints TAP.
#
# Needs a Python that can import gi, metaflow and pytest, given as
# $METAFLOW_PYTHON, e.g. a venv made with
#   /usr/bin/python3 -m venv --system-site-packages /work/venv-mf
#   /work/venv-mf/bin/pip install -r python/requirements-test.txt
#   export METAFLOW_PYTHON=/work/venv-mf/bin/python
# Without $METAFLOW_PYTHON the tests are skipped; with a broken one they fail.

srcdir=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
testdir="$srcdir/tests/metaflow"

if [ -z "$METAFLOW_PYTHON" ]; then
	echo "1..0 # SKIP metaflow not installed (set METAFLOW_PYTHON to a venv's python)"
	exit 0
fi
if ! "$METAFLOW_PYTHON" -c 'import gi, metaflow, pytest' >/dev/null 2>&1; then
	echo "Bail out! $METAFLOW_PYTHON cannot import gi, metaflow and pytest; see python/requirements-test.txt"
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mf-tests.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

# pytest's own output goes to stderr (the test log); TAP to stdout.
cd "$testdir" || exit 1
TOP_SRCDIR="$srcdir" "$METAFLOW_PYTHON" -m pytest -p no:cacheprovider -q -rfE \
	--basetemp="$work/tmp" --junitxml="$work/junit.xml" "$testdir" >&2
rc=$?
if [ ! -s "$work/junit.xml" ]; then
	echo "Bail out! pytest did not run (exit status $rc)"
	exit 1
fi
"$METAFLOW_PYTHON" "$testdir/junit2tap.py" "$work/junit.xml"

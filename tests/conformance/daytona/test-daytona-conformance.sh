#!/bin/bash
# TAP wrapper: the official daytona Python SDK (pinned in requirements.txt)
# runs its own flows (test_daytona_sdk.py) against tests/emulators/daytona-emulator.
#
# The SDK comes from the first python of these that can import daytona and
# pytest: $SDK_PYTHON (scripts/test.sh sets it to the .venv scripts/setup.sh
# makes), $DAYTONA_SDK_PYTHON, the source tree's .venv; or, with
# DAYTONA_SDK_INSTALL=yes, a venv made now in the build tree with pip. With
# none of them the test reports itself skipped.
set -u

top_srcdir="${TOP_SRCDIR:-$(cd "$(dirname "$0")/../../.." && pwd)}"
srcdir="$top_srcdir/tests/conformance/daytona"
builddir="${TOP_BUILDDIR:-.}/tests/conformance/daytona"
export DAYTONA_EMULATOR="${TOP_BUILDDIR:-.}/tests/emulators/daytona-emulator"
venv="$builddir/venv"

usable () {
  [ -n "$1" ] && "$1" -c 'import daytona, pytest' >/dev/null 2>&1
}

py=
for candidate in "${SDK_PYTHON:-}" "${DAYTONA_SDK_PYTHON:-}" "$top_srcdir/.venv/bin/python" "$venv/bin/python"; do
  if usable "$candidate"; then
    py=$candidate
    break
  fi
done
if [ -z "$py" ] && [ "${DAYTONA_SDK_INSTALL:-no}" = yes ]; then
  mkdir -p "$builddir"
  { /usr/bin/python3 -m venv "$venv" && "$venv/bin/pip" install -q -r "$srcdir/requirements.txt"; } \
    > "$builddir/pip.log" 2>&1
  usable "$venv/bin/python" && py="$venv/bin/python"
fi
if [ -z "$py" ]; then
  echo "1..0 # SKIP the daytona SDK is not installed: run scripts/setup.sh (or pip install -r" \
       "tests/conformance/daytona/requirements.txt into a venv and set SDK_PYTHON to its python)"
  exit 0
fi
if [ ! -x "$DAYTONA_EMULATOR" ]; then
  echo "1..0 # SKIP $DAYTONA_EMULATOR is not built (run make first)"
  exit 0
fi

# The SDK reads .env files in the working directory: run from an empty one.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
unset DAYTONA_TARGET DAYTONA_JWT_TOKEN DAYTONA_ORGANIZATION_ID DAYTONA_SERVER_URL

PYTHONPATH="$srcdir:$srcdir/.." "$py" -m pytest -rA -p no:cacheprovider --tb=short "$srcdir/test_daytona_sdk.py" \
  "$srcdir/test_daytona_ports_volumes.py" "$srcdir/test_daytona_pty.py" \
  "$srcdir/test_daytona_interpreter.py" "$srcdir/test_daytona_lsp.py" \
  "$srcdir/test_daytona_images.py" "$srcdir/test_daytona_linked.py" \
  "$srcdir/test_daytona_network.py" \
  > "$work/pytest.log" 2>&1
status=$?

# pytest's short summary (-rA) as TAP; the whole log as comments.
sed 's/^/# /' "$work/pytest.log"
results=$(grep -E '^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) ' "$work/pytest.log")
n=$(printf '%s\n' "$results" | grep -c .)
if [ "$n" -eq 0 ]; then
  echo "1..1"
  echo "not ok 1 - pytest ran no test (exit status $status)"
  exit 0
fi
echo "1..$n"
i=0
while read -r outcome name rest; do
  i=$((i + 1))
  name=${name##*/}
  case "$outcome" in
    PASSED|XFAIL) echo "ok $i - $name" ;;
    SKIPPED) echo "ok $i - $name # SKIP $rest" ;;
    *) echo "not ok $i - $name $rest" ;;
  esac
done <<< "$results"

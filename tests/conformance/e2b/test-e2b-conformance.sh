#!/bin/bash
# Conformance of the E2B emulator: the official e2b Python SDK (the version
# pinned in requirements.txt), unmodified, against tests/emulators/e2b-emulator.
# Prints TAP. Skips, saying how to set it up, when no Python with the SDK is found:
#   python3 -m venv --system-site-packages DIR
#   DIR/bin/pip install -r tests/conformance/e2b/requirements.txt
#   make check E2B_CONFORMANCE_PYTHON=DIR/bin/python   (or export it; $SDK_PYTHON and
#   $TOP_SRCDIR/.venv are tried too)
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pinned="$(sed -n 's/^e2b==//p' "$here/requirements.txt")"

python=""
for candidate in "${E2B_CONFORMANCE_PYTHON:-}" "${SDK_PYTHON:-}" "${TOP_SRCDIR:-.}/.venv/bin/python" python3 /usr/bin/python3; do
    [ -n "$candidate" ] || continue
    if "$candidate" -c 'import e2b, pytest' >/dev/null 2>&1; then
        python="$candidate"
        break
    fi
done
if [ -z "$python" ]; then
    echo "1..0 # SKIP the e2b SDK is not installed: pip install -r tests/conformance/e2b/requirements.txt into a venv and set E2B_CONFORMANCE_PYTHON to its python"
    exit 0
fi
version="$("$python" -c 'from importlib.metadata import version; print(version("e2b"))')"
if [ "$version" != "$pinned" ]; then
    echo "# warning: e2b $version is installed, the conformance test pins $pinned" >&2
fi

tap="$(mktemp)"
trap 'rm -f "$tap"' EXIT
cd "$here"
# The modules the conformance tests share (conformance_util, emulator_images).
E2B_CONFORMANCE_TAP="$tap" PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}" "$python" -m pytest -q -p no:cacheprovider "$here" >&2
if [ -s "$tap" ]; then
    cat "$tap"
else
    echo "1..1"
    echo "not ok 1 - pytest did not run (see the log)"
fi

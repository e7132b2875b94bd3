#!/usr/bin/env bash
# The main job: set up everything, then run a short demonstration on the
# local backend.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/setup.sh"
run() { "$top/scripts/uninstalled-env" "$@"; }

echo "== sandboxctl backends"
run sandboxctl backends
echo "== a command in a fresh sandbox: output live, exit status kept"
set +e
run sandboxctl run --backend local -- sh -c 'echo "hello from $(hostname)"; echo "to stderr" >&2; exit 3'
echo "(exit status: $?)"
echo "== no network unless asked for"
run sandboxctl run --backend local -- sh -c 'getent hosts example.com || echo "no network, as expected"'
set -e

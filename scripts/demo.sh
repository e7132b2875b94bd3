#!/usr/bin/env bash
# The main job: set up everything, then run a Metaflow flow whose steps run
# in local sandboxes (bubblewrap), after a short sandboxctl warm-up.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/setup.sh"
run() { "$top/scripts/uninstalled-env" "$@"; }

echo "== sandboxctl: a command in a fresh sandbox, output live, exit status kept"
set +e
run sandboxctl run --backend local -- sh -c 'echo "hello from $(hostname)"; echo "to stderr" >&2; exit 3'
echo "(exit status: $?)"
set -e

echo "== Metaflow: examples/flows/hello_sandbox.py, sandboxed steps on the local backend"
work=$(mktemp -d -t libsandbox-demo-XXXXXX)
cd "$work"
# Metaflow records who ran a flow and refuses to guess "root": name the demo user.
user=$(id -un)
[ "$user" = root ] && user=demo
export METAFLOW_USER="${METAFLOW_USER:-$user}"
run python "$top/examples/flows/hello_sandbox.py" --no-pylint run
echo "== the run's datastore is in $work/.metaflow"

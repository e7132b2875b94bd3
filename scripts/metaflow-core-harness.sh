#!/usr/bin/env bash
# Runs Metaflow's own integration harness (test/core of a Metaflow checkout)
# twice over the same tests: plainly (context "plain") and with every step in
# a local sandbox (context "sandbox": the same options plus --with sandbox).
# The checkout is not part of this project; check out the tag matching the
# installed Metaflow, e.g.
#   git clone https://github.com/Netflix/metaflow /tmp/mf && git -C /tmp/mf checkout 2.19.38
#   scripts/metaflow-core-harness.sh /tmp/mf --tests BasicForeachTest --graphs small-foreach
# Arguments after the checkout go to run_tests.py (--tests, --graphs, --contexts
# plain|sandbox, --num-parallel N). Needs a built tree (scripts/setup.sh); runs
# with $METAFLOW_PYTHON (default: the project's venv).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
src=${1:?usage: $0 METAFLOW_CHECKOUT [run_tests.py options]}
shift
. "$top/scripts/venv-dirs"
python=${METAFLOW_PYTHON:-$venv/bin/python}

work=$(mktemp -d "${TMPDIR:-/tmp}/mf-core.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$src/test/core" "$work/core"
"$python" - "$work/core/contexts.json" "$python" <<'PY'
import json, sys
path, python = sys.argv[1], sys.argv[2]
data = json.load(open(path))
base = next(c for c in data["contexts"] if c["name"] == "python3-all-local")
plain = dict(base, name="plain", python=python, executors=["cli"], disabled=False)
sandbox = dict(plain, name="sandbox", top_options=base["top_options"] + ["--with=sandbox"])
data["contexts"] = [plain, sandbox]
# The checkers run "python3" from $PATH unless told otherwise: without the
# venv on $PATH they cannot import metaflow and every pair fails.
for check in data["checks"].values():
    check["python"] = python
json.dump(data, open(path, "w"), indent=1)
PY
# CardExtensionsImportTest needs the card extensions of test/extensions,
# which Metaflow's CI pip-installs; on the path they work the same, without
# touching the venv.
ext=""
for pkg in "$src"/test/extensions/packages/*/; do
	[ -d "$pkg/metaflow_extensions" ] && ext="$ext:$pkg"
done
cd "$work/core"
export METAFLOW_SANDBOX_BACKEND=local USER=${USER:-$(id -un)}
"$top/scripts/uninstalled-env" env PYTHONPATH="$work/core:$top/python$ext" \
	"$python" run_tests.py --inherit-env "$@"

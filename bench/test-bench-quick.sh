#!/bin/bash
# Smoke test of the benchmark suite: `bench/run --quick` must print its table
# with every row, each with a numeric ratio (or a stated skip). TAP. It checks
# that the benchmarks run, never how fast anything is.
srcdir=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${TOP_BUILDDIR:-.}
rows="1a 1b 1c 1d 1e 1f 1g 2a 2b 2c 2d 2e 2f 3a 3b 3c 3cp 3d 3dp 3e 3f 4a 4b 4c 4d 4e 4f 5a 5b 6a 6b"

out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
set -- $rows
echo "1..$(($# + 1))"
if timeout 300 "$srcdir/bench/run" --quick --builddir "$builddir" >"$out" 2>&1; then
  echo "ok 1 - bench/run --quick exits 0"
else
  echo "not ok 1 - bench/run --quick exits 0"
fi
sed 's/^/# /' "$out"
n=1
for row in $rows; do
  n=$((n + 1))
  line=$(grep -E "^$row +\|" "$out" | head -1)
  ratio=$(printf '%s\n' "$line" | awk -F'|' '{gsub(/ /, "", $5); print $5}')
  if [ -z "$line" ]; then
    echo "not ok $n - row $row is missing"
  elif [[ "$ratio" =~ ^[0-9]+(\.[0-9]+)?x$ ]]; then
    echo "ok $n - row $row has a numeric ratio ($ratio)"
  elif [ "$ratio" = "n/a" ] && printf '%s\n' "$line" | grep -qE '\| (skipped|failed)'; then
    echo "ok $n - row $row # SKIP $(printf '%s\n' "$line" | awk -F'|' '{print $7}' | cut -c1-150)"
  else
    echo "not ok $n - row $row has no numeric ratio: $line"
  fi
done

#!/usr/bin/env bash
# Hostile trees: `customs sbom` and `customs secrets` on a layer nested 1,000 / 4,000 / 10,000 deep, next to the
# same number of entries side by side (the flat baseline), in one run with the release build. The deep layer's
# tar holds depth² bytes of path names, so linear work in the input is quadratic in the depth; path resolution
# was cubic (17.9 s at 4,000 and over 120 s at 10,000 in the attack run).
# Usage: bench/deep-tree.sh [DEPTH...]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p customs
customs=target/release/customs
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
depths=("$@"); ((${#depths[@]})) || depths=(1000 4000 10000)
best() { # best of 3 wall-clock seconds of "$@"
  local b=999999 t
  for _ in 1 2 3; do
    local s; s=$(date +%s.%N); "$@" >/dev/null; t=$(echo "$(date +%s.%N) - $s" | awk '{print $1 - $3}')
    b=$(awk -v a="$b" -v t="$t" 'BEGIN { print (t < a) ? t : a }')
  done
  echo "$b"
}
printf '%-8s %-6s %12s %12s %10s\n' entries shape "sbom (s)" "secrets (s)" "layer MB"
for d in "${depths[@]}"; do
  for shape in flat deep; do
    img=$work/$shape-$d
    python3 bench/deep-tree.py "$d" "$img" $([ $shape = flat ] && echo --flat)
    mb=$(du -sm "$img" | cut -f1)
    s=$(best "$customs" sbom "$img" -f json)
    x=$(best "$customs" secrets "$img" -f json)
    printf '%-8s %-6s %12.3f %12.3f %10s\n' "$d" "$shape" "$s" "$x" "$mb"
  done
done

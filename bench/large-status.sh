#!/usr/bin/env bash
# A huge package database: `customs sbom` on a dpkg status of 1 (the baseline), 10,000, 40,000 and 200,000
# packages, with the release build, best of 3, and the peak memory of the last run. It was quadratic (40,000
# packages 4.75 s, 236,000 134 s and 627 MB in the attack run).
# Usage: bench/large-status.sh [COUNT...]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${CUSTOMS_BENCH_NO_BUILD:-}" ] || cargo build -q --release -p customs
customs=target/release/customs
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
counts=("$@"); ((${#counts[@]})) || counts=(1 10000 40000 200000)
printf '%-10s %10s %12s %12s\n' packages "status MB" "sbom (s)" "peak MB"
for n in "${counts[@]}"; do
  img=$work/status-$n
  python3 bench/large-status.py "$n" "$img"
  mb=$(du -sm "$img" | cut -f1)
  best=999999
  for _ in 1 2 3; do
    s=$(date +%s.%N)
    /usr/bin/time -f '%M' -o "$work/rss" "$customs" sbom "$img" -f json >/dev/null
    t=$(echo "$(date +%s.%N) - $s" | awk '{print $1 - $3}')
    best=$(awk -v a="$best" -v t="$t" 'BEGIN { print (t < a) ? t : a }')
  done
  printf '%-10s %10s %12.3f %12d\n' "$n" "$mb" "$best" $(( $(cat "$work/rss") / 1024 ))
done

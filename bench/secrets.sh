#!/usr/bin/env bash
# Secret-scanning throughput, customs vs detect-secrets (PyPI), measured in the same run.
#
# The tree: SIZE_MB (default 300) of real files, a third each from /usr/share (docs, scripts, data),
# /usr/lib (libraries, Python, Perl) and /usr/bin (executables), sizes counted as file bytes (not disk
# blocks). A planted canary (an AWS key pair in app/.env) must be found by both tools, so a tool that
# silently scanned nothing fails the benchmark instead of looking fast.
#
# detect-secrets is ~1000x slower, so it gets a uniform sample of the same tree (every Nth file, about
# SLICE_MB, default 10). customs scans both the whole tree and that sample; the ratio is on identical input.
# Usage: bench/secrets.sh [SIZE_MB] [SLICE_MB]
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-300}
slice_mb=${2:-10}
command -v detect-secrets >/dev/null || python3 -m pip install -q detect-secrets
cargo build -q --release
customs=$PWD/target/release/customs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tree=$tmp/tree
mkdir -p "$tree"

# Up to SIZE_MB/3 of regular files from each source, in path order, sizes in bytes. Copied without the
# leading /usr, so `usr/share/doc` and `usr/share/man` (allowed paths in images) are scanned like the rest;
# the other built-in allowed paths (tests, examples, Markdown) apply as in any scan.
per=$((size * 1024 * 1024 / 3))
for src in /usr/share /usr/lib /usr/bin; do
  find "$src" -type f -size -32M -printf '%s %p\n' 2>/dev/null | sort -k2 |
    awk -v cap="$per" '{ if (sum + $1 > cap) exit; sum += $1; $1 = ""; print substr($0, 2) }' |
    while read -r f; do
      d=$tree${f#/usr}
      mkdir -p "$(dirname "$d")" && cp --no-preserve=all "$f" "$d" 2>/dev/null || true
    done || true # awk stops reading at the budget: find and sort end on SIGPIPE
done
mkdir -p "$tree/app"
# The canary, assembled here so this script holds no key-shaped literal.
printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' "AKIA$(printf 'Q7Z3X9W2V5T8R4M6')" \
  "$(printf 'kT9vQ2xL8mN4pR7sW1yZ3bC6dF0gH5jK8lM2nP4q')" > "$tree/app/.env"

# The sample for detect-secrets: every Nth file, keeping paths (and so extensions), plus the canary.
bytes=$(find "$tree" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
files=$(find "$tree" -type f | wc -l)
step=$(awk -v b="$bytes" -v s="$slice_mb" 'BEGIN { n = int(b / (s * 1048576)); print (n < 1 ? 1 : n) }')
sample=$tmp/sample
(cd "$tree" && find . -type f | sort | awk -v n="$step" 'NR % n == 0' | while read -r f; do
  mkdir -p "$sample/$(dirname "$f")" && cp "$f" "$sample/$f"
done)
mkdir -p "$sample/app" && cp "$tree/app/.env" "$sample/app/.env"
sbytes=$(find "$sample" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')

# Wall seconds of one run of a command, its output discarded.
seconds() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); awk -v s="$s" -v e="$e" 'BEGIN { print e - s }'; }
# Best of three runs after one warm-up, so the page cache holds the tree for every measured run.
best() {
  "$@" >/dev/null
  local b=999999 t
  for _ in 1 2 3; do
    t=$(seconds "$@")
    b=$(awk -v a="$b" -v t="$t" 'BEGIN { print (t < a ? t : a) }')
  done
  echo "$b"
}
found_canary_customs() { "$customs" secrets "dir:$1" -f json | grep -q '"path": *"app/.env"'; }

found_canary_customs "$tree" || { echo "customs missed the canary in the tree" >&2; exit 1; }
found_canary_customs "$sample" || { echo "customs missed the canary in the sample" >&2; exit 1; }
ours_tree=$(best "$customs" secrets "dir:$tree" -f json)
ours_sample=$(best "$customs" secrets "dir:$sample" -f json)
# detect-secrets only scans below the current directory when run inside a git work tree: run it from the sample.
(cd "$sample" && detect-secrets scan --all-files . > "$tmp/ds.json")
grep -q '"app/.env"' "$tmp/ds.json" || { echo "detect-secrets missed the canary: it did not scan the sample" >&2; exit 1; }
theirs=$(cd "$sample" && seconds detect-secrets scan --all-files .)

mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
rate() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1e6 / s }'; }
echo "tree: $(mb "$bytes") MB in $files files; sample: $(mb "$sbytes") MB (every ${step}th file); $(nproc) cores"
printf 'customs secrets, tree      %8.3f s  %8s MB/s\n' "$ours_tree" "$(rate "$bytes" "$ours_tree")"
printf 'customs secrets, sample    %8.3f s  %8s MB/s\n' "$ours_sample" "$(rate "$sbytes" "$ours_sample")"
printf 'detect-secrets, sample     %8.3f s  %8s MB/s\n' "$theirs" "$(rate "$sbytes" "$theirs")"
printf 'ratio on the same sample: %.0fx; customs on the tree vs detect-secrets on the sample: %.0fx\n' \
  "$(awk -v a="$theirs" -v b="$ours_sample" 'BEGIN { print a / b }')" \
  "$(awk -v b1="$bytes" -v t1="$ours_tree" -v b2="$sbytes" -v t2="$theirs" 'BEGIN { print (b1 / t1) / (b2 / t2) }')"

#!/usr/bin/env bash
# Secret-scanning throughput: `customs secrets` on a ~300 MB tree of real files (copied from
# /usr), and detect-secrets (PyPI) on a slice of the same tree, in the same run. Prints MB/s
# for each and the throughput ratio. Usage: bench/secrets.sh [SIZE_MB]
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-300}
command -v detect-secrets >/dev/null || python3 -m pip install -q detect-secrets
cargo build -q --release
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
tree=$tmp/tree; mkdir -p "$tree"
# Real content: text (docs, scripts, Python) and binaries, up to SIZE_MB.
for src in /usr/share /usr/lib /usr/bin; do
  [ "$(du -sm "$tree" | cut -f1)" -ge "$size" ] && break
  cp -r --no-preserve=all "$src" "$tree/" 2>/dev/null || true
done
while [ "$(du -sm "$tree" | cut -f1)" -gt "$size" ]; do { find "$tree" -type f || true; } | tail -n 500 | xargs rm -f; done
mb=$(du -sm "$tree" | cut -f1)
# Ours: the whole tree. detect-secrets is far slower: give it a 20 MB slice of the same files.
slice=$tmp/slice; mkdir -p "$slice"
find "$tree" -type f -size -200k | head -n 4000 | while read -r f; do cp "$f" "$slice/$(echo "$f" | md5sum | cut -c1-12)"; [ "$(du -sm "$slice" | cut -f1)" -ge 20 ] && break; done || true
smb=$(du -sm "$slice" | cut -f1)
t() { s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N); awk -v s="$s" -v e="$e" 'BEGIN {print e - s}'; }
ours=$(t target/release/customs secrets "dir:$tree" -f json)
theirs=$(t detect-secrets scan --all-files "$slice")
printf 'customs secrets   %5d MB in %7.2fs = %8.1f MB/s\n' "$mb" "$ours" "$(awk -v m="$mb" -v s="$ours" 'BEGIN {print m / s}')"
printf 'detect-secrets    %5d MB in %7.2fs = %8.1f MB/s\n' "$smb" "$theirs" "$(awk -v m="$smb" -v s="$theirs" 'BEGIN {print m / s}')"
printf 'ratio (throughput): %.1fx\n' "$(awk -v a="$mb" -v b="$ours" -v c="$smb" -v d="$theirs" 'BEGIN {print (a / b) / (c / d)}')"

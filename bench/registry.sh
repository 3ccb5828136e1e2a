#!/usr/bin/env bash
# Registry speed: `customs registry serve` against Debian's docker-registry (Distribution 2.8) side by side, same
# machine, same TLS certificate, loopback, in one run:
#   - manifest GET requests/s (wrk, 2 threads, 32 connections, 5 s), customs both anonymous (as the
#     docker-registry has no auth here) and with a bearer token (its production path, audit log on);
#   - blob push MB/s (POST + PATCH with the whole body + PUT, as docker clients do) and pull MB/s (GET),
#     a 256 MiB random blob, median of 3; pushes by bench/blob_client.py (1 MiB writes: curl's 64 KiB upload
#     pieces cap both servers near 120 MB/s), pulls by curl;
#   - a 60 s mixed load on each: 16 pushers of 64 KiB blobs (POST + PATCH + PUT, basic auth on customs) and wrk
#     with 8 connections on a manifest GET (a bearer token on customs); pushes/s, GET/s, p50/p99 latencies, peak
#     server memory; any error fails the bench.
# customs runs with its defaults (fsync on blob commit, which docker-registry does not do; the audit log on)
# except its rate limits and the audit budget of anonymous clients, turned off: this measures serving.
# Usage: bench/registry.sh   (installs wrk and docker-registry with apt when missing)
#        bench/registry.sh --replicas   (1 vs 2 replicas on PostgreSQL + Azurite next to SQLite + local disk:
#                                        bench/registry-replicas.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${1:-}" = --replicas ] && exec bash bench/registry-replicas.sh
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
[audit]
unauthenticated_bytes_per_minute = 0
[rate_limits]
principal = { rate = 0, burst = 1 }
ip = { rate = 0, burst = 1 }
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
ours_pid=$!
pids+=($ours_pid)
theirs_pid=${pids[0]}

for port in $theirs_port $ours_port; do
  for _ in $(seq 100); do curl -s --cacert "$ca" -o /dev/null "https://localhost:$port/v2/" && break; sleep 0.1; done
done

# The same image in both.
for port in $theirs_port $ours_port; do
  skopeo copy -q --dest-cert-dir "$work/tls" "oci:examples/demo-image:demo" "docker://localhost:$port/bench/demo:1.0"
done
manifest_path=/v2/bench/demo/manifests/1.0
accept="Accept: application/vnd.oci.image.manifest.v1+json"
fresh_token() {
  curl -s --cacert "$ca" -u "bench:$secret" "https://localhost:$ours_port/token?service=customs-registry&scope=repository:bench/demo:pull" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
token=$(fresh_token)

# wrk ARGS: requests/s; a non-2xx answer (a refusal measured as speed) fails the bench.
rps() {
  local out
  out=$(wrk "$@")
  if grep -q "Non-2xx" <<<"$out"; then echo "wrk saw errors: $out" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}
theirs_rps=$(rps -t2 -c32 -d5s -H "$accept" "https://localhost:$theirs_port$manifest_path")
ours_rps=$(rps -t2 -c32 -d5s -H "$accept" "https://localhost:$ours_port$manifest_path")
ours_token_rps=$(rps -t2 -c32 -d5s -H "$accept" -H "Authorization: Bearer $token" "https://localhost:$ours_port$manifest_path")

head -c $((256 << 20)) /dev/urandom >"$work/blob"
digest="sha256:$(sha256sum "$work/blob" | cut -d' ' -f1)"
size=$(stat -c %s "$work/blob")

client=bench/blob_client.py
push() { python3 "$client" push "https://localhost:$1" "$2" "$work/blob" "$digest" "$ca"; }
# Pull with curl (its downloads are not the limit its uploads are): seconds for the whole blob.
pull() { curl -s --fail --cacert "$ca" -o /dev/null -w '%{time_total}\n' "https://localhost:$1/v2/$2/blobs/$digest"; }
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

# Mixed load: pushers and GETs at once for 60 s, server memory sampled every second.
peak_rss() { # PID SECONDS: the largest VmRSS (MiB) seen
  local peak=0 rss
  for _ in $(seq "$2"); do
    rss=$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$1/status" 2>/dev/null || echo 0)
    ((rss > peak)) && peak=$rss
    sleep 1
  done
  echo "$peak"
}
mixed() { # PORT PID AUTH-HEADER-FOR-WRK BASIC-AUTH-FOR-PUSHERS
  local base="https://localhost:$1" rss_file="$work/rss.$1" wrk_out="$work/wrk.$1"
  peak_rss "$2" 60 >"$rss_file" &
  local sampler=$!
  wrk -t2 -c8 -d60s --latency -H "$accept" ${3:+-H "$3"} "$base$manifest_path" >"$wrk_out" &
  local getter=$!
  python3 "$client" pushers "$base" "$ca" 60 16 ${4:+"$4"} >"$work/push.$1"
  wait $getter $sampler
  if grep -q "Non-2xx\|Socket errors" "$wrk_out"; then echo "GETs failed under load on port $1: $(cat "$wrk_out")" >&2; exit 1; fi
  python3 - "$work/push.$1" "$wrk_out" "$rss_file" <<'PY'
import json, re, sys
push = json.load(open(sys.argv[1]))
wrk = open(sys.argv[2]).read()
if push["errors"]:
    sys.exit(f"pushes failed under load: {push}")
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1))
lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", wrk, re.M))
print(f'{push["pushes_per_s"]} {push["p50_ms"]} {push["p99_ms"]} {rps:.0f} {lat.get("50")} {lat.get("99")} {open(sys.argv[3]).read().strip()}')
PY
}
basic="Basic $(printf 'bench:%s' "$secret" | base64 -w0)"
theirs_mixed=$(mixed $theirs_port "$theirs_pid" "" "")
read -r t_push t_p50 t_p99 t_get t_g50 t_g99 t_rss <<<"$theirs_mixed"
token=$(fresh_token) # tokens live 5 minutes
ours_mixed=$(mixed $ours_port "$ours_pid" "Authorization: Bearer $token" "$basic")
read -r o_push o_p50 o_p99 o_get o_g50 o_g99 o_rss <<<"$ours_mixed"
printf '%-34s %12s %12s %8s\n' "mixed load, 60 s (16 pushers, 8 GET)" "" "" ""
printf '%-34s %12s %12s %7.2fx\n' "  pushes/s (64 KiB blobs)" "$o_push" "$t_push" "$(awk -v a="$o_push" -v b="$t_push" 'BEGIN {print a / b}')"
printf '%-34s %12s %12s\n' "  push p50 / p99 ms" "$o_p50/$o_p99" "$t_p50/$t_p99"
printf '%-34s %12s %12s %7.2fx\n' "  manifest GET/s" "$o_get" "$t_get" "$(awk -v a="$o_get" -v b="$t_get" 'BEGIN {print a / b}')"
printf '%-34s %12s %12s\n' "  GET p50 / p99" "$o_g50/$o_g99" "$t_g50/$t_g99"
printf '%-34s %12s %12s\n' "  peak server memory MiB" "$o_rss" "$t_rss"
echo "ratio > 1: customs is faster. distribution: $(docker-registry --version | awk '{print $NF}'). No error in any run."

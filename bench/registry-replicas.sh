#!/usr/bin/env bash
# Registry scale-out: the same loads on three setups of `customs registry serve`, in one run:
#   local  one replica on SQLite + a local directory (the embedded default);
#   pg x1  one replica on PostgreSQL + Azure Blob (Azurite);
#   pg x2  two replicas on the same PostgreSQL database and Azurite container.
# Loads: manifest GET requests/s (wrk, 32 connections for 5 s; with two replicas 16 on each, summed: a perfect
# round-robin balancer, so the proxy is not what is measured), blob push MB/s (POST + one PATCH + PUT of a
# 64 MiB random blob by bench/blob_client.py; with two replicas one push through each at once, total bytes over
# the slower one's time) and pull MB/s (curl; with two replicas each pulls the blob the other one pushed),
# median of 3. Printed with ratios against `local`. Anonymous pushes and pulls with rate limits and the audit
# budget off, so serving is measured; fsync and the audit log (in the database on PostgreSQL) stay on.
# Every replica is on this machine: on 2 cores two replicas share the cores with PostgreSQL, Azurite and the
# clients, so the x2 figures show the cost of sharing state, not what a second machine adds.
# Usage: bench/registry-replicas.sh   (installs wrk, postgresql and azurite when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || apt-get install -y -q postgresql >/dev/null
azurite=target/ci-npm/node_modules/.bin/azurite-blob
if [ ! -x "$azurite" ]; then
  mkdir -p target/ci-npm
  (cd target/ci-npm && npm install --silent --no-audit --no-fund azurite@3.35.0 >/dev/null)
fi
cargo build -q --release -p customs
customs=$PWD/target/release/customs
work=$(mktemp -d /tmp/customs-bench-replicas.XXXXXX)
pids=()
pg_bin=$(compgen -G '/usr/lib/postgresql/*/bin' | sort -V | tail -1)
as_pg=()
[ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --) # initdb refuses root
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -d "$work/pg" ] && "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# PostgreSQL and Azurite, throwaway, on loopback (as .ci/run starts them).
pg_port=$(free_port)
[ "$(id -u)" = 0 ] && chown postgres "$work"
"${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg" -A trust -U customs >/dev/null
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1 -c max_connections=100" start >/dev/null
az_port=$(free_port)
"$azurite" --blobHost 127.0.0.1 --blobPort "$az_port" --location "$work/azurite" --skipApiVersionCheck --silent \
  >"$work/azurite.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$az_port/" && break; sleep 0.2; done
python3 .ci/azurite-container.py "http://127.0.0.1:$az_port/devstoreaccount1/bench"

"$customs" registry dev-cert --out "$work/tls" >/dev/null
ca="$work/tls/ca.crt"
head -c $((64 << 20)) /dev/urandom >"$work/blob"
digest="sha256:$(sha256sum "$work/blob" | cut -d' ' -f1)"
size=$(stat -c %s "$work/blob")

# config DIR PORT BACKEND: a replica's registry.toml (both pg replicas share the token key file).
config() {
  mkdir -p "$1"
  cat >"$1/registry.toml" <<EOF
[server]
listen = "127.0.0.1:$2"
[tls]
cert = "$work/tls/server-cert.pem"
key = "$work/tls/server-key.pem"
[auth]
token_key_file = "$work/token.key"
[audit]
unauthenticated_bytes_per_minute = 0
[rate_limits]
principal = { rate = 0, burst = 1 }
ip = { rate = 0, burst = 1 }
[[grant]]
to = "anonymous"
repositories = ["bench/**"]
actions = ["pull", "push"]
EOF
  if [ "$3" = pg ]; then
    cat >>"$1/registry.toml" <<EOF
[database]
url = "postgres://customs@127.0.0.1:$pg_port/postgres"
[storage]
backend = "azure"
bucket = "bench"
[storage.options]
endpoint = "http://127.0.0.1:$az_port/devstoreaccount1"
allow_http = "true"
azure_storage_account_name = "devstoreaccount1"
azure_storage_account_key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
EOF
  fi
}
# start DIR PORT: serves DIR's config until the bench ends, waits until it answers.
start() {
  CUSTOMS_LOG=error "$customs" registry --config "$1/registry.toml" serve 2>"$1/serve.log" &
  pids+=($!)
  for _ in $(seq 100); do curl -s --cacert "$ca" -o /dev/null "https://localhost:$2/v2/" && return; sleep 0.1; done
  cat "$1/serve.log" >&2
  exit 1
}

accept="Accept: application/vnd.oci.image.manifest.v1+json"
manifest_path=/v2/bench/demo/manifests/1.0
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
# rps PORT THREADS CONNECTIONS: requests/s by wrk; a non-2xx answer fails the bench.
rps() {
  local out
  out=$(wrk -t"$2" -c"$3" -d5s -H "$accept" "https://localhost:$1$manifest_path")
  if grep -q "Non-2xx\|Socket errors" <<<"$out"; then echo "wrk saw errors on port $1: $out" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}
push() { python3 bench/blob_client.py push "https://localhost:$1" "$2" "$work/blob" "$digest" "$ca"; }
pull() { curl -s --fail --cacert "$ca" -o /dev/null -w '%{time_total}\n' "https://localhost:$1/v2/$2/blobs/$digest"; }
# in_parallel CMD PORT-A REPO-A PORT-B REPO-B: MB/s of both transfers at once (bytes over the slower one).
in_parallel() {
  "$1" "$2" "$3" >"$work/t.a" &
  local a=$!
  "$1" "$4" "$5" >"$work/t.b" &
  local b=$!
  wait $a; wait $b
  awk -v s="$size" -v x="$(cat "$work/t.a")" -v y="$(cat "$work/t.b")" 'BEGIN {t = x > y ? x : y; printf "%.0f", 2 * s / 1048576 / t}'
}
mbps() { awk -v s="$size" -v t="$1" 'BEGIN {printf "%.0f", s / 1048576 / t}'; }

# measure NAME PORT [PORT-B]: "GET/s push-MB/s pull-MB/s" of one setup, its image pushed through PORT.
measure() {
  local a=$2 b=${3:-}
  skopeo copy -q --dest-cert-dir "$work/tls" "oci:examples/demo-image:demo" "docker://localhost:$a/bench/demo:1.0"
  local get push_mb pull_mb
  if [ -z "$b" ]; then
    get=$(rps "$a" 2 32)
    push_mb=$(mbps "$(median "$(push "$a" bench/$1-1)" "$(push "$a" bench/$1-2)" "$(push "$a" bench/$1-3)")")
    pull_mb=$(mbps "$(median "$(pull "$a" bench/$1-1)" "$(pull "$a" bench/$1-2)" "$(pull "$a" bench/$1-3)")")
  else
    rps "$a" 1 16 >"$work/rps.a" &
    local ra=$!
    rps "$b" 1 16 >"$work/rps.b" &
    local rb=$!
    wait $ra; wait $rb
    get=$(awk -v x="$(cat "$work/rps.a")" -v y="$(cat "$work/rps.b")" 'BEGIN {print x + y}')
    local p=() q=()
    for i in 1 2 3; do p+=("$(in_parallel push "$a" "bench/$1-a$i" "$b" "bench/$1-b$i")"); done
    # Each replica serves the blob the other one took in.
    for i in 1 2 3; do q+=("$(in_parallel pull "$b" "bench/$1-a$i" "$a" "bench/$1-b$i")"); done
    push_mb=$(median "${p[@]}")
    pull_mb=$(median "${q[@]}")
  fi
  echo "$get $push_mb $pull_mb"
}

local_port=$(free_port)
config "$work/local" "$local_port" local
start "$work/local" "$local_port"
read -r l_get l_push l_pull <<<"$(measure local "$local_port")"

a_port=$(free_port)
b_port=$(free_port)
config "$work/pg-a" "$a_port" pg
config "$work/pg-b" "$b_port" pg
start "$work/pg-a" "$a_port"
read -r o_get o_push o_pull <<<"$(measure pg1 "$a_port")"
start "$work/pg-b" "$b_port"
read -r t_get t_push t_pull <<<"$(measure pg2 "$a_port" "$b_port")"
"$customs" registry --config "$work/pg-a/registry.toml" audit verify >"$work/verify.out" \
  || { cat "$work/verify.out" >&2; echo "the audit chain does not verify after the bench" >&2; exit 1; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a / b}'; }
printf '%-28s %10s %14s %14s\n' "" "local" "pg+azurite x1" "pg+azurite x2"
printf '%-28s %10.0f %14.0f %14.0f\n' "manifest GET req/s" "$l_get" "$o_get" "$t_get"
printf '%-28s %10s %14s %14s\n' "  ratio to local" "1.00x" "$(ratio "$o_get" "$l_get")" "$(ratio "$t_get" "$l_get")"
printf '%-28s %10s %14s %14s\n' "blob push MB/s (64 MiB)" "$l_push" "$o_push" "$t_push"
printf '%-28s %10s %14s %14s\n' "  ratio to local" "1.00x" "$(ratio "$o_push" "$l_push")" "$(ratio "$t_push" "$l_push")"
printf '%-28s %10s %14s %14s\n' "blob pull MB/s (64 MiB)" "$l_pull" "$o_pull" "$t_pull"
printf '%-28s %10s %14s %14s\n' "  ratio to local" "1.00x" "$(ratio "$o_pull" "$l_pull")" "$(ratio "$t_pull" "$l_pull")"
echo "x2: two replicas on one database and container, loads split evenly; $(nproc) cores for everything."
echo "$(head -1 "$work/verify.out")"

#!/usr/bin/env bash
# Scan on push, release build, in one run:
#   - latency: the shared bookworm app image pushed with skopeo to a protected repository, then the time from
#     skopeo's exit (its manifest PUT answered) until the API serves the stored scan (polled every 10 ms); then
#     five on-demand rescans of it (POST …/scan until `finished_at` moves), median;
#   - push throughput with scanning on and off: the app and base images pushed to 10 repositories each
#     (skopeo, fresh registry per run, blobs uploaded once per repository), wall-clock total, off and on
#     alternating three times, best of each; scans run at nice 19. Identical digests
#     are scanned once, so with scanning on the two scans run while the other pushes go on.
# The vulnerability database is every Debian DSA/DLA list of ../shared/data plus bookworm's changelog fixes.
# Usage: bench/registry-scan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p customs
customs=$PWD/target/release/customs
data=../shared/data/debian-security
app=target/test-images/bookworm-app.oci
base=target/test-images/bookworm-base.docker.tar
[ -d "$app" ] && [ -f "$base" ] || { echo "build the test images first: ../shared/tools/build-test-images.sh" >&2; exit 1; }
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
now() { date +%s.%N; }

"$customs" db import --db "$work/vuln.db" "$data"/DSA.list.* "$data"/DLA.list.* "$data"/bookworm-changelogs.tracker.json >/dev/null

start() { # start MODE(on|off) PORT: a fresh registry folder and server; sets $dir, $secret
  dir=$work/$1-$2; mkdir -p "$dir"
  "$customs" registry dev-cert --out "$dir/tls" >/dev/null
  {
    printf '[server]\nlisten = "127.0.0.1:%s"\n[tls]\ncert = "tls/server-cert.pem"\nkey = "tls/server-key.pem"\n' "$2"
    printf '[storage]\nfsync = false\n'
    if [ "$1" = on ]; then printf '[scanning]\nvulnerability_db = "%s"\nworkers = 1\n[[protect]]\nrepositories = ["prod/**"]\n' "$work/vuln.db"; fi
    printf '[[grant]]\nto = "ci"\nrepositories = ["**"]\nactions = ["pull", "push"]\n'
  } >"$dir/registry.toml"
  secret=$(cd "$dir" && "$customs" registry principal create ci 2>/dev/null)
  (cd "$dir" && exec "$customs" registry serve 2>/dev/null) & pid=$!
  until curl -sf --cacert "$dir/tls/ca.crt" "https://127.0.0.1:$2/readyz" >/dev/null; do sleep 0.05; done
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
push() { skopeo copy -q --dest-cert-dir "$dir/tls" --dest-creds "ci:$secret" "$1" "docker://127.0.0.1:$port/$2" >/dev/null; }
scan_doc() { curl -s -u "ci:$secret" --cacert "$dir/tls/ca.crt" "https://127.0.0.1:$port/api/v1/repositories/$1/manifests/$2/scan"; }

port=5201; start on $port
push "oci:$app" prod/app:1
t0=$(now)
until scan_doc prod/app 1 | grep -q '"finished_at"'; do sleep 0.01; done
first=$(echo "$(now) - $t0" | bc)
rescans=()
for _ in 1 2 3 4 5; do
  before=$(scan_doc prod/app 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["scan"]["finished_at"])')
  t0=$(now)
  curl -s -o /dev/null -X POST -u "ci:$secret" --cacert "$dir/tls/ca.crt" "https://127.0.0.1:$port/api/v1/repositories/prod/app/manifests/1/scan"
  while [ "$(scan_doc prod/app 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["scan"]["finished_at"])')" = "$before" ]; do sleep 0.01; done
  rescans+=("$(echo "$(now) - $t0" | bc)")
done
median=$(printf '%s\n' "${rescans[@]}" | sort -n | sed -n 3p)
stop

throughput() { # MODE PORT → seconds for 20 pushes
  port=$2; start "$1" "$port"
  local t0; t0=$(now)
  for i in $(seq 1 10); do push "oci:$app" "prod/app$i:1"; push "docker-archive:$base" "prod/base$i:1"; done
  echo "$(now) - $t0" | bc
  stop
}
# Alternating, best of three each: the first run pays for cold caches, whichever mode it is, and one run of
# about 1.5 s varies by ±5%.
best() { printf '%s\n' "$@" | sort -n | head -1; }
offs=(); ons=()
for round in 1 2 3; do
  offs+=("$(throughput off $((5210 + 2 * round)))"); ons+=("$(throughput on $((5211 + 2 * round)))")
done
off=$(best "${offs[@]}"); on=$(best "${ons[@]}")
printf 'scan stored after the push returned: %.3f s (first push); on-demand rescan median of 5: %.3f s\n' "$first" "$median"
printf '20 pushes (2 images x 10 repositories): scanning off %.2f s, on %.2f s (on/off = %.3f)\n' "$off" "$on" "$(echo "$on / $off" | bc -l)"

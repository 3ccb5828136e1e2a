#!/usr/bin/env bash
# The build breaker as CI runs it: refresh the vulnerability database, gate the image,
# write the reports CI understands. Exit code is the gate's: 0 pass, 1 fail, 2 error.
# Usage: examples/ci/gate.sh IMAGE [REPORT_DIR]
#   CUSTOMS            the customs binary (default: customs on PATH)
#   CUSTOMS_DB_IMPORT  paths to import instead of `customs db update` (air-gapped runners)
#   CUSTOMS_DB_MIRRORS mirror base URLs for `customs db update`
#   CUSTOMS_DOCKERFILE the Dockerfile the image was built from, linted too (default: ./Dockerfile if present)
set -euo pipefail
image=${1:?usage: gate.sh IMAGE [REPORT_DIR]}
out=${2:-customs-reports}
customs=${CUSTOMS:-customs}
mkdir -p "$out"
if [ -n "${CUSTOMS_DB_IMPORT:-}" ]; then
  # shellcheck disable=SC2086 # a list of paths on purpose
  "$customs" db import $CUSTOMS_DB_IMPORT
else
  "$customs" db update
fi
"$customs" db status
dockerfile=${CUSTOMS_DOCKERFILE:-}
if [ -z "$dockerfile" ] && [ -f Dockerfile ]; then dockerfile=Dockerfile; fi
lint=()
if [ -n "$dockerfile" ]; then lint=(--dockerfile "$dockerfile"); fi
exec "$customs" gate "$image" "${lint[@]}" \
  --report sarif="$out/customs.sarif" \
  --report junit="$out/customs.xml" \
  --report markdown="$out/summary.md" \
  --report json="$out/customs.json"

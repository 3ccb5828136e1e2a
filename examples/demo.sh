#!/usr/bin/env bash
# The policy at work on the bundled demo image, offline: imports the advisories of examples/advisories (written
# from public facts) into a throwaway database, then gates examples/demo-image with the default policy
# (CRITICAL and HIGH fail, any secret fails). Exits as the gate does: 1, since the demo image fails.
# Extra arguments go to `customs gate` (e.g. --report markdown=-). CUSTOMS=path/to/customs skips cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${CUSTOMS:-}" ]; then customs=("$CUSTOMS"); else customs=(cargo run -q --release --); fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"${customs[@]}" db import --db "$work/demo.sqlite" examples/advisories >/dev/null
"${customs[@]}" gate examples/demo-image --db "$work/demo.sqlite" "$@"

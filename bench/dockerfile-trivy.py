#!/usr/bin/env python3
"""Trivy's Dockerfile checks (DS-xxxx) next to customs' rules on the corpus of bench/dockerfile-corpus.py.

For each Trivy check: the files Trivy flags, the files customs flags with the rule(s) that cover the check, how
many both flag, and the time of each tool over the whole corpus (same run). No thresholds: it prints figures.

    python3 bench/dockerfile-corpus.py            # once: fills target/dockerfile-corpus
    cargo build --release
    python3 bench/dockerfile-trivy.py [--customs target/release/customs] [--trivy trivy]
"""

import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Trivy 0.76's check -> customs rules that cover it (crates/dockerfile/README.md has the same table).
COVERS = {
    "DS-0001": ["DL3007"],
    "DS-0002": ["CP001", "DL3002"],
    "DS-0004": ["CP012"],
    "DS-0005": ["DL3020"],
    "DS-0006": ["DL3023"],
    "DS-0007": ["DL4004"],
    "DS-0008": ["DL3011"],
    "DS-0009": ["DL3000"],
    "DS-0010": ["DL3004"],
    "DS-0011": ["DL3021"],
    "DS-0012": ["DL3024"],
    "DS-0013": ["DL3003"],
    "DS-0014": ["DL4001"],
    "DS-0015": ["DL3032"],
    "DS-0016": ["DL4003"],
    "DS-0017": ["CP013"],
    "DS-0019": ["DL3040"],
    "DS-0020": ["DL3036"],
    "DS-0021": ["DL3014"],
    "DS-0022": ["DL4000"],
    "DS-0023": ["DL3012"],
    "DS-0024": ["CP014"],
    "DS-0025": ["DL3019"],
    "DS-0026": ["CP011"],
    "DS-0027": ["CP015"],
    "DS-0029": ["DL3015"],
    "DS-0030": ["CP016"],
    "DS-0031": ["CP004", "CP007"],
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customs", default=str(ROOT / "target/release/customs"))
    ap.add_argument("--trivy", default=shutil.which("trivy") or "trivy")
    ap.add_argument("--corpus", default=str(ROOT / "target/dockerfile-corpus"))
    args = ap.parse_args()
    files = sorted(p for p in pathlib.Path(args.corpus).rglob("*") if p.is_file())
    if not files:
        print(f"no Dockerfiles under {args.corpus}: run python3 bench/dockerfile-corpus.py first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        # Trivy finds Dockerfiles by name: one folder per file.
        tree = pathlib.Path(tmp) / "corpus"
        for i, f in enumerate(files):
            (tree / str(i)).mkdir(parents=True)
            shutil.copy(f, tree / str(i) / "Dockerfile")
        started = time.perf_counter()
        out = subprocess.run(
            [args.trivy, "config", "--skip-check-update", "-q", "-f", "json", "--cache-dir", str(pathlib.Path(tmp) / "cache"), str(tree)],
            capture_output=True, text=True, check=True,
        )
        trivy_secs = time.perf_counter() - started
        trivy = {}
        for r in json.loads(out.stdout).get("Results", []):
            index = int(r["Target"].split("/")[0])
            for m in r.get("Misconfigurations") or []:
                trivy.setdefault(m["ID"], set()).add(index)
        dockerfiles = [str(tree / str(i) / "Dockerfile") for i in range(len(files))]
        started = time.perf_counter()
        out = subprocess.run([args.customs, "lint", "-f", "json", "--failure-threshold", "none", *dockerfiles], capture_output=True, text=True)
        customs_secs = time.perf_counter() - started
        ours = {}
        for i, f in enumerate(json.loads(out.stdout)["files"]):
            for finding in f["findings"]:
                ours.setdefault(finding["rule"], set()).add(i)
    print(f"{len(files)} Dockerfiles: trivy {trivy_secs:.2f} s, customs {customs_secs:.2f} s ({trivy_secs / customs_secs:.0f}x)")
    print(f"{'check':<8} {'customs rules':<14} {'trivy files':>11} {'customs files':>13} {'both':>5}")
    for check, rules in COVERS.items():
        theirs = trivy.get(check, set())
        mine = set().union(*(ours.get(r, set()) for r in rules))
        print(f"{check:<8} {','.join(rules):<14} {len(theirs):>11} {len(mine):>13} {len(theirs & mine):>5}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

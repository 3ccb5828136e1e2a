#!/usr/bin/env python3
"""Gather real Dockerfiles shipped in published packages into target/dockerfile-corpus.

The corpus is downloaded, never committed: crates from crates.io (pinned versions) and
Debian bookworm binary packages (through apt-get download). Identical files are kept once.
Usage: python3 bench/dockerfile-corpus.py [OUT_DIR]
"""
import concurrent.futures as cf
import gzip
import hashlib
import io
import os
import pathlib
import re
import subprocess
import sys
import tarfile
import tempfile
import urllib.request

CRATES = """
curl-sys@0.4.91+curl-8.22.0 curl@0.4.51 effective-limits@0.7.0 cross@0.2.5 num_cpus@1.17.0 cxx@1.0.205
gpgme@0.11.0 nettle-sys@2.3.2 asn1@0.24.1 colored@3.1.1 bat@0.26.1 sniffglue@0.16.2 sqlx@0.9.0
sccache@0.19.0 nu@0.116.1 rdkafka@0.39.0 librocksdb-sys@0.19.0+11.8.1 lz4-sys@1.11.1+lz4-1.10.0
bollard@0.21.1 dockertest@0.5.0 rdkafka-sys@4.10.0+2.12.1 lemmy_server@0.17.4 pict-rs@0.6.0-rc.6
kanidm@1.1.0-alpha quilkin@0.10.0 shadowsocks-rust@1.25.0 netavark@2.1.0 wasmcloud@0.18.2
cargo-chef@0.1.78 cargo-zigbuild@0.24.1 grin@5.5.2 cross@0.2.4 cross@0.2.1 cross@0.1.16
""".split()

DEBIAN = """
charliecloud-tests docker.io erlang-jose joe kakoune libdd-opentracing0 libghc-skylighting-dev
librust-libm-dev librust-gpg-error-dev libsimgear-dev libvpl-dev node-sqlite3 notary notepadqq
qmake6 qt5-qmake r-cran-sf ruby-github-linguist vis yade
""".split()

def is_dockerfile(path: str) -> bool:
    base = path.rsplit("/", 1)[-1].lower()
    if base.endswith(".gz"):
        base = base[:-3]
    for stem in ("dockerfile", "containerfile"):
        if base == stem or base.startswith((stem + ".", stem + "-", stem + "_")) or base.endswith("." + stem):
            return not base.endswith(".dockerignore")
    return False


def keep(out: pathlib.Path, origin: str, path: str, data: bytes, seen: set) -> None:
    if "/man/" in path:  # roff man pages about Dockerfiles
        return
    if path.endswith(".gz"):
        data, path = gzip.decompress(data), path[:-3]
    # Syntax-highlighting outputs carry ANSI escapes: they are test data, not Dockerfiles.
    if b"\x1b[" in data or b"\0" in data or len(data) > 1 << 20:
        return
    # Editor syntax files and man pages are named after Dockerfiles too: keep files with a FROM line.
    if not re.search(rb"^\s*from\s+\S", data, re.I | re.M):
        return
    digest = hashlib.sha256(data).hexdigest()
    if digest in seen:
        return
    seen.add(digest)
    target = out / origin / path.strip("/").replace("/", "__")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def crate(spec: str):
    name, version = spec.split("@")
    url = f"https://static.crates.io/crates/{name}/{name}-{version}.crate"
    data = urllib.request.urlopen(url, timeout=120).read()
    found = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            if member.isfile() and is_dockerfile(member.name):
                found.append((member.name, tar.extractfile(member).read()))
    return spec, found


def debian(package: str, work: pathlib.Path):
    subprocess.run(["apt-get", "download", "-q", package], cwd=work, check=True, capture_output=True)
    deb = next(work.glob(f"{package}_*.deb"))
    root = work / package
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and is_dockerfile(path.name):
            found.append((str(path.relative_to(root)), path.read_bytes()))
    return package, found


def main() -> int:
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/dockerfile-corpus")
    out.mkdir(parents=True, exist_ok=True)
    seen: set = set()
    with cf.ThreadPoolExecutor(8) as pool:
        for spec, files in pool.map(crate, CRATES):
            for path, data in files:
                keep(out, "crates", f"{spec}/{path}", data, seen)
    with tempfile.TemporaryDirectory() as tmp:
        for package in DEBIAN:
            try:
                _, files = debian(package, pathlib.Path(tmp))
            except (subprocess.CalledProcessError, StopIteration) as err:
                print(f"skip debian {package}: {err}", file=sys.stderr)
                continue
            for path, data in files:
                keep(out, "debian", f"{package}/{path}", data, seen)
    count = sum(1 for p in out.rglob("*") if p.is_file())
    print(f"{count} distinct Dockerfiles in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

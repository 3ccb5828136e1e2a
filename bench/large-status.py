#!/usr/bin/env python3
"""Writes an OCI layout whose one layer holds a dpkg status of N packages (with an os-release), as a hostile or
huge package database would. Used by bench/large-status.sh.
Usage: large-status.py N OUT_DIR"""
import hashlib, io, json, os, sys, tarfile

n, out = int(sys.argv[1]), sys.argv[2]
status = io.StringIO()
for i in range(n):
    status.write(
        f"Package: pkg{i}\nStatus: install ok installed\nPriority: optional\nSection: libs\nInstalled-Size: {i % 997}\n"
        f"Maintainer: Bench <bench@example.org>\nArchitecture: amd64\nSource: src{i // 4}\nVersion: 1.{i % 50}-{i % 7}+deb12u1\n"
        f"Depends: libc6 (>= 2.36)\nDescription: generated package {i}\n line two of its description\n\n"
    )
files = {
    "etc/os-release": b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n',
    "var/lib/dpkg/status": status.getvalue().encode(),
}
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    for name, data in files.items():
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
layer = buf.getvalue()
os.makedirs(f"{out}/blobs/sha256", exist_ok=True)


def put(b):
    d = hashlib.sha256(b).hexdigest()
    with open(f"{out}/blobs/sha256/{d}", "wb") as f:
        f.write(b)
    return d


ld = put(layer)
cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + ld]}, "config": {}}).encode()
cd = put(cfg)
manifest = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cd, "size": len(cfg)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + ld, "size": len(layer)}],
}).encode()
md = put(manifest)
with open(f"{out}/oci-layout", "w") as f:
    f.write('{"imageLayoutVersion": "1.0.0"}')
with open(f"{out}/index.json", "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + md, "size": len(manifest)}]}, f)

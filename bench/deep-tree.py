#!/usr/bin/env python3
"""Writes an OCI layout whose one layer holds a tree `depth` deep (`d`, `d/d`, …) or, with --flat, the same
number of entries side by side, plus one file at the bottom. Used by bench/deep-tree.sh.
Usage: deep-tree.py DEPTH OUT_DIR [--flat]"""
import hashlib, io, json, os, sys, tarfile

depth, out = int(sys.argv[1]), sys.argv[2]
flat = "--flat" in sys.argv[3:]
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    path = ""
    for i in range(depth):
        name = f"d{i}" if flat else ("d" if not path else path + "/d")
        if not flat:
            path = name
        info = tarfile.TarInfo(name)
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        t.addfile(info)
    data = b"AWS_ACCESS_KEY_ID=AKIAQ7Z3X9W2V5T8R4M6\n"
    info = tarfile.TarInfo((path + "/" if path else "") + "leak.env")
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

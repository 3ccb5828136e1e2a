"""Writes a one-layer OCI image layout: the generators of bench/ share it."""
import hashlib
import json
import os


def write(out, layer):
    """Writes `layer` (an uncompressed tar) as the only layer of an OCI layout in folder `out`."""
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

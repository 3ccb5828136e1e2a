#!/usr/bin/env python3
"""Builds examples/demo-image, a tiny OCI layout used by the README and the CLI tests.

Reproducible (fixed mtimes, sorted entries, gzip mtime 0): running it again gives the same digests.
Layer 0: a Debian 12 base (os-release, a dpkg status with a few real package names and versions).
Layer 1: application dependencies: a Python distribution, a Node package, a jar with Maven metadata.
Layer 2: a file holding a (fake, documentation-only) AWS key.
Layer 3: deletes that file with a whiteout, as a careless Dockerfile would.
"""
import gzip, hashlib, io, json, os, shutil, sys, tarfile, zipfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo-image")

STATUS = """Package: base-files
Status: install ok installed
Priority: required
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 3.0.11-1~deb12u2
Description: Secure Sockets Layer toolkit - shared libraries

Package: openssl
Status: install ok installed
Architecture: amd64
Version: 3.0.11-1~deb12u2
Description: Secure Sockets Layer toolkit - cryptographic utility

Package: libtinfo6
Status: install ok installed
Architecture: amd64
Source: ncurses
Version: 6.4-4
Description: shared low-level terminfo library for terminal handling

Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: 1:1.2.13.dfsg-1
Description: compression library - runtime
"""

OS_RELEASE = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""


def jar(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            z.writestr(info, data)
    return buf.getvalue()


def layer(entries):
    """entries: list of (path, bytes or None for a directory)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for path, data in entries:
            info = tarfile.TarInfo(path)
            info.mtime = 1700000000
            info.uid = info.gid = 0
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                t.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def blob(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(OUT, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(os.path.join(OUT, "blobs", "sha256"))
    log4j = jar([("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"),
                 ("META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties",
                  b"groupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n")])
    app = jar([("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"), ("BOOT-INF/lib/log4j-core-2.14.1.jar", log4j)])
    layers = [
        layer([("etc", None), ("etc/os-release", OS_RELEASE.encode()), ("var", None), ("var/lib", None),
               ("var/lib/dpkg", None), ("var/lib/dpkg/status", STATUS.encode())]),
        layer([("app", None), ("app/app.jar", app),
               ("usr/lib/python3/dist-packages/requests-2.25.0.dist-info", None),
               ("usr/lib/python3/dist-packages/requests-2.25.0.dist-info/METADATA",
                b"Metadata-Version: 2.1\nName: requests\nVersion: 2.25.0\nLicense: Apache 2.0\n\nPython HTTP for Humans.\n"),
               ("app/node_modules", None), ("app/node_modules/lodash", None),
               ("app/node_modules/lodash/package.json", b'{"name": "lodash", "version": "4.17.20", "license": "MIT"}\n')]),
        layer([("app/settings.env", b"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n")]),
        layer([("app/.wh.settings.env", b"")]),
    ]
    steps = ["ADD rootfs.tar /", "COPY app/ /app/ && pip install requests==2.25.0", "COPY settings.env /app/", "RUN rm /app/settings.env"]
    gz = [gzip.compress(l, mtime=0) for l in layers]
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
        "config": {"User": "10001", "Cmd": ["java", "-jar", "/app/app.jar"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(l).hexdigest() for l in layers]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": s} for s in steps],
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob(g), "size": len(g)} for g in gz],
    }, sort_keys=True).encode()
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": blob(manifest), "size": len(manifest),
             "annotations": {"org.opencontainers.image.ref.name": "demo"}}]}
    with open(os.path.join(OUT, "index.json"), "w") as f:
        json.dump(index, f, sort_keys=True)
    with open(os.path.join(OUT, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


if __name__ == "__main__":
    sys.exit(main())

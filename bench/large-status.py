#!/usr/bin/env python3
"""Writes an OCI layout whose one layer holds a dpkg status of N packages (with an os-release), as a hostile or
huge package database would. Used by bench/large-status.sh.
Usage: large-status.py N OUT_DIR"""
import io, sys, tarfile

import oci_layout

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
oci_layout.write(out, buf.getvalue())

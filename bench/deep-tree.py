#!/usr/bin/env python3
"""Writes an OCI layout whose one layer holds a tree `depth` deep (`d`, `d/d`, …) or, with --flat, the same
number of entries side by side, plus one file at the bottom. Used by bench/deep-tree.sh.
Usage: deep-tree.py DEPTH OUT_DIR [--flat]"""
import io, sys, tarfile

import oci_layout

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
oci_layout.write(out, buf.getvalue())

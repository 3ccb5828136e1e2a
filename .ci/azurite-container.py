#!/usr/bin/env python3
"""Creates a blob container on Azurite with a SharedKey-signed request (Python's standard library only), for
the object-storage tests: object_store reads and writes blobs but does not create containers.
Usage: azurite-container.py http://127.0.0.1:PORT/devstoreaccount1/CONTAINER"""
import base64, hashlib, hmac, sys, urllib.error, urllib.parse, urllib.request
from email.utils import formatdate

# Azurite's documented development account; not a secret.
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

url = sys.argv[1].rstrip("/")
path = urllib.parse.urlparse(url).path  # /devstoreaccount1/CONTAINER
date, version = formatdate(usegmt=True), "2021-08-06"
# VERB, then 11 standard headers (only Content-Type is sent: urllib adds one to any request with a body).
fields = ["PUT", "", "", "", "", "application/octet-stream"] + [""] * 6
to_sign = "\n".join(fields) + f"\nx-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}{path}\nrestype:container"
signature = base64.b64encode(hmac.new(base64.b64decode(KEY), to_sign.encode(), hashlib.sha256).digest()).decode()
request = urllib.request.Request(f"{url}?restype=container", method="PUT", data=b"", headers={
    "Content-Type": "application/octet-stream", "x-ms-date": date, "x-ms-version": version, "Authorization": f"SharedKey {ACCOUNT}:{signature}",
})
try:
    urllib.request.urlopen(request).close()
except urllib.error.HTTPError as e:
    if e.code != 409:  # 409: the container exists already
        sys.exit(f"creating {url}: {e.code} {e.read().decode(errors='replace')}")

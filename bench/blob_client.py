#!/usr/bin/env python3
"""A registry client for bench/registry.sh that is not the bottleneck: blob push (POST, one streamed PATCH, PUT)
and pull over TLS in 1 MiB blocks, and a mixed load of concurrent small pushes.

    blob_client.py push BASE REPO FILE DIGEST CA [AUTH]   -> seconds
    blob_client.py pull BASE REPO DIGEST CA [AUTH]        -> seconds (the bytes are hashed and checked)
    blob_client.py pushers BASE CA SECONDS N [AUTH]       -> JSON: pushes, errors, p50/p99 latency (ms)

curl reads an upload in 64 KiB pieces and tops out near 120 MB/s here, for Distribution and customs alike; this
client sends and reads 1 MiB at a time so the servers are what is measured."""

import hashlib
import http.client
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse

BLOCK = 1 << 20


def connect(base, ca):
    url = urllib.parse.urlsplit(base)
    context = ssl.create_default_context(cafile=ca)
    return http.client.HTTPSConnection(url.hostname, url.port, context=context, blocksize=BLOCK, timeout=120)


def headers(auth, extra=None):
    h = dict(extra or {})
    if auth:
        h["Authorization"] = auth
    return h


def location_path(response):
    loc = response.getheader("Location")
    return urllib.parse.urlsplit(loc)._replace(scheme="", netloc="").geturl() if loc.startswith("http") else loc


def push_bytes(conn, repo, body, digest, auth, length):
    conn.request("POST", f"/v2/{repo}/blobs/uploads/", headers=headers(auth, {"Content-Length": "0"}))
    r = conn.getresponse()
    r.read()
    if r.status != 202:
        raise RuntimeError(f"POST answered {r.status}")
    location = location_path(r)
    conn.request(
        "PATCH",
        location,
        body=body,
        headers=headers(auth, {"Content-Type": "application/octet-stream", "Content-Length": str(length)}),
    )
    r = conn.getresponse()
    r.read()
    if r.status != 202:
        raise RuntimeError(f"PATCH answered {r.status}")
    location = location_path(r)
    sep = "&" if "?" in location else "?"
    conn.request("PUT", f"{location}{sep}digest={digest}", headers=headers(auth, {"Content-Length": "0"}))
    r = conn.getresponse()
    r.read()
    if r.status != 201:
        raise RuntimeError(f"PUT answered {r.status}")


def push(base, repo, path, digest, ca, auth=None):
    conn = connect(base, ca)
    start = time.monotonic()
    with open(path, "rb") as body:
        push_bytes(conn, repo, body, digest, auth, os.path.getsize(path))
    return time.monotonic() - start


def pull(base, repo, digest, ca, auth=None):
    conn = connect(base, ca)
    start = time.monotonic()
    conn.request("GET", f"/v2/{repo}/blobs/{digest}", headers=headers(auth))
    r = conn.getresponse()
    if r.status != 200:
        raise RuntimeError(f"GET answered {r.status}")
    h = hashlib.sha256()
    buf = bytearray(BLOCK)
    view = memoryview(buf)
    while True:
        n = r.readinto(view)
        if not n:
            break
        h.update(view[:n])
    elapsed = time.monotonic() - start
    if "sha256:" + h.hexdigest() != digest:
        raise RuntimeError("pulled bytes do not match the digest")
    return elapsed


def pushers(base, ca, seconds, n, auth=None):
    """N threads each pushing distinct 64 KiB blobs for SECONDS; every push must succeed."""
    deadline = time.monotonic() + seconds
    latencies, errors, lock = [], [], threading.Lock()

    def run(worker):
        conn = connect(base, ca)
        i = 0
        while time.monotonic() < deadline:
            body = os.urandom(65536)
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            start = time.monotonic()
            try:
                push_bytes(conn, f"bench/load{worker}", body, digest, auth, len(body))
                with lock:
                    latencies.append(time.monotonic() - start)
            except Exception as e:  # every failure is counted and reported, never retried
                with lock:
                    errors.append(str(e))
                conn = connect(base, ca)
            i += 1

    threads = [threading.Thread(target=run, args=(w,)) for w in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()

    def pct(p):
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000, 1) if latencies else None

    return {
        "pushes": len(latencies),
        "pushes_per_s": round(len(latencies) / seconds, 1),
        "errors": len(errors),
        "first_errors": errors[:3],
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "push":
        print(f"{push(*args):.3f}")
    elif cmd == "pull":
        print(f"{pull(*args):.3f}")
    elif cmd == "pushers":
        base, ca, seconds, n = args[:4]
        print(json.dumps(pushers(base, ca, float(seconds), int(n), *args[4:])))
    else:
        sys.exit(f"unknown command {cmd}")

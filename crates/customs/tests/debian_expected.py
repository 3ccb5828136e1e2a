#!/usr/bin/python3
"""The findings a Debian 12 image should have under the DSA/DLA lists, computed apart from customs.

Usage: debian_expected.py IMAGE.docker.tar FILE...

Reads the image's var/lib/dpkg/status (the topmost layer that has it), the tracker's DSA/DLA list files and
tracker JSON files (`*.json`: package -> CVE -> releases), and prints a JSON list of [CVE, binary package,
fixed version]: every bookworm fix of the package's source package whose version is above the installed
source version under python-apt's apt_pkg.version_compare. As the tracker decides: the tracker JSON's
bookworm status wins (`fixed_version` 0: never affected); else, among several advisories for one CVE and
source package, the earliest fixed version is the fix.
Needs python3-apt (Debian's own dpkg version comparison).
"""

import io
import json
import re
import sys
import tarfile

import apt_pkg

RELEASE = "bookworm"
ON_DISK = {"installed", "unpacked", "half-configured", "half-installed", "triggers-awaited", "triggers-pending"}


def dpkg_status(image):
    with tarfile.open(image) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        status = None
        for layer in manifest[0]["Layers"]:
            data = outer.extractfile(layer).read()
            with tarfile.open(fileobj=io.BytesIO(data)) as inner:
                for member in inner.getmembers():
                    if member.name.lstrip("./") == "var/lib/dpkg/status" and member.isfile():
                        status = inner.extractfile(member).read().decode()
    if status is None:
        sys.exit(f"{image}: no var/lib/dpkg/status")
    return status


def installed(status):
    for paragraph in status.split("\n\n"):
        fields = {}
        for line in paragraph.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        # The package's files are on disk in these states (an image may unpack without configuring).
        state = fields.get("Status", "").split(" ")[-1]
        if "Package" not in fields or state not in ON_DISK:
            continue
        source, source_version = fields["Package"], fields["Version"]
        if "Source" in fields:
            m = re.match(r"(\S+)(?: \((\S+)\))?", fields["Source"])
            source = m.group(1)
            source_version = m.group(2) or source_version
        yield fields["Package"], source, source_version


def tracker(files):
    """(CVE, source package) -> bookworm fixed version ("0": not affected; None: open) from tracker JSON."""
    out = {}
    for path in files:
        for package, issues in json.load(open(path, encoding="utf-8")).items():
            for cve, issue in issues.items():
                release = (issue.get("releases") or {}).get(RELEASE)
                if release and release.get("status") == "resolved":
                    out[(cve, package)] = release.get("fixed_version")
                elif release and release.get("status") == "open":
                    out[(cve, package)] = None
    return out


def fixes(lists):
    """(CVE, source package) -> earliest bookworm fixed version."""
    out = {}
    for path in lists:
        cves = []
        for line in open(path, encoding="utf-8"):
            if line.startswith("["):
                cves = []
            elif line.strip().startswith("{"):
                cves = [c for c in line.strip().strip("{}").split() if c.startswith("CVE-")]
            else:
                m = re.match(r"\s+\[(\w+)\] - (\S+) (\S+)", line)
                if m and m.group(1) == RELEASE and not m.group(3).startswith("<"):
                    for cve in cves:
                        key = (cve, m.group(2))
                        if key not in out or apt_pkg.version_compare(m.group(3), out[key]) < 0:
                            out[key] = m.group(3)
    return out


def main():
    apt_pkg.init_system()
    image, files = sys.argv[1], sys.argv[2:]
    fixed = fixes([f for f in files if not f.endswith(".json")])
    for key, version in tracker([f for f in files if f.endswith(".json")]).items():
        # The tracker's status wins; an open issue has no fixed version to compare.
        fixed.pop(key, None)
        if version and version != "0":
            fixed[key] = version
    by_source = {}
    for (cve, source), version in fixed.items():
        by_source.setdefault(source, []).append((cve, version))
    expected = set()
    for binary, source, version in installed(dpkg_status(image)):
        for cve, fix in by_source.get(source, []):
            if apt_pkg.version_compare(version, fix) < 0:
                expected.add((cve, binary, fix))
    json.dump(sorted(expected), sys.stdout)


main()

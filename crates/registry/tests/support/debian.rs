//! Small Debian 12 images with one package (`demo-pkg`) and a vulnerability database with advisories for it: what
//! the scanning and webhook tests push, scan and rescan.

use std::time::{Duration, Instant};

use super::{Cred, OCI_MANIFEST, TestRegistry, digest};

/// A one-layer Debian 12 image: `demo-pkg VERSION` installed, `os-release`, and `etc/marker` (so two images of
/// the same version can differ).
pub fn debian_layer(version: &str, marker: &str) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, body: &str| {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, body.as_bytes()).unwrap();
    };
    add("etc/marker", marker);
    add("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n");
    add(
        "var/lib/dpkg/status",
        &format!("Package: demo-pkg\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n\n"),
    );
    tar.into_inner().unwrap()
}

/// A vulnerability database with one critical advisory for `demo-pkg` before 1.0-2.
pub fn write_database(dir: &std::path::Path) {
    add_advisory(dir, "0001", "1.0-2");
}

/// Imports a critical advisory `DEMO-2099-NNNN` for `demo-pkg` before `fixed`.
pub fn add_advisory(dir: &std::path::Path, number: &str, fixed: &str) {
    let osv = dir.join(format!("osv-{number}"));
    std::fs::create_dir_all(&osv).unwrap();
    let record = serde_json::json!({
        "id": format!("DEMO-2099-{number}"),
        "aliases": [format!("CVE-2099-{number}")],
        "summary": "demo-pkg runs arbitrary code",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "demo-pkg"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]
    });
    std::fs::write(osv.join(format!("DEMO-2099-{number}.json")), record.to_string()).unwrap();
    customs_vulndb::Database::open(&dir.join("vuln.db"))
        .unwrap()
        .import(&[osv])
        .unwrap();
}

/// Pushes the Debian image under `repo:tag`; returns the manifest digest.
pub fn push_debian(reg: &TestRegistry, repo: &str, tag: &str, cred: &Cred, version: &str) -> String {
    push_marked(reg, repo, tag, cred, version, "")
}

pub fn push_marked(reg: &TestRegistry, repo: &str, tag: &str, cred: &Cred, version: &str, marker: &str) -> String {
    let layer = debian_layer(version, marker);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [digest(&layer)]},
        "config": {}
    })
    .to_string();
    for blob in [config.as_bytes(), &layer[..]] {
        assert_eq!(reg.push_blob(repo, cred, blob).status, 201);
    }
    let manifest = super::image_manifest(config.as_bytes(), &layer, None);
    let reply = reg.request(
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        cred,
        &[("Content-Type", OCI_MANIFEST)],
        Some(manifest.as_bytes()),
    );
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    reply.header("docker-content-digest").unwrap().to_string()
}

/// Polls the scan API until the result is stored.
pub fn wait_for_scan(reg: &TestRegistry, repo: &str, digest: &str, cred: &Cred) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = reg.request(
            "GET",
            &format!("/api/v1/repositories/{repo}/manifests/{digest}/scan"),
            cred,
            &[],
            None,
        );
        if reply.status == 200 {
            return reply.json();
        }
        assert_eq!(reply.status, 202, "{}", String::from_utf8_lossy(&reply.body));
        assert!(Instant::now() < deadline, "the scan of {repo}@{digest} did not finish in 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Defender's rescan window, played out: tag `1` of `old_repo` is pulled now and of `recent_repo` 37 days later
/// (by the registry's clock), three more days pass, then a critical advisory `DEMO-2099-0002` (fixed in 1.0-3) is
/// imported into the database in `db_dir` and rescans are queued: the recent image is in the 30-day window, the
/// old one is not.
pub fn pull_40_and_3_days_ago_then_add_advisory(
    reg: &TestRegistry,
    cred: &Cred,
    old_repo: &str,
    recent_repo: &str,
    db_dir: &std::path::Path,
) {
    let scanning = reg.registry.scanning.as_ref().unwrap();
    let runtime = reg.runtime.clone();
    let pull = |repo: &str| {
        reg.request("GET", &format!("/v2/{repo}/manifests/1"), cred, &[("Accept", OCI_MANIFEST)], None)
            .status
    };
    assert_eq!(pull(old_repo), 200);
    runtime.block_on(scanning.flush_pulls()).unwrap();
    reg.registry.clock.advance(time::Duration::days(37));
    assert_eq!(pull(recent_repo), 200);
    runtime.block_on(scanning.flush_pulls()).unwrap();
    reg.registry.clock.advance(time::Duration::days(3));
    // The database's version is its import time, to the second.
    std::thread::sleep(Duration::from_millis(1100));
    add_advisory(db_dir, "0002", "1.0-3");
    runtime
        .block_on(scanning.rescan_on_database_change(reg.registry.clock.now()))
        .unwrap();
}

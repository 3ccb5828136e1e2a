//! What several integration tests share: the demo image, and validating reports with `tests/validate_report.py`.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::cargo::cargo_bin_cmd;

/// The committed demo image (`examples/demo-image`, an OCI layout), as a command-line argument.
#[allow(dead_code)]
pub fn demo_image() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/demo-image")
        .display()
        .to_string()
}

/// Validates a report (`cyclonedx`, `spdx`, `sarif`, `junit`) with the reference validators:
/// `Some((valid, output))`, or `None` after a skip (a failure under CUSTOMS_REQUIRE_ALL=1) when python or the
/// validator is missing.
#[allow(dead_code)]
pub fn validate(kind: &str, path: &Path) -> Option<(bool, String)> {
    customs_testkit::validate_report(kind, path)
}

/// Writes into `osv_dir` one advisory per ecosystem of the demo and test images (Debian:12, PyPI, npm, Maven)
/// for a package no image has, so a database built from it covers those ecosystems without matching anything:
/// a gate fails on an ecosystem the database holds nothing for.
#[allow(dead_code)]
pub fn write_coverage_fillers(osv_dir: &Path) {
    std::fs::create_dir_all(osv_dir).unwrap();
    for eco in ["Debian:12", "PyPI", "npm", "Maven"] {
        let record = serde_json::json!({
            "id": format!("FILLER-{}", eco.replace(':', "-")),
            "summary": "covers the ecosystem; matches no installed package",
            "affected": [{"package": {"ecosystem": eco, "name": "customs-test-not-installed"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]
        });
        std::fs::write(osv_dir.join(format!("filler-{}.json", eco.replace(':', "-"))), record.to_string()).unwrap();
    }
}

/// A vulnerability database at `dir/v.db` imported from `records` (OSV JSON, written to `dir/osv`) and the
/// coverage fillers of [`write_coverage_fillers`].
#[allow(dead_code)]
pub fn osv_database(dir: &Path, records: &[serde_json::Value]) -> PathBuf {
    let osv = dir.join("osv");
    std::fs::create_dir_all(&osv).unwrap();
    for (i, record) in records.iter().enumerate() {
        std::fs::write(osv.join(format!("{i}.json")), record.to_string()).unwrap();
    }
    write_coverage_fillers(&osv);
    let db = dir.join("v.db");
    cargo_bin_cmd!("customs")
        .args(["db", "import", "--db"])
        .arg(&db)
        .arg(&osv)
        .assert()
        .success();
    db
}

/// Runs customs in `cwd` with the environment cleared of any CUSTOMS_ variable the caller did not give.
#[allow(dead_code)]
pub fn customs(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = cargo_bin_cmd!("customs");
    cmd.current_dir(cwd).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("CUSTOMS_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Writes issue 16's root filesystem under `root`: Debian 12 with curl and libcurl4 `7.88.1-10+deb12u3` and
/// libc6 `2.36-9+deb12u2`, i.e. before DSA-5523-1 (CVE-2023-38545) and DSA-5514-1 (CVE-2023-4911).
#[allow(dead_code)]
pub fn write_curl_glibc_rootfs(root: &Path) {
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
    )
    .unwrap();
    let pkg = |name: &str, source: &str, version: &str| {
        format!("Package: {name}\nStatus: install ok installed\nSource: {source}\nVersion: {version}\nArchitecture: amd64\n\n")
    };
    let status = [
        pkg("curl", "curl", "7.88.1-10+deb12u3"),
        pkg("libcurl4", "curl", "7.88.1-10+deb12u3"),
        pkg("libc6", "glibc", "2.36-9+deb12u2"),
    ]
    .concat();
    std::fs::write(root.join("var/lib/dpkg/status"), status).unwrap();
}

/// An HTTPS client that trusts only the CA in `ca` (a registry's dev certificate) and returns error statuses
/// as answers.
#[allow(dead_code)]
pub fn tls_agent(ca: &Path) -> ureq::Agent {
    let pem = std::fs::read(ca).unwrap();
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|i| match i {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .build()
        .into()
}

/// `customs gate TARGET --db DB --scanners vuln --report json=- EXTRA…` in `cwd`: its exit code and its report.
#[allow(dead_code)]
pub fn gate_vuln_json(cwd: &Path, target: &str, db: &Path, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut args = vec![
        "gate",
        target,
        "--db",
        db.to_str().unwrap(),
        "--scanners",
        "vuln",
        "--report",
        "json=-",
    ];
    args.extend_from_slice(extra);
    let out = customs(cwd, &args, &[]);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), doc)
}

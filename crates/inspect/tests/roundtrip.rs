//! The registry stores a scan and decides on it later: a scan read back from its JSON must give the very
//! verdict and report the fresh scan gives, under any policy and exceptions.

use customs_inspect::{GatePolicy, ImageScan, decide, match_database, survey};

/// A Debian 12 root filesystem with `demo-pkg 1.0-1` and an AWS key in a file, and a database with one critical
/// advisory for it.
fn fixture(dir: &std::path::Path) -> (customs_oci::Image, customs_vulndb::Database) {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::write(root.join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\n").unwrap();
    std::fs::write(
        root.join("var/lib/dpkg/status"),
        "Package: demo-pkg\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n\n",
    )
    .unwrap();
    std::fs::write(root.join("app/.env"), "AWS_ACCESS_KEY_ID=AKIAZ7VRSQ3KMB2WLXDN\n").unwrap();
    let osv = dir.join("osv");
    std::fs::create_dir_all(&osv).unwrap();
    let record = serde_json::json!({
        "id": "DEMO-2099-0001", "aliases": ["CVE-2099-0001"], "summary": "demo",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "demo-pkg"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-2"}]}]}]
    });
    std::fs::write(osv.join("a.json"), record.to_string()).unwrap();
    let mut db = customs_vulndb::Database::open(&dir.join("vuln.db")).unwrap();
    db.import(&[osv]).unwrap();
    let image = customs_oci::Image::open(&format!("dir:{}", root.display()), &customs_oci::Platform::default()).unwrap();
    (image, db)
}

#[test]
fn a_stored_scan_decides_like_a_fresh_one() {
    let dir = tempfile::tempdir().unwrap();
    let (image, db) = fixture(dir.path());
    let mut scan = survey(&image, Some(customs_inspect::builtin_secrets()), &customs_oci::NoProgress).unwrap();
    match_database(&mut scan, &db).unwrap();
    assert_eq!(scan.findings.len(), 1, "{:?}", scan.findings);
    assert_eq!(scan.secrets.len(), 1, "{:?}", scan.secrets);
    let stored: ImageScan = serde_json::from_str(&serde_json::to_string(&scan).unwrap()).unwrap();
    let today = time::macros::date!(2026 - 12 - 02);
    let exception = customs_policy::exclusions::parse(
        r#"[{"id": "CVE-2099-0001", "expires": "2026-12-03", "reason": "test"}]"#,
        "exclusions.json",
        false,
    )
    .unwrap();
    let strict = GatePolicy::new(customs_policy::Thresholds::default());
    let mut excepted = strict.clone();
    excepted.exceptions = exception;
    for (policy, day, passes) in [
        (&strict, today, false),
        (&excepted, today, false),                               // the secret still fails it
        (&excepted, time::macros::date!(2026 - 12 - 04), false), // and the exception expired
    ] {
        let fresh = decide(scan.clone(), policy, None, day);
        let again = decide(stored.clone(), policy, None, day);
        assert_eq!(fresh.verdict.pass, passes);
        assert_eq!(
            customs_report::gate_json(&fresh.result()),
            customs_report::gate_json(&again.result()),
            "the stored scan decides differently"
        );
    }
    let mut no_secrets = excepted.clone();
    no_secrets.fail_on_secret.clear();
    assert!(
        decide(stored.clone(), &no_secrets, None, today).verdict.pass,
        "excepted and secrets not failing"
    );
    assert!(
        !decide(stored, &no_secrets, None, time::macros::date!(2026 - 12 - 04)).verdict.pass,
        "expired"
    );
}

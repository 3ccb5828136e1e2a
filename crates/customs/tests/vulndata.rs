//! Issue 16's acceptance on the real data in `../shared/data` and the real test images: Debian findings
//! against an independent python-apt computation, the KEV and severity gate with the real feeds, and the
//! shared bookworm image under the full database. Skipped (a failure under CUSTOMS_REQUIRE_ALL=1) when data,
//! images or python3-apt are missing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

mod support;

fn customs(cwd: &Path, args: &[&str]) -> Output {
    support::customs(cwd, args, &[])
}

fn import(cwd: &Path, db: &Path, inputs: &[PathBuf]) -> String {
    let mut args = vec!["db".to_string(), "import".into(), "--db".into(), db.display().to_string()];
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = customs(cwd, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn scan_json(cwd: &Path, target: &str, db: &Path) -> Value {
    let out = customs(
        cwd,
        &[
            "scan",
            target,
            "--db",
            db.to_str().unwrap(),
            "--scanners",
            "vuln",
            "--format",
            "json",
        ],
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

fn cve_of(f: &Value) -> String {
    std::iter::once(&f["id"])
        .chain(f["aliases"].as_array().unwrap())
        .filter_map(Value::as_str)
        .find(|a| a.starts_with("CVE-"))
        .unwrap_or_else(|| panic!("a finding without a CVE: {f}"))
        .to_string()
}

/// A system python with python3-apt, for Debian's own version comparison.
fn python_apt() -> Option<PathBuf> {
    let python = PathBuf::from("/usr/bin/python3");
    let ok = std::process::Command::new(&python)
        .args(["-c", "import apt_pkg"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        customs_testkit::skip("python3-apt is missing (apt-get install python3-apt)");
        return None;
    }
    Some(python)
}

/// The DSA and DLA lists, and the tracker-shaped fixes of bookworm's own changelogs (the images are current
/// with every DSA/DLA; the changelogs fix what point releases changed).
fn lists(debian: &Path) -> Vec<PathBuf> {
    [
        "DSA.list.to-2025-02-13",
        "DSA.list.2025-02-to-2026-08",
        "DLA.list.to-2025-02-13",
        "DLA.list.2025-02-to-2026-08",
        "bookworm-changelogs.tracker.json",
    ]
    .iter()
    .map(|n| debian.join(n))
    .collect()
}

#[test]
fn debian_findings_equal_an_independent_python_apt_computation() {
    let (Some(debian), Some(images), Some(python)) = (
        customs_testkit::shared_data("debian-security"),
        customs_testkit::test_images(),
        python_apt(),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dsa.db");
    import(dir.path(), &db, &lists(&debian));
    let helper = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/debian_expected.py");
    for image in ["bookworm-base.docker.tar", "bookworm-app.docker.tar"] {
        let image = images.join(image);
        let out = std::process::Command::new(&python)
            .arg(&helper)
            .arg(&image)
            .args(lists(&debian))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let expected: BTreeSet<(String, String, String)> = serde_json::from_slice(&out.stdout).unwrap();
        let doc = scan_json(dir.path(), &format!("docker-archive:{}", image.display()), &db);
        let ours: BTreeSet<(String, String, String)> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    cve_of(f),
                    f["package"]["name"].as_str().unwrap().to_string(),
                    f["fixed_version"].as_str().unwrap_or("-").to_string(),
                )
            })
            .collect();
        let both = expected.intersection(&ours).count();
        let recall = both as f64 / expected.len().max(1) as f64;
        let precision = both as f64 / ours.len().max(1) as f64;
        eprintln!(
            "{}: python-apt expects {}, customs finds {}: recall {recall:.3}, precision {precision:.3}",
            image.display(),
            expected.len(),
            ours.len()
        );
        assert!(!expected.is_empty(), "the DSA/DLA lists fix something in {}", image.display());
        assert_eq!(
            ours,
            expected,
            "missing: {:?}\nextra: {:?}",
            expected.difference(&ours).collect::<Vec<_>>(),
            ours.difference(&expected).collect::<Vec<_>>()
        );
    }
}

/// The rootfs: Debian 12 with curl and libcurl4 before DSA-5523-1 and libc6 before DSA-5514-1, with
/// the real DSA list, NVD feed, vulnrichment records and KEV catalog.
#[test]
fn kev_and_nvd_severity_fail_the_gate_on_real_feeds() {
    let Some(data) = customs_testkit::shared_data("severity") else {
        return;
    };
    let shared = data.parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    support::write_curl_glibc_rootfs(&root);
    let db = dir.path().join("v.db");
    let said = import(
        dir.path(),
        &db,
        &[
            shared.join("debian-security/DSA.list.to-2025-02-13"),
            data.join("nvd-2.0/nvdcve-modified-2024-10-25.json.gz"),
            data.join("vulnrichment"),
            data.join("kev"),
        ],
    );
    assert!(said.contains("cisa-kev: 1674") && said.contains("nvd-severity:"), "{said}");
    let target = format!("dir:{}", root.display());
    let gate = |extra: &[&str]| support::gate_vuln_json(dir.path(), &target, &db, extra);
    let failing = |doc: &Value, cves: &[&str]| -> Vec<String> {
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["status"] == "failing" && cves.contains(&cve_of(f).as_str()))
            .map(|f| format!("{} {}", cve_of(f), f["package"]["name"].as_str().unwrap()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let cves = ["CVE-2023-38545", "CVE-2023-4911"];
    let (code, doc) = gate(&["--fail-on", "CRITICAL"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        failing(&doc, &cves),
        ["CVE-2023-38545 curl", "CVE-2023-38545 libcurl4", "CVE-2023-4911 libc6"]
    );
    let curl = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| cve_of(f) == "CVE-2023-38545")
        .unwrap();
    assert_eq!(
        (
            curl["severity"].as_str(),
            curl["severity_source"].as_str(),
            curl["cvss_score"].as_f64()
        ),
        (Some("CRITICAL"), Some("nvd"), Some(9.8))
    );
    assert!(
        curl["cvss"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["score"] == 8.8 && s["provider"] == "CISA-ADP"),
        "CISA ADP's 8.8 is kept beside NVD's score: {}",
        curl["cvss"]
    );
    let reasons = doc["verdict"]["reasons"].to_string();
    assert!(
        reasons.contains("CVE-2023-4911 in libc6 2.36-9+deb12u2 is known to be exploited (CISA KEV since 2023-11-21"),
        "{reasons}"
    );
    // No shared source scores CVE-2023-4911: without KEV it is unrated, and fails as such unless UNKNOWN warns.
    let (code, doc) = gate(&["--fail-on", "CRITICAL", "--fail-on-kev=false"]);
    assert_eq!((code, failing(&doc, &cves).len()), (Some(1), 3));
    assert!(
        doc["verdict"]["reasons"]
            .to_string()
            .contains("have no severity rating and count as failing"),
        "{}",
        doc["verdict"]
    );
    let (code, doc) = gate(&["--fail-on", "CRITICAL", "--fail-on-kev=false", "--unknown", "warn"]);
    assert_eq!(
        (code, failing(&doc, &cves)),
        (
            Some(1),
            vec!["CVE-2023-38545 curl".to_string(), "CVE-2023-38545 libcurl4".to_string()]
        )
    );
}

/// The shared bookworm image under everything the shared data holds: its findings are mostly CVEs of
/// 2025-2026 that no shared source scores, so the verdict follows the UNKNOWN policy and says how many.
#[test]
fn the_bookworm_image_under_the_full_shared_database() {
    let (Some(data), Some(image)) = (
        customs_testkit::shared_data("severity"),
        customs_testkit::test_image("bookworm-base.docker.tar"),
    ) else {
        return;
    };
    let shared = data.parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("full.db");
    let inputs: Vec<PathBuf> = [
        "osv",
        "alpine-secdb",
        "alpine-secdb-json",
        "debian-security",
        "fixtures/debian-tracker",
        "fixtures/debian-vuln-list",
        "fixtures/ubuntu-osv",
        "severity",
    ]
    .iter()
    .map(|p| shared.join(p))
    .collect();
    let said = import(dir.path(), &db, &inputs);
    eprintln!("{said}");
    let status = customs(dir.path(), &["db", "status", "--db", db.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&status.stdout);
    eprintln!("{text}");
    assert!(
        text.contains("with a CVSS score from NVD or CVE 5:") && text.contains("debian-dsa"),
        "{text}"
    );
    assert!(
        String::from_utf8_lossy(&status.stderr).is_empty(),
        "severity sources are loaded: no warning"
    );

    let target = format!("docker-archive:{}", image.display());
    let out = customs(
        dir.path(),
        &[
            "gate",
            &target,
            "--db",
            db.to_str().unwrap(),
            "--scanners",
            "vuln",
            "--fail-on",
            "CRITICAL,HIGH",
            "--report",
            "json=-",
        ],
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let findings = doc["findings"].as_array().unwrap();
    let unrated = findings.iter().filter(|f| f["severity"] == "UNKNOWN").count();
    eprintln!("{} findings, {unrated} unrated; verdict {}", findings.len(), doc["verdict"]);
    assert!(unrated > 0 && unrated * 2 > findings.len(), "mostly unscored CVEs of 2025-2026");
    assert_eq!(out.status.code(), Some(1), "UNKNOWN fails by default");
    assert!(
        doc["verdict"]["reasons"]
            .to_string()
            .contains(&format!("{unrated} finding(s) have no severity rating and count as failing")),
        "{}",
        doc["verdict"]
    );
}

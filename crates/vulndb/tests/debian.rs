//! Debian's data as the tracker combines it, on the real records in `../shared/data`: the five per-CVE
//! tracker records (unfixed, not-affected, ignored, fixed in bookworm only through DSA-5673-1) with the DSA
//! list. Skipped (a failure under CUSTOMS_REQUIRE_ALL=1) when the data is absent.

use customs_catalog::Inventory;
use customs_vulndb::{Database, FixState, Severity, scan};

mod support;
use support::debian;

/// The CVEs of the five records.
const RECORDS: [&str; 5] = ["CVE-2016-2781", "CVE-2024-26458", "CVE-2024-2961", "CVE-2024-3094", "CVE-2025-0167"];

/// (CVE, package, fix state, fixed version) of every finding for the five records' CVEs (the DSA list
/// imported beside them finds others).
fn findings(db: &Database, inventory: &Inventory) -> Vec<(String, String, FixState, Option<String>)> {
    let mut out: Vec<_> = scan(db, inventory)
        .unwrap()
        .into_iter()
        .filter(|f| RECORDS.contains(&f.cve().unwrap()))
        .map(|f| {
            (
                f.cve().unwrap().to_string(),
                f.package.name.clone(),
                f.fix_state,
                f.fixed_version.clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

#[test]
fn the_five_tracker_records_give_each_release_its_fix_state() {
    let (Some(records), Some(lists)) = (
        customs_testkit::shared_data("fixtures/debian-vuln-list"),
        customs_testkit::shared_data("debian-security"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut db = Database::open(&dir.path().join("v.db")).unwrap();
    db.import(&[records, lists.join("DSA.list.to-2025-02-13")]).unwrap();
    let bookworm = debian(
        "12",
        "bookworm",
        &[
            ("coreutils", "coreutils", "9.1-1"),
            ("libkrb5-3", "krb5", "1.20.1-2+deb12u1"),
            ("libc6", "glibc", "2.36-9+deb12u4"),
            ("liblzma5", "xz-utils", "5.4.1-0.2"),
            ("curl", "curl", "7.88.1-10+deb12u8"),
        ],
    );
    let got = findings(&db, &bookworm);
    let want = |cve: &str, package: &str, state: FixState, fixed: Option<&str>| {
        (cve.to_string(), package.to_string(), state, fixed.map(String::from))
    };
    assert_eq!(
        got,
        vec![
            want("CVE-2016-2781", "coreutils", FixState::WillNotFix, None),
            want("CVE-2024-26458", "libkrb5-3", FixState::Affected, None),
            want("CVE-2024-2961", "libc6", FixState::Fixed, Some("2.36-9+deb12u6")),
            want("CVE-2025-0167", "curl", FixState::Affected, None),
        ],
        "ignored; unfixed; fixed in bookworm through DSA-5673-1 only; unfixed (xz-utils is not affected in bookworm)"
    );
    let all = scan(&db, &bookworm).unwrap();
    let coreutils = all.iter().find(|f| f.package.name == "coreutils").unwrap();
    assert_eq!((coreutils.severity, coreutils.severity_source.as_str()), (Severity::Low, "debian"));
    let glibc = all.iter().find(|f| f.package.name == "libc6").unwrap();
    assert!(glibc.aliases.contains(&"DSA-5673-1".to_string()), "{:?}", glibc.aliases);

    // After the DSA's version, and on bullseye where curl's vulnerable code came later.
    let later = debian("12", "bookworm", &[("libc6", "glibc", "2.36-9+deb12u7")]);
    assert!(findings(&db, &later).is_empty());
    let bullseye = debian(
        "11",
        "bullseye",
        &[
            ("curl", "curl", "7.74.0-1.3+deb11u14"),
            ("liblzma5", "xz-utils", "5.2.5-2.1~deb11u1"),
        ],
    );
    assert!(
        findings(&db, &bullseye).iter().all(|f| f.1 != "curl"),
        "{:?}",
        findings(&db, &bullseye)
    );
}

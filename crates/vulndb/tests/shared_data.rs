//! Imports of the real data in `../shared/data` and matching against it, including
//! osv.dev's own answers recorded in the OSV API cassettes. Skipped (a failure under
//! CUSTOMS_REQUIRE_ALL=1) when that folder is absent.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use customs_vulndb::{Database, normalize_ecosystem, normalize_package};

mod support;
use support::affected;

fn shared() -> Option<PathBuf> {
    customs_testkit::shared_data("osv").map(|osv| osv.parent().unwrap().to_path_buf())
}

/// One database with everything imported, shared by the tests of this file.
fn db() -> Option<&'static (tempfile::TempDir, PathBuf)> {
    static DB: OnceLock<Option<(tempfile::TempDir, PathBuf)>> = OnceLock::new();
    DB.get_or_init(|| {
        let data = shared()?;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        let mut db = Database::open(&path).unwrap();
        let inputs: Vec<PathBuf> = [
            "osv/crates.io",
            "osv/Go",
            "osv/PyPI",
            "alpine-secdb",
            "fixtures/debian-tracker/debian.json",
        ]
        .iter()
        .map(|p| data.join(p))
        .collect();
        let report = db.import(&inputs).unwrap();
        let files = |d: &str| std::fs::read_dir(data.join(d)).unwrap().count();
        assert_eq!(report.by_source["osv:crates.io"], files("osv/crates.io"));
        assert_eq!(report.by_source["osv:Go"], files("osv/Go"));
        Some((dir, path))
    })
    .as_ref()
}

#[test]
fn known_advisories_match_vulnerable_versions_only() {
    let Some((_, path)) = db() else { return };
    let db = Database::open_existing(path).unwrap();
    assert!(affected(&db, "crates.io", "openssl", "0.8.3").contains("RUSTSEC-2016-0001"));
    assert!(!affected(&db, "crates.io", "openssl", "0.9.0").contains("RUSTSEC-2016-0001"));
    assert!(affected(&db, "PyPI", "Requests", "2.25.0").contains("PYSEC-2023-74"));
    assert!(!affected(&db, "PyPI", "requests", "2.31.0").contains("PYSEC-2023-74"));
    // v3.11 main lists CVE-2019-1547 as fixed in openssl 1.1.1d-r1.
    assert!(affected(&db, "Alpine:v3.11", "openssl", "1.1.1d-r0").contains("ALPINE-CVE-2019-1547"));
    assert!(!affected(&db, "Alpine:v3.11", "openssl", "1.1.1d-r1").contains("ALPINE-CVE-2019-1547"));
    assert!(affected(&db, "Debian:10", "prototypejs", "1.6.0-1").contains("DEBIAN-CVE-2008-7220"));
    assert!(!affected(&db, "Debian:10", "prototypejs", "1.7.1-3").contains("DEBIAN-CVE-2008-7220"));
}

#[derive(serde::Deserialize)]
struct Cassette {
    interactions: Vec<Interaction>,
}
#[derive(serde::Deserialize)]
struct Interaction {
    request: Body,
    response: Body,
}
#[derive(serde::Deserialize)]
struct Body {
    #[serde(default)]
    body: String,
}

fn cassettes(data: &std::path::Path) -> Vec<(String, String, String, BTreeSet<String>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(data.join("fixtures/osv-api-cassettes")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let cassette: Cassette = serde_saphyr::from_str(&text).unwrap();
        for i in cassette.interactions {
            let (Ok(req), Ok(resp)) = (
                serde_json::from_str::<serde_json::Value>(&i.request.body),
                serde_json::from_str::<serde_json::Value>(&i.response.body),
            ) else {
                continue;
            };
            let (Some(queries), Some(results)) = (req["queries"].as_array(), resp["results"].as_array()) else {
                continue;
            };
            for (q, r) in queries.iter().zip(results) {
                let ids = r["vulns"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v["id"].as_str())
                    .map(String::from)
                    .collect();
                let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
                out.push((
                    normalize_ecosystem(&s(&q["package"]["ecosystem"])),
                    s(&q["package"]["name"]),
                    s(&q["version"]),
                    ids,
                ));
            }
        }
    }
    out
}

/// osv.dev's recorded answers against ours, for the ecosystems our data covers.
///
/// Only advisories both sides know are compared: ones in our snapshot that osv.dev
/// returned somewhere in the recordings. Where the answers differ, the difference is
/// excused only if our snapshot's record itself enumerates the version (its `versions`
/// list) the way we answered, i.e. the record changed upstream after our snapshot.
#[test]
fn agrees_with_recorded_osv_answers() {
    let Some((_, path)) = db() else { return };
    let data = shared().unwrap();
    let db = Database::open_existing(path).unwrap();
    let queries = cassettes(&data);
    let known: BTreeSet<String> = queries.iter().flat_map(|q| q.3.iter().cloned()).collect();
    let (mut compared, mut excused) = (0, 0);
    let mut disagreements = Vec::new();
    for (eco, name, version, recorded) in &queries {
        if !["crates.io", "Go", "PyPI"].contains(&eco.as_str()) {
            continue;
        }
        compared += 1;
        let expected: BTreeSet<String> = recorded.iter().filter(|id| db.advisory(id).unwrap().is_some()).cloned().collect();
        let ours: BTreeSet<String> = affected(&db, eco, name, version)
            .into_iter()
            .filter(|id| known.contains(id))
            .collect();
        for id in expected.symmetric_difference(&ours) {
            let adv = db.advisory(id).unwrap().unwrap();
            let listed = adv
                .affected
                .iter()
                .filter(|a| a.package == normalize_package(eco, name) && !a.versions.is_empty())
                .map(|a| a.versions.iter().any(|v| v == version))
                .next();
            if listed == Some(ours.contains(id)) {
                excused += 1;
            } else {
                disagreements.push(format!(
                    "{eco} {name} {version} {id}: osv.dev {}, customs {}",
                    expected.contains(id),
                    ours.contains(id)
                ));
            }
        }
    }
    eprintln!(
        "compared {compared} queries; {excused} differences explained by upstream record changes; {} disagreements",
        disagreements.len()
    );
    assert!(compared > 50, "only {compared} queries compared");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

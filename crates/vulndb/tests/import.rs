//! Imports from hand-written records: formats, atomicity and errors that name the input.

use std::io::Write;
use std::path::Path;

use customs_vulndb::{Database, FixState, Scheme, evaluate};

const RECORD: &str = r#"{"id": "TEST-2023-0001", "aliases": ["CVE-2023-32681"], "summary": "Leak of Proxy-Authorization header",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"}],
  "affected": [{"package": {"ecosystem": "PyPI", "name": "requests"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}]}]}]}"#;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir.join(name).parent().unwrap()).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn folder_zip_yaml_and_tracker_import_together() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "osv/a.json", RECORD);
    write(
        d,
        "osv/nested/b.yaml",
        "id: TEST-YAML-1\naffected:\n- package: {name: Django, ecosystem: PyPI}\n  ranges:\n  - type: ECOSYSTEM\n    events:\n    - introduced: \"0\"\n    - fixed: 4.2.1\n",
    );
    let zip_path = d.join("all.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    z.start_file("TEST-ZIP-1.json", zip::write::SimpleFileOptions::default()).unwrap();
    z.write_all(br#"{"id": "TEST-ZIP-1", "affected": [{"package": {"ecosystem": "crates.io", "name": "time"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0.2.7"}, {"fixed": "0.2.23"}]}]}]}"#).unwrap();
    z.finish().unwrap();
    write(
        d,
        "debian.json",
        r#"{"openssl": {"CVE-2024-0727": {"releases": {"bookworm": {"status": "open", "urgency": "low", "nodsa": "Minor"}}}}}"#,
    );

    let mut db = Database::open(&d.join("v.db")).unwrap();
    let report = db.import(&[d.join("osv"), zip_path, d.join("debian.json")]).unwrap();
    assert_eq!(report.files, 4);
    assert_eq!(report.by_source["osv:PyPI"], 2);
    assert_eq!(report.by_source["osv:crates.io"], 1);
    assert_eq!(report.by_source["debian-tracker"], 1);

    let hits = db.lookup("PyPI", "django").unwrap();
    assert_eq!(hits[0].0.id, "TEST-YAML-1");
    let (adv, entry) = &db.lookup("PyPI", "requests").unwrap()[0];
    assert_eq!(adv.severity.as_ref().unwrap().source, "cvss_v3");
    assert_eq!(evaluate(Scheme::Pep440, "2.25.0", entry), Some(Some("2.31.0".into())));
    let (_, deb) = &db.lookup("Debian:12", "openssl").unwrap()[0];
    assert_eq!(deb.state, Some(FixState::WillNotFix));
    let status = db.status().unwrap();
    assert_eq!(status.advisories, 4);
    assert!(status.updated.is_some() && db.age_seconds().unwrap().unwrap() < 3600);
}

#[test]
fn a_bad_file_names_itself_and_leaves_the_database_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "good/a.json", RECORD);
    let mut db = Database::open(&d.join("v.db")).unwrap();
    db.import(&[d.join("good")]).unwrap();
    let before = db.status().unwrap();

    write(d, "mixed/1.json", &RECORD.replace("TEST-2023-0001", "TEST-NEW"));
    write(d, "mixed/2.json", "{\"id\": \"TEST-BROKEN\", \"affected\": [");
    let err = db.import(&[d.join("mixed")]).unwrap_err().to_string();
    assert!(err.contains("mixed/2.json") && err.contains("malformed JSON"), "{err}");
    let after = db.status().unwrap();
    assert_eq!(
        (after.advisories, after.updated),
        (before.advisories, before.updated),
        "nothing of the failed import was kept"
    );
    assert!(db.advisory("TEST-NEW").unwrap().is_none());

    write(d, "other.json", "[1, 2, 3]");
    let err = db.import(&[d.join("other.json")]).unwrap_err().to_string();
    assert!(err.contains("other.json") && err.contains("not a format customs imports"), "{err}");
    let err = db.import(&[d.join("missing")]).unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn another_schema_version_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    drop(Database::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'", [])
        .unwrap();
    drop(conn);
    let err = Database::open(&path).err().unwrap().to_string();
    assert!(err.contains("delete the file and import again"), "{err}");
    let err = Database::open_existing(&dir.path().join("none.db")).err().unwrap().to_string();
    assert!(err.contains("customs db import"), "{err}");
}

/// YAML records inside a zip (pypa's advisory-database shape) are imported like loose ones; a file, folder or
/// archive that holds no advisory is an error naming it, and nothing is imported.
#[test]
fn yaml_in_a_zip_imports_and_inputs_with_no_advisory_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let yaml_zip = d.join("pypa.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&yaml_zip).unwrap());
    z.start_file("vulns/django/PYSEC-TEST-1.yaml", zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(b"id: PYSEC-TEST-1\naffected:\n- package: {name: Django, ecosystem: PyPI}\n  ranges:\n  - type: ECOSYSTEM\n    events:\n    - introduced: \"0\"\n    - fixed: 4.2.1\n").unwrap();
    z.finish().unwrap();
    let mut db = Database::open(&d.join("v.db")).unwrap();
    let report = db.import(std::slice::from_ref(&yaml_zip)).unwrap();
    assert_eq!(report.by_source["osv:PyPI"], 1);
    assert_eq!(db.lookup("PyPI", "django").unwrap()[0].0.id, "PYSEC-TEST-1");

    // A zip of something else, an empty folder, a folder of notes: each an error naming it.
    let other_zip = d.join("docs.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&other_zip).unwrap());
    z.start_file("README.txt", zip::write::SimpleFileOptions::default()).unwrap();
    z.write_all(b"not advisories").unwrap();
    z.finish().unwrap();
    std::fs::create_dir_all(d.join("empty")).unwrap();
    write(d, "notes/README.md", "# nothing here\n");
    for input in [other_zip, d.join("empty"), d.join("notes")] {
        let e = db.import(std::slice::from_ref(&input)).unwrap_err().to_string();
        assert!(
            e.contains(&input.display().to_string()) && e.contains("holds nothing to import"),
            "{e}"
        );
    }
    // Nothing of a failed import stays: still only the one advisory.
    assert_eq!(db.status().unwrap().advisories, 1);
}

/// Severity records come as CVE 5 files in a zip or a folder and as NVD 1.1 feeds; the newer record of a CVE
/// replaces the older whatever the import order; a hostile feed is an error naming it, and nothing stays.
#[test]
fn cve5_in_zips_and_folders_and_nvd_1_1_feeds_import_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cve5 = |cve: &str, updated: &str, score: f64| {
        format!(
            r#"{{"dataType":"CVE_RECORD","cveMetadata":{{"cveId":"{cve}","state":"PUBLISHED","dateUpdated":"{updated}"}},
            "containers":{{"cna":{{"providerMetadata":{{"shortName":"acme"}},"metrics":[{{"cvssV3_1":{{"version":"3.1","vectorString":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H","baseScore":{score},"baseSeverity":"CRITICAL"}}}}]}}}}}}"#
        )
    };
    let zip_path = d.join("cve5.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    z.start_file("2024/1xxx/CVE-2024-1000.json", zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(cve5("CVE-2024-1000", "2024-05-01T00:00:00Z", 9.1).as_bytes()).unwrap();
    z.finish().unwrap();
    write(d, "older/CVE-2024-1000.json", &cve5("CVE-2024-1000", "2024-01-01T00:00:00Z", 5.0));
    let nvd11 = r#"{"CVE_data_type":"CVE","CVE_data_format":"MITRE","CVE_Items":[{"cve":{"CVE_data_meta":{"ID":"CVE-2018-0001"}},
        "impact":{"baseMetricV2":{"cvssV2":{"version":"2.0","vectorString":"AV:N/AC:L/Au:N/C:P/I:P/A:P","baseScore":7.5},"severity":"HIGH"}},
        "lastModifiedDate":"2018-02-23T02:29Z"}]}"#;
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(d.join("nvdcve-1.1-2018.json.gz")).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(nvd11.as_bytes()).unwrap();
    gz.finish().unwrap();

    let mut db = Database::open(&d.join("v.db")).unwrap();
    let report = db.import(&[zip_path, d.join("nvdcve-1.1-2018.json.gz")]).unwrap();
    assert_eq!((report.by_source["cve5-severity"], report.by_source["nvd-severity"]), (1, 1));
    db.import(&[d.join("older")]).unwrap();
    let scores = db.scores("CVE-2024-1000").unwrap();
    assert_eq!(
        (scores.len(), scores[0].score, scores[0].provider.as_str()),
        (1, 9.1, "acme"),
        "the older record did not replace the newer"
    );
    let nvd = db.scores("CVE-2018-0001").unwrap();
    assert_eq!(
        (nvd[0].version.as_str(), nvd[0].kind.as_str(), nvd[0].score),
        ("2.0", "Primary", 7.5)
    );
    let status = db.status().unwrap();
    assert!(status.warnings.is_empty(), "{:?}", status.warnings);
    let nvd_source = status.sources.iter().find(|s| s.name == "nvd-severity").unwrap();
    assert_eq!(nvd_source.newest.as_deref(), Some("2018-02-23T02:29Z"));

    // A feed whose array holds something else: an error naming the file, and the database as it was.
    write(
        d,
        "bad/nvdcve-2.0-2020.json",
        r#"{"format":"NVD_CVE","vulnerabilities":[{"cve":{"id":"CVE-1","metrics":{"cvssMetricV31":[{"cvssData":{}}]}}}]}"#,
    );
    let err = db.import(&[d.join("bad")]).unwrap_err().to_string();
    assert!(err.contains("nvdcve-2.0-2020.json") && err.contains("NVD feed"), "{err}");
    assert!(db.scores("CVE-1").unwrap().is_empty());
}

/// Without a severity source `db status` warns; a DSA list with a malformed line names the line.
#[test]
fn status_warns_without_severity_and_a_bad_dsa_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "osv/a.json", RECORD);
    let mut db = Database::open(&d.join("v.db")).unwrap();
    db.import(&[d.join("osv")]).unwrap();
    let status = db.status().unwrap();
    assert!(
        status.warnings.iter().any(|w| w.contains("no severity source")),
        "{:?}",
        status.warnings
    );
    assert_eq!((status.cves, status.cves_scored), (1, 0));
    write(
        d,
        "DSA/list",
        "[12 Feb 2025] DSA-1-1 foo - security update\n\t{CVE-2025-1}\n\t[bookworm] foo 1.0\n",
    );
    let err = db.import(&[d.join("DSA/list")]).unwrap_err().to_string();
    assert!(err.contains("DSA/list") && err.contains("line 3"), "{err}");
}

//! Issue 16's severity acceptance, on the real feeds in `../shared/data/severity`: findings whose advisory
//! gives no severity take NVD's Primary score, a CVE only a CNA scored takes the CNA's score from CVE 5, and a
//! Debian urgency wins over both. Skipped (a failure under CUSTOMS_REQUIRE_ALL=1) when the data is absent.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use customs_vulndb::{Database, Severity, scan};
use serde_json::{Value, json};

mod support;

fn gunzip_json(path: &Path) -> Value {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// NVD's Primary score of a feed entry in our documented order (CVSS 4.0, 3.1, 3.0, 2.0): (version, score,
/// severity), read here straight from the JSON, apart from the importer.
fn nvd_primary(cve: &Value) -> Option<(String, f64, String)> {
    for key in ["cvssMetricV40", "cvssMetricV31", "cvssMetricV30", "cvssMetricV2"] {
        for m in cve["metrics"][key].as_array().into_iter().flatten() {
            if m["type"] == "Primary" {
                let data = &m["cvssData"];
                let severity = data["baseSeverity"].as_str().or(m["baseSeverity"].as_str()).unwrap();
                return Some((
                    data["version"].as_str().unwrap().to_string(),
                    data["baseScore"].as_f64().unwrap(),
                    severity.to_string(),
                ));
            }
        }
    }
    None
}

#[test]
fn findings_take_nvd_primary_then_cna_scores_and_debian_urgency_first() {
    let Some(data) = customs_testkit::shared_data("severity") else {
        return;
    };
    // 20 CVEs from two NVD 2.0 feeds: the first ten with a Primary CVSS 3.1 score, then five whose best Primary
    // is 3.0 and five with CVSS 2 only, taking every 97th entry so they spread over the feed.
    let feeds = [
        data.join("nvd-2.0/nvdcve-2016.json.gz"),
        data.join("nvd-2.0/nvdcve-modified-2024-10-25.json.gz"),
    ];
    let mut picked: Vec<(String, (String, f64, String))> = Vec::new();
    let mut in_nvd = std::collections::BTreeSet::new();
    let mut wanted = BTreeMap::from([("3.1", 10), ("3.0", 5), ("2.0", 5)]);
    for feed in &feeds {
        let doc = gunzip_json(feed);
        for (i, v) in doc["vulnerabilities"].as_array().unwrap().iter().enumerate() {
            let cve = &v["cve"];
            in_nvd.insert(cve["id"].as_str().unwrap().to_string());
            let Some(primary) = nvd_primary(cve) else { continue };
            let left = wanted.get_mut(primary.0.as_str());
            if i % 97 == 0
                && let Some(left) = left
                && *left > 0
            {
                *left -= 1;
                picked.push((cve["id"].as_str().unwrap().to_string(), primary));
            }
        }
    }
    assert_eq!(picked.len(), 20, "the feeds hold fewer sampled CVEs than expected: {wanted:?}");

    // A CVE that only its CNA scored: in vulnrichment with CNA metrics, absent from the NVD feeds imported.
    let archive = std::fs::read_dir(data.join("vulnrichment"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("a vulnrichment tar.gz");
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(archive).unwrap()));
    let mut cna_only: Option<(String, Vec<u8>, f64, String)> = None;
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        if !name.contains("/2024/") || !name.ends_with(".json") {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        let record: Value = serde_json::from_slice(&bytes).unwrap();
        let cve = record["cveMetadata"]["cveId"].as_str().unwrap().to_string();
        let cna = &record["containers"]["cna"];
        let v31 = cna["metrics"].as_array().into_iter().flatten().find_map(|m| m.get("cvssV3_1"));
        if let Some(v31) = v31
            && !in_nvd.contains(&cve)
            && record["containers"]["adp"].as_array().is_none_or(|adp| {
                adp.iter().all(|a| {
                    a.get("metrics")
                        .is_none_or(|m| m.as_array().unwrap().iter().all(|m| m.get("cvssV3_1").is_none()))
                })
            })
        {
            let short = cna["providerMetadata"]["shortName"].as_str().unwrap().to_string();
            cna_only = Some((cve, bytes, v31["baseScore"].as_f64().unwrap(), short));
            break;
        }
    }
    let (cna_cve, cna_record, cna_score, cna_name) = cna_only.expect("vulnrichment holds a 2024 CVE scored by its CNA only");

    // One Debian source package per CVE, each affected and unrated by Debian (`not yet assigned`); one more
    // whose urgency is `high`, for a CVE NVD scores otherwise.
    let dir = tempfile::tempdir().unwrap();
    let mut tracker = serde_json::Map::new();
    let mut packages = Vec::new();
    let mut add = |package: String, cve: &str, urgency: &str| {
        tracker.insert(
            package.clone(),
            json!({cve: {"releases": {"bookworm": {"status": "open", "urgency": urgency}}}}),
        );
        packages.push((package, "1.0-1".to_string()));
    };
    for (i, (cve, _)) in picked.iter().enumerate() {
        add(format!("pkg{i}"), cve, "not yet assigned");
    }
    add("cna-only".into(), &cna_cve, "not yet assigned");
    let (urgent_cve, urgent_nvd) = picked.iter().find(|(_, p)| p.2 != "HIGH").cloned().unwrap();
    add("urgent".into(), &urgent_cve, "high");
    std::fs::write(dir.path().join("tracker.json"), Value::Object(tracker).to_string()).unwrap();
    std::fs::write(dir.path().join(format!("{cna_cve}.json")), &cna_record).unwrap();

    let mut db = Database::open(&dir.path().join("v.db")).unwrap();
    let mut inputs = vec![dir.path().join("tracker.json"), dir.path().join(format!("{cna_cve}.json"))];
    inputs.extend(feeds.iter().cloned());
    db.import(&inputs).unwrap();
    let packages: Vec<(&str, &str, &str)> = packages.iter().map(|(n, v)| (n.as_str(), n.as_str(), v.as_str())).collect();
    let findings = scan(&db, &support::debian("12", "bookworm", &packages)).unwrap();
    let by_package: BTreeMap<&str, &customs_vulndb::Finding> = findings.iter().map(|f| (f.package.name.as_str(), f)).collect();

    for (i, (cve, (version, score, severity))) in picked.iter().enumerate() {
        let f = by_package[format!("pkg{i}").as_str()];
        eprintln!(
            "{cve}: NVD Primary CVSS {version} {score} {severity}; customs {} {:?} from {}",
            f.severity.as_str(),
            f.cvss_score,
            f.severity_source
        );
        assert_eq!(f.severity, severity.parse::<Severity>().unwrap(), "{cve}");
        assert_eq!((f.cvss_score, f.severity_source.as_str()), (Some(*score), "nvd"), "{cve}");
        assert!(
            f.cvss
                .iter()
                .any(|s| s.kind == "Primary" && s.version == *version && s.score == *score),
            "{cve}: {:?}",
            f.cvss
        );
    }
    let f = by_package["cna-only"];
    assert_eq!(
        (f.cvss_score, f.severity_source.clone()),
        (Some(cna_score), format!("cna:{cna_name}")),
        "{cna_cve}"
    );
    let f = by_package["urgent"];
    assert_eq!((f.severity, f.severity_source.as_str()), (Severity::High, "debian"), "{urgent_cve}");
    assert!(
        f.cvss.iter().any(|s| s.score == urgent_nvd.1),
        "NVD's score is kept beside Debian's urgency"
    );
}

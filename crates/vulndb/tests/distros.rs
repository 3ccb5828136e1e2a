//! Alpine and Ubuntu on the real data in `../shared/data`, and osv.dev's recorded answers for every distro
//! ecosystem it covers. Skipped (a failure under CUSTOMS_REQUIRE_ALL=1) when the data is absent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use customs_catalog::{Distro, Inventory, parse_apk_installed};
use customs_vulndb::{Database, normalize_package, scan};

mod support;
use serde_json::Value;
use support::affected;

fn open_with(inputs: &[std::path::PathBuf]) -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Database::open(&dir.path().join("v.db")).unwrap();
    db.import(inputs).unwrap();
    (dir, db)
}

/// `1.2.3-r4` → (`1.2.3`, 4).
fn split_release(version: &str) -> (&str, u32) {
    let (upstream, rel) = version.rsplit_once("-r").unwrap();
    (upstream, rel.parse().unwrap())
}

/// A rootfs made from v3.18's `package-versions.tsv`: packages whose secfixes list fixes of the very upstream
/// version v3.18 shipped are set one release below the earliest such fix, so every fix from there up to the
/// shipped version applies (computed here from the version strings alone: same upstream, a higher release).
/// Every other package stays at its shipped version, which no release-day secfix is above.
#[test]
fn alpine_packages_one_release_below_a_secfix_get_exactly_those_fixes() {
    let Some(secdb) = customs_testkit::shared_data("alpine-secdb-json/v3.18") else {
        return;
    };
    let (_dir, db) = open_with(&[secdb.join("main.json"), secdb.join("community.json")]);
    let tsv = std::fs::read_to_string(secdb.join("package-versions.tsv")).unwrap();
    let mut shipped: BTreeMap<(String, String), String> = BTreeMap::new();
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        // One package per origin: the one named like it when there is one.
        let key = (cols[0].to_string(), cols[1].to_string());
        // Some rows hold the APKBUILD's unexpanded shell (`${_pkgver/+k3s/.}-r1`): no version at all.
        if cols[3].contains(['$', '{']) {
            shipped.remove(&key);
            continue;
        }
        if cols[2] == cols[1] || !shipped.contains_key(&key) {
            shipped.insert(key, cols[3].to_string());
        }
    }
    let mut installed = String::new();
    let mut expected: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut lowered = 0;
    for repo in ["main", "community"] {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(secdb.join(format!("{repo}.json"))).unwrap()).unwrap();
        for p in doc["packages"].as_array().unwrap() {
            let name = p["pkg"]["name"].as_str().unwrap();
            let Some(version) = shipped.get(&(repo.to_string(), name.to_string())) else {
                continue;
            };
            let (upstream, _) = split_release(version);
            let fixes: Vec<(u32, &str, Vec<String>)> = p["pkg"]["secfixes"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.rsplit_once("-r").is_some_and(|(u, r)| u == upstream && r != "0"))
                .map(|(k, ids)| {
                    let ids = ids
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|i| i.as_str().unwrap().split_whitespace().map(String::from))
                        .collect();
                    (split_release(k).1, k.as_str(), ids)
                })
                .collect();
            let installed_version = match fixes.iter().map(|f| f.0).min() {
                Some(rel) => {
                    lowered += 1;
                    for (_, fixed, ids) in &fixes {
                        for id in ids.iter().filter(|i| i.contains('-')) {
                            expected.insert((id.clone(), name.to_string(), fixed.to_string()));
                        }
                    }
                    format!("{upstream}-r{}", rel - 1)
                }
                None => version.clone(),
            };
            installed.push_str(&format!("P:{name}\nV:{installed_version}\nA:x86_64\no:{name}\n\n"));
        }
    }
    let inventory = Inventory {
        distro: Some(Distro {
            id: "alpine".into(),
            version_id: Some("3.18.12".into()),
            ..Distro::default()
        }),
        packages: parse_apk_installed(&installed, "lib/apk/db/installed"),
        warnings: Vec::new(),
        unreadable: Vec::new(),
    };
    let ours: BTreeSet<(String, String, String)> = scan(&db, &inventory)
        .unwrap()
        .into_iter()
        .map(|f| {
            (
                f.aliases[0].clone(),
                f.package.name.clone(),
                f.fixed_version.clone().unwrap_or_default(),
            )
        })
        .collect();
    eprintln!(
        "v3.18: {} packages, {lowered} set one release below a fix; {} fixes expected, {} found",
        inventory.packages.len(),
        expected.len(),
        ours.len()
    );
    assert!(
        lowered >= 20 && expected.len() >= 30,
        "too few fixes to compare: {lowered}, {}",
        expected.len()
    );
    assert_eq!(
        ours,
        expected,
        "missing {:?}, extra {:?}",
        expected.difference(&ours).collect::<Vec<_>>(),
        ours.difference(&expected).collect::<Vec<_>>()
    );
}

/// osv.dev's answers: (ecosystem, package, version) → advisory ids.
fn distro_answers(data: &Path) -> Vec<(String, String, String, BTreeSet<String>)> {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("fixtures/osv-distro-answers/queries-and-results.json")).unwrap()).unwrap();
    doc.as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                customs_vulndb::normalize_ecosystem(q["ecosystem"].as_str().unwrap()),
                q["name"].as_str().unwrap().to_string(),
                q["version"].as_str().unwrap().to_string(),
                q["vulns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v["id"].as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn ubuntu_records_agree_with_osv_dev_on_the_72_jammy_answers() {
    let (Some(records), Some(data)) = (
        customs_testkit::shared_data("fixtures/ubuntu-osv"),
        customs_testkit::shared_data("fixtures"),
    ) else {
        return;
    };
    let (_dir, db) = open_with(&[records]);
    let ids: BTreeSet<String> = ["UBUNTU-CVE-2016-2781", "UBUNTU-CVE-2025-0167"].map(String::from).into();
    let answers: Vec<_> = distro_answers(data.parent().unwrap())
        .into_iter()
        .filter(|q| q.0 == "Ubuntu:22.04")
        .collect();
    assert_eq!(answers.len(), 72);
    let mut hits = 0;
    for (eco, name, version, recorded) in &answers {
        let theirs: BTreeSet<String> = recorded.intersection(&ids).cloned().collect();
        let ours = affected(&db, eco, name, version);
        hits += ours.len();
        assert_eq!(ours, theirs, "{eco} {name} {version}");
    }
    eprintln!("Ubuntu:22.04: 72 answers agree on both records ({hits} affected)");
    assert!(hits > 0, "the two records affect some answer");
}

/// For every distro ecosystem the shared data covers, osv.dev's answers against ours, per ecosystem. Only
/// advisories our database holds for the queried package are compared (the shared data are samples, not
/// osv.dev's whole feed). Each difference must be explained by a fact the test checks:
/// - osv.dev only: the id is not in our snapshot for that package (secdb snapshots are release-day; a later
///   backport added it);
/// - ours only, Debian: the DSA/DLA that fixed it is dated after the recording (the newest `modified` date
///   osv.dev returned anywhere in the file), or the release's support ended before the recording;
/// - ours only, Alpine: the release never shipped the queried version (`package-versions.tsv`), and secdb's
///   fixed-only ranges call every older version affected, where osv.dev's converter answers nothing.
///
/// Anything else fails.
#[test]
fn osv_dev_distro_answers_agree_per_ecosystem() {
    let Some(data) = customs_testkit::shared_data("fixtures") else {
        return;
    };
    let data = data.parent().unwrap();
    let (_dir, db) = open_with(&[
        data.join("alpine-secdb"),
        data.join("alpine-secdb-json"),
        data.join("debian-security/DSA.list.to-2025-02-13"),
        data.join("debian-security/DLA.list.to-2025-02-13"),
        data.join("fixtures/ubuntu-osv"),
    ]);
    let raw: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("fixtures/osv-distro-answers/queries-and-results.json")).unwrap()).unwrap();
    let recorded_at: String = raw
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|q| q["vulns"].as_array().unwrap())
        .filter_map(|v| v["modified"].as_str())
        .max()
        .unwrap()
        .chars()
        .take(10)
        .collect();
    // Versions each Alpine release shipped, per origin.
    let mut alpine_shipped: BTreeSet<(String, String, String)> = BTreeSet::new();
    for release in ["v3.18", "v3.19", "v3.20", "v3.21"] {
        let tsv = std::fs::read_to_string(data.join(format!("alpine-secdb-json/{release}/package-versions.tsv"))).unwrap();
        for line in tsv.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            alpine_shipped.insert((format!("Alpine:{release}"), cols[1].to_string(), cols[3].to_string()));
        }
    }
    let mut per_eco: BTreeMap<String, (usize, usize, usize, Vec<String>)> = BTreeMap::new();
    let mut unexplained = Vec::new();
    for (eco, name, version, recorded) in distro_answers(data) {
        let entry = per_eco.entry(eco.clone()).or_default();
        let known: BTreeMap<String, customs_vulndb::Advisory> = db
            .lookup(&eco, &normalize_package(&eco, &name))
            .unwrap()
            .into_iter()
            .map(|(a, _)| (a.id.clone(), a))
            .collect();
        if known.is_empty() {
            continue;
        }
        entry.0 += 1;
        let ours = affected(&db, &eco, &name, &version);
        let theirs: BTreeSet<String> = recorded.intersection(&known.keys().cloned().collect()).cloned().collect();
        let missing_from_snapshot: Vec<&String> = recorded
            .iter()
            .filter(|id| id.starts_with("ALPINE-") && !known.contains_key(*id))
            .collect();
        entry.2 += missing_from_snapshot.len();
        for id in theirs.symmetric_difference(&ours) {
            let why = if ours.contains(id) && eco.starts_with("Debian") {
                let date = known[id].modified.clone().unwrap_or_default();
                let release = eco.trim_start_matches("Debian:");
                let ended = customs_vulndb::support(&Distro {
                    id: "debian".into(),
                    version_id: Some(release.into()),
                    ..Distro::default()
                })
                .map(|s| s.ends.to_string())
                .filter(|ends| ends.as_str() < recorded_at.as_str());
                if date.as_str() > recorded_at.as_str() {
                    Some(format!("fixed by an advisory of {date}, after the recording ({recorded_at})"))
                } else {
                    ended.map(|ends| {
                        format!("Debian {release}'s support ended {ends}, before the recording ({recorded_at}): osv.dev no longer answers for it; the DSA/DLA list keeps its fixes")
                    })
                }
            } else if ours.contains(id) && eco.starts_with("Alpine") {
                let shipped = alpine_shipped.iter().any(|(e, n, v)| *e == eco && *n == name && *v == version);
                (!shipped).then(|| format!("{eco} never shipped {name} {version}; secdb ranges start at 0"))
            } else {
                None
            };
            entry.1 += usize::from(ours.contains(id));
            match why {
                Some(why) => eprintln!("  {eco} {name} {version} {id}: ours only: {why}"),
                None => unexplained.push(format!(
                    "{eco} {name} {version} {id}: osv.dev {}, customs {}",
                    theirs.contains(id),
                    ours.contains(id)
                )),
            }
        }
    }
    for (eco, (compared, ours_only, later, _)) in &per_eco {
        eprintln!(
            "{eco}: {compared} queries compared; {ours_only} affected by us only (explained above); {later} osv.dev ids not in the release-day snapshot (later backports)"
        );
    }
    assert!(per_eco.values().map(|v| v.0).sum::<usize>() > 50);
    assert!(unexplained.is_empty(), "unexplained differences:\n{}", unexplained.join("\n"));
}

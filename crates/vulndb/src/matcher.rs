//! Matching an inventory against the database.

use std::cmp::Ordering;

use customs_catalog::{Distro, Inventory, Package, PackageKind};
use serde::Serialize;

use crate::db::{Database, DbError};
use crate::model::{Advisory, Affected, Event, FixState, Rated, Severity};
use crate::names::normalize_package;
use crate::version::Scheme;

/// One vulnerability in one installed package.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Finding {
    /// Advisory id (`DEBIAN-CVE-…`, `PYSEC-…`, `RUSTSEC-…`).
    pub id: String,
    /// Other ids for the same vulnerability (CVE, GHSA).
    pub aliases: Vec<String>,
    /// The package as the inventory found it.
    pub package: Package,
    /// The ecosystem it was matched in.
    pub ecosystem: String,
    /// The version compared (the source version for distro packages).
    pub installed: String,
    /// The first version that fixes it, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_version: Option<String>,
    /// Fixed, affected, will not fix, …
    pub fix_state: FixState,
    /// Severity and who rated it.
    pub severity: Severity,
    /// Who rated it, by the documented precedence: the matched record's own rating (`debian`, `ubuntu`,
    /// `vendor` for a GHSA or other label, `cvss_v3`/`cvss_v4` for the record's own vector), else NVD's Primary
    /// score (`nvd`), else CVE 5's CNA (`cna:<name>`) or CISA ADP (`cisa-adp`), else a Secondary score NVD
    /// relays (`nvd-secondary:<who>`), else `none`.
    pub severity_source: String,
    /// CVSS base score, when the severity came from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cvss_score: Option<f64>,
    /// Every CVSS score known for the CVE (NVD Primary and Secondary, CVE 5 CNA and ADP), whichever rated it.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub cvss: Vec<crate::severity::Score>,
    /// One-line description.
    pub title: String,
    /// Reference URLs.
    pub references: Vec<String>,
    /// In CISA's Known Exploited Vulnerabilities catalog: exploited in the wild.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kev: Option<crate::exploit::Kev>,
    /// FIRST's EPSS: how likely exploitation is in the next 30 days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epss: Option<crate::exploit::Epss>,
}

impl Finding {
    /// The risk figure findings are sorted by after KEV: the EPSS probability times the CVSS base score (or,
    /// without one, the severity's lower bound: CRITICAL 9, HIGH 7, MEDIUM 4, LOW 0.1; UNKNOWN counts as 4).
    /// 0 without an EPSS score.
    pub fn risk(&self) -> f64 {
        let weight = self.cvss_score.unwrap_or(match self.severity {
            Severity::Critical => 9.0,
            Severity::High => 7.0,
            Severity::Medium | Severity::Unknown => 4.0,
            Severity::Low => 0.1,
        });
        self.epss.as_ref().map_or(0.0, |e| e.score * weight)
    }

    /// The CVE this finding is: its id, else its first CVE alias.
    pub fn cve(&self) -> Option<&str> {
        std::iter::once(&self.id)
            .chain(&self.aliases)
            .find(|a| a.starts_with("CVE-"))
            .map(String::as_str)
    }
}

/// Whether the database can check the packages of one ecosystem found in an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Coverage {
    /// The ecosystem as matched (`Debian:12`, `PyPI`), or what kind of package could not be placed in one
    /// (`rpm`, `deb (unknown distribution)`).
    pub ecosystem: String,
    /// Packages of the image in it.
    pub packages: usize,
    /// Affected entries the database holds for it; 0 means none of those packages was checked.
    pub advisories: u64,
}

impl Coverage {
    /// Whether the database holds anything for this ecosystem.
    pub fn covered(&self) -> bool {
        self.advisories > 0
    }

    /// The warning for an ecosystem the database cannot check.
    pub fn warning(&self) -> String {
        format!(
            "{}: 0 advisories in the database — {} package(s) not checked (import or update data for it: `customs db import`, `customs db update`)",
            self.ecosystem, self.packages
        )
    }
}

/// Per ecosystem found in `inventory`, how many packages it has and what the database holds for it, sorted by
/// name. Packages that fit no ecosystem the matcher knows (RPM for now, dpkg on an unknown distribution) are
/// listed as uncovered too: a scan cannot see them.
pub fn coverage(db: &Database, inventory: &Inventory) -> Result<Vec<Coverage>, DbError> {
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let mut unplaced: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for p in &inventory.packages {
        match query_for(p, inventory.distro.as_ref()) {
            Some((ecosystem, _, _)) => *counts.entry(ecosystem).or_default() += 1,
            None => {
                let what = match p.kind {
                    PackageKind::Rpm => "rpm (not matched yet)".to_string(),
                    kind => format!("{} (unknown distribution or release)", kind.purl_type()),
                };
                *unplaced.entry(what).or_default() += 1;
            }
        }
    }
    let mut out = Vec::new();
    for (ecosystem, packages) in counts {
        let advisories = db.entries_in(&ecosystem)?;
        out.push(Coverage {
            ecosystem,
            packages,
            advisories,
        });
    }
    out.extend(unplaced.into_iter().map(|(ecosystem, packages)| Coverage {
        ecosystem,
        packages,
        advisories: 0,
    }));
    Ok(out)
}

/// What to look up for a package: ecosystem, normalized name and the version to compare.
pub fn query_for(p: &Package, distro: Option<&Distro>) -> Option<(String, String, String)> {
    let (ecosystem, name, version) = match p.kind {
        PackageKind::Deb => {
            let d = distro?;
            let release = d.version_id.as_deref()?;
            let eco = match d.id.as_str() {
                "debian" => format!("Debian:{}", release.split('.').next().unwrap_or(release)),
                "ubuntu" => format!("Ubuntu:{release}"),
                _ => return None,
            };
            // Advisories name source packages and their versions.
            (
                eco,
                p.source_name.clone().unwrap_or_else(|| p.name.clone()),
                p.source_version.clone().unwrap_or_else(|| p.version.clone()),
            )
        }
        PackageKind::Apk => {
            let release = distro?.version_id.as_deref()?;
            let minor: Vec<&str> = release.split('.').take(2).collect();
            (
                format!("Alpine:v{}", minor.join(".")),
                p.source_name.clone().unwrap_or_else(|| p.name.clone()),
                p.version.clone(),
            )
        }
        PackageKind::Rpm => return None,
        PackageKind::Python => ("PyPI".into(), p.name.clone(), p.version.clone()),
        PackageKind::Npm => ("npm".into(), p.name.clone(), p.version.clone()),
        PackageKind::Maven => ("Maven".into(), p.name.clone(), p.version.clone()),
        PackageKind::Go => ("Go".into(), p.name.clone(), p.version.trim_start_matches("go").to_string()),
        PackageKind::Cargo => ("crates.io".into(), p.name.clone(), p.version.clone()),
        PackageKind::Gem => ("RubyGems".into(), p.name.clone(), p.version.clone()),
        // Packagist advisories give versions without composer's `v` prefix.
        PackageKind::Composer => ("Packagist".into(), p.name.clone(), p.version.trim_start_matches('v').to_string()),
    };
    Some((ecosystem.clone(), normalize_package(&ecosystem, &name), version))
}

/// Whether `version` falls in the entry, and the version that fixes it.
///
/// `None` when not affected. OSV semantics: events sorted by version, `introduced`
/// opens an interval, `fixed` closes it (exclusive), `last_affected` closes it (inclusive).
pub fn evaluate(scheme: Scheme, version: &str, entry: &Affected) -> Option<Option<String>> {
    if entry
        .versions
        .iter()
        .any(|v| v == version || scheme.compare(v, version) == Some(Ordering::Equal))
    {
        return Some(first_fix_after(scheme, version, entry));
    }
    for events in &entry.ranges {
        let key = |e: &Event| -> (String, u8) {
            match e {
                Event::Introduced(v) => (v.clone(), 0),
                Event::LastAffected(v) => (v.clone(), 1),
                Event::Fixed(v) => (v.clone(), 2),
            }
        };
        let is_zero = |v: &str| v == "0" || v == "0.0.0-0";
        let mut sorted: Vec<&Event> = events.iter().collect();
        sorted.sort_by(|a, b| {
            let ((va, ka), (vb, kb)) = (key(a), key(b));
            match (is_zero(&va), is_zero(&vb)) {
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                _ => scheme.compare(&va, &vb).unwrap_or(Ordering::Equal).then(ka.cmp(&kb)),
            }
        });
        let mut affected = false;
        let mut fix = None;
        for e in sorted {
            match e {
                Event::Introduced(v) => {
                    if is_zero(v) || scheme.compare(version, v).is_some_and(|o| o != Ordering::Less) {
                        affected = true;
                        fix = None;
                    }
                }
                Event::Fixed(v) => match scheme.compare(version, v) {
                    Some(Ordering::Less) if affected => {
                        fix = fix.or_else(|| Some(v.clone()));
                    }
                    Some(Ordering::Less) => {}
                    _ => affected = false,
                },
                Event::LastAffected(v) => {
                    if scheme.compare(version, v) == Some(Ordering::Greater) {
                        affected = false;
                    }
                }
            }
            if affected && fix.is_some() {
                break;
            }
        }
        if affected {
            return Some(fix);
        }
    }
    None
}

fn first_fix_after(scheme: Scheme, version: &str, entry: &Affected) -> Option<String> {
    entry
        .ranges
        .iter()
        .flatten()
        .filter_map(|e| match e {
            Event::Fixed(v) if scheme.compare(version, v) == Some(Ordering::Less) => Some(v.clone()),
            _ => None,
        })
        .min_by(|a, b| scheme.compare(a, b).unwrap_or(Ordering::Equal))
}

fn rating(adv: &Advisory, entry: &Affected) -> Rated {
    entry.severity.clone().or_else(|| adv.severity.clone()).unwrap_or(Rated {
        severity: Severity::Unknown,
        source: "none".into(),
        score: None,
        vector: None,
    })
}

/// Every finding for the inventory, in risk order: known exploited (KEV) first, then by [`Finding::risk`]
/// (EPSS × severity), then severity, package and id.
pub fn scan(db: &Database, inventory: &Inventory) -> Result<Vec<Finding>, DbError> {
    let mut findings = Vec::new();
    let mut seen: std::collections::HashSet<(String, usize)> = std::collections::HashSet::new();
    for (index, p) in inventory.packages.iter().enumerate() {
        let Some((ecosystem, name, version)) = query_for(p, inventory.distro.as_ref()) else {
            continue;
        };
        let scheme = Scheme::for_ecosystem(&ecosystem);
        for (adv, entry) in db.lookup(&ecosystem, &name)? {
            if adv.withdrawn.is_some() {
                continue;
            }
            let Some(mut fix) = evaluate(scheme, &version, &entry) else {
                continue;
            };
            if !seen.insert((adv.id.clone(), index)) {
                continue;
            }
            let state = entry
                .state
                .unwrap_or(if fix.is_some() { FixState::Fixed } else { FixState::Affected });
            if state != FixState::Fixed {
                // A fix elsewhere (Debian unstable) is no fix for this release.
                fix = None;
            }
            let rated = rating(&adv, &entry);
            let mut cvss = Vec::new();
            if let Some(vector) = &rated.vector {
                cvss.push(crate::severity::Score {
                    source: "record".into(),
                    provider: adv.id.clone(),
                    kind: "vendor".into(),
                    version: vector
                        .strip_prefix("CVSS:")
                        .and_then(|v| v.split('/').next())
                        .unwrap_or("2.0")
                        .to_string(),
                    vector: vector.clone(),
                    score: rated.score.unwrap_or_default(),
                    severity: rated.severity,
                });
            }
            findings.push(Finding {
                id: adv.id.clone(),
                aliases: adv.aliases.clone(),
                package: p.clone(),
                ecosystem: ecosystem.clone(),
                installed: version.clone(),
                fixed_version: fix,
                fix_state: state,
                severity: rated.severity,
                severity_source: rated.source,
                cvss_score: rated.score,
                cvss,
                title: adv.summary.clone(),
                references: adv.references.clone(),
                kev: None,
                epss: None,
            });
        }
    }
    let mut scores_of: std::collections::HashMap<String, Vec<crate::severity::Score>> = std::collections::HashMap::new();
    for f in &mut findings {
        let Some(cve) = f.cve().map(str::to_string) else { continue };
        (f.kev, f.epss) = db.exploitation(&cve)?;
        let scores = match scores_of.entry(cve) {
            std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let scores = db.scores(slot.key())?;
                slot.insert(scores)
            }
        };
        if f.severity == Severity::Unknown
            && let Some(best) = crate::severity::preferred(scores)
        {
            f.severity = best.severity;
            f.severity_source = best.label();
            f.cvss_score = Some(best.score);
        }
        f.cvss.extend(scores.iter().cloned());
    }
    findings.sort_by(|a, b| {
        b.kev
            .is_some()
            .cmp(&a.kev.is_some())
            .then_with(|| b.risk().partial_cmp(&a.risk()).unwrap_or(Ordering::Equal))
            .then_with(|| b.severity.cmp(&a.severity))
            .then_with(|| a.package.name.cmp(&b.package.name))
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ranges: Vec<Vec<Event>>, versions: Vec<&str>) -> Affected {
        Affected {
            ecosystem: "PyPI".into(),
            package: "x".into(),
            ranges,
            versions: versions.into_iter().map(String::from).collect(),
            ..Affected::default()
        }
    }

    #[test]
    fn osv_range_semantics() {
        use Event::*;
        let e = entry(
            vec![vec![
                Introduced("0".into()),
                Fixed("1.5".into()),
                Introduced("2.0".into()),
                LastAffected("2.3".into()),
            ]],
            vec![],
        );
        let s = Scheme::Pep440;
        assert_eq!(evaluate(s, "1.0", &e), Some(Some("1.5".into())));
        assert_eq!(evaluate(s, "1.5", &e), None);
        assert_eq!(evaluate(s, "1.9", &e), None);
        assert_eq!(evaluate(s, "2.0", &e), Some(None));
        assert_eq!(evaluate(s, "2.3", &e), Some(None));
        assert_eq!(evaluate(s, "2.3.1", &e), None);
        // Events out of order in the record still evaluate in version order.
        let e = entry(vec![vec![Fixed("2.0".into()), Introduced("1.0".into())]], vec![]);
        assert_eq!(evaluate(s, "0.9", &e), None);
        assert_eq!(evaluate(s, "1.2", &e), Some(Some("2.0".into())));
        let e = entry(vec![], vec!["0.98a1", "1.0"]);
        assert_eq!(evaluate(s, "1.0.0", &e), Some(None));
    }
}

//! OSV records (JSON or YAML) into the normalized model.

use serde::Deserialize;

use crate::model::{Advisory, Affected, Event, Rated, Severity};
use crate::names::normalize_package;

#[derive(Deserialize)]
struct Record {
    id: String,
    #[serde(default)]
    modified: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    aliases: Option<Vec<String>>,
    /// Ubuntu's records name the CVE they describe here, not in `aliases`.
    #[serde(default)]
    upstream: Option<Vec<String>>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    severity: Option<Vec<SeverityEntry>>,
    #[serde(default)]
    affected: Option<Vec<AffectedEntry>>,
    #[serde(default)]
    references: Option<Vec<Reference>>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct SeverityEntry {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct Reference {
    url: String,
}

#[derive(Deserialize)]
struct AffectedEntry {
    #[serde(default)]
    package: Option<PackageEntry>,
    #[serde(default)]
    severity: Option<Vec<SeverityEntry>>,
    #[serde(default)]
    ranges: Option<Vec<RangeEntry>>,
    /// Strings, never numbers: YAML would read `1.10` as the float 1.1.
    #[serde(default)]
    versions: Option<Vec<String>>,
    #[serde(default)]
    ecosystem_specific: Option<serde_json::Value>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct PackageEntry {
    ecosystem: String,
    name: String,
}

#[derive(Deserialize)]
struct RangeEntry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<std::collections::BTreeMap<String, String>>,
}

/// Counts of what an import skipped on purpose, reported to the user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    /// GIT ranges: commit hashes cannot be matched against installed versions.
    pub git_ranges: usize,
}

/// The severity an OSV record states: a vendor label first, else a CVSS vector's base score.
fn rate(entries: &[SeverityEntry], specific: &[Option<&serde_json::Value>]) -> Option<Rated> {
    for v in specific.iter().flatten() {
        if let Some(label) = v.get("severity").and_then(|s| s.as_str())
            && let Some(severity) = Severity::from_label(label)
        {
            return Some(Rated {
                severity,
                source: "vendor".into(),
                score: None,
                vector: None,
            });
        }
    }
    // Ubuntu's priority is a severity entry of its own type.
    if let Some(severity) = entries
        .iter()
        .filter(|e| e.kind.eq_ignore_ascii_case("Ubuntu"))
        .find_map(|e| Severity::from_label(&e.score))
    {
        return Some(Rated {
            severity,
            source: "ubuntu".into(),
            score: None,
            vector: None,
        });
    }
    // Prefer the newest CVSS version present.
    let mut best: Option<Rated> = None;
    for kind in ["CVSS_V4", "CVSS_V3"] {
        if best.is_some() {
            break;
        }
        for e in entries.iter().filter(|e| e.kind == kind) {
            if let Some((severity, score)) = Severity::from_cvss(&e.score) {
                best = Some(Rated {
                    severity,
                    source: kind.to_ascii_lowercase(),
                    score: Some(score),
                    vector: Some(e.score.clone()),
                });
                break;
            }
        }
    }
    best
}

/// Parses one OSV record from JSON bytes.
pub fn from_json(bytes: &[u8], skipped: &mut Skipped) -> Result<Advisory, String> {
    let record: Record = serde_json::from_slice(bytes).map_err(|e| format!("not an OSV record: {e}"))?;
    Ok(convert(record, skipped))
}

/// Parses one OSV record from YAML text.
pub fn from_yaml(text: &str, skipped: &mut Skipped) -> Result<Advisory, String> {
    let record: Record = serde_saphyr::from_str(text).map_err(|e| format!("not an OSV record: {e}"))?;
    Ok(convert(record, skipped))
}

fn convert(r: Record, skipped: &mut Skipped) -> Advisory {
    let severity_entries = r.severity.unwrap_or_default();
    let advisory_severity = rate(&severity_entries, &[r.database_specific.as_ref()]);
    let mut affected = Vec::new();
    for a in r.affected.unwrap_or_default() {
        let Some(pkg) = a.package else { continue };
        let mut ranges = Vec::new();
        for range in a.ranges.unwrap_or_default() {
            if range.kind == "GIT" {
                skipped.git_ranges += 1;
                continue;
            }
            let events: Vec<Event> = range
                .events
                .iter()
                .filter_map(|e| {
                    let (k, v) = e.iter().next()?;
                    let v = v.clone();
                    Some(match k.as_str() {
                        "introduced" => Event::Introduced(v),
                        "fixed" => Event::Fixed(v),
                        "last_affected" => Event::LastAffected(v),
                        _ => return None,
                    })
                })
                .collect();
            if !events.is_empty() {
                ranges.push(events);
            }
        }
        let own = a.severity.unwrap_or_default();
        let severity = rate(&own, &[a.ecosystem_specific.as_ref(), a.database_specific.as_ref()]);
        let ecosystem = normalize_ecosystem(&pkg.ecosystem);
        affected.push(Affected {
            package: normalize_package(&ecosystem, &pkg.name),
            ecosystem,
            ranges,
            versions: a.versions.unwrap_or_default(),
            state: None,
            severity,
        });
    }
    let summary = r
        .summary
        .filter(|s| !s.is_empty())
        .or_else(|| r.details.map(|d| d.lines().next().unwrap_or_default().chars().take(200).collect()))
        .unwrap_or_default();
    Advisory {
        id: r.id,
        aliases: {
            let mut aliases = r.aliases.unwrap_or_default();
            for cve in r.upstream.unwrap_or_default() {
                if cve.starts_with("CVE-") && !aliases.contains(&cve) {
                    aliases.push(cve);
                }
            }
            aliases
        },
        summary,
        modified: r.modified,
        withdrawn: r.withdrawn,
        severity: advisory_severity,
        references: r.references.unwrap_or_default().into_iter().map(|x| x.url).collect(),
        affected,
    }
}

/// `Ubuntu:22.04:LTS` and `Ubuntu:Pro:22.04:LTS` name the release the same way a query does.
pub fn normalize_ecosystem(e: &str) -> String {
    let e = e.trim();
    if let Some(rest) = e.strip_prefix("Ubuntu:") {
        let parts: Vec<&str> = rest.split(':').filter(|p| *p != "LTS" && *p != "Pro").collect();
        return format!("Ubuntu:{}", parts.join(":"));
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ranges_severity_and_skips_git() {
        let json = br#"{"id":"RUSTSEC-2016-0001","aliases":["CVE-2016-10931"],"summary":"MitM",
            "severity":[{"type":"CVSS_V3","score":"CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
            "affected":[{"package":{"ecosystem":"crates.io","name":"openssl"},
              "ranges":[{"type":"SEMVER","events":[{"introduced":"0.0.0-0"},{"fixed":"0.9.0"}]},{"type":"GIT","repo":"x","events":[{"introduced":"abc"}]}]}]}"#;
        let mut skipped = Skipped::default();
        let a = from_json(json, &mut skipped).unwrap();
        assert_eq!(skipped.git_ranges, 1);
        assert_eq!(
            a.affected[0].ranges,
            vec![vec![Event::Introduced("0.0.0-0".into()), Event::Fixed("0.9.0".into())]]
        );
        let s = a.severity.unwrap();
        assert_eq!((s.severity, s.source.as_str(), s.score), (Severity::High, "cvss_v3", Some(8.1)));
    }

    #[test]
    fn yaml_versions_stay_text() {
        let yaml =
            "id: PYSEC-1\naffected:\n- package:\n    name: Foo_Bar\n    ecosystem: PyPI\n  versions:\n  - \"0.96\"\n  - 0.98.1\n  - 1.10\n";
        let a = from_yaml(yaml, &mut Skipped::default()).unwrap();
        assert_eq!(a.affected[0].package, "foo-bar");
        assert_eq!(a.affected[0].versions, vec!["0.96", "0.98.1", "1.10"]);
    }

    #[test]
    fn ubuntu_ecosystems_drop_lts_and_pro() {
        assert_eq!(normalize_ecosystem("Ubuntu:22.04:LTS"), "Ubuntu:22.04");
        assert_eq!(normalize_ecosystem("Ubuntu:Pro:18.04:LTS"), "Ubuntu:18.04");
        assert_eq!(normalize_ecosystem("Debian:12"), "Debian:12");
    }
}

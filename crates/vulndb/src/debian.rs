//! The Debian security tracker JSON (`/tracker/data/json`): source package -> CVE -> release.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::model::{Advisory, Affected, Event, FixState, Rated, Severity};

#[derive(Deserialize)]
struct Issue {
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "map_or_empty_list")]
    releases: BTreeMap<String, Release>,
}

/// The tracker writes an empty map as `[]`.
fn map_or_empty_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Release>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum MapOrList {
        Map(BTreeMap<String, Release>),
        List(serde::de::IgnoredAny),
    }
    Ok(match MapOrList::deserialize(d)? {
        MapOrList::Map(m) => m,
        MapOrList::List(_) => BTreeMap::new(),
    })
}

#[derive(Deserialize)]
struct Release {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    fixed_version: Option<String>,
    #[serde(default)]
    urgency: Option<String>,
    #[serde(default)]
    nodsa: Option<String>,
    #[serde(default)]
    nodsa_reason: Option<String>,
}

/// Debian's release numbers by codename, as OSV's `Debian:N` ecosystems name them.
fn release_number(codename: &str) -> Option<&'static str> {
    Some(match codename {
        "wheezy" => "7",
        "jessie" => "8",
        "stretch" => "9",
        "buster" => "10",
        "bullseye" => "11",
        "bookworm" => "12",
        "trixie" => "13",
        "forky" => "14",
        "duke" => "15",
        _ => return None,
    })
}

/// Converts the whole tracker document into advisories named `DEBIAN-<CVE>`.
pub fn from_json(bytes: &[u8]) -> Result<Vec<Advisory>, String> {
    let doc: BTreeMap<String, BTreeMap<String, Issue>> =
        serde_json::from_slice(bytes).map_err(|e| format!("not a Debian security tracker document: {e}"))?;
    let mut by_id: BTreeMap<String, Advisory> = BTreeMap::new();
    for (package, issues) in doc {
        for (cve, issue) in issues {
            for (codename, rel) in issue.releases {
                let Some(number) = release_number(&codename) else { continue };
                let fixed = rel.fixed_version.as_deref().filter(|v| !v.is_empty());
                let (ranges, state) = match (rel.status.as_deref(), fixed) {
                    // Fixed in version 0: this release was never affected.
                    (Some("resolved"), Some("0")) => continue,
                    (Some("resolved"), Some(v)) => (vec![vec![Event::Introduced("0".into()), Event::Fixed(v.to_string())]], None),
                    (Some("resolved"), None) => continue,
                    (Some("open" | "undetermined"), _) => {
                        let state = match (rel.nodsa.is_some(), rel.nodsa_reason.as_deref()) {
                            (_, Some("postponed")) => FixState::Deferred,
                            (true, _) | (_, Some("ignored")) => FixState::WillNotFix,
                            _ if rel.urgency.as_deref() == Some("end-of-life") => FixState::EndOfLife,
                            _ => FixState::Affected,
                        };
                        (vec![vec![Event::Introduced("0".into())]], Some(state))
                    }
                    _ => continue,
                };
                let severity = rel.urgency.as_deref().and_then(Severity::from_label).map(|severity| Rated {
                    severity,
                    source: "debian".into(),
                    score: None,
                    vector: None,
                });
                let id = format!("DEBIAN-{cve}");
                let adv = by_id.entry(id.clone()).or_insert_with(|| Advisory {
                    id,
                    aliases: if cve.starts_with("CVE-") { vec![cve.clone()] } else { Vec::new() },
                    summary: issue.description.clone().unwrap_or_default().chars().take(300).collect(),
                    references: vec![format!("https://security-tracker.debian.org/tracker/{cve}")],
                    ..Advisory::default()
                });
                adv.affected.push(Affected {
                    ecosystem: format!("Debian:{number}"),
                    package: package.clone(),
                    ranges,
                    versions: Vec::new(),
                    state,
                    severity,
                });
            }
        }
    }
    Ok(by_id.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_statuses_to_fix_states() {
        let doc = br#"{"openssl": {
            "CVE-2024-1": {"description": "x", "releases": {
                "bookworm": {"status": "resolved", "fixed_version": "3.0.13-1~deb12u1", "urgency": "high**"},
                "bullseye": {"status": "resolved", "fixed_version": "0", "urgency": "unimportant"},
                "buster": {"status": "open", "urgency": "low", "nodsa": "Minor issue", "nodsa_reason": "postponed"},
                "trixie": {"status": "open", "urgency": "not yet assigned"},
                "sid": {"status": "resolved", "fixed_version": "3.1.0-1"}}},
            "CVE-2024-2": {"releases": []}}}"#;
        let advs = from_json(doc).unwrap();
        assert_eq!(advs.len(), 1);
        let a = &advs[0];
        assert_eq!((a.id.as_str(), a.aliases[0].as_str()), ("DEBIAN-CVE-2024-1", "CVE-2024-1"));
        let by_eco = |e: &str| a.affected.iter().find(|x| x.ecosystem == e);
        assert_eq!(by_eco("Debian:12").unwrap().severity.as_ref().unwrap().severity, Severity::High);
        assert!(by_eco("Debian:11").is_none(), "fixed_version 0 means never affected");
        assert_eq!(by_eco("Debian:10").unwrap().state, Some(FixState::Deferred));
        assert_eq!(by_eco("Debian:13").unwrap().state, Some(FixState::Affected));
        assert!(by_eco("Debian:13").unwrap().severity.is_none());
    }
}

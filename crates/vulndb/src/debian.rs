//! Debian's security data, from three shapes of the same tracker:
//!
//! - the tracker JSON (`/tracker/data/json`): source package → CVE → release → status;
//! - per-CVE records of the tracker's `CVE/list` annotations (vuln-list-debian's `Header`/`Annotations` JSON);
//! - the DSA and DLA lists (`data/DSA/list`, `data/DLA/list`): advisory → CVEs → fixed version per release.
//!
//! Each becomes [`Statement`]s about one (CVE, source package, release). The database keeps them all and
//! [`merge`] decides, as the tracker itself does: a release-specific statement of the tracker wins, a DSA/DLA
//! adds the fixed version where the tracker says nothing for that release, and an unstable (`sid`) statement
//! covers the releases nothing else speaks of.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Advisory, Affected, Event, FixState, Rated, Severity};

/// Who made a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The tracker's per-release status (tracker JSON, or a `[release]` annotation).
    Tracker,
    /// A Debian Security Advisory's fixed version.
    Dsa,
    /// A Debian LTS Advisory's fixed version.
    Dla,
    /// The tracker's unstable line (`- pkg version`), applied to releases nothing else speaks of.
    Unstable,
}

impl Origin {
    /// Precedence: the tracker's own status, then any advisory (DSA or DLA alike), then unstable.
    fn rank(self) -> u8 {
        match self {
            Origin::Tracker => 0,
            Origin::Dsa | Origin::Dla => 1,
            Origin::Unstable => 2,
        }
    }

    /// The source name `db status` lists.
    pub fn source(self) -> &'static str {
        match self {
            Origin::Tracker => "debian-tracker",
            Origin::Dsa => "debian-dsa",
            Origin::Dla => "debian-dla",
            Origin::Unstable => "debian-tracker-unstable",
        }
    }

    /// The value stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Tracker => "tracker",
            Origin::Dsa => "dsa",
            Origin::Dla => "dla",
            Origin::Unstable => "unstable",
        }
    }
}

/// What a statement says of the release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Fixed in this version.
    Fixed(String),
    /// Never affected (the tracker's `fixed_version` 0, `<not-affected>`, `<removed>`).
    NotAffected,
    /// Affected, in this fix state.
    Open(FixState),
}

/// One statement about one (CVE, source package, release).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// The CVE (or `TEMP-…`) id.
    pub cve: String,
    /// The source package.
    pub package: String,
    /// The release codename; `sid` for an unstable statement.
    pub release: String,
    /// Who said it.
    pub origin: Origin,
    /// What it says.
    pub status: Status,
    /// Debian's urgency (`low`, `medium**`, `not yet assigned`), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgency: Option<String>,
    /// The advisory that stated it (`DSA-5673-1`), or advisories the tracker cross-references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advisories: Vec<String>,
    /// The statement's date (`2024-04-23`), when the source dates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// The CVE's description, from the tracker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Debian's release numbers by codename, as OSV's `Debian:N` ecosystems name them.
pub fn release_number(codename: &str) -> Option<&'static str> {
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

/// The releases an unstable statement is applied to when nothing else speaks of them: those a container
/// image may still run.
const UNSTABLE_APPLIES_TO: [&str; 6] = ["stretch", "buster", "bullseye", "bookworm", "trixie", "forky"];

fn open_state(kind: &str) -> Option<Status> {
    Some(match kind {
        "unfixed" | "undetermined" => Status::Open(FixState::Affected),
        "no-dsa" | "ignored" => Status::Open(FixState::WillNotFix),
        "postponed" => Status::Open(FixState::Deferred),
        "end-of-life" => Status::Open(FixState::EndOfLife),
        "not-affected" | "removed" => Status::NotAffected,
        _ => return None,
    })
}

// ---- the tracker JSON --------------------------------------------------------------------------------------

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

/// Whether a parsed JSON document is the tracker JSON: an object of packages, each an object of CVE ids.
pub fn is_tracker_json(value: &serde_json::Value) -> bool {
    value.as_object().is_some_and(|o| {
        o.values().all(|v| {
            v.as_object()
                .is_some_and(|issues| issues.keys().all(|k| k.starts_with("CVE-") || k.starts_with("TEMP-")))
        })
    })
}

/// The statements of a tracker JSON document.
pub fn from_tracker_json(bytes: &[u8]) -> Result<Vec<Statement>, String> {
    let doc: BTreeMap<String, BTreeMap<String, Issue>> =
        serde_json::from_slice(bytes).map_err(|e| format!("not a Debian security tracker document: {e}"))?;
    let mut out = Vec::new();
    for (package, issues) in doc {
        for (cve, issue) in issues {
            let description = issue.description.map(|d| d.chars().take(300).collect::<String>());
            for (codename, rel) in issue.releases {
                if release_number(&codename).is_none() {
                    continue;
                }
                let fixed = rel.fixed_version.as_deref().filter(|v| !v.is_empty());
                let status = match (rel.status.as_deref(), fixed) {
                    // Fixed in version 0: this release was never affected.
                    (Some("resolved"), Some("0")) => Status::NotAffected,
                    (Some("resolved"), Some(v)) => Status::Fixed(v.to_string()),
                    (Some("open" | "undetermined"), _) => Status::Open(match (rel.nodsa.is_some(), rel.nodsa_reason.as_deref()) {
                        (_, Some("postponed")) => FixState::Deferred,
                        (true, _) | (_, Some("ignored")) => FixState::WillNotFix,
                        _ if rel.urgency.as_deref() == Some("end-of-life") => FixState::EndOfLife,
                        _ => FixState::Affected,
                    }),
                    _ => continue,
                };
                out.push(Statement {
                    cve: cve.clone(),
                    package: package.clone(),
                    release: codename,
                    origin: Origin::Tracker,
                    status,
                    urgency: rel.urgency,
                    advisories: Vec::new(),
                    date: None,
                    description: description.clone(),
                });
            }
        }
    }
    Ok(out)
}

// ---- per-CVE annotation records ----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AnnotatedCve {
    header: Header,
    #[serde(default)]
    annotations: Vec<Annotation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Header {
    #[serde(rename = "ID")]
    id: String,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Annotation {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(default)]
    release: Option<String>,
    #[serde(default)]
    package: Option<String>,
    #[serde(rename = "Kind", default)]
    state: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    bugs: Vec<String>,
}

/// Whether a JSON document's first bytes are a per-CVE annotation record.
pub fn looks_like_annotated(head: &str) -> bool {
    head.contains("\"Header\"") && head.contains("\"Annotations\"")
}

/// The statements of one per-CVE record (`{"Header": {"ID": …}, "Annotations": [...]}`).
pub fn from_annotated(bytes: &[u8]) -> Result<Vec<Statement>, String> {
    let record: AnnotatedCve = serde_json::from_slice(bytes).map_err(|e| format!("not a Debian tracker CVE record: {e}"))?;
    let cve = record.header.id;
    let description = record
        .header
        .description
        .map(|d| d.trim_matches(|c| c == '(' || c == ')').to_string());
    let xrefs: Vec<String> = record
        .annotations
        .iter()
        .filter(|a| a.kind == "xref")
        .flat_map(|a| a.bugs.iter().filter(|b| b.starts_with("DSA-") || b.starts_with("DLA-")).cloned())
        .collect();
    let mut out = Vec::new();
    // Unstable's urgency is the CVE's urgency where a release gives none.
    let mut unstable_urgency: BTreeMap<String, String> = BTreeMap::new();
    for a in record.annotations.iter().filter(|a| a.kind == "package") {
        let Some(package) = a.package.clone() else { continue };
        let state = a.state.as_deref().unwrap_or_default();
        let status = match (state, a.version.as_deref()) {
            ("fixed", Some("0")) => Status::NotAffected,
            ("fixed", Some(v)) => Status::Fixed(v.to_string()),
            (other, _) => match open_state(other) {
                Some(s) => s,
                None => continue,
            },
        };
        let (release, origin) = match a.release.as_deref() {
            Some(r) if release_number(r).is_some() => (r.to_string(), Origin::Tracker),
            Some(_) => continue,
            None => ("sid".to_string(), Origin::Unstable),
        };
        if origin == Origin::Unstable
            && let Some(u) = &a.severity
        {
            unstable_urgency.insert(package.clone(), u.clone());
        }
        out.push(Statement {
            cve: cve.clone(),
            package,
            release,
            origin,
            status,
            urgency: a.severity.clone(),
            advisories: xrefs.clone(),
            date: None,
            description: description.clone(),
        });
    }
    for s in &mut out {
        if s.urgency.is_none() {
            s.urgency = unstable_urgency.get(&s.package).cloned();
        }
    }
    Ok(out)
}

// ---- the DSA and DLA lists ---------------------------------------------------------------------------------

/// Whether a text file's first line opens a DSA or DLA list entry (`[12 Feb 2025] DSA-5865-1 pkg - …`).
pub fn looks_like_list(head: &str) -> bool {
    head.lines().find(|l| !l.trim().is_empty()).is_some_and(|l| {
        let Some(rest) = l.strip_prefix('[').and_then(|r| r.split_once("] ")) else {
            return false;
        };
        parse_date(rest.0).is_some() && (rest.1.starts_with("DSA-") || rest.1.starts_with("DLA-"))
    })
}

/// `12 Feb 2025` → `2025-02-12`.
fn parse_date(text: &str) -> Option<String> {
    let mut parts = text.split_whitespace();
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: u32 = parts.next()?.parse().ok()?;
    (parts.next().is_none() && (1..=31).contains(&day)).then(|| format!("{year:04}-{month:02}-{day:02}"))
}

/// The statements of a DSA or DLA list: each CVE of an advisory, per release line.
///
/// Errors name the line. Advisories that name no CVE (announcements, regressions) give none.
pub fn from_list(text: &str) -> Result<Vec<Statement>, String> {
    let mut out = Vec::new();
    // The advisory being read: id, date, CVEs.
    let mut current: Option<(String, String, Vec<String>)> = None;
    for (n, line) in text.lines().enumerate() {
        let bad = |what: &str| format!("line {}: {what}: {line:?}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let (date, tail) = rest.split_once("] ").ok_or_else(|| bad("an advisory line without `] `"))?;
            let date = parse_date(date).ok_or_else(|| bad("not a date `[12 Feb 2025]`"))?;
            let id = tail.split_whitespace().next().unwrap_or_default();
            if !(id.starts_with("DSA-") || id.starts_with("DLA-")) {
                return Err(bad("not a DSA-/DLA- advisory"));
            }
            current = Some((id.to_string(), date, Vec::new()));
            continue;
        }
        let body = line.trim();
        let Some((id, date, cves)) = current.as_mut() else {
            return Err(bad("an indented line before the first advisory"));
        };
        if let Some(list) = body.strip_prefix('{') {
            let list = list.strip_suffix('}').ok_or_else(|| bad("a `{` CVE list without `}`"))?;
            cves.extend(list.split_whitespace().filter(|c| c.starts_with("CVE-")).map(String::from));
        } else if let Some(rest) = body.strip_prefix('[') {
            let (release, tail) = rest.split_once("] ").ok_or_else(|| bad("a release line without `] `"))?;
            let mut words = tail.split_whitespace();
            if words.next() != Some("-") {
                return Err(bad("a release line without ` - `"));
            }
            let package = words.next().ok_or_else(|| bad("a release line without a package"))?;
            let what = words.next().unwrap_or_default();
            if release_number(release).is_none() || cves.is_empty() {
                continue;
            }
            let status = if let Some(kind) = what.strip_prefix('<').and_then(|k| k.strip_suffix('>')) {
                match open_state(kind) {
                    Some(s) => s,
                    None => continue,
                }
            } else if what.is_empty() {
                return Err(bad("a release line without a version or <state>"));
            } else {
                Status::Fixed(what.to_string())
            };
            let origin = if id.starts_with("DSA-") { Origin::Dsa } else { Origin::Dla };
            for cve in cves.iter() {
                out.push(Statement {
                    cve: cve.clone(),
                    package: package.to_string(),
                    release: release.to_string(),
                    origin,
                    status: status.clone(),
                    urgency: None,
                    advisories: vec![id.clone()],
                    date: Some(date.clone()),
                    description: None,
                });
            }
        }
        // NOTE: lines and anything else are commentary.
    }
    Ok(out)
}

// ---- merging -----------------------------------------------------------------------------------------------

/// The advisory `DEBIAN-<CVE>` all statements about one CVE make, as the tracker decides:
/// per (package, release) the best-ranked statement wins; among DSAs and DLAs, the earliest fixed version; unstable statements fill the releases no other statement names.
/// `None` when no release is affected.
pub fn merge(cve: &str, statements: &[Statement]) -> Option<Advisory> {
    let mut best: BTreeMap<(&str, &str), &Statement> = BTreeMap::new();
    let mut urgency: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    let dpkg = crate::version::Scheme::Dpkg;
    for s in statements.iter().filter(|s| s.origin != Origin::Unstable) {
        let key = (s.package.as_str(), s.release.as_str());
        if let Some(u) = s.urgency.as_deref() {
            urgency.entry(key).or_insert(u);
        }
        let replace = match best.get(&key) {
            None => true,
            Some(b) if s.origin.rank() != b.origin.rank() => s.origin.rank() < b.origin.rank(),
            Some(b) => match (&s.status, &b.status) {
                (Status::Fixed(new), Status::Fixed(old)) => dpkg.compare(new, old) == Some(std::cmp::Ordering::Less),
                _ => false,
            },
        };
        if replace {
            best.insert(key, s);
        }
    }
    for s in statements.iter().filter(|s| s.origin == Origin::Unstable) {
        for release in UNSTABLE_APPLIES_TO {
            best.entry((s.package.as_str(), release)).or_insert(s);
            if let Some(u) = s.urgency.as_deref() {
                urgency.entry((s.package.as_str(), release)).or_insert(u);
            }
        }
    }
    let mut aliases = vec![cve.to_string()];
    let mut extra: Vec<&String> = statements.iter().flat_map(|s| &s.advisories).collect();
    extra.sort();
    extra.dedup();
    aliases.extend(extra.into_iter().cloned());
    if !cve.starts_with("CVE-") {
        aliases.remove(0);
    }
    let mut affected = Vec::new();
    for ((package, release), s) in &best {
        let Some(number) = release_number(release) else { continue };
        let (ranges, state) = match (&s.status, s.origin) {
            (Status::NotAffected, _) => continue,
            // An unstable fix is no fix for the release: versions before it are affected, with no fix there.
            (Status::Fixed(v), Origin::Unstable) => (
                vec![vec![Event::Introduced("0".into()), Event::Fixed(v.clone())]],
                Some(FixState::Affected),
            ),
            (Status::Fixed(v), _) => (vec![vec![Event::Introduced("0".into()), Event::Fixed(v.clone())]], None),
            (Status::Open(state), _) => (vec![vec![Event::Introduced("0".into())]], Some(*state)),
        };
        let severity = urgency
            .get(&(*package, *release))
            .and_then(|u| Severity::from_label(u))
            .map(|severity| Rated {
                severity,
                source: "debian".into(),
                score: None,
                vector: None,
            });
        affected.push(Affected {
            ecosystem: format!("Debian:{number}"),
            package: package.to_string(),
            ranges,
            versions: Vec::new(),
            state,
            severity,
        });
    }
    if affected.is_empty() {
        return None;
    }
    let summary = statements.iter().find_map(|s| s.description.clone()).unwrap_or_default();
    let modified = statements.iter().filter_map(|s| s.date.clone()).max();
    let mut references = vec![format!("https://security-tracker.debian.org/tracker/{cve}")];
    references.extend(
        aliases
            .iter()
            .filter(|a| a.starts_with("DSA-") || a.starts_with("DLA-"))
            .map(|a| format!("https://security-tracker.debian.org/tracker/{a}")),
    );
    Some(Advisory {
        id: format!("DEBIAN-{cve}"),
        aliases,
        summary,
        modified,
        references,
        affected,
        ..Advisory::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_tracker_statuses_to_fix_states() {
        let doc = br#"{"openssl": {
            "CVE-2024-1": {"description": "x", "releases": {
                "bookworm": {"status": "resolved", "fixed_version": "3.0.13-1~deb12u1", "urgency": "high**"},
                "bullseye": {"status": "resolved", "fixed_version": "0", "urgency": "unimportant"},
                "buster": {"status": "open", "urgency": "low", "nodsa": "Minor issue", "nodsa_reason": "postponed"},
                "trixie": {"status": "open", "urgency": "not yet assigned"},
                "sid": {"status": "resolved", "fixed_version": "3.1.0-1"}}},
            "CVE-2024-2": {"releases": []}}}"#;
        let statements = from_tracker_json(doc).unwrap();
        let a = merge("CVE-2024-1", &statements).unwrap();
        assert_eq!((a.id.as_str(), a.aliases[0].as_str()), ("DEBIAN-CVE-2024-1", "CVE-2024-1"));
        let by_eco = |e: &str| a.affected.iter().find(|x| x.ecosystem == e);
        assert_eq!(by_eco("Debian:12").unwrap().severity.as_ref().unwrap().severity, Severity::High);
        assert!(by_eco("Debian:11").is_none(), "fixed_version 0 means never affected");
        assert_eq!(by_eco("Debian:10").unwrap().state, Some(FixState::Deferred));
        assert_eq!(by_eco("Debian:13").unwrap().state, Some(FixState::Affected));
        assert!(by_eco("Debian:13").unwrap().severity.is_none(), "`not yet assigned` rates nothing");
    }

    #[test]
    fn a_dsa_fixes_a_release_the_tracker_leaves_to_unstable() {
        let list = "[23 Apr 2024] DSA-5673-1 glibc - security update\n\t{CVE-2024-2961}\n\t[bullseye] - glibc 2.31-13+deb11u9\n\t[bookworm] - glibc 2.36-9+deb12u6\n\tNOTE: x\n[01 Jan 2024] DLA-1-1 glibc - security update\n\t{CVE-2024-2961}\n\t[buster] - glibc <not-affected> (code not present)\n[02 Jan 2024] DSA-2-1 foo - security update\n\t[bookworm] - foo 1.0\n";
        assert!(looks_like_list(list));
        let mut statements = from_list(list).unwrap();
        assert_eq!(statements.len(), 3, "an advisory without CVEs states nothing");
        assert_eq!(statements[0].date.as_deref(), Some("2024-04-23"));
        // The tracker: fixed in unstable only, but bullseye says <no-dsa>.
        statements.push(Statement {
            cve: "CVE-2024-2961".into(),
            package: "glibc".into(),
            release: "sid".into(),
            origin: Origin::Unstable,
            status: Status::Fixed("2.37-18".into()),
            urgency: None,
            advisories: vec![],
            date: None,
            description: None,
        });
        statements.push(Statement {
            release: "bullseye".into(),
            origin: Origin::Tracker,
            status: Status::Open(FixState::WillNotFix),
            ..statements[3].clone()
        });
        let a = merge("CVE-2024-2961", &statements).unwrap();
        let by_eco = |e: &str| a.affected.iter().find(|x| x.ecosystem == e).unwrap();
        assert_eq!(
            by_eco("Debian:12").ranges[0][1],
            Event::Fixed("2.36-9+deb12u6".into()),
            "the DSA's fix, not unstable's"
        );
        assert_eq!(by_eco("Debian:12").state, None);
        assert_eq!(
            by_eco("Debian:11").state,
            Some(FixState::WillNotFix),
            "the tracker wins over the DSA"
        );
        assert!(
            a.affected.iter().all(|x| x.ecosystem != "Debian:10"),
            "not-affected blocks unstable"
        );
        assert_eq!(
            by_eco("Debian:13").state,
            Some(FixState::Affected),
            "unstable's fix is not trixie's"
        );
        assert_eq!(a.aliases, ["CVE-2024-2961", "DLA-1-1", "DSA-5673-1"]);
    }

    #[test]
    fn list_errors_name_the_line() {
        let err = from_list("[12 Feb 2025] DSA-1-1 x - y\n\t{CVE-1\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(from_list("\t{CVE-1}\n").unwrap_err().contains("before the first advisory"));
        assert!(!looks_like_list("[not a date] DSA-1"));
    }
}

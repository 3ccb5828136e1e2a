//! The Secure Image Policy's verdict, shared by the CLI, the registry and deploy checks.
//!
//! [`decide`] takes findings, the project's exceptions ([`exclusions::parse`])
//! and [`Thresholds`], and says pass or fail with the reasons: which findings
//! break the build, which an exception suppressed (and which exception), which
//! exceptions expired (they stop suppressing and are reported), and which
//! matched nothing (for the policy's regular review).

#![warn(missing_docs)]

pub mod exclusions;
pub mod file;

use customs_vulndb::{Finding, FixState, Severity};
use serde::Serialize;
use time::Date;

pub use exclusions::{Exception, ExclusionError, PathGlob};
pub use file::{NotifyFormat, NotifyTarget, PolicyFile};

/// What breaks a build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// Severities that fail the gate (the policy's default: CRITICAL and HIGH).
    pub fail_on: Vec<Severity>,
    /// Findings with no fixed version do not fail the gate.
    pub ignore_unfixed: bool,
    /// An exception older than this many days (counted from its `date`) has expired.
    pub max_exception_age_days: Option<i64>,
    /// What a finding without a severity rating does to a gate that fails on some severity.
    pub unknown: Unknown,
    /// A vulnerability in CISA's KEV catalog fails whatever its severity (the default: it is exploited now).
    pub fail_on_kev: bool,
    /// A vulnerability at or above this EPSS fails whatever its severity.
    pub fail_on_epss: Option<EpssThreshold>,
}

/// An EPSS threshold: a probability (`0.5`) or a percentile (`p95`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EpssThreshold {
    /// The score, 0 to 1.
    Probability(f64),
    /// The percentile, 0 to 1 (`p95` is 0.95).
    Percentile(f64),
}

impl EpssThreshold {
    /// Reads `0.5` or `p95`.
    pub fn parse(s: &str) -> Result<EpssThreshold, String> {
        let bad = || format!("EPSS threshold {s:?}: use a probability from 0 to 1 (0.5) or a percentile (p95)");
        let s = s.trim();
        if let Some(p) = s.strip_prefix('p') {
            let n: f64 = p.parse().map_err(|_| bad())?;
            return (0.0..=100.0)
                .contains(&n)
                .then_some(EpssThreshold::Percentile(n / 100.0))
                .ok_or_else(bad);
        }
        let n: f64 = s.parse().map_err(|_| bad())?;
        (0.0..=1.0).contains(&n).then_some(EpssThreshold::Probability(n)).ok_or_else(bad)
    }

    fn reached(self, e: &customs_vulndb::Epss) -> bool {
        match self {
            EpssThreshold::Probability(p) => e.score >= p,
            EpssThreshold::Percentile(p) => e.percentile >= p,
        }
    }
}

impl Eq for EpssThreshold {}

/// The policy for findings no source rated (`UNKNOWN`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unknown {
    /// They fail a gate that fails on any severity: "we do not know how bad" is not "low" (the default).
    #[default]
    Fail,
    /// They are counted in the verdict's reasons but do not fail it.
    Warn,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            fail_on: vec![Severity::Critical, Severity::High],
            ignore_unfixed: false,
            max_exception_age_days: None,
            unknown: Unknown::Fail,
            fail_on_kev: true,
            fail_on_epss: None,
        }
    }
}

/// A finding an exception covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Suppression {
    /// Index into the findings.
    pub finding: usize,
    /// Index into the exceptions.
    pub exception: usize,
}

/// The decision, with everything needed to explain it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// True when nothing breaks the build.
    pub pass: bool,
    /// Findings (indices) at or above a failing severity and not suppressed.
    pub failing: Vec<usize>,
    /// Findings without a severity rating that were not suppressed (failing or not, per [`Unknown`]).
    pub unrated: usize,
    /// Findings suppressed by a valid exception; never counted toward failure.
    pub suppressed: Vec<Suppression>,
    /// Exceptions (indices) past `expires` or older than the policy's maximum age.
    pub expired: Vec<usize>,
    /// Valid exceptions that matched no finding.
    pub unused: Vec<usize>,
    /// Sentences explaining the verdict.
    pub reasons: Vec<String>,
}

/// Why an exception is no longer valid on `today`, if it is not.
pub fn expiry(e: &Exception, t: &Thresholds, today: Date) -> Option<String> {
    if let Some(exp) = e.expires
        && today > exp
    {
        return Some(format!("expired on {exp}"));
    }
    if let (Some(granted), Some(days)) = (e.date, t.max_exception_age_days) {
        let until = granted.checked_add(time::Duration::days(days))?;
        if today > until {
            return Some(format!(
                "granted {granted}, older than the policy's {days}-day maximum (until {until})"
            ));
        }
    }
    None
}

/// Whether exception `e` covers finding `f`: every field the exception sets must match.
///
/// `library_name` matches the package's own name or its source package, so an
/// exception for `ncurses` covers `libtinfo6` built from it; `id` matches the
/// advisory id or any alias (CVE, GHSA), case-insensitively.
pub fn covers(e: &Exception, f: &Finding) -> bool {
    let id_ok =
        e.id.as_ref()
            .is_none_or(|id| f.id.eq_ignore_ascii_case(id) || f.aliases.iter().any(|a| a.eq_ignore_ascii_case(id)));
    let lib_ok = e
        .library_name
        .as_ref()
        .is_none_or(|n| f.package.name == *n || f.package.source_name.as_deref() == Some(n.as_str()));
    let ver_ok = e.version.as_ref().is_none_or(|v| f.package.version == *v || f.installed == *v);
    let path_ok = e
        .path
        .as_ref()
        .is_none_or(|p| p.is_match(&f.package.location) || p.is_match(f.package.location.split('!').next().unwrap_or_default()));
    id_ok && lib_ok && ver_ok && path_ok
}

fn describe(e: &Exception) -> String {
    let mut parts = Vec::new();
    if let Some(id) = &e.id {
        parts.push(id.clone());
    }
    if let Some(n) = &e.library_name {
        parts.push(n.clone());
    }
    format!("{} (line {})", parts.join(" in "), e.line)
}

/// A finding of a rule-based check as the policy sees it: a secret (rule id, path in the image, fingerprint)
/// or a Dockerfile lint finding (rule id such as `DL3008`, the Dockerfile's path, no fingerprint).
#[derive(Clone, Debug)]
pub struct RuleHit<'a> {
    /// Rule id (`aws-access-key-id`, `CP002`).
    pub rule_id: &'a str,
    /// Path inside the image (or `config:…`), or the Dockerfile's path.
    pub path: &'a str,
    /// The finding's stable fingerprint (empty when it has none).
    pub fingerprint: &'a str,
    /// Ids the rule had before a rename (`openai-api-key` for `openai-project-api-key`): an exception written
    /// with one still covers the hit.
    pub former_ids: Vec<&'a str>,
}

/// Whether exception `e` covers a rule hit: its `id` names the rule or the fingerprint,
/// and its `path` glob (when set) matches. `library_name` and `version` never match rule hits.
pub fn covers_rule_hit(e: &Exception, s: &RuleHit<'_>) -> bool {
    let id_ok = e.id.as_ref().is_some_and(|id| {
        id == s.rule_id || s.former_ids.contains(&id.as_str()) || (!s.fingerprint.is_empty() && id.eq_ignore_ascii_case(s.fingerprint))
    });
    let path_ok = e.path.as_ref().is_none_or(|p| p.is_match(s.path));
    id_ok && path_ok && e.library_name.is_none() && e.version.is_none()
}

/// Splits rule hits into failing and suppressed ones (with the exception index); expired exceptions do not count.
pub fn decide_rule_hits(secrets: &[RuleHit<'_>], exceptions: &[Exception], t: &Thresholds, today: Date) -> (Vec<usize>, Vec<Suppression>) {
    let mut failing = Vec::new();
    let mut suppressed = Vec::new();
    for (i, s) in secrets.iter().enumerate() {
        match exceptions
            .iter()
            .position(|e| covers_rule_hit(e, s) && expiry(e, t, today).is_none())
        {
            Some(ei) => suppressed.push(Suppression { finding: i, exception: ei }),
            None => failing.push(i),
        }
    }
    (failing, suppressed)
}

/// Decides pass or fail for `findings` under `exceptions` and `t`, as of `today`.
pub fn decide(findings: &[Finding], exceptions: &[Exception], t: &Thresholds, today: Date) -> Verdict {
    let mut v = Verdict::default();
    let expired: Vec<Option<String>> = exceptions.iter().map(|e| expiry(e, t, today)).collect();
    let mut used = vec![false; exceptions.len()];
    for (fi, f) in findings.iter().enumerate() {
        let mut covering_expired = None;
        let mut suppressed = false;
        for (ei, e) in exceptions.iter().enumerate() {
            if !covers(e, f) {
                continue;
            }
            if expired[ei].is_some() {
                covering_expired = Some(ei);
                continue;
            }
            used[ei] = true;
            v.suppressed.push(Suppression {
                finding: fi,
                exception: ei,
            });
            suppressed = true;
            break;
        }
        if suppressed {
            continue;
        }
        let unrated = f.severity == Severity::Unknown && !t.fail_on.contains(&Severity::Unknown);
        if unrated && !t.fail_on.is_empty() {
            v.unrated += 1;
        }
        let fails_unrated = unrated && t.unknown == Unknown::Fail && !t.fail_on.is_empty();
        let exploited = t.fail_on_kev && f.kev.is_some();
        let likely = t.fail_on_epss.zip(f.epss.as_ref()).is_some_and(|(th, e)| th.reached(e));
        let counts = (t.fail_on.contains(&f.severity) || fails_unrated || exploited || likely)
            && !(t.ignore_unfixed && f.fix_state != FixState::Fixed);
        if counts {
            if let Some(k) = f.kev.as_ref().filter(|_| exploited) {
                v.reasons.push(format!(
                    "{} in {} {} is known to be exploited (CISA KEV since {}, remediation due {}){}",
                    f.cve().unwrap_or(&f.id),
                    f.package.name,
                    f.package.version,
                    k.date_added,
                    k.due_date,
                    if k.ransomware == "Known" {
                        "; used in ransomware campaigns"
                    } else {
                        ""
                    }
                ));
            } else if let Some(e) = f.epss.as_ref().filter(|_| likely) {
                v.reasons.push(format!(
                    "{} in {} {} has EPSS {:.3} (percentile {:.1}), at or above --fail-on-epss",
                    f.cve().unwrap_or(&f.id),
                    f.package.name,
                    f.package.version,
                    e.score,
                    e.percentile * 100.0
                ));
            }
            v.failing.push(fi);
            if let Some(ei) = covering_expired {
                v.reasons.push(format!(
                    "{} in {} {} is no longer excepted: exception {} {}",
                    f.id,
                    f.package.name,
                    f.package.version,
                    describe(&exceptions[ei]),
                    expired[ei].as_deref().unwrap_or_default()
                ));
            }
        }
    }
    for (ei, why) in expired.iter().enumerate() {
        if let Some(why) = why {
            v.expired.push(ei);
            v.reasons.push(format!(
                "exception {} {why}; renew it or fix the finding",
                describe(&exceptions[ei])
            ));
        } else if !used[ei] {
            v.unused.push(ei);
        }
    }
    v.pass = v.failing.is_empty();
    let mut names: Vec<&str> = t.fail_on.iter().map(|s| s.as_str()).collect();
    if v.unrated > 0 && t.unknown == Unknown::Fail {
        names.push("UNKNOWN (no severity rating)");
    }
    v.reasons.insert(
        0,
        if v.pass {
            format!("pass: no unexcepted finding at {}", names.join(" or "))
        } else {
            format!(
                "fail: {} finding(s) at {} without a valid exception",
                v.failing.len(),
                names.join(" or ")
            )
        },
    );
    // Unrated findings are always said: a gate must not read "we don't know" as "nothing to see".
    if v.unrated > 0 {
        v.reasons.insert(
            1,
            match t.unknown {
                Unknown::Fail => format!(
                    "{} finding(s) have no severity rating and count as failing (unknown = \"fail\"); import severity data (NVD, CVE 5) or set unknown = \"warn\"",
                    v.unrated
                ),
                Unknown::Warn => format!(
                    "{} finding(s) have no severity rating and were not counted (unknown = \"warn\")",
                    v.unrated
                ),
            },
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use customs_catalog::{Package, PackageKind};
    use time::macros::date;

    fn finding(id: &str, pkg: &str, source: Option<&str>, severity: Severity) -> Finding {
        Finding {
            id: id.into(),
            aliases: vec![format!("CVE-{id}")],
            package: Package {
                name: pkg.into(),
                version: "1.0".into(),
                kind: PackageKind::Deb,
                source_name: source.map(String::from),
                source_version: None,
                arch: None,
                licenses: vec![],
                purl: format!("pkg:deb/debian/{pkg}@1.0"),
                location: "var/lib/dpkg/status".into(),
                layer: Some(0),
                line: None,
                direct: None,
                dev: false,
            },
            ecosystem: "Debian:12".into(),
            installed: "1.0".into(),
            fixed_version: None,
            fix_state: FixState::Affected,
            severity,
            severity_source: "debian".into(),
            cvss_score: None,
            cvss: Vec::new(),
            title: String::new(),
            references: vec![],
            kev: None,
            epss: None,
        }
    }

    #[test]
    fn thresholds_exceptions_and_expiry() {
        let findings = vec![
            finding("A", "libtinfo6", Some("ncurses"), Severity::High),
            finding("B", "openssl", None, Severity::Medium),
            finding("C", "zlib1g", Some("zlib"), Severity::Critical),
        ];
        let t = Thresholds::default();
        let today = date!(2026 - 11 - 22);
        let v = decide(&findings, &[], &t, today);
        assert!(!v.pass);
        assert_eq!(v.failing, vec![0, 2]);

        let ex = exclusions::parse(
            r#"[{"library_name": "ncurses", "date": "2026-11-01"},
                {"id": "CVE-C", "expires": "2026-11-30", "reason": "not reachable"},
                {"library_name": "nothing-like-this"}]"#,
            "exclusions.json",
            false,
        )
        .unwrap();
        let v = decide(&findings, &ex, &t, today);
        assert!(v.pass, "{:?}", v.reasons);
        assert_eq!(
            v.suppressed,
            vec![Suppression { finding: 0, exception: 0 }, Suppression { finding: 2, exception: 1 }]
        );
        assert_eq!(v.unused, vec![2]);

        // After the expiry date, the exception stops suppressing and says so.
        let v = decide(&findings, &ex, &t, date!(2026 - 12 - 01));
        assert!(!v.pass);
        assert_eq!(v.failing, vec![2]);
        assert_eq!(v.expired, vec![1]);
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains("C in zlib1g 1.0 is no longer excepted") && r.contains("expired on 2026-11-30")),
            "{:?}",
            v.reasons
        );

        // With a maximum age, the seed's `date` makes the first one expire too.
        let aged = Thresholds {
            max_exception_age_days: Some(10),
            ..Thresholds::default()
        };
        let v = decide(&findings, &ex, &aged, today);
        assert_eq!(v.expired, vec![0]);
        assert_eq!(v.failing, vec![0]);
    }

    #[test]
    fn secrets_are_excepted_by_rule_or_fingerprint_and_path() {
        let secrets = [
            RuleHit {
                rule_id: "aws-access-key-id",
                path: "app/settings.env",
                fingerprint: "0011aabb",
                former_ids: Vec::new(),
            },
            RuleHit {
                rule_id: "github-pat",
                path: "src/ci.yml",
                fingerprint: "ccdd",
                former_ids: Vec::new(),
            },
            RuleHit {
                rule_id: "openai-project-api-key",
                path: "app/.env",
                fingerprint: "eeff",
                former_ids: vec!["openai-api-key"],
            },
        ];
        let ex = exclusions::parse(
            r#"[{"id": "aws-access-key-id", "path": "app/*.env"}, {"id": "CCDD", "expires": "2020-01-01"}, {"id": "openai-api-key"}]"#,
            "x",
            false,
        )
        .unwrap();
        let (failing, suppressed) = decide_rule_hits(&secrets, &ex, &Thresholds::default(), date!(2026 - 01 - 01));
        assert_eq!(failing, vec![1], "the second exception has expired");
        assert_eq!(
            suppressed,
            vec![Suppression { finding: 0, exception: 0 }, Suppression { finding: 2, exception: 2 }],
            "an exception under the rule's former id still covers it"
        );
    }

    #[test]
    fn unrated_findings_fail_by_default_and_are_always_counted() {
        let findings = vec![
            finding("A", "x", Some("2"), Severity::Unknown),
            finding("B", "y", Some("2"), Severity::Low),
        ];
        let today = date!(2026 - 01 - 01);
        let v = decide(&findings, &[], &Thresholds::default(), today);
        assert!(!v.pass, "\"we don't know\" is not \"low\"");
        assert_eq!((v.failing.clone(), v.unrated), (vec![0], 1));
        assert!(v.reasons[0].contains("UNKNOWN (no severity rating)"), "{:?}", v.reasons);
        assert!(
            v.reasons[1].starts_with("1 finding(s) have no severity rating and count as failing"),
            "{:?}",
            v.reasons
        );
        let warn = Thresholds {
            unknown: Unknown::Warn,
            ..Thresholds::default()
        };
        let v = decide(&findings, &[], &warn, today);
        assert!(v.pass && v.unrated == 1);
        assert!(v.reasons[1].contains("were not counted (unknown = \"warn\")"), "{:?}", v.reasons);
        // A report-only gate never fails on them, and UNKNOWN in fail_on is the plain severity rule.
        let report_only = Thresholds {
            fail_on: Vec::new(),
            ..Thresholds::default()
        };
        assert!(decide(&findings, &[], &report_only, today).pass);
        let explicit = Thresholds {
            fail_on: vec![Severity::Unknown],
            unknown: Unknown::Warn,
            ..Thresholds::default()
        };
        let v = decide(&findings, &[], &explicit, today);
        assert_eq!((v.failing.clone(), v.unrated), (vec![0], 0));
    }

    #[test]
    fn ignore_unfixed_and_custom_fail_levels() {
        let findings = vec![finding("A", "x", None, Severity::High), finding("B", "y", None, Severity::Medium)];
        let only_fixed = Thresholds {
            ignore_unfixed: true,
            ..Thresholds::default()
        };
        assert!(decide(&findings, &[], &only_fixed, date!(2026 - 01 - 01)).pass);
        let strict = Thresholds {
            fail_on: vec![Severity::Medium],
            ..Thresholds::default()
        };
        assert_eq!(decide(&findings, &[], &strict, date!(2026 - 01 - 01)).failing, vec![1]);
    }
}

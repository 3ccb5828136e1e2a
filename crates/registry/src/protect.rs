//! Protection rules: images in matching repositories whose scan fails the rule cannot be pulled.
//!
//! The verdict is taken at pull time from the stored scan, the rule and the repository's exceptions on the
//! registry's today, with the same `customs_inspect::decide` the gate uses: setting an exception lets a pull
//! through at once, and an exception's expiry blocks it again at once, with no rescan.

use globset::GlobMatcher;
use serde::Deserialize;

use customs_inspect::{GatePolicy, ImageScan, Inspection};
use customs_vulndb::Severity;

/// `[[protect]]`: what fails an image in these repositories. The first rule that matches a repository applies.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectConfig {
    /// Exact names or globs (`*` within a segment, `**` across), as in grants.
    pub repositories: Vec<String>,
    /// Severities that fail [default: CRITICAL, HIGH].
    #[serde(default = "default_fail_on")]
    pub fail_on: Vec<String>,
    /// A vulnerability in CISA's KEV catalog fails whatever its severity.
    #[serde(default = "default_true")]
    pub kev: bool,
    /// What an unrated (UNKNOWN) finding does: `fail` or `warn`.
    #[serde(default = "default_unknown")]
    pub unknown: String,
    /// Findings without a fixed version do not fail.
    #[serde(default)]
    pub ignore_unfixed: bool,
    /// Secrets in the image fail it.
    #[serde(default = "default_true")]
    pub secrets: bool,
    /// An image with no scan result yet (or whose scan failed) cannot be pulled.
    #[serde(default = "default_true")]
    pub block_unscanned: bool,
    /// A scan older than this (`7d`, `12h`) counts as no scan.
    pub max_scan_age: Option<String>,
    /// Ecosystems the database may hold nothing for (`Debian:12`, `npm`).
    #[serde(default)]
    pub allow_uncovered: Vec<String>,
    /// Exceptions expire this many days after their `date`.
    pub max_exception_age_days: Option<i64>,
    /// Every exception must give a reason.
    #[serde(default)]
    pub require_reason: bool,
    /// Serve an image (or index) only when a current delegation of the repository signed it
    /// (`customs trust`, `customs sign`), checked against `[trust] root`.
    #[serde(default)]
    pub require_signature: bool,
}

fn default_true() -> bool {
    true
}
fn default_fail_on() -> Vec<String> {
    vec!["CRITICAL".into(), "HIGH".into()]
}
fn default_unknown() -> String {
    "fail".into()
}

/// One checked rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// As configured.
    pub config: ProtectConfig,
    matchers: Vec<GlobMatcher>,
    policy: GatePolicy,
    max_scan_age: Option<time::Duration>,
}

/// Every rule, in config order.
#[derive(Clone, Debug, Default)]
pub struct Protection {
    rules: Vec<Rule>,
}

/// A `registry.toml` duration setting (`7d`, `12h`, `30m`, `90s`) as a std duration; an error names
/// `section` and `what`.
pub(crate) fn setting_duration(section: &str, what: &str, text: &str) -> Result<std::time::Duration, String> {
    let d = parse_age(text).map_err(|e| format!("{section} {what} {e}"))?;
    std::time::Duration::try_from(d).map_err(|_| format!("{section} {what} must not be negative"))
}

/// Parses `7d`, `12h`, `30m`, `90s`.
pub fn parse_age(s: &str) -> Result<time::Duration, String> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = number
        .parse()
        .map_err(|_| format!("`{s}`: write a number and a unit (7d, 12h, 30m)"))?;
    Ok(match unit {
        "d" => time::Duration::days(n),
        "h" => time::Duration::hours(n),
        "m" => time::Duration::minutes(n),
        "s" => time::Duration::seconds(n),
        _ => return Err(format!("`{s}`: the unit is d, h, m or s")),
    })
}

impl Protection {
    /// Checks the rules; an error names the rule (1-based) and what is wrong.
    pub fn new(configs: &[ProtectConfig]) -> Result<Protection, String> {
        let rules = configs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let at = |e: String| format!("protect rule #{}: {e}", i + 1);
                let matchers = crate::access::repository_matchers(&c.repositories).map_err(at)?;
                let fail_on = c
                    .fail_on
                    .iter()
                    .map(|s| s.parse::<Severity>().map_err(|_| at(format!("fail_on: unknown severity `{s}`"))))
                    .collect::<Result<Vec<_>, _>>()?;
                let unknown = match c.unknown.as_str() {
                    "fail" => customs_policy::Unknown::Fail,
                    "warn" => customs_policy::Unknown::Warn,
                    other => return Err(at(format!("unknown = {other:?}: use \"fail\" or \"warn\""))),
                };
                let mut policy = GatePolicy::new(customs_policy::Thresholds {
                    fail_on,
                    ignore_unfixed: c.ignore_unfixed,
                    max_exception_age_days: c.max_exception_age_days,
                    unknown,
                    fail_on_kev: c.kev,
                    fail_on_epss: None,
                });
                if !c.secrets {
                    policy.fail_on_secret.clear();
                }
                policy.allow_uncovered = c.allow_uncovered.clone();
                let max_scan_age = c
                    .max_scan_age
                    .as_deref()
                    .map(parse_age)
                    .transpose()
                    .map_err(|e| at(format!("max_scan_age {e}")))?;
                Ok(Rule {
                    config: c.clone(),
                    matchers,
                    policy,
                    max_scan_age,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Protection { rules })
    }

    /// The rule for a repository: the first that matches.
    pub fn rule_for(&self, repository: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matchers.iter().any(|m| m.is_match(repository)))
    }
}

impl Rule {
    /// A stored scan under this rule and the repository's exceptions, on `today`.
    pub fn decide(&self, scan: &ImageScan, exceptions: Vec<customs_policy::Exception>, today: time::Date) -> Inspection {
        let mut policy = self.policy.clone();
        policy.exceptions = exceptions;
        customs_inspect::decide(scan.clone(), &policy, None, today)
    }

    /// Whether a scan that finished at `finished` is too old to count.
    pub fn too_old(&self, finished: &str, now: time::OffsetDateTime) -> bool {
        let Some(limit) = self.max_scan_age else { return false };
        time::OffsetDateTime::parse(finished, &time::format_description::well_known::Rfc3339).is_ok_and(|t| now - t > limit)
    }
}

/// The policy an image is judged by when its repository has no rule (for the API): the gate's defaults.
pub fn default_policy(exceptions: Vec<customs_policy::Exception>) -> GatePolicy {
    let mut policy = GatePolicy::new(customs_policy::Thresholds::default());
    policy.exceptions = exceptions;
    policy
}

/// A stored scan of an image in `repository` under the repository's rule (the gate's defaults without one) and
/// the repository's exceptions, on `today`: the verdict the API shows and webhooks carry.
pub async fn judge(
    scanning: &crate::scanning::Scanning,
    protection: &Protection,
    repository: &str,
    scan: &ImageScan,
    today: time::Date,
) -> Result<Inspection, String> {
    let rule = protection.rule_for(repository);
    let require_reason = rule.is_some_and(|r| r.config.require_reason);
    let exceptions = match scanning.store.exceptions(repository).await.map_err(|e| e.to_string())? {
        Some(row) => parse_exceptions(repository, &row.body, require_reason)?,
        None => Vec::new(),
    };
    Ok(judge_with(protection, repository, scan, exceptions, today))
}

/// [`judge`] with the exceptions given rather than read: to compare verdicts under old and new exceptions.
pub fn judge_with(
    protection: &Protection,
    repository: &str,
    scan: &ImageScan,
    exceptions: Vec<customs_policy::Exception>,
    today: time::Date,
) -> Inspection {
    match protection.rule_for(repository) {
        Some(rule) => rule.decide(scan, exceptions, today),
        None => customs_inspect::decide(scan.clone(), &default_policy(exceptions), None, today),
    }
}

/// Parses a repository's stored exceptions (exclusions.json).
pub fn parse_exceptions(repository: &str, body: &str, require_reason: bool) -> Result<Vec<customs_policy::Exception>, String> {
    customs_policy::exclusions::parse(body, &format!("exceptions of {repository}"), require_reason).map_err(|e| e.to_string())
}

/// The refusal of a failing image: the verdict, the first findings that fail it with their fixed versions, and
/// how to get an exception.
pub fn refusal(repository: &str, digest: &str, inspection: &Inspection) -> String {
    // The worst first: exploited ones, then by severity (an UNKNOWN is named after the rated ones).
    let rank = |s: Severity| {
        [Severity::Critical, Severity::High, Severity::Medium, Severity::Low]
            .iter()
            .position(|x| *x == s)
            .unwrap_or(4)
    };
    let mut order = inspection.verdict.failing.clone();
    order.sort_by_key(|&i| {
        let f = &inspection.findings[i];
        (f.kev.is_none(), rank(f.severity))
    });
    let mut failing: Vec<String> = order
        .iter()
        .take(5)
        .map(|&i| {
            let f = &inspection.findings[i];
            let cve = f.aliases.iter().find(|a| a.starts_with("CVE-")).unwrap_or(&f.id);
            format!(
                "{cve} ({}) in {} {}{}",
                f.severity.as_str(),
                f.package.name,
                f.package.version,
                f.fixed_version
                    .as_deref()
                    .map(|v| format!(", fixed in {v}"))
                    .unwrap_or_else(|| ", no fix yet".into())
            )
        })
        .collect();
    let more = inspection.verdict.failing.len().saturating_sub(failing.len());
    if more > 0 {
        failing.push(format!("and {more} more"));
    }
    for &i in inspection.secret_failing.iter().take(3) {
        let s = &inspection.secrets[i].finding;
        failing.push(format!("secret {} in {}", s.rule_id, s.path));
    }
    if inspection.secret_failing.len() > 3 {
        failing.push(format!("and {} more secret(s)", inspection.secret_failing.len() - 3));
    }
    let reason = inspection.verdict.reasons.first().map(String::as_str).unwrap_or("fail");
    format!(
        "{repository}@{digest} is blocked by the registry's protection rule: {reason}; {}. Fix and push again, or \
         ask for an exception (customs registry exceptions set {repository} exclusions.json); every finding: \
         GET /api/v1/repositories/{repository}/manifests/{digest}/scan",
        failing.join("; ")
    )
}

/// Why a pull is refused.
#[derive(Debug)]
pub struct Blocked(pub String);

/// Checks a pull of `row` from `repository` against the repository's rule: for an index, every image it lists.
/// Non-image manifests (signatures, SBOMs, other artifacts) always pass: they are what a deploy check reads.
/// `may_sign` (the caller may push or sign here) skips the signature requirement: a release pipeline reads the
/// manifest it signs, unsigned until it has.
pub(crate) async fn check_pull(
    reg: &crate::server::Registry,
    repository: &str,
    row: &crate::meta::ManifestRow,
    may_sign: bool,
) -> Result<(), Blocked> {
    let Some(rule) = reg.protection.rule_for(repository) else {
        return Ok(());
    };
    let Some(scanning) = &reg.scanning else { return Ok(()) };
    let internal = |e: crate::meta::MetaError| Blocked(format!("{repository}: the protection rule could not be checked ({e}); refusing"));
    let mut images = Vec::new();
    if crate::scanning::is_image(row) {
        images.push(row.digest.clone());
    } else if let Ok(info) = crate::manifest::inspect(Some(&row.media_type), &row.content) {
        for child in &info.manifests {
            if let Some(child_row) = reg.meta.manifest(repository, child.as_str()).await.map_err(internal)?
                && crate::scanning::is_image(&child_row)
            {
                images.push(child_row.digest);
            }
        }
    }
    if rule.config.require_signature && !may_sign && !images.is_empty() {
        crate::signatures::check_signed(reg, repository, &row.digest)
            .await
            .map_err(|why| Blocked(format!("{why} (the repository's protection rule requires a signature)")))?;
    }
    if images.is_empty() {
        return Ok(());
    }
    let exceptions = match scanning.store.exceptions(repository).await.map_err(internal)? {
        Some(stored) => parse_exceptions(repository, &stored.body, rule.config.require_reason)
            .map_err(|e| Blocked(format!("{repository}: its exceptions do not parse ({e}); refusing")))?,
        None => Vec::new(),
    };
    let now = reg.clock.now();
    for digest in images {
        let latest = scanning.store.latest(&digest).await.map_err(internal)?;
        let scan = match &latest {
            Some(row) if row.outcome == "scanned" && !rule.too_old(&row.finished_at, now) => scanning.parsed(row),
            _ => None,
        };
        let Some(scan) = scan else {
            if !rule.config.block_unscanned {
                continue;
            }
            let why = match &latest {
                None => "its scan is pending".to_string(),
                Some(row) if row.outcome != "scanned" => {
                    format!("its scan failed ({})", row.error.as_deref().unwrap_or("no reason recorded"))
                }
                Some(row) => format!(
                    "its last scan ({}) is older than max_scan_age = {:?}; a rescan is needed",
                    row.finished_at,
                    rule.config.max_scan_age.as_deref().unwrap_or_default()
                ),
            };
            return Err(Blocked(format!(
                "{repository}@{digest} is blocked until it is scanned: {why} (block_unscanned); retry shortly"
            )));
        };
        let inspection = rule.decide(&scan, exceptions.clone(), now.date());
        if !inspection.verdict.pass {
            return Err(Blocked(refusal(repository, &digest, &inspection)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(toml: &str) -> Result<Protection, String> {
        #[derive(Deserialize)]
        struct File {
            protect: Vec<ProtectConfig>,
        }
        let file: File = toml::from_str(toml).map_err(|e| e.to_string())?;
        Protection::new(&file.protect)
    }

    #[test]
    fn ages_and_bad_rules_name_the_problem() {
        assert_eq!(parse_age("7d").unwrap(), time::Duration::days(7));
        assert_eq!(parse_age("12h").unwrap(), time::Duration::hours(12));
        assert!(parse_age("7 weeks").unwrap_err().contains("unit"));
        assert!(parse_age("d").unwrap_err().contains("number"));
        let e = rule("[[protect]]\nrepositories = [\"prod/**\"]\nfail_on = [\"SEVERE\"]\n").unwrap_err();
        assert!(e.contains("protect rule #1") && e.contains("SEVERE"), "{e}");
        let e = rule("[[protect]]\nrepositories = [\"a\"]\n[[protect]]\nrepositories = [\"b\"]\nmax_scan_age = \"1y\"\n").unwrap_err();
        assert!(e.contains("protect rule #2") && e.contains("max_scan_age"), "{e}");
        let e = rule("[[protect]]\nrepositories = [\"a\"]\nunknown = \"ignore\"\n").unwrap_err();
        assert!(e.contains("\"fail\" or \"warn\""), "{e}");
    }

    #[test]
    fn the_first_matching_rule_applies_and_globs_stop_at_slashes() {
        let p = rule(
            "[[protect]]\nrepositories = [\"prod/legacy/*\"]\nfail_on = [\"CRITICAL\"]\n\
             [[protect]]\nrepositories = [\"prod/**\"]\n",
        )
        .unwrap();
        assert_eq!(p.rule_for("prod/legacy/app").unwrap().config.fail_on, ["CRITICAL"]);
        assert_eq!(p.rule_for("prod/legacy/app/sub").unwrap().config.fail_on, ["CRITICAL", "HIGH"]);
        assert_eq!(p.rule_for("prod/app").unwrap().config.repositories, ["prod/**"]);
        assert!(p.rule_for("dev/app").is_none());
        assert!(p.rule_for("production").is_none());
    }

    #[test]
    fn scans_older_than_the_limit_do_not_count() {
        let p = rule("[[protect]]\nrepositories = [\"p\"]\nmax_scan_age = \"7d\"\n").unwrap();
        let r = p.rule_for("p").unwrap();
        let now = time::macros::datetime!(2026-12-10 00:00 UTC);
        assert!(r.too_old("2026-12-01T00:00:00.000000000Z", now));
        assert!(!r.too_old("2026-12-04T00:00:00.000000000Z", now));
    }
}

//! The decision: a scan under a policy becomes a verdict, with every finding failing, suppressed or only shown.

use customs_policy::{Exception, RuleHit, Suppression, Thresholds, Verdict};
use customs_report::{GateResult, LintedFile, Subject};
use customs_vulndb::{FixState, Support};
use time::Date;

use crate::{ImageScan, note_support};

/// What fails an image, beyond the severity thresholds: the settings `customs gate` takes from flags and the
/// policy file, and the registry from its `[[protect]]` rules and a repository's exceptions.
#[derive(Clone, Debug)]
pub struct GatePolicy {
    /// Severities, KEV, EPSS, unrated findings, unfixed findings, exception age.
    pub thresholds: Thresholds,
    /// Accepted risks (exclusions.json entries).
    pub exceptions: Vec<Exception>,
    /// Findings in these states are left out (with a warning saying how many).
    pub ignore_status: Vec<FixState>,
    /// Secret severities that fail; empty means secrets never fail.
    pub fail_on_secret: Vec<customs_secrets::Severity>,
    /// Ecosystems the database may hold nothing for without failing (`Debian:12`, `npm`).
    pub allow_uncovered: Vec<String>,
    /// A release past its security support fails.
    pub fail_on_eol: bool,
    /// With `--exclude-base`: the base image's bottom layers, whose findings are listed but fail nothing.
    pub base_layers: Option<usize>,
    /// Lint findings at or above this level fail; `None` never fails.
    pub lint_threshold: Option<customs_dockerfile::Level>,
}

impl GatePolicy {
    /// The policy's defaults: CRITICAL and HIGH fail, KEV fails, unrated fails, every secret fails, lint errors
    /// fail, no exceptions.
    pub fn new(thresholds: Thresholds) -> GatePolicy {
        GatePolicy {
            thresholds,
            exceptions: Vec::new(),
            ignore_status: Vec::new(),
            fail_on_secret: all_secret_severities(),
            allow_uncovered: Vec::new(),
            fail_on_eol: false,
            base_layers: None,
            lint_threshold: Some(customs_dockerfile::Level::Error),
        }
    }
}

/// Every secret severity, CRITICAL to LOW.
pub fn all_secret_severities() -> Vec<customs_secrets::Severity> {
    use customs_secrets::Severity::*;
    vec![Critical, High, Medium, Low]
}

/// A scan with the verdict taken on it.
#[derive(Clone, Debug)]
pub struct Inspection {
    /// The image.
    pub subject: Subject,
    /// Findings: the image's own first, then (with a base split) the base image's.
    pub findings: Vec<customs_vulndb::Finding>,
    /// The decision; its indices point into `findings` and `exceptions`.
    pub verdict: Verdict,
    /// Non-fatal problems, the scan's and the decision's.
    pub warnings: Vec<String>,
    /// Secrets found.
    pub secrets: Vec<customs_secrets::ImageFinding>,
    /// Whether secrets were looked for.
    pub secrets_scanned: bool,
    /// Secrets (indices) that fail.
    pub secret_failing: Vec<usize>,
    /// Secrets an exception covered.
    pub secret_suppressed: Vec<Suppression>,
    /// The linted Dockerfile, when one was given.
    pub lint: Option<LintedFile>,
    /// Lint findings an exception covered.
    pub lint_suppressed: Vec<Suppression>,
    /// The lint threshold decided on.
    pub lint_threshold: Option<customs_dockerfile::Level>,
    /// The exceptions decided with.
    pub exceptions: Vec<Exception>,
    /// What the database could check, per ecosystem.
    pub coverage: Vec<customs_vulndb::Coverage>,
    /// The base split decided with.
    pub base_layers: Option<usize>,
    /// The release's security support, when it has ended.
    pub ended_support: Option<Support>,
}

impl Inspection {
    /// The whole inspection, for the renderers (`customs_report::gate_json` and the others).
    pub fn result(&self) -> GateResult<'_> {
        GateResult {
            subject: &self.subject,
            findings: &self.findings,
            exceptions: &self.exceptions,
            verdict: &self.verdict,
            warnings: &self.warnings,
            secrets: &self.secrets,
            secret_failing: &self.secret_failing,
            secret_suppressed: &self.secret_suppressed,
            lint: self.lint.as_ref(),
            lint_threshold: self.lint_threshold,
            lint_suppressed: &self.lint_suppressed,
        }
    }
}

/// Secrets as the policy sees them: rule id, path and fingerprint, for exceptions to match.
pub fn secret_hits(secrets: &[customs_secrets::ImageFinding]) -> Vec<RuleHit<'_>> {
    secrets
        .iter()
        .map(|s| RuleHit {
            rule_id: &s.finding.rule_id,
            path: &s.finding.path,
            fingerprint: &s.finding.fingerprint,
            former_ids: customs_secrets::former_ids(&s.finding.rule_id),
        })
        .collect()
}

/// Fails the verdict for `reason`: it replaces the "pass" sentence, or joins the other reasons (at `at`, else last).
pub fn fail_verdict(verdict: &mut Verdict, reason: String, at: Option<usize>) {
    if verdict.pass {
        verdict.reasons[0] = reason;
    } else {
        match at {
            Some(i) => verdict.reasons.insert(i.min(verdict.reasons.len()), reason),
            None => verdict.reasons.push(reason),
        }
    }
    verdict.pass = false;
}

/// Takes the verdict on `scan` under `policy` on `today`, with the linted Dockerfile when there is one.
///
/// Pure: the same scan, policy, lint result and day give the same inspection.
pub fn decide(mut scan: ImageScan, policy: &GatePolicy, lint: Option<LintedFile>, today: Date) -> Inspection {
    let ended_support = note_support(&mut scan, today);
    let ImageScan {
        subject,
        findings,
        mut warnings,
        secrets,
        secrets_scanned,
        coverage,
        matched,
        inventory,
        ..
    } = scan;
    let thresholds = &policy.thresholds;
    let exceptions = &policy.exceptions;
    let split = policy.base_layers;
    // With a base split the base image's findings come last and only the image's own can fail it; exceptions
    // count as used when they match either.
    let in_base = |layer: Option<usize>| split.is_some_and(|n| layer.is_some_and(|l| l < n));
    let found = findings.len();
    let findings: Vec<_> = findings
        .into_iter()
        .filter(|f| !policy.ignore_status.contains(&f.fix_state))
        .collect();
    if findings.len() < found {
        warnings.push(format!("{} vulnerabilities left out (--ignore-status)", found - findings.len()));
    }
    let (base_findings, mut findings): (Vec<_>, Vec<_>) = findings.into_iter().partition(|f| in_base(f.package.layer));
    let own = findings.len();
    findings.extend(base_findings);
    let mut verdict = customs_policy::decide(&findings[..own], exceptions, thresholds, today);
    if let Some(n) = split {
        let all = customs_policy::decide(&findings, exceptions, thresholds, today);
        (verdict.unused, verdict.suppressed) = (all.unused, all.suppressed);
        warnings.push(format!(
            "{} vulnerabilities come from the base image (its {n} bottom layers) and do not fail the gate (--exclude-base)",
            findings.len() - own
        ));
    }
    if let Some(s) = ended_support.as_ref().filter(|_| policy.fail_on_eol) {
        let reason = format!(
            "fail: {} is past its security support, which ended on {} (--fail-on-eol)",
            s.release, s.ends
        );
        fail_verdict(&mut verdict, reason, None);
    }
    // A gate that fails on vulnerabilities cannot pass an ecosystem it could not check.
    if matched && !thresholds.fail_on.is_empty() {
        for c in coverage.iter().filter(|c| !c.covered()) {
            if policy.allow_uncovered.iter().any(|e| e.eq_ignore_ascii_case(&c.ecosystem)) {
                continue;
            }
            let reason = format!(
                "fail: {} package(s) of {} were not checked: the database holds no advisory for it (import data for it, or --allow-uncovered {})",
                c.packages, c.ecosystem, c.ecosystem
            );
            fail_verdict(&mut verdict, reason, None);
        }
    }
    // Nor a lockfile it could not read.
    if !thresholds.fail_on.is_empty() && !inventory.unreadable.is_empty() {
        let reason = format!(
            "fail: {} file(s) that pin packages could not be read, so their packages were not checked: {} (fix or remove them)",
            inventory.unreadable.len(),
            inventory.unreadable.join(", ")
        );
        fail_verdict(&mut verdict, reason, None);
    }
    let hits = secret_hits(&secrets);
    let (mut secret_failing, secret_suppressed) = customs_policy::decide_rule_hits(&hits, exceptions, thresholds, today);
    drop(hits);
    // A secret the base image ships is listed but, with a base split, fails nothing.
    secret_failing.retain(|&i| !in_base(secrets[i].layer) && policy.fail_on_secret.contains(&secrets[i].finding.severity));
    if !secret_failing.is_empty() {
        let reason = format!(
            "fail: {} secret(s) in the image without a valid exception; revoke them and rebuild without them",
            secret_failing.len()
        );
        fail_verdict(&mut verdict, reason, Some(1));
    }
    // Lint findings are excepted like secrets: `id` is the rule (`DL3008`), `path` a glob on the Dockerfile path.
    let lint_suppressed = match &lint {
        Some(l) => {
            let hits: Vec<RuleHit<'_>> = l
                .report
                .findings
                .iter()
                .map(|f| RuleHit {
                    rule_id: &f.rule,
                    path: &l.path,
                    fingerprint: "",
                    former_ids: Vec::new(),
                })
                .collect();
            customs_policy::decide_rule_hits(&hits, exceptions, thresholds, today).1
        }
        None => Vec::new(),
    };
    // An exception that suppressed a secret or a lint finding is in use, though no package finding matched it.
    verdict
        .unused
        .retain(|&i| !secret_suppressed.iter().chain(&lint_suppressed).any(|s| s.exception == i));
    if let Some(l) = &lint {
        let threshold = policy.lint_threshold;
        let failing = l
            .report
            .findings
            .iter()
            .enumerate()
            .filter(|(i, f)| threshold.is_some_and(|t| f.level <= t) && !lint_suppressed.iter().any(|s| s.finding == *i))
            .count();
        if failing > 0 {
            let reason = format!(
                "fail: {failing} Dockerfile finding(s) in {} at or above `{}`; fix them, or except the rule in exclusions.json (`id` and `path`) or the lint config",
                l.path,
                threshold.map_or("none", |t| t.as_str())
            );
            fail_verdict(&mut verdict, reason, Some(1));
        }
    }
    Inspection {
        subject,
        findings,
        verdict,
        warnings,
        secrets,
        secrets_scanned,
        secret_failing,
        secret_suppressed,
        lint,
        lint_suppressed,
        lint_threshold: policy.lint_threshold,
        exceptions: policy.exceptions.clone(),
        coverage,
        base_layers: split,
        ended_support,
    }
}

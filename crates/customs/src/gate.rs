//! `customs gate` (the build breaker) and `customs exclusions check` (the review of accepted risks).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use customs_report::{DocumentStamp, Subject};
use customs_vulndb::Severity;

use crate::args::*;
use crate::inspect::{ImageScan, Pass, base_layer_split, secret_scanner, vulnerabilities};
use crate::output::emit;
use crate::scan::secrets_table;
use crate::{color, lint, notify};
use customs_inspect::secret_hits;

/// `customs gate`'s flags; each overrides the policy file.
#[derive(clap::Args)]
pub(crate) struct GateArgs {
    #[command(flatten)]
    pub(crate) target: Target,
    /// Fail unless the image (a registry reference) is signed by a current delegation of its repository, in
    /// trust data certified by --trust-root: the deploy pipeline's check (`customs verify --trust-root`).
    #[arg(long, requires = "trust_root")]
    pub(crate) require_signature: bool,
    /// The trusted root public key (`customs trust init`'s root.pub), for --require-signature.
    #[arg(long)]
    pub(crate) trust_root: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) db: DbArgs,
    #[command(flatten)]
    pub(crate) freshness: Freshness,
    /// The project file (`--policy`, global).
    #[arg(skip)]
    pub(crate) policy: Option<PathBuf>,
    /// Vulnerability severities that fail the gate, comma-separated, or `none` to only report them (a secrets- or
    /// lint-only gate) [default: the policy's, else CRITICAL,HIGH].
    #[arg(long, value_delimiter = ',', value_parser = parse_fail_on)]
    pub(crate) fail_on: Vec<Option<Severity>>,
    /// Severities shown in the output and reports; default all. Never affects the verdict.
    #[arg(long, value_delimiter = ',')]
    pub(crate) severity: Vec<Severity>,
    /// Findings without a fixed version do not fail the gate.
    #[arg(long)]
    pub(crate) ignore_unfixed: bool,
    /// What a finding no source rated (UNKNOWN) does: `fail` (the default: "we don't know" is not "low") or
    /// `warn` (counted in the verdict, not failing) [default: the policy's [gate] unknown, else fail].
    #[arg(long, value_parser = ["fail", "warn"])]
    pub(crate) unknown: Option<String>,
    /// A vulnerability in CISA's KEV catalog (exploited in the wild) fails the gate whatever its severity:
    /// `true` or `false` [default: the policy's [gate] fail_on_kev, else true].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) fail_on_kev: Option<bool>,
    /// A vulnerability whose EPSS reaches this probability (`0.5`) or percentile (`p95`) fails the gate whatever
    /// its severity [default: the policy's [gate] fail_on_epss, else off].
    #[arg(long, value_name = "P")]
    pub(crate) fail_on_epss: Option<String>,
    /// Findings in these states are left out (comma-separated: fixed, affected, will_not_fix, fix_deferred,
    /// end_of_life); the output says how many.
    #[arg(long, value_delimiter = ',', value_parser = parse_status)]
    pub(crate) ignore_status: Vec<Option<customs_vulndb::FixState>>,
    /// The project's exceptions [default: the policy's, else ./exclusions.json when present].
    #[arg(long)]
    pub(crate) exclusions: Option<PathBuf>,
    /// Also read a `.trivyignore` (migration from Trivy) [default: ./.trivyignore when present, as Trivy does].
    #[arg(long, visible_alias = "ignorefile")]
    pub(crate) trivyignore: Option<PathBuf>,
    /// Exceptions expire this many days after their `date`.
    #[arg(long)]
    pub(crate) max_exception_age_days: Option<i64>,
    /// Every exception must give a `reason`.
    #[arg(long)]
    pub(crate) require_reason: bool,
    /// Exit code when the gate fails [default: the policy's, else 1].
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..))]
    pub(crate) exit_code: Option<u8>,
    /// Also write a report: FORMAT=PATH with FORMAT one of json, sarif, junit, markdown, vex (CycloneDX VEX of the suppressed findings), table; repeat for several.
    #[arg(long = "report", value_parser = parse_report)]
    pub(crate) reports: Vec<(ReportFormat, PathBuf)>,
    /// List suppressed findings with the exception that matched.
    #[arg(long)]
    pub(crate) show_suppressed: bool,
    /// Do not look for secrets (on by default: the policy says no secret may ship).
    #[arg(long)]
    pub(crate) no_secrets: bool,
    /// What runs: `vuln`, `secret`, `lint` (comma-separated) [default: vuln and secret, and lint with
    /// --dockerfile]. A scanner that does not run needs none of its inputs: without `vuln` no database is read.
    #[arg(long, value_delimiter = ',')]
    pub(crate) scanners: Vec<GateScanner>,
    /// Secret severities that fail the gate (comma-separated CRITICAL,HIGH,MEDIUM,LOW), or `none` to only report them [default: all].
    #[arg(long, value_delimiter = ',', value_parser = parse_secret_severity)]
    pub(crate) fail_on_secret: Vec<Option<customs_secrets::Severity>>,
    /// Ecosystems found in the image that the database may hold nothing for (comma-separated, e.g.
    /// `Debian:12,npm`); any other such ecosystem fails the gate, since none of its packages was checked.
    #[arg(long, value_delimiter = ',')]
    pub(crate) allow_uncovered: Vec<String>,
    #[command(flatten)]
    pub(crate) skip: Skip,
    #[command(flatten)]
    pub(crate) base: BaseImage,
    /// Fail when the distribution release is past its security support (a warning either way).
    #[arg(long)]
    pub(crate) fail_on_eol: bool,
    /// Also lint this Dockerfile (the one the image was built from).
    #[arg(long)]
    pub(crate) dockerfile: Option<PathBuf>,
    /// Lint findings at or above this level fail the gate: error, warning, info, style or none [default: the lint config's threshold, else error].
    #[arg(long)]
    pub(crate) fail_on_lint: Option<String>,
    /// Lint config [default: .customs-lint.yaml, else .hadolint.yaml, in the current folder].
    #[arg(long)]
    pub(crate) lint_config: Option<PathBuf>,
}

/// Reads the exclusions file (and `.trivyignore`), if any.
pub(crate) fn load_exceptions(
    exclusions: Option<&Path>,
    trivyignore: Option<&Path>,
    require_reason: bool,
) -> Result<Vec<customs_policy::Exception>> {
    let mut out = Vec::new();
    if let Some(p) = exclusions {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading exclusions {}", p.display()))?;
        out.extend(customs_policy::exclusions::parse(&text, &p.display().to_string(), require_reason)?);
    }
    if let Some(p) = trivyignore {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        out.extend(customs_policy::exclusions::parse_trivyignore(&text, &p.display().to_string())?);
    }
    Ok(out)
}

/// The policy file (`--policy`, else `./customs.toml` or `./.customs.yaml`, else defaults)
/// and the folder its relative paths start from.
pub(crate) fn load_policy(path: Option<PathBuf>) -> Result<(customs_policy::PolicyFile, PathBuf)> {
    let path = path.or_else(|| customs_policy::PolicyFile::find(Path::new(".")));
    let file = match &path {
        Some(p) => customs_policy::PolicyFile::read(p).map_err(anyhow::Error::msg)?,
        None => customs_policy::PolicyFile::default(),
    };
    let base = path.as_deref().and_then(Path::parent).unwrap_or(Path::new(".")).to_path_buf();
    Ok((file, base))
}

/// The gate: settings from flags over the policy file over defaults, then the verdict, reports and notifications.
pub(crate) fn run_gate(a: GateArgs) -> Result<ExitCode> {
    let (policy, base) = load_policy(a.policy.clone())?;
    let fail_on = if a.fail_on.is_empty() {
        policy
            .fail_on()
            .map_err(anyhow::Error::msg)?
            .unwrap_or_else(|| vec![Severity::Critical, Severity::High])
    } else {
        a.fail_on.iter().flatten().copied().collect()
    };
    let exclusions = a
        .exclusions
        .clone()
        .or_else(|| policy.exceptions.file.as_ref().map(|f| base.join(f)))
        .or_else(|| {
            let default = PathBuf::from("exclusions.json");
            default.is_file().then_some(default)
        });
    let trivyignore = a
        .trivyignore
        .clone()
        .or_else(|| policy.exceptions.trivyignore.as_ref().map(|f| base.join(f)))
        .or_else(|| {
            let default = PathBuf::from(".trivyignore");
            default.is_file().then_some(default)
        });
    let require_reason = a.require_reason || policy.exceptions.require_reason.unwrap_or(false);
    let unknown = match a.unknown.as_deref().or(policy.gate.unknown.as_deref()) {
        None | Some("fail") => customs_policy::Unknown::Fail,
        Some("warn") => customs_policy::Unknown::Warn,
        Some(other) => bail!("unknown = {other:?}: use \"fail\" or \"warn\" (--unknown or the policy file's [gate] unknown)"),
    };
    let fail_on_epss = a
        .fail_on_epss
        .as_deref()
        .or(policy.gate.fail_on_epss.as_deref())
        .map(customs_policy::EpssThreshold::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let thresholds = customs_policy::Thresholds {
        fail_on,
        ignore_unfixed: a.ignore_unfixed || policy.gate.ignore_unfixed.unwrap_or(false),
        max_exception_age_days: a.max_exception_age_days.or(policy.exceptions.max_age_days),
        unknown,
        fail_on_kev: a.fail_on_kev.or(policy.gate.fail_on_kev).unwrap_or(true),
        fail_on_epss,
    };
    let exit_code = a.exit_code.or(policy.gate.exit_code).unwrap_or(1);
    // Scanner settings: flags over the policy file's [gate] over defaults.
    let mut a = a;
    a.no_secrets = a.no_secrets || policy.gate.secrets == Some(false);
    if a.fail_on_secret.is_empty()
        && let Some(list) = &policy.gate.fail_on_secret
    {
        a.fail_on_secret = list
            .iter()
            .map(|s| parse_secret_severity(s).map_err(|e| anyhow::anyhow!("policy file [gate] fail_on_secret: {e}")))
            .collect::<Result<_>>()?;
    }
    a.dockerfile = a.dockerfile.or_else(|| policy.gate.dockerfile.as_ref().map(|d| base.join(d)));
    a.fail_on_lint = a.fail_on_lint.or_else(|| policy.gate.fail_on_lint.clone());
    a.lint_config = a.lint_config.or_else(|| policy.gate.lint_config.as_ref().map(|c| base.join(c)));
    // --scanners narrows the defaults: vuln and secret, and lint when there is a Dockerfile.
    let vuln = a.scanners.is_empty() || a.scanners.contains(&GateScanner::Vuln);
    if !a.scanners.is_empty() {
        a.no_secrets = a.no_secrets || !a.scanners.contains(&GateScanner::Secret);
        if a.scanners.contains(&GateScanner::Lint) && a.dockerfile.is_none() {
            bail!("--scanners lint needs --dockerfile FILE (or `dockerfile` in the policy file's [gate])");
        }
        if !a.scanners.contains(&GateScanner::Lint) {
            a.dockerfile = None;
        }
    }

    // Bad exceptions or lint settings are usage errors: stop before any scanning.
    let exceptions = load_exceptions(exclusions.as_deref(), trivyignore.as_deref(), require_reason)?;
    let lint_threshold = match a.fail_on_lint.as_deref() {
        Some("none") => None,
        Some(level) => Some(
            customs_dockerfile::Level::parse(level)
                .with_context(|| format!("--fail-on-lint {level}: use error, warning, info, style or none"))?,
        ),
        None => Some(customs_dockerfile::Level::Error),
    };
    // One scanner (built-in rules plus ./customs-secret.yaml) for the image and the Dockerfile alike.
    let secret_rules = if a.no_secrets && a.dockerfile.is_none() {
        None
    } else {
        Some(secret_scanner(None, a.skip.secret_options(Vec::new()))?)
    };
    let linted = match &a.dockerfile {
        Some(path) => {
            let config = lint::load_config(a.lint_config.as_deref(), &[], &[], None)?;
            let source = lint::read_dockerfile(path)?;
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            Some(lint::lint_file(
                &path.display().to_string(),
                source,
                &config,
                Some(dir),
                secret_rules.as_ref().expect("built when a Dockerfile is given"),
            ))
        }
        None => None,
    };
    // One pass over the image: packages and secrets together.
    let scan = vulnerabilities(&Pass {
        target: &a.target,
        db: &a.db,
        freshness: &a.freshness,
        pkg_types: &[PkgType::Os, PkgType::Library],
        secrets: secret_rules.as_ref().filter(|_| !a.no_secrets),
        require_data: vuln && !thresholds.fail_on.is_empty(),
        vuln,
        skip: &a.skip,
    })?;
    let split = base_layer_split(&a.base, &scan, &a.target)?;
    let today = time::OffsetDateTime::now_utc().date();
    let fail_on_secret = if a.fail_on_secret.is_empty() {
        customs_inspect::all_secret_severities()
    } else {
        // `none` parses to `None` and keeps no severity.
        a.fail_on_secret.iter().flatten().copied().collect()
    };
    let gate_policy = customs_inspect::GatePolicy {
        thresholds,
        exceptions,
        ignore_status: a.ignore_status.iter().flatten().copied().collect(),
        fail_on_secret,
        allow_uncovered: if a.allow_uncovered.is_empty() {
            policy.gate.allow_uncovered.clone().unwrap_or_default()
        } else {
            a.allow_uncovered.clone()
        },
        fail_on_eol: a.fail_on_eol,
        base_layers: split,
        lint_threshold,
    };
    let mut inspection = customs_inspect::decide(scan, &gate_policy, linted, today);
    if a.require_signature {
        let root = a.trust_root.as_ref().expect("clap requires --trust-root");
        let root = customs_trust::PublicKey::from_pem(
            &std::fs::read_to_string(root).with_context(|| format!("reading {}", root.display()))?,
            &root.display().to_string(),
        )?;
        let scanned = inspection.subject.manifest_digest.as_ref().map(|d| d.to_string());
        let why = match crate::signing::signed_by_delegate(&a.target.image, &a.target.registry, &root) {
            Ok((digest, _)) if scanned.as_deref().is_some_and(|s| s != digest) => Some(format!(
                "the signed digest {digest} is not the scanned one ({}): the tag moved; gate IMAGE@DIGEST",
                scanned.unwrap_or_default()
            )),
            Ok((digest, signer)) => {
                eprintln!("signature: {digest} signed by {signer}");
                None
            }
            Err(why) => Some(why),
        };
        if let Some(why) = why {
            inspection.verdict.pass = false;
            inspection.verdict.reasons.push(format!("no valid signature: {why}"));
        }
    }
    let customs_inspect::Inspection {
        subject,
        findings,
        verdict,
        warnings,
        secrets,
        secret_failing,
        secret_suppressed,
        lint: linted,
        lint_suppressed,
        exceptions,
        coverage,
        ..
    } = inspection;
    notify_all(&policy, &subject, &findings, &verdict);

    // `--severity` only trims what is shown; the verdict was taken on everything.
    let (findings, shown_verdict) = shown(findings, &verdict, &a.severity);
    let result = customs_report::GateResult {
        subject: &subject,
        findings: &findings,
        exceptions: &exceptions,
        verdict: &shown_verdict,
        warnings: &warnings,
        secrets: &secrets,
        secret_failing: &secret_failing,
        secret_suppressed: &secret_suppressed,
        lint: linted.as_ref(),
        lint_threshold,
        lint_suppressed: &lint_suppressed,
    };
    let render = |format: ReportFormat| match format {
        ReportFormat::Json => customs_report::gate_json(&result),
        ReportFormat::Junit => customs_report::gate_junit(&result),
        ReportFormat::Markdown => customs_report::gate_markdown(&result),
        ReportFormat::Vex => customs_report::gate_vex(&result, &DocumentStamp::now()),
        ReportFormat::Sarif => customs_report::gate_sarif(&result),
        ReportFormat::Table => gate_table(&result, a.show_suppressed, false, split, &coverage, !a.no_secrets),
    };
    for (format, path) in &a.reports {
        emit(&render(*format), Some(path))?;
    }
    // A report on standard output (`--report json=-`) keeps it clean for a pipe: the table goes to stderr then.
    if a.reports.iter().any(|(_, p)| p == Path::new("-")) {
        eprint!("{}", gate_table(&result, a.show_suppressed, false, split, &coverage, !a.no_secrets));
    } else {
        emit(
            &gate_table(&result, a.show_suppressed, color(), split, &coverage, !a.no_secrets),
            None,
        )?;
    }
    Ok(if verdict.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit_code)
    })
}

/// `customs exclusions check`: the policy's regular review of accepted risks.
pub(crate) fn check_exclusions(
    image: Option<String>,
    db: &DbArgs,
    policy: Option<PathBuf>,
    exclusions: Option<PathBuf>,
    warn_days: i64,
) -> Result<ExitCode> {
    let (file, base) = load_policy(policy)?;
    let path = exclusions
        .or_else(|| file.exceptions.file.as_ref().map(|f| base.join(f)))
        .unwrap_or_else(|| PathBuf::from("exclusions.json"));
    let require_reason = file.exceptions.require_reason.unwrap_or(false);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading exclusions {}", path.display()))?;
    // Read leniently about reasons here: listing the missing ones is the point.
    let exceptions = customs_policy::exclusions::parse(&text, &path.display().to_string(), false)?;
    let thresholds = customs_policy::Thresholds {
        max_exception_age_days: file.exceptions.max_age_days,
        ..customs_policy::Thresholds::default()
    };
    let today = time::OffsetDateTime::now_utc().date();
    let label = |e: &customs_policy::Exception| {
        let what: Vec<&str> = [e.id.as_deref(), e.library_name.as_deref()].into_iter().flatten().collect();
        format!("{}:{} {}", path.display(), e.line, what.join(" in "))
    };
    let mut needs_action = 0;
    let mut out = String::new();
    for e in &exceptions {
        if let Some(why) = customs_policy::expiry(e, &thresholds, today) {
            needs_action += 1;
            out.push_str(&format!("expired   {}: {why}\n", label(e)));
            continue;
        }
        let last_day = e.expires.or_else(|| {
            e.date
                .zip(thresholds.max_exception_age_days)
                .and_then(|(d, n)| d.checked_add(time::Duration::days(n)))
        });
        if let Some(d) = last_day
            && (d - today).whole_days() <= warn_days
        {
            out.push_str(&format!(
                "expiring  {}: valid until {d} ({} days)\n",
                label(e),
                (d - today).whole_days()
            ));
        }
        if e.reason.is_none() {
            if require_reason {
                needs_action += 1;
            }
            out.push_str(&format!("no reason {}: document why the risk is accepted\n", label(e)));
        }
    }
    if let Some(image) = image {
        let target = Target {
            image,
            platform: None,
            registry: RegistryArgs {
                username: None,
                password: None,
                password_stdin: false,
                ca_file: None,
                plain_http: false,
            },
            source: false,
            rootfs: false,
            include_dev_deps: false,
        };
        let freshness = Freshness {
            db_max_age: i64::MAX,
            fail_on_stale_db: false,
        };
        // Secrets too, in the same pass, with the gate's rules: a secret exception is used when it suppresses one.
        let scanner = secret_scanner(None, customs_secrets::ScanOptions::default())?;
        let ImageScan {
            subject,
            findings,
            secrets,
            ..
        } = vulnerabilities(&Pass {
            target: &target,
            db,
            freshness: &freshness,
            pkg_types: &[PkgType::Os, PkgType::Library],
            secrets: Some(&scanner),
            require_data: false,
            vuln: true,
            skip: &Skip::default(),
        })?;
        let mut verdict = customs_policy::decide(&findings, &exceptions, &thresholds, today);
        let hits = secret_hits(&secrets);
        let (_, secret_suppressed) = customs_policy::decide_rule_hits(&hits, &exceptions, &thresholds, today);
        verdict.unused.retain(|&i| !secret_suppressed.iter().any(|s| s.exception == i));
        // Lint exceptions are checked by `customs gate --dockerfile`; with an image alone they cannot be judged.
        let (lint_rules, unused): (Vec<usize>, Vec<usize>) = verdict
            .unused
            .iter()
            .partition(|&&i| exceptions[i].id.as_deref().is_some_and(|id| customs_dockerfile::rule(id).is_some()));
        for &i in &lint_rules {
            out.push_str(&format!(
                "not checked {}: a Dockerfile rule; `customs gate IMAGE --dockerfile FILE` uses it\n",
                label(&exceptions[i])
            ));
        }
        for &i in &unused {
            needs_action += 1;
            out.push_str(&format!(
                "unused    {}: matches no finding in {}; remove it if the risk is gone\n",
                label(&exceptions[i]),
                subject.name
            ));
        }
    }
    out.push_str(&format!("{} exceptions, {needs_action} need action\n", exceptions.len()));
    emit(&out, None)?;
    Ok(if needs_action == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Calls every webhook the policy (or `CUSTOMS_NOTIFY_URL`) names; delivery problems are only warnings.
pub(crate) fn notify_all(
    policy: &customs_policy::PolicyFile,
    subject: &Subject,
    findings: &[customs_vulndb::Finding],
    verdict: &customs_policy::Verdict,
) {
    let mut targets: Vec<(String, customs_policy::NotifyFormat, bool)> = Vec::new();
    for t in &policy.notify {
        let url = match (&t.url, &t.url_env) {
            (Some(u), _) => Some(u.clone()),
            (None, Some(var)) => std::env::var(var).ok().filter(|v| !v.is_empty()).or_else(|| {
                eprintln!("warning: notification skipped: environment variable {var} is not set");
                None
            }),
            (None, None) => None,
        };
        if let Some(url) = url {
            targets.push((url, t.format, t.always));
        }
    }
    if let Ok(url) = std::env::var("CUSTOMS_NOTIFY_URL")
        && !url.is_empty()
    {
        let format = match std::env::var("CUSTOMS_NOTIFY_FORMAT").as_deref() {
            Ok("slack") => customs_policy::NotifyFormat::Slack,
            Ok("teams") => customs_policy::NotifyFormat::Teams,
            _ => customs_policy::NotifyFormat::Json,
        };
        targets.push((url, format, false));
    }
    let notice = notify::Notice {
        image: &subject.name,
        pass: verdict.pass,
        reasons: &verdict.reasons,
        failing: verdict.failing.iter().map(|&i| &findings[i]).collect(),
    };
    for (url, format, always) in targets {
        if verdict.pass && !always {
            continue;
        }
        match notify::send(&url, &notify::payload(format, &notice), 3, std::time::Duration::from_secs(10)) {
            Ok(()) => eprintln!("notified {}", notify::mask(&url)),
            Err(e) => eprintln!("warning: notification failed: {e}"),
        }
    }
}

/// Keeps the findings `--severity` shows (failing ones always), re-indexing the verdict to match.
pub(crate) fn shown(
    findings: Vec<customs_vulndb::Finding>,
    verdict: &customs_policy::Verdict,
    severity: &[Severity],
) -> (Vec<customs_vulndb::Finding>, customs_policy::Verdict) {
    let mut index = vec![None; findings.len()];
    let mut kept = Vec::new();
    for (i, f) in findings.into_iter().enumerate() {
        if verdict.failing.contains(&i) || severity.is_empty() || severity.contains(&f.severity) {
            index[i] = Some(kept.len());
            kept.push(f);
        }
    }
    let mut v = verdict.clone();
    v.failing = verdict.failing.iter().filter_map(|&i| index[i]).collect();
    v.suppressed = verdict
        .suppressed
        .iter()
        .filter_map(|s| {
            index[s.finding].map(|finding| customs_policy::Suppression {
                finding,
                exception: s.exception,
            })
        })
        .collect();
    (kept, v)
}

/// The gate for people: the findings that count, then the verdict and its reasons.
pub(crate) fn gate_table(
    r: &customs_report::GateResult<'_>,
    show_suppressed: bool,
    color: bool,
    base: Option<usize>,
    coverage: &[customs_vulndb::Coverage],
    secrets_scanned: bool,
) -> String {
    let (from_base, own): (Vec<_>, Vec<_>) = r
        .unsuppressed()
        .into_iter()
        .partition(|f| base.is_some_and(|n| f.package.layer.is_some_and(|l| l < n)));
    let mut out = customs_report::findings_table_styled(r.subject, &own, r.warnings, color);
    if base.is_some() {
        out.push_str("\nfrom the base image (does not fail the gate):\n");
        out.push_str(&customs_report::findings_table_styled(r.subject, &from_base, &[], color));
    }
    if !r.secret_failing.is_empty() {
        let failing: Vec<customs_secrets::ImageFinding> = r.secret_failing.iter().map(|&i| r.secrets[i].clone()).collect();
        out.push('\n');
        out.push_str(&secrets_table(r.subject, &failing, &[]));
    }
    if show_suppressed && !r.secret_suppressed.is_empty() {
        out.push_str("\nsecrets suppressed by exceptions:\n");
        for s in r.secret_suppressed {
            let f = &r.secrets[s.finding].finding;
            out.push_str(&format!(
                "  {} in {}:{} (exception {})\n",
                f.rule_id,
                f.path,
                f.line,
                r.exceptions[s.exception].place()
            ));
        }
    }
    if show_suppressed && !r.verdict.suppressed.is_empty() {
        out.push_str("\nsuppressed by exceptions:\n");
        for s in &r.verdict.suppressed {
            let (f, e) = (&r.findings[s.finding], &r.exceptions[s.exception]);
            out.push_str(&format!(
                "  {} in {} {} (exception {}{})\n",
                f.id,
                f.package.name,
                f.package.version,
                e.place(),
                e.reason.as_deref().map(|x| format!(": {x}")).unwrap_or_default()
            ));
        }
    }
    if let Some(l) = r.lint
        && !l.report.findings.is_empty()
    {
        out.push('\n');
        out.push_str(&customs_report::lint_tty(std::slice::from_ref(l), color));
    }
    for &i in &r.verdict.unused {
        out.push_str(&format!(
            "note: exception {} matched nothing; remove it if the risk is gone\n",
            r.exceptions[i].place()
        ));
    }
    out.push('\n');
    out.push_str(&customs_report::scan_summary(
        coverage,
        r.findings,
        secrets_scanned.then_some(r.secrets),
    ));
    out.push('\n');
    for reason in &r.verdict.reasons {
        out.push_str(reason);
        out.push('\n');
    }
    out
}

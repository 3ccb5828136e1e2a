//! `customs scan` and `customs secrets`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};
use customs_oci::OpenOptions;
use customs_report::{DocumentStamp, Subject};
use customs_vulndb::{FixState, Severity};

use crate::args::*;
use crate::color;
use crate::inspect::{ImageScan, Pass, base_layer_split, check_platform, open_image, secret_scanner, vulnerabilities};
use crate::output::emit;
use customs_inspect::redacted_layers;

/// Secrets for people: one line each, masked, with layer and whether a later layer deleted the file.
pub(crate) fn secrets_table(subject: &Subject, findings: &[customs_secrets::ImageFinding], warnings: &[String]) -> String {
    let mut out = format!("{}: {} secrets\n", subject.name, findings.len());
    for f in findings {
        let place = match (f.layer, f.hidden.as_deref(), f.hidden_in) {
            (Some(l), Some(how), Some(by)) => format!("layer {l}, {how} in layer {by} but still in the image"),
            (Some(l), _, _) => format!("layer {l}"),
            (None, _, _) => "image config".to_string(),
        };
        out.push_str(&format!(
            "{:<8} {:<28} {}:{} ({place})\n         {}\n",
            f.finding.severity.as_str(),
            f.finding.rule_id,
            f.finding.path,
            f.finding.line,
            f.finding.context
        ));
    }
    for w in warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

pub(crate) fn history_table(scan: &customs_secrets::HistoryScan) -> String {
    let mut out = format!(
        "git history: {} secrets in {} commits ({} blobs)\n",
        scan.findings.len(),
        scan.commits,
        scan.blobs
    );
    for f in &scan.findings {
        out.push_str(&format!(
            "{:<8} {:<28} {}:{} (commit {}, {}, {}{})\n         {}\n",
            f.finding.severity.as_str(),
            f.finding.rule_id,
            f.finding.path,
            f.finding.line,
            &f.commit[..f.commit.len().min(12)],
            f.author,
            f.date,
            if f.in_head {
                "; still in HEAD"
            } else {
                "; removed since, still in every clone"
            },
            f.finding.context
        ));
    }
    for w in &scan.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

/// `customs scan`'s flags.
#[derive(clap::Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub db: DbArgs,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = VulnFormat::Table)]
    pub format: VulnFormat,
    /// Show only these severities (comma-separated: CRITICAL,HIGH,MEDIUM,LOW,UNKNOWN).
    #[arg(long, value_delimiter = ',')]
    pub severity: Vec<Severity>,
    /// Hide vulnerabilities that have no fixed version yet.
    #[arg(long)]
    pub ignore_unfixed: bool,
    /// Hide vulnerabilities in these states (comma-separated: fixed, affected, will_not_fix, fix_deferred,
    /// end_of_life).
    #[arg(long, value_delimiter = ',', value_parser = parse_status)]
    pub ignore_status: Vec<Option<FixState>>,
    /// Package types to scan: `os` (dpkg, apk, rpm), `library` (language packages), or both.
    #[arg(long, value_delimiter = ',', default_values = ["os", "library"])]
    pub pkg_types: Vec<PkgType>,
    #[command(flatten)]
    pub freshness: Freshness,
    /// What to look for: `vuln` (known vulnerabilities) and `secret` (keys, tokens, passwords; the same
    /// pass over the image, rules from ./customs-secret.yaml when present).
    #[arg(long, value_delimiter = ',', default_values = ["vuln", "secret"])]
    pub scanners: Vec<ScanKind>,
    #[command(flatten)]
    pub skip: Skip,
    #[command(flatten)]
    pub base: BaseImage,
    /// JSON: also list every package, vulnerable or not (Trivy's --list-all-pkgs).
    #[arg(long)]
    pub list_all_pkgs: bool,
    /// Exit with this code when anything at or above --severity is found (Trivy's --exit-code; the default 0
    /// keeps exit 0 either way; `customs gate` is the build breaker with exceptions).
    #[arg(long, default_value_t = 0)]
    pub exit_code: u8,
    /// Exit with this code when the distribution release is past its security support (it is a warning either
    /// way).
    #[arg(long, default_value_t = 0)]
    pub exit_on_eol: u8,
    /// Write to this file instead of standard output (replaced atomically).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// `customs scan`: vulnerabilities and secrets, shown; `--exit-code` makes findings fail the step.
pub fn run_scan(a: ScanArgs) -> Result<ExitCode> {
    let vuln = a.scanners.contains(&ScanKind::Vuln);
    if !vuln && matches!(a.format, VulnFormat::Cyclonedx | VulnFormat::SpdxJson | VulnFormat::Github) {
        bail!("--format cyclonedx, spdx-json and github describe packages: add `vuln` to --scanners");
    }
    let secret_rules = if a.scanners.contains(&ScanKind::Secret) {
        Some(secret_scanner(None, a.skip.secret_options(Vec::new()))?)
    } else {
        None
    };
    let scan = vulnerabilities(&Pass {
        target: &a.target,
        db: &a.db,
        freshness: &a.freshness,
        pkg_types: &a.pkg_types,
        secrets: secret_rules.as_ref(),
        require_data: false,
        vuln,
        skip: &a.skip,
    })?;
    let split = base_layer_split(&a.base, &scan, &a.target)?;
    let mut scan = scan;
    let eol = customs_inspect::note_support(&mut scan, time::OffsetDateTime::now_utc().date());
    let ImageScan {
        subject,
        inventory,
        mut findings,
        mut warnings,
        mut secrets,
        coverage,
        ..
    } = scan;
    let (all_findings, all_secrets) = (findings.len(), secrets.len());
    findings.retain(|f| {
        (a.severity.is_empty() || a.severity.contains(&f.severity))
            && !(a.ignore_unfixed && f.fix_state != FixState::Fixed)
            && !a.ignore_status.contains(&Some(f.fix_state))
    });
    // --severity applies to secrets too (rule severities, LOW to CRITICAL).
    secrets.retain(|s| a.severity.is_empty() || a.severity.iter().any(|v| v.as_str() == s.finding.severity.as_str()));
    let hidden = (all_findings - findings.len(), all_secrets - secrets.len());
    if hidden != (0, 0) {
        let filters: Vec<&str> = [
            (!a.severity.is_empty()).then_some("--severity"),
            a.ignore_unfixed.then_some("--ignore-unfixed"),
            (!a.ignore_status.is_empty()).then_some("--ignore-status"),
        ]
        .into_iter()
        .flatten()
        .collect();
        warnings.push(format!(
            "{} vulnerabilities and {} secrets not shown ({})",
            hidden.0,
            hidden.1,
            filters.join(", ")
        ));
    }
    // With --exclude-base, what the base image's layers bring is listed apart.
    let in_base = |layer: Option<usize>| split.is_some_and(|n| layer.is_some_and(|l| l < n));
    let (base_findings, findings): (Vec<_>, Vec<_>) = findings.into_iter().partition(|f| in_base(f.package.layer));
    let (base_secrets, secrets): (Vec<_>, Vec<_>) = secrets.into_iter().partition(|s| in_base(s.layer));
    // The image's own findings, then the base image's: what the formats without a "base" section list.
    let every: Vec<_> = findings.iter().chain(&base_findings).cloned().collect();
    let every_secret: Vec<_> = secrets.iter().chain(&base_secrets).cloned().collect();
    if let Some(n) = split {
        warnings.push(format!(
            "{} vulnerabilities and {} secrets come from the base image (its {n} bottom layers) and are listed apart (--exclude-base)",
            base_findings.len(),
            base_secrets.len()
        ));
    }
    let stamp = DocumentStamp::now();
    let text = match a.format {
        VulnFormat::Table => {
            let styled = a.output.is_none() && color();
            let mut text = if vuln {
                customs_report::findings_table_styled(&subject, &findings, &warnings, styled)
            } else {
                secrets_table(&subject, &secrets, &warnings)
            };
            if vuln && secret_rules.is_some() {
                text.push('\n');
                text.push_str(&secrets_table(&subject, &secrets, &[]));
            }
            if split.is_some() {
                text.push_str("\nfrom the base image:\n");
                if vuln {
                    text.push_str(&customs_report::findings_table_styled(&subject, &base_findings, &[], styled));
                }
                if secret_rules.is_some() {
                    text.push_str(&secrets_table(&subject, &base_secrets, &[]));
                }
            }
            text.push('\n');
            text.push_str(&customs_report::scan_summary(
                &coverage,
                &every,
                secret_rules.is_some().then_some(every_secret.as_slice()),
            ));
            text
        }
        VulnFormat::Json => {
            let mut doc: serde_json::Value = serde_json::from_str(&customs_report::findings_json(&subject, &findings, &warnings))?;
            if secret_rules.is_some() {
                doc["secrets"] = serde_json::to_value(&secrets)?;
            }
            if let Some(n) = split {
                doc["base_image"] = serde_json::json!({"layers": n, "findings": base_findings, "secrets": base_secrets});
            }
            if let Some(distro) = &inventory.distro {
                let support = customs_vulndb::support(distro);
                doc["distro"] = serde_json::json!({
                    "id": distro.id,
                    "version_id": distro.version_id,
                    "security_support_ends": support.as_ref().map(|s| s.ends.to_string()),
                    "eol": eol.is_some(),
                });
            }
            if vuln {
                doc["coverage"] = serde_json::to_value(&coverage)?;
            }
            if a.list_all_pkgs {
                doc["packages"] = serde_json::to_value(&inventory.packages)?;
            }
            serde_json::to_string_pretty(&doc)? + "\n"
        }
        VulnFormat::Sarif => {
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            customs_report::findings_sarif_with_secrets(&subject, &every, &every_secret)
        }
        VulnFormat::Cyclonedx | VulnFormat::SpdxJson | VulnFormat::Github => {
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            match a.format {
                VulnFormat::Cyclonedx => customs_report::cyclonedx_with_vulnerabilities(&subject, &inventory, &every, &stamp),
                VulnFormat::SpdxJson => customs_report::spdx(&subject, &inventory, &stamp),
                _ => customs_report::github_snapshot(&subject, &inventory, &github_job()?, &stamp),
            }
        }
    };
    emit(&text, a.output.as_deref())?;
    if a.exit_code != 0 && !(every.is_empty() && every_secret.is_empty()) {
        return Ok(ExitCode::from(a.exit_code));
    }
    if a.exit_on_eol != 0 && eol.is_some() {
        return Ok(ExitCode::from(a.exit_on_eol));
    }
    Ok(ExitCode::SUCCESS)
}

/// The workflow run a dependency snapshot belongs to, from the variables GitHub Actions sets.
fn github_job() -> Result<customs_report::GithubJob> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(sha), Some(git_ref)) = (var("GITHUB_SHA"), var("GITHUB_REF")) else {
        bail!("--format github needs GITHUB_SHA and GITHUB_REF (GitHub Actions sets them; elsewhere set them to the commit and ref)");
    };
    if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("GITHUB_SHA {sha:?}: a dependency snapshot needs the commit's 40 hex digits");
    }
    Ok(customs_report::GithubJob {
        sha,
        git_ref,
        run_id: var("GITHUB_RUN_ID").unwrap_or_else(|| "0".into()),
        correlator: format!(
            "{}_{}",
            var("GITHUB_WORKFLOW").unwrap_or_else(|| "customs".into()),
            var("GITHUB_JOB").unwrap_or_else(|| "scan".into())
        ),
    })
}

/// `customs secrets`'s flags.
#[derive(clap::Args)]
pub struct SecretsArgs {
    /// The image: a docker-archive tarball, an OCI layout, a folder or a registry reference.
    #[arg(required_unless_present = "list_rules")]
    pub image: Option<String>,
    /// Platform to pick from a multi-platform image [default: linux/amd64].
    #[arg(long, env = "CUSTOMS_PLATFORM")]
    pub platform: Option<customs_oci::Platform>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print the built-in rules (id, severity, category, title, former ids), then exit.
    #[arg(long)]
    pub list_rules: bool,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = ScanFormat::Table)]
    pub format: ScanFormat,
    #[command(flatten)]
    pub skip: Skip,
    /// Skip the base image's layers, found from the image history.
    #[arg(long)]
    pub skip_base_layers: bool,
    /// Skip this many bottom layers (when the history cannot tell the base image apart).
    #[arg(long, conflicts_with = "skip_base_layers")]
    pub base_layers: Option<usize>,
    /// Rule ids not to run; repeat for several.
    #[arg(long = "disable-rule", value_delimiter = ',')]
    pub disable_rules: Vec<String>,
    /// Rules file in Trivy's `trivy-secret.yaml` format [default: ./customs-secret.yaml when present].
    #[arg(long, env = "CUSTOMS_SECRET_CONFIG")]
    pub config: Option<PathBuf>,
    /// TARGET is a git repository: also scan every blob any commit on any ref ever added (needs `git`).
    #[arg(long)]
    pub history: bool,
    /// Exit with this code when any secret is found (Trivy's --exit-code; 0 keeps exit 0 either way).
    #[arg(long, default_value_t = 0)]
    pub exit_code: u8,
    /// Write to this file instead of standard output (replaced atomically).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// The built-in rules for people: what a rules file or `--disable-rule` may name.
fn rules_table() -> String {
    let mut out = String::new();
    for r in customs_secrets::BUILTIN {
        let former = customs_secrets::former_ids(r.id);
        out.push_str(&format!(
            "{:<42} {:<8} {:<22} {}{}\n",
            r.id,
            r.severity.as_str(),
            r.category,
            r.title,
            if former.is_empty() {
                String::new()
            } else {
                format!(" (formerly {})", former.join(", "))
            }
        ));
    }
    out.push_str(&format!("{} rules\n", customs_secrets::BUILTIN.len()));
    out
}

/// `customs secrets`: secrets in an image, a folder or (with `--history`) a git history.
pub fn run_secrets(a: SecretsArgs) -> Result<ExitCode> {
    let SecretsArgs {
        image,
        platform,
        registry,
        list_rules,
        format,
        skip,
        skip_base_layers,
        base_layers,
        disable_rules,
        config,
        history,
        exit_code,
        output,
    } = a;
    if list_rules {
        emit(&rules_table(), output.as_deref())?;
        return Ok(ExitCode::SUCCESS);
    }
    let target = Target {
        image: image.expect("clap requires it without --list-rules"),
        platform,
        registry,
        source: false,
        rootfs: false,
        include_dev_deps: false,
    };
    let scanner = secret_scanner(config.as_deref(), skip.secret_options(disable_rules))?;
    let options = OpenOptions {
        platform: target.platform.clone().unwrap_or_default(),
        registry: target.registry.options(&target.image),
    };
    let img = open_image(&target.image, &options)?;
    check_platform(&img, target.platform.as_ref())?;
    let mut warnings = Vec::new();
    let first_layer = match (skip_base_layers, base_layers) {
        (_, Some(n)) => n,
        (true, None) => customs_secrets::base_layer_count(&img.config).unwrap_or_else(|| {
            warnings
                .push("the image history does not show where the base image ends; all layers were scanned (use --base-layers N)".into());
            0
        }),
        (false, None) => 0,
    };
    let view = img.filesystem(&customs_secrets::SecretInterest {
        scanner: &scanner,
        first_layer,
    })?;
    warnings.extend(view.warnings.iter().cloned());
    let findings = customs_secrets::image_findings(&view, &img.config, &scanner, first_layer);
    let subject = Subject {
        name: img.name.clone(),
        manifest_digest: img.manifest_digest.clone(),
        config_digest: img.config_digest.clone(),
        tags: img.tags.clone(),
        platform: None,
        layers: redacted_layers(&view.layers),
    };
    let past = if history {
        let repo = Path::new(target.image.trim_start_matches("dir:"));
        if !repo.is_dir() {
            bail!("--history needs TARGET to be a git repository's folder, not {}", target.image);
        }
        Some(customs_secrets::scan_history(repo, &scanner)?)
    } else {
        None
    };
    let text = match format {
        ScanFormat::Sarif => {
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            if let Some(past) = &past {
                eprintln!(
                    "note: {} secret(s) from the git history are in the JSON and table formats, not SARIF",
                    past.findings.len()
                );
            }
            customs_report::findings_sarif_with_secrets(&subject, &[], &findings)
        }
        ScanFormat::Json => {
            let mut doc = serde_json::json!({"schema": "customs.secrets/v1", "subject": subject, "skipped_layers": first_layer, "findings": findings, "warnings": warnings});
            if let Some(past) = &past {
                doc["history"] = serde_json::to_value(past)?;
            }
            serde_json::to_string_pretty(&doc)? + "\n"
        }
        ScanFormat::Table => {
            let mut text = secrets_table(&subject, &findings, &warnings);
            if let Some(past) = &past {
                text.push_str(&history_table(past));
            }
            text
        }
    };
    emit(&text, output.as_deref())?;
    let found = !findings.is_empty() || past.as_ref().is_some_and(|p| !p.findings.is_empty());
    if exit_code != 0 && found {
        return Ok(ExitCode::from(exit_code));
    }
    Ok(ExitCode::SUCCESS)
}

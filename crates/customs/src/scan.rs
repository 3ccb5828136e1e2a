//! `customs scan` and `customs secrets`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};
use customs_oci::OpenOptions;
use customs_report::Subject;
use customs_vulndb::{FixState, Severity};

use crate::args::*;
use crate::color;
use crate::inspect::{check_platform, open_image, redacted_layers, secret_scanner, vulnerabilities};
use crate::output::emit;

/// Secrets for people: one line each, masked, with layer and whether a later layer deleted the file.
pub(crate) fn secrets_table(subject: &Subject, findings: &[customs_secrets::ImageFinding], warnings: &[String]) -> String {
    let mut out = format!("{}: {} secrets\n", subject.name, findings.len());
    for f in findings {
        let place = match (f.layer, f.hidden, f.hidden_in) {
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
    #[arg(long, short, value_enum, default_value_t = ScanFormat::Table)]
    pub format: ScanFormat,
    /// Show only these severities (comma-separated: CRITICAL,HIGH,MEDIUM,LOW,UNKNOWN).
    #[arg(long, value_delimiter = ',')]
    pub severity: Vec<Severity>,
    /// Hide vulnerabilities that have no fixed version yet.
    #[arg(long)]
    pub ignore_unfixed: bool,
    /// Package types to scan: `os` (dpkg, apk, rpm), `library` (language packages), or both.
    #[arg(long, value_delimiter = ',', default_values = ["os", "library"])]
    pub pkg_types: Vec<PkgType>,
    #[command(flatten)]
    pub freshness: Freshness,
    /// What to look for: `vuln` (known vulnerabilities) and `secret` (keys, tokens, passwords; the same
    /// pass over the image, rules from ./customs-secret.yaml when present).
    #[arg(long, value_delimiter = ',', default_values = ["vuln", "secret"])]
    pub scanners: Vec<ScanKind>,
    /// Exit with this code when anything at or above --severity is found (Trivy's --exit-code; the default 0
    /// keeps exit 0 either way; `customs gate` is the build breaker with exceptions).
    #[arg(long, default_value_t = 0)]
    pub exit_code: u8,
    /// Write to this file instead of standard output (replaced atomically).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// `customs scan`: vulnerabilities and secrets, shown; `--exit-code` makes findings fail the step.
pub fn run_scan(a: ScanArgs) -> Result<ExitCode> {
    let ScanArgs {
        target,
        db,
        format,
        severity,
        ignore_unfixed,
        pkg_types,
        freshness,
        scanners,
        exit_code,
        output,
    } = a;
    let vuln = scanners.contains(&ScanKind::Vuln);
    let secret_rules = if scanners.contains(&ScanKind::Secret) {
        Some(secret_scanner(None, customs_secrets::ScanOptions::default())?)
    } else {
        None
    };
    let (subject, mut findings, mut warnings, mut secrets, _) =
        vulnerabilities(&target, &db, &freshness, &pkg_types, secret_rules.as_ref(), false, vuln)?;
    let (all_findings, all_secrets) = (findings.len(), secrets.len());
    findings
        .retain(|f| (severity.is_empty() || severity.contains(&f.severity)) && !(ignore_unfixed && f.fix_state != FixState::Fixed));
    // --severity applies to secrets too (rule severities, LOW to CRITICAL).
    secrets.retain(|s| severity.is_empty() || severity.iter().any(|v| v.as_str() == s.finding.severity.as_str()));
    let hidden = (all_findings - findings.len(), all_secrets - secrets.len());
    if hidden != (0, 0) {
        warnings.push(format!(
            "{} vulnerabilities and {} secrets not shown (--severity{})",
            hidden.0,
            hidden.1,
            if ignore_unfixed { ", --ignore-unfixed" } else { "" }
        ));
    }
    let text = match format {
        ScanFormat::Table if !vuln => secrets_table(&subject, &secrets, &warnings),
        ScanFormat::Table => {
            let mut text = customs_report::findings_table_styled(&subject, &findings, &warnings, output.is_none() && color());
            if secret_rules.is_some() {
                text.push('\n');
                text.push_str(&secrets_table(&subject, &secrets, &[]));
            }
            text
        }
        ScanFormat::Json => {
            let text = customs_report::findings_json(&subject, &findings, &warnings);
            match &secret_rules {
                None => text,
                Some(_) => {
                    let mut doc: serde_json::Value = serde_json::from_str(&text)?;
                    doc["secrets"] = serde_json::to_value(&secrets)?;
                    serde_json::to_string_pretty(&doc)? + "\n"
                }
            }
        }
        ScanFormat::Sarif => {
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            customs_report::findings_sarif_with_secrets(&subject, &findings, &secrets)
        }
    };
    emit(&text, output.as_deref())?;
    if exit_code != 0 && !(findings.is_empty() && secrets.is_empty()) {
        return Ok(ExitCode::from(exit_code));
    }
    Ok(ExitCode::SUCCESS)
}

/// `customs secrets`'s flags.
#[derive(clap::Args)]
pub struct SecretsArgs {
    #[command(flatten)]
    pub target: Target,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = ScanFormat::Table)]
    pub format: ScanFormat,
    /// Directories not to report (globs, relative to the root); repeat for several.
    #[arg(long = "skip-dirs", value_delimiter = ',')]
    pub skip_dirs: Vec<String>,
    /// Files not to report (globs); repeat for several.
    #[arg(long = "skip-files", value_delimiter = ',')]
    pub skip_files: Vec<String>,
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
    #[arg(long)]
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

/// `customs secrets`: secrets in an image, a folder or (with `--history`) a git history.
pub fn run_secrets(a: SecretsArgs) -> Result<ExitCode> {
    let SecretsArgs {
        target,
        format,
        skip_dirs,
        skip_files,
        skip_base_layers,
        base_layers,
        disable_rules,
        config,
        history,
        exit_code,
        output,
    } = a;
    let skip: Vec<String> = skip_dirs
        .iter()
        .map(|d| format!("{}/**", d.trim_matches('/')))
        .chain(skip_files.iter().map(|f| f.trim_start_matches('/').to_string()))
        .collect();
    let scanner = secret_scanner(
        config.as_deref(),
        customs_secrets::ScanOptions {
            skip,
            disable: disable_rules,
        },
    )?;
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
            warnings.push(
                "the image history does not show where the base image ends; all layers were scanned (use --base-layers N)".into(),
            );
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

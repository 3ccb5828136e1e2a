//! `customs lint`: Dockerfiles against the policy's rules and hadolint's.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use customs_dockerfile::{Level, LintConfig, LintContext, RULES, lint};
use customs_report::LintedFile;

/// Output formats of `customs lint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    /// Findings with the source line and the fix (coloured on a terminal).
    Tty,
    /// Stable JSON (docs/json-reports.md).
    Json,
    /// SARIF 2.1.0 for GitHub code scanning.
    Sarif,
    /// JUnit XML for Azure DevOps and other CI test tabs.
    Junit,
    /// Checkstyle XML for Jenkins and editors.
    Checkstyle,
}

/// Arguments of `customs lint`.
#[derive(clap::Args)]
pub struct LintArgs {
    /// Dockerfiles to lint (`-` reads standard input).
    #[arg(default_value = "Dockerfile")]
    pub files: Vec<PathBuf>,
    /// Lint config [default: .customs-lint.yaml, else .hadolint.yaml, in the current folder].
    #[arg(long, short, env = "CUSTOMS_LINT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = LintFormat::Tty)]
    pub format: LintFormat,
    /// Fail (exit 1) on findings at or above this level: error, warning, info, style or none [default: the config's, else warning].
    #[arg(long, value_parser = parse_threshold)]
    pub failure_threshold: Option<Threshold>,
    /// Never report this rule (repeatable; hadolint ids work).
    #[arg(long = "ignore", value_name = "RULE")]
    pub ignore: Vec<String>,
    /// Allow FROM images only from this registry (repeatable; enables DL3026).
    #[arg(long = "trusted-registry", value_name = "REGISTRY")]
    pub trusted_registries: Vec<String>,
    /// The build context, checked for a .dockerignore (CP006) [default: each Dockerfile's folder].
    #[arg(long)]
    pub context: Option<PathBuf>,
    /// Write to this file instead of standard output (replaced atomically).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Print the rules with their levels and fixes, then exit.
    #[arg(long)]
    pub list_rules: bool,
    /// No colours in tty output.
    #[arg(long)]
    pub no_color: bool,
}

/// A failure threshold: a level, or never fail.
#[derive(Clone, Copy, Debug)]
pub struct Threshold(pub Option<Level>);

fn parse_threshold(s: &str) -> Result<Threshold, String> {
    match s {
        "none" | "ignore" => Ok(Threshold(None)),
        other => Level::parse(other)
            .map(|l| Threshold(Some(l)))
            .ok_or_else(|| format!("unknown level {other:?}: use error, warning, info, style or none")),
    }
}

/// Finds and reads the lint config, then applies the command-line flags over it.
pub fn load_config(explicit: Option<&Path>, ignore: &[String], trusted: &[String], threshold: Option<Threshold>) -> Result<LintConfig> {
    let path = explicit.map(Path::to_path_buf).or_else(|| {
        [".customs-lint.yaml", ".customs-lint.yml", ".hadolint.yaml", ".hadolint.yml"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    });
    let mut config = match &path {
        Some(p) => LintConfig::read(p)?,
        None => LintConfig::new(),
    };
    for id in ignore {
        let rule =
            customs_dockerfile::rule(id).with_context(|| format!("--ignore {id}: unknown rule (see `customs lint --list-rules`)"))?;
        config.ignored.push(rule.id.to_string());
    }
    config.trusted_registries.extend(trusted.iter().cloned());
    if let Some(t) = threshold {
        config.failure_threshold = t.0;
    }
    Ok(config)
}

/// Lints one Dockerfile text; `dir` is where to look for `.dockerignore`.
pub fn lint_file(
    path: &str,
    source: String,
    config: &LintConfig,
    dockerignore_dir: Option<&Path>,
    secrets: &customs_secrets::Scanner,
) -> LintedFile {
    let has_dockerignore = dockerignore_dir.map(|d| d.join(".dockerignore").is_file());
    let report = lint(
        &source,
        config,
        &LintContext {
            has_dockerignore,
            secrets: Some(secrets),
        },
    );
    // Reports quote source lines: never with a secret in them.
    let secret_lines: Vec<usize> = report.findings.iter().filter(|f| f.rule == "CP004").map(|f| f.line).collect();
    let source = secrets
        .redact(&source)
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if secret_lines.contains(&(i + 1)) {
                mask_assignments(line)
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    LintedFile {
        path: path.to_string(),
        source,
        report,
    }
}

/// `ENV A=secret B=x` -> `ENV A=se**** B=x*`: every value after `=` masked.
fn mask_assignments(line: &str) -> String {
    if !line.contains('=') {
        // Legacy `ENV KEY value`: everything after the key.
        let mut words = line.splitn(3, ' ');
        let (keyword, key, value) = (
            words.next().unwrap_or_default(),
            words.next().unwrap_or_default(),
            words.next().unwrap_or_default(),
        );
        return format!("{keyword} {key} {}", customs_secrets::mask(value));
    }
    line.split(' ')
        .map(|word| match word.split_once('=') {
            Some((key, value)) if !value.is_empty() => format!("{key}={}", customs_secrets::mask(value)),
            _ => word.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads a Dockerfile, naming it in the error.
pub fn read_dockerfile(path: &Path) -> Result<String> {
    let bytes = if path == Path::new("-") {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .context("reading the Dockerfile from standard input")?;
        b
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
    };
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{}: not UTF-8 text; is this a Dockerfile?", path.display()))
}

/// `customs lint`.
pub fn run(a: LintArgs, emit: impl Fn(&str, Option<&Path>) -> Result<()>) -> Result<ExitCode> {
    if a.list_rules {
        let mut out = String::new();
        for r in RULES {
            out.push_str(&format!(
                "{:<7} {:<8} {}\n        fix: {}\n",
                r.id,
                r.level.as_str(),
                r.title,
                r.fix
            ));
        }
        emit(&out, a.output.as_deref())?;
        return Ok(ExitCode::SUCCESS);
    }
    let config = load_config(a.config.as_deref(), &a.ignore, &a.trusted_registries, a.failure_threshold)?;
    let secrets = customs_secrets::Scanner::builtin();
    let mut files = Vec::new();
    for path in &a.files {
        if path.is_dir() {
            bail!(
                "{} is a folder: name the Dockerfile inside it (e.g. {}/Dockerfile)",
                path.display(),
                path.display()
            );
        }
        let source = read_dockerfile(path)?;
        let dir = match (&a.context, path == Path::new("-")) {
            (Some(c), _) => Some(c.clone()),
            (None, true) => None,
            (None, false) => Some(
                path.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .to_path_buf(),
            ),
        };
        files.push(lint_file(&path.display().to_string(), source, &config, dir.as_deref(), &secrets));
    }
    let color = !a.no_color && a.output.is_none() && crate::color();
    let text = match a.format {
        LintFormat::Tty => customs_report::lint_tty(&files, color),
        LintFormat::Json => customs_report::lint_json(&files),
        LintFormat::Sarif => customs_report::lint_sarif(&files),
        LintFormat::Junit => customs_report::lint_junit(&files, config.failure_threshold),
        LintFormat::Checkstyle => customs_report::lint_checkstyle(&files),
    };
    emit(&text, a.output.as_deref())?;
    let failed = config.failure_threshold.is_some_and(|t| files.iter().any(|f| f.report.fails(t)));
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

//! `customs`: the command line. Thin by design: parsing arguments, calling the
//! library crates, writing output. See the README for the commands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use customs_catalog::{CatalogInterest, Inventory, catalog};
use customs_oci::{Image, OpenOptions, Platform, RegistryOptions, Source, docker_config_credentials};
use customs_report::{DocumentStamp, Subject};
mod lint;
mod notify;
mod output;
mod registry;

use output::emit;

use customs_vulndb::{DEFAULT_OSV_ECOSYSTEMS, Database, DownloadOptions, Feed, Fetched, FixState, Severity};

/// Enforces the Secure Image Policy on container images.
#[derive(Parser)]
#[command(name = "customs", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lint Dockerfiles against the Secure Image Policy and hadolint's rules.
    ///
    /// Exits 0 when no finding reaches the failure threshold (default: warning),
    /// 1 when one does, 2 on unreadable input or a bad config.
    Lint(lint::LintArgs),
    /// List the packages inside an image (software bill of materials).
    ///
    /// IMAGE is a docker-archive tarball, an OCI layout (directory or tar), a
    /// rootfs directory or a registry reference; prefix with `docker-archive:`,
    /// `oci:`, `dir:` or `docker://` to skip detection, and suffix `:TAG` to
    /// pick one image of several.
    Sbom {
        #[command(flatten)]
        target: Target,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = SbomFormat::Table)]
        format: SbomFormat,
        /// Write to this file instead of standard output (replaced atomically).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Find known vulnerabilities in an image's packages.
    ///
    /// Exits 0 whether or not vulnerabilities are found, non-zero on errors;
    /// breaking a build on findings is `customs gate`'s job.
    Scan {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        db: DbArgs,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = ScanFormat::Table)]
        format: ScanFormat,
        /// Show only these severities (comma-separated: CRITICAL,HIGH,MEDIUM,LOW,UNKNOWN).
        #[arg(long, value_delimiter = ',')]
        severity: Vec<Severity>,
        /// Hide vulnerabilities that have no fixed version yet.
        #[arg(long)]
        ignore_unfixed: bool,
        /// Package types to scan: `os` (dpkg, apk, rpm), `library` (language packages), or both.
        #[arg(long, value_delimiter = ',', default_values = ["os", "library"])]
        pkg_types: Vec<PkgType>,
        #[command(flatten)]
        freshness: Freshness,
        /// What to look for: `vuln` (known vulnerabilities) and `secret` (keys, tokens, passwords; the same
        /// pass over the image, rules from ./customs-secret.yaml when present).
        #[arg(long, value_delimiter = ',', default_values = ["vuln", "secret"])]
        scanners: Vec<ScanKind>,
        /// Exit with this code when anything at or above --severity is found (Trivy's --exit-code; the default 0
        /// keeps exit 0 either way; `customs gate` is the build breaker with exceptions).
        #[arg(long, default_value_t = 0)]
        exit_code: u8,
        /// Write to this file instead of standard output (replaced atomically).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Find secrets (keys, tokens, passwords) in an image or a directory.
    ///
    /// Files deleted by a later layer still ship in the image and are scanned
    /// too; the image config (ENV, history) is scanned as well. Exits 0 whether
    /// or not secrets are found; non-zero on errors.
    Secrets {
        #[command(flatten)]
        target: Target,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = ScanFormat::Table)]
        format: ScanFormat,
        /// Directories not to report (globs, relative to the root); repeat for several.
        #[arg(long = "skip-dirs", value_delimiter = ',')]
        skip_dirs: Vec<String>,
        /// Files not to report (globs); repeat for several.
        #[arg(long = "skip-files", value_delimiter = ',')]
        skip_files: Vec<String>,
        /// Skip the base image's layers, found from the image history.
        #[arg(long)]
        skip_base_layers: bool,
        /// Skip this many bottom layers (when the history cannot tell the base image apart).
        #[arg(long, conflicts_with = "skip_base_layers")]
        base_layers: Option<usize>,
        /// Rule ids not to run; repeat for several.
        #[arg(long = "disable-rule", value_delimiter = ',')]
        disable_rules: Vec<String>,
        /// Rules file in Trivy's `trivy-secret.yaml` format [default: ./customs-secret.yaml when present].
        #[arg(long)]
        config: Option<PathBuf>,
        /// TARGET is a git repository: also scan every blob any commit on any ref ever added (needs `git`).
        #[arg(long)]
        history: bool,
        /// Exit with this code when any secret is found (Trivy's --exit-code; 0 keeps exit 0 either way).
        #[arg(long, default_value_t = 0)]
        exit_code: u8,
        /// Write to this file instead of standard output (replaced atomically).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// The build breaker: scan, apply the project's exceptions, pass or fail.
    ///
    /// Exit codes: 0 pass, 1 policy failure (or --exit-code), 2 usage or input error.
    Gate(Box<GateArgs>),
    /// Review the project's exceptions: expired, expiring, undocumented and unused ones.
    Exclusions {
        #[command(subcommand)]
        command: ExclusionsCommand,
    },
    /// Manage the local vulnerability database.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// The private registry: serve it, manage identities, check access, verify the audit log.
    Registry(registry::RegistryArgs),
}

#[derive(Subcommand)]
enum ExclusionsCommand {
    /// List exceptions that need action; exits 1 when any has expired, lacks a required reason or (with IMAGE) matches nothing.
    Check {
        /// An image to find unused exceptions against (needs the vulnerability database).
        image: Option<String>,
        #[command(flatten)]
        db: DbArgs,
        /// The project's policy file [default: ./customs.toml or ./.customs.yaml when present].
        #[arg(long)]
        policy: Option<PathBuf>,
        /// The exceptions file [default: the policy's, else ./exclusions.json].
        #[arg(long)]
        exclusions: Option<PathBuf>,
        /// Also flag exceptions that expire within this many days.
        #[arg(long, default_value_t = 30)]
        warn_days: i64,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Import advisories from files, folders or zips, all in one transaction (air-gapped updates).
    ///
    /// Reads OSV records (JSON or YAML; osv.dev `all.zip`), the Debian security
    /// tracker JSON and Alpine secdb (YAML or JSON).
    Import {
        /// Files, folders or zips to import.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Download the feeds (osv.dev `all.zip` per ecosystem, the Debian tracker) and import them.
    ///
    /// Mirrors are tried first, in order, then the official URL; each URL is
    /// retried with backoff, interrupted downloads resume, `<url>.sha256` is
    /// checked when published, and unchanged feeds are not downloaded again.
    Update {
        #[command(flatten)]
        db: DbArgs,
        /// Feeds to fetch: `osv:<Ecosystem>` (e.g. osv:PyPI, osv:Debian) or `debian-tracker`; default: the main OSV ecosystems.
        #[arg(long = "feed")]
        feeds: Vec<String>,
        /// Mirror base URL holding `osv/<Ecosystem>/all.zip` and `debian/tracker.json`; repeat for several.
        #[arg(long = "mirror", env = "CUSTOMS_DB_MIRRORS", value_delimiter = ',')]
        mirrors: Vec<String>,
        /// Use the mirrors only, never the official URLs.
        #[arg(long)]
        no_official: bool,
        /// Where downloads are kept [default: a `feeds` folder beside the database].
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        /// Attempts per URL.
        #[arg(long, default_value_t = 3)]
        attempts: u32,
    },
    /// Show the database's sources, their last update and counts.
    Status {
        #[command(flatten)]
        db: DbArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Which image and how to reach it.
#[derive(clap::Args)]
struct Target {
    /// The image: a docker-archive tarball, an OCI layout, a rootfs directory or a registry reference.
    image: String,
    /// Platform to pick from a multi-platform image [default: linux/amd64]; a single-platform image of another
    /// platform is an error when this is given.
    #[arg(long, env = "CUSTOMS_PLATFORM")]
    platform: Option<Platform>,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// `customs gate`'s flags; each overrides the policy file.
#[derive(clap::Args)]
struct GateArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    freshness: Freshness,
    /// The project's policy file [default: ./customs.toml or ./.customs.yaml when present].
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Vulnerability severities that fail the gate, comma-separated, or `none` to only report them (a secrets- or
    /// lint-only gate) [default: the policy's, else CRITICAL,HIGH].
    #[arg(long, value_delimiter = ',', value_parser = parse_fail_on)]
    fail_on: Vec<Option<Severity>>,
    /// Severities shown in the output and reports; default all. Never affects the verdict.
    #[arg(long, value_delimiter = ',')]
    severity: Vec<Severity>,
    /// Findings without a fixed version do not fail the gate.
    #[arg(long)]
    ignore_unfixed: bool,
    /// The project's exceptions [default: the policy's, else ./exclusions.json when present].
    #[arg(long)]
    exclusions: Option<PathBuf>,
    /// Also read a `.trivyignore` (migration from Trivy).
    #[arg(long)]
    trivyignore: Option<PathBuf>,
    /// Exceptions expire this many days after their `date`.
    #[arg(long)]
    max_exception_age_days: Option<i64>,
    /// Every exception must give a `reason`.
    #[arg(long)]
    require_reason: bool,
    /// Exit code when the gate fails [default: the policy's, else 1].
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..))]
    exit_code: Option<u8>,
    /// Also write a report: FORMAT=PATH with FORMAT one of json, sarif, junit, markdown, vex (CycloneDX VEX of the suppressed findings), table; repeat for several.
    #[arg(long = "report", value_parser = parse_report)]
    reports: Vec<(ReportFormat, PathBuf)>,
    /// List suppressed findings with the exception that matched.
    #[arg(long)]
    show_suppressed: bool,
    /// Do not look for secrets (on by default: the policy says no secret may ship).
    #[arg(long)]
    no_secrets: bool,
    /// What runs: `vuln`, `secret`, `lint` (comma-separated) [default: vuln and secret, and lint with
    /// --dockerfile]. A scanner that does not run needs none of its inputs: without `vuln` no database is read.
    #[arg(long, value_delimiter = ',')]
    scanners: Vec<GateScanner>,
    /// Secret severities that fail the gate (comma-separated CRITICAL,HIGH,MEDIUM,LOW), or `none` to only report them [default: all].
    #[arg(long, value_delimiter = ',', value_parser = parse_secret_severity)]
    fail_on_secret: Vec<Option<customs_secrets::Severity>>,
    /// Ecosystems found in the image that the database may hold nothing for (comma-separated, e.g.
    /// `Debian:12,npm`); any other such ecosystem fails the gate, since none of its packages was checked.
    #[arg(long, value_delimiter = ',')]
    allow_uncovered: Vec<String>,
    /// Also lint this Dockerfile (the one the image was built from).
    #[arg(long)]
    dockerfile: Option<PathBuf>,
    /// Lint findings at or above this level fail the gate: error, warning, info, style or none [default: the lint config's threshold, else error].
    #[arg(long)]
    fail_on_lint: Option<String>,
    /// Lint config [default: .customs-lint.yaml, else .hadolint.yaml, in the current folder].
    #[arg(long)]
    lint_config: Option<PathBuf>,
}

/// How old the vulnerability database may be.
#[derive(clap::Args)]
struct Freshness {
    /// Warn when the database is older than this (`90m`, `36h`, `7d`).
    #[arg(long, default_value = "7d", env = "CUSTOMS_DB_MAX_AGE", value_parser = parse_age)]
    db_max_age: i64,
    /// Fail instead of warning when the database is older than --db-max-age.
    #[arg(long)]
    fail_on_stale_db: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReportFormat {
    Json,
    Sarif,
    Junit,
    Markdown,
    Vex,
    Table,
}

fn parse_report(s: &str) -> Result<(ReportFormat, PathBuf), String> {
    let (format, path) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid report {s:?}: use FORMAT=PATH, e.g. sarif=customs.sarif"))?;
    let format = match format {
        "json" => ReportFormat::Json,
        "sarif" => ReportFormat::Sarif,
        "junit" => ReportFormat::Junit,
        "table" => ReportFormat::Table,
        "markdown" => ReportFormat::Markdown,
        "vex" => ReportFormat::Vex,
        other => {
            return Err(format!(
                "unknown report format {other:?}: use json, sarif, junit, markdown, vex or table"
            ));
        }
    };
    if path.is_empty() {
        return Err(format!("invalid report {s:?}: the path is empty"));
    }
    Ok((format, PathBuf::from(path)))
}

/// Where the vulnerability database lives.
#[derive(clap::Args)]
struct DbArgs {
    /// Database file [default: $XDG_CACHE_HOME/customs/vulndb.sqlite or ~/.cache/customs/vulndb.sqlite].
    #[arg(long = "db", env = "CUSTOMS_DB")]
    path: Option<PathBuf>,
}

impl DbArgs {
    fn path(&self) -> Result<PathBuf> {
        if let Some(p) = &self.path {
            return Ok(p.clone());
        }
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .context("no --db given and neither XDG_CACHE_HOME nor HOME is set")?;
        Ok(cache.join("customs/vulndb.sqlite"))
    }
}

/// How to reach registries, for images given as references.
#[derive(clap::Args)]
struct RegistryArgs {
    /// Registry username (else the docker config's `auths`, else anonymous).
    #[arg(long, env = "CUSTOMS_REGISTRY_USERNAME")]
    username: Option<String>,
    /// Registry password or token; from the environment only, so it stays out of process lists.
    #[arg(skip = std::env::var("CUSTOMS_REGISTRY_PASSWORD").ok())]
    password: Option<String>,
    /// PEM file of extra CA certificates to trust (a private registry's CA).
    #[arg(long, env = "CUSTOMS_REGISTRY_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Speak plain HTTP to a loopback registry (refused for any other host: the policy requires TLS).
    #[arg(long)]
    plain_http: bool,
}

impl RegistryArgs {
    fn options(&self, image: &str) -> RegistryOptions {
        let (username, password) = match (&self.username, &self.password) {
            (Some(u), Some(p)) => (Some(u.clone()), Some(p.clone())),
            _ => match Source::parse(image) {
                Ok(Source::Registry(r)) => docker_config_credentials(&r.registry).map_or((None, None), |(u, p)| (Some(u), Some(p))),
                _ => (None, None),
            },
        };
        RegistryOptions {
            username,
            password,
            ca_file: self.ca_file.clone(),
            plain_http: self.plain_http,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum SbomFormat {
    /// A table for people.
    Table,
    /// customs' own JSON.
    Json,
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
    /// SPDX 2.3 JSON.
    SpdxJson,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScanFormat {
    /// A table for people.
    Table,
    /// customs' own JSON.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
}

/// What `customs scan` looks for.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ScanKind {
    /// Known vulnerabilities in OS and language packages.
    Vuln,
    /// Secrets in every layer and the image config.
    Secret,
}

/// The gate's scanners.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum GateScanner {
    /// Known vulnerabilities (needs the database).
    Vuln,
    /// Secrets in the image (and in the Dockerfile when it is linted).
    Secret,
    /// The Dockerfile's lint rules (needs --dockerfile).
    Lint,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PkgType {
    /// Packages of the distribution's package manager.
    Os,
    /// Language packages (Python, Node, Java, Go, Rust).
    Library,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `CRITICAL`, `HIGH`, `MEDIUM`, `LOW` (any case), or `none` (`None`).
/// A vulnerability severity, or `none` (`None`).
fn parse_fail_on(s: &str) -> Result<Option<Severity>, String> {
    if s.trim().eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    s.parse::<Severity>().map(Some).map_err(|e| format!("{e}, or none"))
}

fn parse_secret_severity(s: &str) -> Result<Option<customs_secrets::Severity>, String> {
    use customs_secrets::Severity;
    match s.trim().to_ascii_uppercase().as_str() {
        "CRITICAL" => Ok(Some(Severity::Critical)),
        "HIGH" => Ok(Some(Severity::High)),
        "MEDIUM" => Ok(Some(Severity::Medium)),
        "LOW" => Ok(Some(Severity::Low)),
        "NONE" => Ok(None),
        other => Err(format!("`{other}`: use CRITICAL, HIGH, MEDIUM, LOW or none")),
    }
}

/// `45 seconds`, `10 minutes`, `36 hours`, `9 days`: the largest unit that keeps the number whole-ish.
fn human_duration(secs: i64) -> String {
    let (n, unit) = match secs {
        s if s < 120 => (s, "second"),
        s if s < 2 * 3600 => (s / 60, "minute"),
        s if s < 2 * 86400 => (s / 3600, "hour"),
        s => (s / 86400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Reads `90m`, `36h`, `7d` (or plain seconds) into seconds.
fn parse_age(s: &str) -> Result<i64, String> {
    let (digits, unit) = s
        .trim()
        .split_at(s.trim().find(|c: char| !c.is_ascii_digit()).unwrap_or(s.trim().len()));
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("invalid age {s:?}: use a number with m, h or d, e.g. 7d"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("invalid age {s:?}: use a number with m, h or d, e.g. 7d")),
    };
    Ok(n * factor)
}

/// What one pass over an image found: the subject, vulnerabilities, warnings, (when asked) secrets, and what the
/// database could check per ecosystem.
type ImageScan = (
    Subject,
    Vec<customs_vulndb::Finding>,
    Vec<String>,
    Vec<customs_secrets::ImageFinding>,
    Vec<customs_vulndb::Coverage>,
);

/// Opens the database (checking its age), inventories the image and matches it; with a scanner, finds secrets
/// in the same pass. With `require_data` (a gate that fails on vulnerabilities) a database with nothing imported
/// is an error: a gate that cannot see must not pass.
fn vulnerabilities(
    target: &Target,
    db: &DbArgs,
    freshness: &Freshness,
    pkg_types: &[PkgType],
    secrets: Option<&customs_secrets::Scanner>,
    require_data: bool,
    vuln: bool,
) -> Result<ImageScan> {
    if !vuln {
        // No vulnerability scanner: no database is needed, or opened.
        let (subject, inventory, secret_findings) = inventory(target, secrets)?;
        return Ok((subject, Vec::new(), inventory.warnings, secret_findings, Vec::new()));
    }
    let path = db.path()?;
    let database = Database::open_existing(&path)?;
    let mut warnings = Vec::new();
    match database.age_seconds()? {
        None if require_data => bail!(
            "{}: nothing imported yet, so the gate cannot see any vulnerability; run `customs db update` or `customs db import` first (or `--fail-on none` for a gate without vulnerabilities)",
            path.display()
        ),
        None => warnings.push(format!("{}: nothing imported yet; every scan will come back clean", path.display())),
        Some(age) if age > freshness.db_max_age => {
            let msg = format!(
                "{}: last updated {} ago, over the {} limit (--db-max-age); run `customs db update` or `customs db import` with fresh data",
                path.display(),
                human_duration(age),
                human_duration(freshness.db_max_age)
            );
            if freshness.fail_on_stale_db {
                bail!(msg);
            }
            warnings.push(msg);
        }
        Some(_) => {}
    }
    let (subject, mut inventory, secret_findings) = inventory(target, secrets)?;
    inventory
        .packages
        .retain(|p| pkg_types.contains(if p.kind.is_os() { &PkgType::Os } else { &PkgType::Library }));
    let findings = customs_vulndb::scan(&database, &inventory)?;
    let coverage = customs_vulndb::coverage(&database, &inventory)?;
    // What the database cannot check comes first: it qualifies every "0 vulnerabilities".
    warnings.extend(coverage.iter().filter(|c| !c.covered()).map(customs_vulndb::Coverage::warning));
    warnings.extend(inventory.warnings.iter().cloned());
    Ok((subject, findings, warnings, secret_findings, coverage))
}

/// Reads the exclusions file (and `.trivyignore`), if any.
fn load_exceptions(exclusions: Option<&Path>, trivyignore: Option<&Path>, require_reason: bool) -> Result<Vec<customs_policy::Exception>> {
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
fn load_policy(path: Option<PathBuf>) -> Result<(customs_policy::PolicyFile, PathBuf)> {
    let path = path.or_else(|| customs_policy::PolicyFile::find(Path::new(".")));
    let file = match &path {
        Some(p) => customs_policy::PolicyFile::read(p).map_err(anyhow::Error::msg)?,
        None => customs_policy::PolicyFile::default(),
    };
    let base = path.as_deref().and_then(Path::parent).unwrap_or(Path::new(".")).to_path_buf();
    Ok((file, base))
}

/// Secrets as the policy sees them: rule id, path and fingerprint, for exceptions to match.
fn secret_hits(secrets: &[customs_secrets::ImageFinding]) -> Vec<customs_policy::RuleHit<'_>> {
    secrets
        .iter()
        .map(|s| customs_policy::RuleHit {
            rule_id: &s.finding.rule_id,
            path: &s.finding.path,
            fingerprint: &s.finding.fingerprint,
        })
        .collect()
}

/// Fails the verdict for `reason`: it replaces the "pass" sentence, or joins the other reasons (at `at`, else last).
fn fail_verdict(verdict: &mut customs_policy::Verdict, reason: String, at: Option<usize>) {
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

/// The gate: settings from flags over the policy file over defaults, then the verdict, reports and notifications.
fn run_gate(a: GateArgs) -> Result<ExitCode> {
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
        .or_else(|| policy.exceptions.trivyignore.as_ref().map(|f| base.join(f)));
    let require_reason = a.require_reason || policy.exceptions.require_reason.unwrap_or(false);
    let thresholds = customs_policy::Thresholds {
        fail_on,
        ignore_unfixed: a.ignore_unfixed || policy.gate.ignore_unfixed.unwrap_or(false),
        max_exception_age_days: a.max_exception_age_days.or(policy.exceptions.max_age_days),
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
        Some(secret_scanner(None, customs_secrets::ScanOptions::default())?)
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
    let (subject, findings, warnings, secrets, coverage) = vulnerabilities(
        &a.target,
        &a.db,
        &a.freshness,
        &[PkgType::Os, PkgType::Library],
        secret_rules.as_ref().filter(|_| !a.no_secrets),
        vuln && !thresholds.fail_on.is_empty(),
        vuln,
    )?;
    let today = time::OffsetDateTime::now_utc().date();
    let mut verdict = customs_policy::decide(&findings, &exceptions, &thresholds, today);
    // A gate that fails on vulnerabilities cannot pass an ecosystem it could not check.
    if vuln && !thresholds.fail_on.is_empty() {
        let allowed: Vec<String> = if a.allow_uncovered.is_empty() {
            policy.gate.allow_uncovered.clone().unwrap_or_default()
        } else {
            a.allow_uncovered.clone()
        };
        for c in coverage.iter().filter(|c| !c.covered()) {
            if allowed.iter().any(|e| e.eq_ignore_ascii_case(&c.ecosystem)) {
                continue;
            }
            let reason = format!(
                "fail: {} package(s) of {} were not checked: the database holds no advisory for it (import data for it, or --allow-uncovered {})",
                c.packages, c.ecosystem, c.ecosystem
            );
            fail_verdict(&mut verdict, reason, None);
        }
    }
    let refs = secret_hits(&secrets);
    let (mut secret_failing, secret_suppressed) = customs_policy::decide_rule_hits(&refs, &exceptions, &thresholds, today);
    if !a.fail_on_secret.is_empty() {
        // `none` parses to `None` and matches no severity.
        secret_failing.retain(|&i| a.fail_on_secret.contains(&Some(secrets[i].finding.severity)));
    }
    if !secret_failing.is_empty() {
        let reason = format!(
            "fail: {} secret(s) in the image without a valid exception; revoke them and rebuild without them",
            secret_failing.len()
        );
        fail_verdict(&mut verdict, reason, Some(1));
    }
    // Lint findings are excepted like secrets: `id` is the rule (`DL3008`), `path` a glob on the Dockerfile path.
    let lint_suppressed = match &linted {
        Some(l) => {
            let hits: Vec<customs_policy::RuleHit<'_>> = l
                .report
                .findings
                .iter()
                .map(|f| customs_policy::RuleHit {
                    rule_id: &f.rule,
                    path: &l.path,
                    fingerprint: "",
                })
                .collect();
            customs_policy::decide_rule_hits(&hits, &exceptions, &thresholds, today).1
        }
        None => Vec::new(),
    };
    // An exception that suppressed a secret or a lint finding is in use, though no package finding matched it.
    verdict
        .unused
        .retain(|&i| !secret_suppressed.iter().chain(&lint_suppressed).any(|s| s.exception == i));
    if let Some(l) = &linted {
        let failing = l
            .report
            .findings
            .iter()
            .enumerate()
            .filter(|(i, f)| lint_threshold.is_some_and(|t| f.level <= t) && !lint_suppressed.iter().any(|s| s.finding == *i))
            .count();
        if failing > 0 {
            let reason = format!(
                "fail: {failing} Dockerfile finding(s) in {} at or above `{}`; fix them, or except the rule in exclusions.json (`id` and `path`) or the lint config",
                l.path,
                lint_threshold.map_or("none", |t| t.as_str())
            );
            fail_verdict(&mut verdict, reason, Some(1));
        }
    }
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
        ReportFormat::Table => gate_table(&result, a.show_suppressed, false),
    };
    for (format, path) in &a.reports {
        emit(&render(*format), Some(path))?;
    }
    // A report on standard output (`--report json=-`) keeps it clean for a pipe: the table goes to stderr then.
    if a.reports.iter().any(|(_, p)| p == Path::new("-")) {
        eprint!("{}", gate_table(&result, a.show_suppressed, false));
    } else {
        emit(&gate_table(&result, a.show_suppressed, color()), None)?;
    }
    Ok(if verdict.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit_code)
    })
}

/// `customs exclusions check`: the policy's regular review of accepted risks.
fn check_exclusions(
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
                ca_file: None,
                plain_http: false,
            },
        };
        let freshness = Freshness {
            db_max_age: i64::MAX,
            fail_on_stale_db: false,
        };
        // Secrets too, in the same pass, with the gate's rules: a secret exception is used when it suppresses one.
        let scanner = secret_scanner(None, customs_secrets::ScanOptions::default())?;
        let (subject, findings, _, secrets, _) = vulnerabilities(
            &target,
            db,
            &freshness,
            &[PkgType::Os, PkgType::Library],
            Some(&scanner),
            false,
            true,
        )?;
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

/// Secrets for people: one line each, masked, with layer and whether a later layer deleted the file.
fn secrets_table(subject: &Subject, findings: &[customs_secrets::ImageFinding], warnings: &[String]) -> String {
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

fn history_table(scan: &customs_secrets::HistoryScan) -> String {
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

/// The secrets scanner: built-in rules plus the rules file (`--config`, else `./customs-secret.yaml` when present).
fn secret_scanner(config: Option<&Path>, options: customs_secrets::ScanOptions) -> Result<customs_secrets::Scanner> {
    let default = Path::new("customs-secret.yaml");
    let file = match config.or_else(|| default.is_file().then_some(default)) {
        Some(p) => customs_secrets::SecretConfig::read(p).map_err(anyhow::Error::msg)?,
        None => customs_secrets::SecretConfig::default(),
    };
    customs_secrets::Scanner::from_config(customs_secrets::BUILTIN, &file, &options).map_err(anyhow::Error::msg)
}

/// Calls every webhook the policy (or `CUSTOMS_NOTIFY_URL`) names; delivery problems are only warnings.
fn notify_all(
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

/// Layer facts for reports, with secrets in build commands masked: a report must not leak what it reports.
fn redacted_layers(layers: &[customs_oci::LayerInfo]) -> Vec<customs_oci::LayerInfo> {
    let scanner = customs_secrets::Scanner::builtin();
    layers
        .iter()
        .map(|l| customs_oci::LayerInfo {
            created_by: l.created_by.as_deref().map(|c| scanner.redact(c)),
            ..l.clone()
        })
        .collect()
}

/// Opens an image. A bare argument that is no file or folder here and names no registry host (`team/app`,
/// `nonexist/dir`) is an image on Docker Hub, or a mistyped path: say which registry is contacted before doing
/// so, and when that fails, that no such file or folder exists either.
fn open_image(spec: &str, options: &OpenOptions) -> Result<Image> {
    let Some(reference) = implicit_registry(spec) else {
        return Ok(Image::open_with(spec, options)?);
    };
    let shown = format!("{}/{}:{}", reference.registry, reference.repository, reference.target());
    eprintln!("note: {spec} is no file or folder here; pulling it as {shown} (prefix docker:// to say so)");
    Image::open_with(spec, options).map_err(|e| {
        anyhow::anyhow!(
            "{e}\n(no file or folder named {spec} exists here either; for a registry image, name its host: registry.example.com/{spec})"
        )
    })
}

/// A `--platform` the image is not built for is an error naming the platform it has: a single-platform image is
/// read whatever the platform asked, and scanning amd64 when arm64 was asked for would report the wrong image.
fn check_platform(img: &Image, wanted: Option<&Platform>) -> Result<()> {
    let (Some(wanted), Some(os), Some(arch)) = (wanted, &img.config.os, &img.config.architecture) else {
        return Ok(());
    };
    let variant_ok = match (&wanted.variant, &img.config.variant) {
        (Some(w), Some(v)) => w == v,
        (Some(_), None) => false,
        (None, _) => true,
    };
    if wanted.os != *os || wanted.architecture != *arch || !variant_ok {
        let have = [Some(os.as_str()), Some(arch.as_str()), img.config.variant.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("/");
        bail!("{}: the image is {have} only; --platform {wanted} is not in it", img.name);
    }
    Ok(())
}

/// The Docker Hub reference a bare argument becomes when it is no file or folder and names no registry host.
fn implicit_registry(spec: &str) -> Option<customs_oci::Reference> {
    match Source::parse(spec) {
        Ok(Source::Registry(r)) if !spec.starts_with("docker://") && !spec.starts_with("registry:") => {
            let first = spec.split('/').next().unwrap_or_default();
            let names_host = spec.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
            (!names_host).then_some(r)
        }
        _ => None,
    }
}

/// Opens the image and inventories it; with a secret scanner, finds its secrets in the same pass over the layers.
fn inventory(
    target: &Target,
    secrets: Option<&customs_secrets::Scanner>,
) -> Result<(Subject, Inventory, Vec<customs_secrets::ImageFinding>)> {
    let options = OpenOptions {
        platform: target.platform.clone().unwrap_or_default(),
        registry: target.registry.options(&target.image),
    };
    let img = open_image(&target.image, &options)?;
    check_platform(&img, target.platform.as_ref())?;
    let (view, found) = match secrets {
        None => (img.filesystem(&CatalogInterest)?, Vec::new()),
        Some(scanner) => {
            let interest = customs_oci::Both(CatalogInterest, customs_secrets::SecretInterest { scanner, first_layer: 0 });
            let both = img.filesystem(&interest)?;
            let secret_view = both.map_content(customs_oci::Both::<CatalogInterest, customs_secrets::SecretInterest>::second);
            let found = customs_secrets::image_findings(&secret_view, &img.config, scanner, 0);
            (
                both.map_content(customs_oci::Both::<CatalogInterest, customs_secrets::SecretInterest>::first),
                found,
            )
        }
    };
    let mut inventory = catalog(&view);
    inventory.warnings.splice(0..0, view.warnings.iter().cloned());
    let subject = Subject {
        name: img.name.clone(),
        manifest_digest: img.manifest_digest.clone(),
        config_digest: img.config_digest.clone(),
        tags: img.tags.clone(),
        platform: match (&img.config.os, &img.config.architecture) {
            (Some(os), Some(arch)) => Some(format!("{os}/{arch}")),
            _ => None,
        },
        layers: redacted_layers(&view.layers),
    };
    Ok((subject, inventory, found))
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Sbom { target, format, output } => {
            let (subject, inventory, _) = inventory(&target, None)?;
            let stamp = DocumentStamp::now();
            let text = match format {
                SbomFormat::Table => customs_report::table(&subject, &inventory),
                SbomFormat::Json => customs_report::json(&subject, &inventory),
                SbomFormat::Cyclonedx => customs_report::cyclonedx(&subject, &inventory, &stamp),
                SbomFormat::SpdxJson => customs_report::spdx(&subject, &inventory, &stamp),
            };
            emit(&text, output.as_deref())?;
        }
        Command::Scan {
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
        } => {
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
        }
        Command::Gate(args) => return run_gate(*args),
        Command::Lint(args) => return lint::run(args, emit),
        Command::Registry(args) => return registry::run(args),
        Command::Secrets {
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
        } => {
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
        }
        Command::Exclusions {
            command:
                ExclusionsCommand::Check {
                    image,
                    db,
                    policy,
                    exclusions,
                    warn_days,
                },
        } => {
            return check_exclusions(image, &db, policy, exclusions, warn_days);
        }
        Command::Db {
            command: DbCommand::Import { paths, db },
        } => {
            let path = db.path()?;
            let mut database = Database::open(&path)?;
            let started = std::time::Instant::now();
            let report = database.import(&paths)?;
            let total: usize = report.by_source.values().sum();
            println!(
                "imported {total} advisories from {} files into {} in {:.1}s",
                report.files,
                path.display(),
                started.elapsed().as_secs_f64()
            );
            for (source, n) in &report.by_source {
                println!("  {source}: {n}");
            }
            if report.git_ranges_skipped > 0 {
                println!(
                    "  skipped {} GIT ranges (commit ranges can't be matched against installed versions)",
                    report.git_ranges_skipped
                );
            }
        }
        Command::Db {
            command:
                DbCommand::Update {
                    db,
                    feeds,
                    mirrors,
                    no_official,
                    cache_dir,
                    attempts,
                },
        } => {
            let path = db.path()?;
            let feeds: Vec<Feed> = if feeds.is_empty() {
                DEFAULT_OSV_ECOSYSTEMS.iter().map(|e| Feed::osv(e)).collect()
            } else {
                feeds
                    .iter()
                    .map(|n| Feed::by_name(n).with_context(|| format!("unknown feed {n:?}: use osv:<Ecosystem> or debian-tracker")))
                    .collect::<Result<_>>()?
            };
            if no_official && mirrors.is_empty() {
                bail!("--no-official needs at least one --mirror");
            }
            let cache_dir = cache_dir.unwrap_or_else(|| path.parent().unwrap_or(Path::new(".")).join("feeds"));
            let options = DownloadOptions {
                mirrors,
                official: !no_official,
                attempts,
                backoff: std::time::Duration::from_secs(1),
                cache_dir,
                on_retry: Some(|line| eprintln!("  {line}")),
                unreachable: Default::default(),
            };
            let mut files = Vec::new();
            let mut failures = Vec::new();
            for feed in &feeds {
                eprintln!("{}: downloading…", feed.name);
                match customs_vulndb::download(feed, &options) {
                    Ok(Fetched::New { url, path }) => {
                        println!("{}: downloaded from {url}", feed.name);
                        files.push(path);
                    }
                    Ok(Fetched::Unchanged { url, path }) => {
                        println!("{}: unchanged at {url}", feed.name);
                        files.push(path);
                    }
                    Err(e) => failures.push(e.to_string()),
                }
            }
            if !files.is_empty() {
                let report = Database::open(&path)?.import(&files)?;
                println!(
                    "imported {} advisories into {}",
                    report.by_source.values().sum::<usize>(),
                    path.display()
                );
            }
            if !failures.is_empty() && files.is_empty() {
                bail!(
                    "no feed could be downloaded ({} tried):\n{}\nWithout network access, point --mirror URL (or CUSTOMS_DB_MIRRORS) at an internal mirror, \
                     or bring the files in another way and run `customs db import PATH…`",
                    feeds.len(),
                    failures.join("\n")
                );
            }
            if !failures.is_empty() {
                bail!(
                    "{} of {} feeds failed; the others were imported:\n{}",
                    failures.len(),
                    feeds.len(),
                    failures.join("\n")
                );
            }
        }
        Command::Db {
            command: DbCommand::Status { db, json },
        } => {
            let path = db.path()?;
            let status = Database::open_existing(&path)?.status()?;
            if json {
                emit(&(serde_json::to_string_pretty(&status)? + "\n"), None)?;
            } else {
                let mut out = format!(
                    "{}\n  schema {}, built {}, updated {}\n  {} advisories, {} affected-package entries\n",
                    status.path,
                    status.schema_version,
                    status.built.as_deref().unwrap_or("-"),
                    status.updated.as_deref().unwrap_or("never"),
                    status.advisories,
                    status.affected
                );
                for s in &status.sources {
                    out.push_str(&format!(
                        "  {:<20} {:>7} advisories, updated {} from {}\n",
                        s.name, s.advisories, s.updated, s.origin
                    ));
                }
                emit(&out, None)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Keeps the findings `--severity` shows (failing ones always), re-indexing the verdict to match.
fn shown(
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
fn gate_table(r: &customs_report::GateResult<'_>, show_suppressed: bool, color: bool) -> String {
    let mut out = customs_report::findings_table_styled(r.subject, &r.unsuppressed(), r.warnings, color);
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
    for reason in &r.verdict.reasons {
        out.push_str(reason);
        out.push('\n');
    }
    out
}

/// Colour only for a terminal, and never when `NO_COLOR` is set (no-color.org).
fn color() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn bare_names_that_are_no_path_and_no_host_are_docker_hub_images() {
        let hub = |s: &str| super::implicit_registry(s).map(|r| format!("{}/{}", r.registry, r.repository));
        assert_eq!(hub("nonexist/dir").as_deref(), Some("registry-1.docker.io/nonexist/dir"));
        assert_eq!(hub("debian:12").as_deref(), Some("registry-1.docker.io/library/debian"));
        for explicit in [
            "registry.example.com/team/app:1.0",
            "localhost:5000/x",
            "localhost/x",
            "docker://team/app",
        ] {
            assert_eq!(hub(explicit), None, "{explicit}");
        }
        // An existing folder is a path, not a reference.
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(hub(dir.path().to_str().unwrap()), None);
    }

    #[test]
    fn durations_read_in_the_unit_that_fits() {
        assert_eq!(super::human_duration(60), "60 seconds");
        assert_eq!(super::human_duration(600), "10 minutes");
        assert_eq!(super::human_duration(7 * 86400), "7 days");
        assert_eq!(super::human_duration(3600), "60 minutes");
        assert_eq!(super::human_duration(1), "1 second");
    }

    #[test]
    fn ages_parse_with_units() {
        assert_eq!(super::parse_age("7d"), Ok(7 * 86400));
        assert_eq!(super::parse_age("36h"), Ok(36 * 3600));
        assert_eq!(super::parse_age("90m"), Ok(5400));
        assert!(super::parse_age("7w").is_err() && super::parse_age("d").is_err());
    }
}

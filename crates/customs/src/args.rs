//! Flags several commands share: the image, the database, registries, report and scanner names.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::ValueEnum;
use customs_oci::{Platform, RegistryOptions, Source, docker_config_credentials};
use customs_vulndb::Severity;

/// Which image and how to reach it.
#[derive(clap::Args)]
pub(crate) struct Target {
    /// The image: a docker-archive tarball, an OCI layout, a rootfs directory or a registry reference.
    pub(crate) image: String,
    /// Platform to pick from a multi-platform image [default: linux/amd64]; a single-platform image of another
    /// platform is an error when this is given.
    #[arg(long, env = "CUSTOMS_PLATFORM")]
    pub(crate) platform: Option<Platform>,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
    /// Read a folder as source code: the packages its lockfiles and manifests pin (package-lock.json,
    /// yarn.lock, Cargo.lock, poetry.lock, uv.lock, Pipfile.lock, requirements*.txt, go.mod, Gemfile.lock,
    /// composer.lock), as `trivy fs`
    /// does. A folder with a lockfile and no OS package database is read so without it.
    #[arg(long, conflicts_with = "rootfs")]
    pub(crate) source: bool,
    /// Read a folder as an unpacked root filesystem (installed packages), even when it looks like source code.
    #[arg(long)]
    pub(crate) rootfs: bool,
    /// Also check packages only development needs (npm devDependencies, Poetry's and uv's dev groups,
    /// Pipfile's develop, composer's packages-dev), as Trivy's --include-dev-deps; they are left out by default, as they do not ship.
    #[arg(long)]
    pub(crate) include_dev_deps: bool,
}

/// How old the vulnerability database may be.
#[derive(clap::Args)]
pub(crate) struct Freshness {
    /// Warn when the database is older than this (`90m`, `36h`, `7d`).
    #[arg(long, default_value = "7d", env = "CUSTOMS_DB_MAX_AGE", value_parser = parse_age)]
    pub(crate) db_max_age: i64,
    /// Fail instead of warning when the database is older than --db-max-age.
    #[arg(long)]
    pub(crate) fail_on_stale_db: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReportFormat {
    Json,
    Sarif,
    Junit,
    Markdown,
    Vex,
    Table,
}

pub(crate) fn parse_report(s: &str) -> Result<(ReportFormat, PathBuf), String> {
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
pub(crate) struct DbArgs {
    /// Database file [default: vulndb.sqlite in --cache-dir, $XDG_CACHE_HOME/customs or ~/.cache/customs].
    #[arg(long = "db", env = "CUSTOMS_DB")]
    pub(crate) path: Option<PathBuf>,
}

impl DbArgs {
    pub(crate) fn path(&self) -> Result<PathBuf> {
        if let Some(p) = &self.path {
            return Ok(p.clone());
        }
        if let Some(dir) = &crate::session::get().cache_dir {
            return Ok(dir.join("vulndb.sqlite"));
        }
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .context("no --db given and neither XDG_CACHE_HOME nor HOME is set")?;
        Ok(cache.join("customs/vulndb.sqlite"))
    }
}

/// The first line of standard input, read once however many images are opened.
fn stdin_password() -> Option<String> {
    static READ: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    READ.get_or_init(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).ok()?;
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        (!line.is_empty()).then_some(line)
    })
    .clone()
}

/// How to reach registries, for images given as references.
#[derive(clap::Args, Clone)]
pub(crate) struct RegistryArgs {
    /// Registry username (else the docker config's `auths`, else anonymous).
    #[arg(long, env = "CUSTOMS_REGISTRY_USERNAME")]
    pub(crate) username: Option<String>,
    /// Registry password or token. On the command line it shows in process lists: prefer CUSTOMS_REGISTRY_PASSWORD
    /// or --password-stdin.
    #[arg(long, env = "CUSTOMS_REGISTRY_PASSWORD", hide_env_values = true)]
    pub(crate) password: Option<String>,
    /// Read the registry password or token from standard input (its first line).
    #[arg(long, conflicts_with = "password")]
    pub(crate) password_stdin: bool,
    /// PEM file of extra CA certificates to trust (a private registry's CA).
    #[arg(long, env = "CUSTOMS_REGISTRY_CA_FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    /// Speak plain HTTP to a loopback registry (refused for any other host: the policy requires TLS).
    #[arg(long)]
    pub(crate) plain_http: bool,
}

impl RegistryArgs {
    pub(crate) fn options(&self, image: &str) -> RegistryOptions {
        let password = self.password.clone().or_else(|| self.password_stdin.then(stdin_password).flatten());
        let (username, password) = match (&self.username, &password) {
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
pub(crate) enum SbomFormat {
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
pub(crate) enum ScanFormat {
    /// A table for people.
    Table,
    /// customs' own JSON.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
}

/// What `customs scan` looks for.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ScanKind {
    /// Known vulnerabilities in OS and language packages.
    Vuln,
    /// Secrets in every layer and the image config.
    Secret,
}

/// The gate's scanners.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum GateScanner {
    /// Known vulnerabilities (needs the database).
    Vuln,
    /// Secrets in the image (and in the Dockerfile when it is linted).
    Secret,
    /// The Dockerfile's lint rules (needs --dockerfile).
    Lint,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PkgType {
    /// Packages of the distribution's package manager.
    Os,
    /// Language packages (Python, Node, Java, Go, Rust).
    Library,
}

/// `CRITICAL`, `HIGH`, `MEDIUM`, `LOW` (any case), or `none` (`None`).
/// A vulnerability severity, or `none` (`None`).
pub(crate) fn parse_fail_on(s: &str) -> Result<Option<Severity>, String> {
    if s.trim().eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    s.parse::<Severity>().map(Some).map_err(|e| format!("{e}, or none"))
}

pub(crate) fn parse_secret_severity(s: &str) -> Result<Option<customs_secrets::Severity>, String> {
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
pub(crate) fn human_duration(secs: i64) -> String {
    let (n, unit) = match secs {
        s if s < 120 => (s, "second"),
        s if s < 2 * 3600 => (s / 60, "minute"),
        s if s < 2 * 86400 => (s / 3600, "hour"),
        s => (s / 86400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Reads `90m`, `36h`, `7d` (or plain seconds) into seconds.
pub(crate) fn parse_age(s: &str) -> Result<i64, String> {
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

/// What not to read or report: paths (Trivy's `--skip-dirs`, `--skip-files`: secrets found there and packages
/// recorded there) and files too large for the secret scanner.
#[derive(clap::Args, Clone, Default)]
pub(crate) struct Skip {
    /// The secret scanner reads files up to this many MiB [default: 32]; larger ones are listed once in the
    /// warnings.
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub(crate) max_file_size: Option<u64>,
    /// Folders not to report (globs, relative to the image root); comma-separated or repeated.
    #[arg(long = "skip-dirs", value_delimiter = ',')]
    pub(crate) skip_dirs: Vec<String>,
    /// Files not to report (globs); comma-separated or repeated.
    #[arg(long = "skip-files", value_delimiter = ',')]
    pub(crate) skip_files: Vec<String>,
}

impl Skip {
    /// The secret scanner's options: these globs and size cap, and the rules `disable` names.
    pub(crate) fn secret_options(&self, disable: Vec<String>) -> customs_secrets::ScanOptions {
        customs_secrets::ScanOptions {
            skip: self.globs(),
            disable,
            max_file_bytes: self.max_file_size.map(|mib| mib << 20),
        }
    }

    /// The globs, relative to the root: a folder covers everything below it.
    pub(crate) fn globs(&self) -> Vec<String> {
        self.skip_dirs
            .iter()
            .map(|d| format!("{}/**", d.trim_matches('/')))
            .chain(self.skip_files.iter().map(|f| f.trim_start_matches('/').to_string()))
            .collect()
    }

    /// A matcher for paths (leading `/` or not); `None` when nothing is skipped.
    pub(crate) fn matcher(&self) -> Result<Option<globset::GlobSet>> {
        let globs = self.globs();
        if globs.is_empty() {
            return Ok(None);
        }
        let mut set = globset::GlobSetBuilder::new();
        for g in &globs {
            set.add(globset::Glob::new(g).with_context(|| format!("--skip-dirs/--skip-files {g:?}"))?);
        }
        Ok(Some(set.build()?))
    }
}

/// `customs scan`'s output formats.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum VulnFormat {
    /// A table for people, with a report summary.
    Table,
    /// customs' own JSON.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
    /// CycloneDX 1.6 JSON: the SBOM with the vulnerabilities found.
    Cyclonedx,
    /// SPDX 2.3 JSON: the SBOM (SPDX has no place for vulnerabilities).
    SpdxJson,
    /// GitHub's dependency snapshot (needs GITHUB_SHA and GITHUB_REF, set in GitHub Actions).
    Github,
}

/// Telling the base image's findings apart (the seed's `docker scan --exclude-base`).
#[derive(clap::Args, Clone, Default)]
pub(crate) struct BaseImage {
    /// List what the base image's layers bring apart from what the image adds; `gate` does not fail on it.
    /// The base image ends where the history says, or at --base-layers / --base-image.
    #[arg(long)]
    pub(crate) exclude_base: bool,
    /// The base image is this many bottom layers (when the history cannot tell).
    #[arg(long, requires = "exclude_base", conflicts_with = "base_image")]
    pub(crate) base_layers: Option<usize>,
    /// The base image, opened to count its layers (its layers must be the image's bottom ones).
    #[arg(long, requires = "exclude_base")]
    pub(crate) base_image: Option<String>,
}

/// A Trivy vulnerability status (`--ignore-status`): the fix states customs reports, plus Trivy's states that
/// customs never reports (`unknown`, `not_affected`, `under_investigation`: `None`, matching nothing).
pub(crate) fn parse_status(s: &str) -> Result<Option<customs_vulndb::FixState>, String> {
    use customs_vulndb::FixState;
    Ok(match s.trim().to_ascii_lowercase().as_str() {
        "fixed" => Some(FixState::Fixed),
        "affected" => Some(FixState::Affected),
        "will_not_fix" => Some(FixState::WillNotFix),
        "fix_deferred" | "deferred" => Some(FixState::Deferred),
        "end_of_life" => Some(FixState::EndOfLife),
        "unknown" | "not_affected" | "under_investigation" => None,
        other => {
            return Err(format!(
                "unknown status {other:?}: use fixed, affected, will_not_fix, fix_deferred, end_of_life (or Trivy's unknown, not_affected, under_investigation)"
            ));
        }
    })
}

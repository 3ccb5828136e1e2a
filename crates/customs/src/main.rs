//! `customs`: the command line. Thin by design: parsing arguments, calling the
//! library crates, writing output. See the README for the commands.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use customs_catalog::{CatalogInterest, Inventory, catalog};
use customs_oci::{Image, OpenOptions, Platform, RegistryOptions, Source, docker_config_credentials};
use customs_report::{DocumentStamp, Subject};
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
        /// Warn when the database is older than this (`90m`, `36h`, `7d`).
        #[arg(long, default_value = "7d", env = "CUSTOMS_DB_MAX_AGE", value_parser = parse_age)]
        db_max_age: i64,
        /// Fail instead of warning when the database is older than --db-max-age.
        #[arg(long)]
        fail_on_stale_db: bool,
        /// Write to this file instead of standard output (replaced atomically).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Manage the local vulnerability database.
    Db {
        #[command(subcommand)]
        command: DbCommand,
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
    /// Platform to pick from a multi-platform image.
    #[arg(long, default_value = "linux/amd64", env = "CUSTOMS_PLATFORM")]
    platform: Platform,
    #[command(flatten)]
    registry: RegistryArgs,
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

/// Opens the image and inventories it.
fn inventory(target: &Target) -> Result<(Subject, Inventory)> {
    let options = OpenOptions {
        platform: target.platform.clone(),
        registry: target.registry.options(&target.image),
    };
    let img = Image::open_with(&target.image, &options)?;
    let view = img.filesystem(&CatalogInterest)?;
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
        layers: view.layers.clone(),
    };
    Ok((subject, inventory))
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Sbom { target, format, output } => {
            let (subject, inventory) = inventory(&target)?;
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
            db_max_age,
            fail_on_stale_db,
            output,
        } => {
            let path = db.path()?;
            let database = Database::open_existing(&path)?;
            let mut warnings = Vec::new();
            match database.age_seconds()? {
                None => warnings.push(format!("{}: nothing imported yet; every scan will come back clean", path.display())),
                Some(age) if age > db_max_age => {
                    let msg = format!(
                        "{}: last updated {} hours ago, over the {}-hour limit (--db-max-age); run `customs db update` or `customs db import` with fresh data",
                        path.display(),
                        age / 3600,
                        db_max_age / 3600
                    );
                    if fail_on_stale_db {
                        bail!(msg);
                    }
                    warnings.push(msg);
                }
                Some(_) => {}
            }
            let (subject, mut inventory) = inventory(&target)?;
            inventory
                .packages
                .retain(|p| pkg_types.contains(if p.kind.is_os() { &PkgType::Os } else { &PkgType::Library }));
            let mut findings = customs_vulndb::scan(&database, &inventory)?;
            findings
                .retain(|f| (severity.is_empty() || severity.contains(&f.severity)) && !(ignore_unfixed && f.fix_state != FixState::Fixed));
            warnings.extend(inventory.warnings.iter().cloned());
            let text = match format {
                ScanFormat::Table => customs_report::findings_table(&subject, &findings, &warnings),
                ScanFormat::Json => customs_report::findings_json(&subject, &findings, &warnings),
                ScanFormat::Sarif => {
                    for w in &warnings {
                        eprintln!("warning: {w}");
                    }
                    customs_report::findings_sarif(&subject, &findings)
                }
            };
            emit(&text, output.as_deref())?;
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
            };
            let mut files = Vec::new();
            let mut failures = Vec::new();
            for feed in &feeds {
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

/// Writes to `path` through a temporary file and a rename, so readers never see half a report.
fn emit(text: &str, path: Option<&Path>) -> Result<()> {
    let Some(path) = path else {
        let mut out = std::io::stdout().lock();
        return match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            r => r.context("writing to standard output"),
        };
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn ages_parse_with_units() {
        assert_eq!(super::parse_age("7d"), Ok(7 * 86400));
        assert_eq!(super::parse_age("36h"), Ok(36 * 3600));
        assert_eq!(super::parse_age("90m"), Ok(5400));
        assert!(super::parse_age("7w").is_err() && super::parse_age("d").is_err());
    }
}

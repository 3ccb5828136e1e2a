//! `customs db`: import, update and inspect the local vulnerability database.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use customs_vulndb::{DEFAULT_OSV_ECOSYSTEMS, Database, DownloadOptions, Feed, Fetched};

use crate::args::DbArgs;
use crate::output::emit;

#[derive(Subcommand)]
pub enum DbCommand {
    /// Import advisories from files, folders or zips, all in one transaction (air-gapped updates).
    ///
    /// Reads OSV records (JSON or YAML; osv.dev `all.zip`; Ubuntu's included),
    /// the Debian security tracker JSON, its per-CVE records and its DSA/DLA
    /// lists, Alpine secdb (YAML or JSON), NVD feeds (API 2.0 and 1.1 JSON) and
    /// CVE JSON 5 records (files, folders, zip or tar.gz, as vulnrichment ships
    /// them) for severity, CISA's KEV catalog (JSON) and FIRST's EPSS scores
    /// (CSV), plain or gzipped.
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
        /// Feeds to fetch: `osv:<Ecosystem>` (e.g. osv:PyPI, osv:Debian), `debian-tracker`, `debian-dsa`, `debian-dla`,
        /// `alpine-secdb:<release>`, `nvd:modified`, `nvd:<year>`, `cisa-kev`, `first-epss`; default: the main OSV ecosystems.
        #[arg(long = "feed")]
        feeds: Vec<String>,
        /// Mirror base URL holding `osv/<Ecosystem>/all.zip` and `debian/tracker.json`; repeat for several.
        #[arg(long = "mirror", env = "CUSTOMS_DB_MIRRORS", value_delimiter = ',')]
        mirrors: Vec<String>,
        /// Use the mirrors only, never the official URLs.
        #[arg(long)]
        no_official: bool,
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

/// Runs one `customs db` command.
pub fn run(command: DbCommand) -> Result<ExitCode> {
    match command {
        DbCommand::Import { paths, db } => {
            let path = db.path()?;
            let mut database = Database::open(&path)?;
            let started = std::time::Instant::now();
            let report = database.import(&paths)?;
            let total: usize = report.by_source.values().sum();
            println!(
                "imported {total} records from {} files into {} in {:.1}s",
                report.files,
                path.display(),
                started.elapsed().as_secs_f64()
            );
            for (source, n) in &report.by_source {
                println!("  {source}: {n}");
            }
            if report.debian_advisories > 0 {
                println!(
                    "  {} Debian advisories rebuilt from the tracker, DSA and DLA statements",
                    report.debian_advisories
                );
            }
            if report.git_ranges_skipped > 0 {
                println!(
                    "  skipped {} GIT ranges (commit ranges can't be matched against installed versions)",
                    report.git_ranges_skipped
                );
            }
        }
        DbCommand::Update {
            db,
            feeds,
            mirrors,
            no_official,
            attempts,
        } => {
            let path = db.path()?;
            let feeds: Vec<Feed> = if feeds.is_empty() {
                DEFAULT_OSV_ECOSYSTEMS.iter().map(|e| Feed::osv(e)).collect()
            } else {
                feeds
                    .iter()
                    .map(|n| Feed::by_name(n).with_context(|| format!("unknown feed {n:?}: use osv:<Ecosystem>, debian-tracker, debian-dsa, debian-dla, alpine-secdb:<release>, nvd:modified, nvd:<year>, cisa-kev or first-epss")))
                    .collect::<Result<_>>()?
            };
            if no_official && mirrors.is_empty() {
                bail!("--no-official needs at least one --mirror");
            }
            // Downloads go to `--cache-dir`'s `feeds/`, else beside the database.
            let cache_dir = match &crate::session::get().cache_dir {
                Some(dir) => dir.join("feeds"),
                None => path.parent().unwrap_or(Path::new(".")).join("feeds"),
            };
            let options = DownloadOptions {
                mirrors,
                official: !no_official,
                attempts,
                backoff: std::time::Duration::from_secs(1),
                cache_dir,
                on_retry: Some(|line| eprintln!("  {line}")),
                unreachable: Default::default(),
            };
            let progress = |feed: &Feed| eprintln!("{}: downloading…", feed.name);
            let report = match customs_vulndb::update(&path, &feeds, &options, true, &progress) {
                Ok(report) => report,
                Err(customs_vulndb::UpdateError::NothingDownloaded { tried, failures }) => bail!(
                    "no feed could be downloaded ({tried} tried):\n{}\nWithout network access, point --mirror URL (or CUSTOMS_DB_MIRRORS) at an internal mirror, \
                     or bring the files in another way and run `customs db import PATH…`",
                    failures.join("\n")
                ),
                Err(e) => return Err(e.into()),
            };
            for (name, fetched) in &report.fetched {
                match fetched {
                    Fetched::New { url, .. } => println!("{name}: downloaded from {url}"),
                    Fetched::Unchanged { url, .. } => println!("{name}: unchanged at {url}"),
                }
            }
            if let Some(imported) = &report.imported {
                println!(
                    "imported {} advisories into {}",
                    imported.by_source.values().sum::<usize>(),
                    path.display()
                );
            }
            if !report.failures.is_empty() {
                bail!(
                    "{} of {} feeds failed; the others were imported:\n{}",
                    report.failures.len(),
                    feeds.len(),
                    report.failures.join("\n")
                );
            }
        }
        DbCommand::Status { db, json } => {
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
                        "  {:<24} {:>7} records, newest {}, imported {} from {}\n",
                        s.name,
                        s.advisories,
                        s.newest.as_deref().unwrap_or("-"),
                        s.updated,
                        s.origin
                    ));
                }
                let share = if status.cves > 0 {
                    100.0 * status.cves_scored as f64 / status.cves as f64
                } else {
                    0.0
                };
                out.push_str(&format!(
                    "  CVEs named by advisories: {}, with a CVSS score from NVD or CVE 5: {} ({share:.1}%)\n",
                    status.cves, status.cves_scored
                ));
                emit(&out, None)?;
                for w in &status.warnings {
                    eprintln!("warning: {w}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

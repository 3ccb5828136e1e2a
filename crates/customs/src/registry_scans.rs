//! `customs registry scan`, `scans` and `exceptions`: scan results and accepted risks of a registry, on the
//! machine that runs it (the metadata database named by `registry.toml`, like the identity commands).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use customs_registry::RegistryConfig;
use customs_registry::meta::MetaStore;
use customs_registry::scanning::{ScanStore, Scanning};

/// `customs registry scans …`.
#[derive(Subcommand)]
pub(crate) enum ScansCommand {
    /// List scan jobs, newest first.
    List {
        /// Only jobs in this state: queued, running, done or failed.
        #[arg(long, value_parser = ["queued", "running", "done", "failed"])]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// An image's scan under its repository's rule and exceptions, as `customs gate --report json` writes it
    /// (`-f table` for a summary).
    Show {
        /// `REPOSITORY:TAG` or `REPOSITORY@DIGEST`.
        reference: String,
        /// `json` or `table`.
        #[arg(long, short, default_value = "json", value_parser = ["json", "table"])]
        format: String,
    },
    /// Scan an image again now (same as `customs registry scan`).
    Rescan {
        /// `REPOSITORY:TAG` or `REPOSITORY@DIGEST`.
        reference: String,
        /// Wait until the result is stored.
        #[arg(long)]
        wait: bool,
    },
}

/// `customs registry exceptions …`.
#[derive(Subcommand)]
pub(crate) enum ExceptionsCommand {
    /// Replace a repository's exceptions with an exclusions.json file (id, library_name, version, path, date,
    /// expires, reason, approved_by); an empty list `[]` removes them. Takes effect at the next pull.
    Set {
        /// The repository.
        repository: String,
        /// The exclusions.json file.
        file: PathBuf,
    },
    /// Print a repository's exceptions.
    Show {
        /// The repository.
        repository: String,
    },
}

fn scanning(config: &RegistryConfig, meta: &MetaStore) -> Result<Scanning> {
    let Some(settings) = config.scanning.clone().filter(|s| s.enabled) else {
        bail!("scanning is off in this registry.toml: add a [scanning] section (vulnerability_db = \"...\")");
    };
    Scanning::new(settings, ScanStore::new(meta.clone())).map_err(|e| anyhow::anyhow!("[scanning]: {e}"))
}

/// Splits `repo:tag` / `repo@digest` and finds the image manifest's digest (indexes and artifacts are refused).
async fn resolve(meta: &MetaStore, reference: &str) -> Result<(String, String)> {
    let (repository, target, _) = crate::registry_lineage::resolve(meta, reference).await?;
    let row = meta
        .manifest(&repository, &target)
        .await?
        .with_context(|| format!("{repository}@{target} does not exist in this registry"))?;
    if !customs_registry::scanning::is_image(&row) {
        bail!("{repository}@{target} is not an image (an index, signature or other artifact); scan one of its images");
    }
    Ok((repository, target))
}

/// `customs registry scan REF`: queues a scan the running registry picks up within seconds; `--wait` waits for
/// the result and prints its verdict.
pub(crate) fn scan(config: &RegistryConfig, reference: &str, wait: bool) -> Result<ExitCode> {
    crate::registry::runtime()?.block_on(async {
        let meta = MetaStore::from_config(&config.database).await.map_err(anyhow::Error::msg)?;
        let scanning = scanning(config, &meta)?;
        let (repository, digest) = resolve(&meta, reference).await?;
        let before = scanning.store.latest(&digest).await?.map(|r| r.finished_at);
        let now = customs_registry::clock::Clock::default().now_rfc3339();
        let queued = scanning.on_demand(&repository, &digest, &now).await?;
        crate::registry::audit_cli(config, "scan.request", format!("{repository}@{digest}"))?;
        eprintln!(
            "{} {repository}@{digest}; a running registry scans it within a few seconds",
            if queued {
                "queued a scan of"
            } else {
                "a scan is already queued or running for"
            }
        );
        if !wait {
            return Ok(ExitCode::SUCCESS);
        }
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if let Some(row) = scanning.store.latest(&digest).await?
                && Some(&row.finished_at) != before.as_ref()
            {
                let doc = document(config, &scanning, &repository, &digest).await?;
                print!("{}", summary(&doc));
                return Ok(if doc["verdict"]["pass"] == true {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            if Instant::now() > deadline {
                bail!("no result after 10 minutes: is the registry running (`customs registry serve`)?");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// The image's scan as the API gives it, judged now under this config's protection rule.
async fn document(config: &RegistryConfig, scanning: &Scanning, repository: &str, digest: &str) -> Result<serde_json::Value> {
    let protection = config.protection().map_err(anyhow::Error::msg)?;
    let now = customs_registry::clock::Clock::default().now();
    customs_registry::api::scan_document(scanning, &protection, repository, digest, now)
        .await
        .map_err(anyhow::Error::msg)
}

/// A scan document for people: verdict, reasons, failing findings.
fn summary(doc: &serde_json::Value) -> String {
    let scan = &doc["scan"];
    let mut out = format!(
        "{}@{}: {} (database {}, scanned {})\n",
        scan["repository"].as_str().unwrap_or_default(),
        scan["digest"].as_str().unwrap_or_default(),
        doc["status"].as_str().or_else(|| scan["status"].as_str()).unwrap_or("scanned"),
        scan["db_version"].as_str().unwrap_or("-"),
        scan["finished_at"].as_str().unwrap_or("-"),
    );
    if let Some(e) = scan["error"].as_str() {
        out.push_str(&format!("error: {e}\n"));
    }
    for f in doc["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["status"] == "failing")
    {
        out.push_str(&format!(
            "  {:<9} {:<20} {} {} (fixed: {})\n",
            f["severity"].as_str().unwrap_or_default(),
            f["id"].as_str().unwrap_or_default(),
            f["package"]["name"].as_str().unwrap_or_default(),
            f["package"]["version"].as_str().unwrap_or_default(),
            f["fixed_version"].as_str().unwrap_or("none yet"),
        ));
    }
    for reason in doc["verdict"]["reasons"].as_array().into_iter().flatten() {
        out.push_str(reason.as_str().unwrap_or_default());
        out.push('\n');
    }
    let base = &doc["base"];
    if let (Some(from_base), Some(found_by)) = (base["findings_from_base"].as_u64(), base["found_by"].as_str()) {
        let name = match (base["repository"].as_str(), base["tag"].as_str()) {
            (Some(repository), Some(tag)) => format!("{repository}:{tag}"),
            (Some(repository), None) => format!("{repository}@{}", base["digest"].as_str().unwrap_or_default()),
            _ => "the base image".to_string(),
        };
        out.push_str(&format!(
            "base: {name} (found by {found_by}): {from_base} of {} finding(s) come from its layers\n",
            base["findings"]
        ));
    }
    if let Some(recommendation) = base["newer"]["recommendation"].as_str() {
        out.push_str(&format!("recommendation: {recommendation}\n"));
    }
    out
}

/// `customs registry scans …`.
pub(crate) fn scans(config: &RegistryConfig, command: ScansCommand) -> Result<ExitCode> {
    if let ScansCommand::Rescan { reference, wait } = &command {
        return scan(config, reference, *wait);
    }
    crate::registry::runtime()?.block_on(async {
        let meta = MetaStore::from_config(&config.database).await.map_err(anyhow::Error::msg)?;
        let scanning = scanning(config, &meta)?;
        match command {
            ScansCommand::List { state, limit } => {
                let jobs = scanning.store.jobs(state.as_deref(), limit).await?;
                println!(
                    "{:<8} {:<7} {:<30} {:<20} {:<22} ERROR",
                    "STATE", "REASON", "REPOSITORY", "DIGEST", "QUEUED"
                );
                for j in &jobs {
                    println!(
                        "{:<8} {:<7} {:<30} {:<20} {:<22} {}",
                        j.state,
                        j.reason,
                        j.repository,
                        &j.digest[..j.digest.len().min(19)],
                        &j.enqueued_at[..j.enqueued_at.len().min(19)],
                        j.error.as_deref().unwrap_or_default()
                    );
                }
                eprintln!("{} job(s), {} queued or running", jobs.len(), scanning.store.pending().await?);
            }
            ScansCommand::Show { reference, format } => {
                let (repository, digest) = resolve(&meta, &reference).await?;
                let doc = document(config, &scanning, &repository, &digest).await?;
                match format.as_str() {
                    "table" => print!("{}", summary(&doc)),
                    _ => println!("{}", serde_json::to_string_pretty(&doc)?),
                }
                if doc["status"] == "pending" {
                    eprintln!("no result yet: the scan is queued (`customs registry scans list`)");
                }
            }
            ScansCommand::Rescan { .. } => unreachable!("handled above"),
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `customs registry exceptions …`.
pub(crate) fn exceptions(config: &RegistryConfig, command: ExceptionsCommand) -> Result<ExitCode> {
    crate::registry::runtime()?.block_on(async {
        let meta = MetaStore::from_config(&config.database).await.map_err(anyhow::Error::msg)?;
        let scanning = scanning(config, &meta)?;
        let protection = config.protection().map_err(anyhow::Error::msg)?;
        match command {
            ExceptionsCommand::Set { repository, file } => {
                if !customs_registry::route::valid_repository(&repository) {
                    bail!("`{repository}` is not a valid repository name");
                }
                let text = read(&file)?;
                let require_reason = protection.rule_for(&repository).is_some_and(|r| r.config.require_reason);
                let parsed = customs_registry::protect::parse_exceptions(&repository, &text, require_reason)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                let now = customs_registry::clock::Clock::default().now_rfc3339();
                scanning
                    .store
                    .set_exceptions(&repository, &text, &now, &crate::registry::operator())
                    .await?;
                let summary = customs_registry::api::exceptions_summary(&parsed);
                crate::registry::audit_cli(config, "exceptions.set", format!("{repository}: {summary}"))?;
                eprintln!("{repository}: {summary}; the next pull is judged with them");
            }
            ExceptionsCommand::Show { repository } => match scanning.store.exceptions(&repository).await? {
                Some(row) => {
                    eprintln!("set {} by {}", row.updated_at, row.updated_by);
                    println!("{}", row.body.trim_end());
                }
                None => {
                    eprintln!("{repository} has no exceptions");
                    println!("[]");
                }
            },
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn read(file: &Path) -> Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
}

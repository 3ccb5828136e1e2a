//! The registry's vulnerability database, kept current on a schedule (`[scanning] db_update = "6h"`): the same
//! download and import as `customs db update` (mirrors first, retries, checksums, unchanged feeds skipped), off
//! the request path. A new database version queues the rescans at once; a failed update is audited, counted
//! and retried sooner, and scans keep using the database they have.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use customs_vulndb::{DEFAULT_OSV_ECOSYSTEMS, DownloadOptions, Feed};

use super::ScanningConfig;
use crate::metrics::OutcomeLabels;
use crate::server::Registry;

/// Shortest accepted interval: the feeds are large and their publishers ask for restraint.
const MIN_INTERVAL: Duration = Duration::from_secs(600);
/// After a failed update, the next try comes this soon (or at the interval, if shorter).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(900);

/// A checked `db_update` schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// How often.
    pub every: Duration,
    /// What is fetched.
    pub feeds: Vec<Feed>,
    /// Mirrors tried first.
    pub mirrors: Vec<String>,
    /// Whether the official URLs are tried after the mirrors.
    pub official: bool,
    /// The database updated.
    pub database: PathBuf,
}

impl Schedule {
    /// The schedule `[scanning]` asks for, if any; an error names the setting that is wrong.
    pub fn from_config(config: &ScanningConfig) -> Result<Option<Schedule>, String> {
        let Some(every) = &config.db_update else {
            if !config.db_feeds.is_empty() || !config.db_mirrors.is_empty() {
                return Err("db_feeds and db_mirrors need db_update (how often, e.g. \"6h\")".into());
            }
            return Ok(None);
        };
        let every = crate::protect::parse_age(every).map_err(|e| format!("db_update {e}"))?;
        let every = Duration::from_secs(every.whole_seconds().max(0) as u64);
        if every < MIN_INTERVAL {
            return Err(format!("db_update: at least {} minutes", MIN_INTERVAL.as_secs() / 60));
        }
        let feeds = if config.db_feeds.is_empty() {
            DEFAULT_OSV_ECOSYSTEMS.iter().map(|e| Feed::osv(e)).collect()
        } else {
            config
                .db_feeds
                .iter()
                .map(|name| {
                    Feed::by_name(name).ok_or_else(|| format!("db_feeds: unknown feed `{name}` (the names of `customs db update --feed`)"))
                })
                .collect::<Result<_, _>>()?
        };
        if !config.db_official && config.db_mirrors.is_empty() {
            return Err("db_official = false needs at least one entry in db_mirrors".into());
        }
        for mirror in &config.db_mirrors {
            if !(mirror.starts_with("https://") || mirror.starts_with("http://")) {
                return Err(format!("db_mirrors: `{mirror}` is not an http(s) URL"));
            }
        }
        Ok(Some(Schedule {
            every,
            feeds,
            mirrors: config.db_mirrors.clone(),
            official: config.db_official,
            database: config.vulnerability_db.clone(),
        }))
    }

    /// How long until the next update, from the database's last import time (`None`: never imported).
    pub fn wait(&self, last_import: Option<time::OffsetDateTime>, now: time::OffsetDateTime) -> Duration {
        let Some(last) = last_import else { return Duration::ZERO };
        let since = (now - last).whole_seconds().max(0) as u64;
        self.every.saturating_sub(Duration::from_secs(since))
    }
}

/// What one scheduled update did, in a line.
pub enum Outcome {
    /// New data was imported.
    Updated(String),
    /// Every feed was unchanged.
    Unchanged(String),
    /// Nothing could be imported.
    Failed(String),
}

/// Runs one update now (blocking: call from a blocking thread).
pub fn update_once(schedule: &Schedule) -> Outcome {
    let cache_dir = schedule.database.parent().unwrap_or(std::path::Path::new(".")).join("feeds");
    let options = DownloadOptions {
        mirrors: schedule.mirrors.clone(),
        official: schedule.official,
        attempts: 3,
        backoff: Duration::from_secs(2),
        cache_dir,
        on_retry: None,
        unreachable: Default::default(),
    };
    match customs_vulndb::update(&schedule.database, &schedule.feeds, &options, false, &|_| {}) {
        Err(e) => Outcome::Failed(e.to_string()),
        Ok(report) => {
            let failed = match report.failures.len() {
                0 => String::new(),
                n => format!("; {n} feed(s) failed: {}", report.failures.join("; ")),
            };
            match &report.imported {
                Some(imported) => Outcome::Updated(format!(
                    "imported {} advisories from {} feed(s){failed}",
                    imported.by_source.values().sum::<usize>(),
                    report.fetched.len()
                )),
                None => Outcome::Unchanged(format!("{} feed(s) unchanged{failed}", report.fetched.len())),
            }
        }
    }
}

fn last_import(path: &std::path::Path) -> Option<time::OffsetDateTime> {
    let updated = customs_vulndb::Database::open_existing(path).ok()?.updated().ok()??;
    time::OffsetDateTime::parse(&updated, &time::format_description::well_known::Rfc3339).ok()
}

/// Updates the database whenever it is older than the interval, for as long as the registry runs.
pub async fn run(registry: Arc<Registry>, schedule: Schedule) {
    let scanning = registry.scanning.as_ref().expect("the schedule runs with scanning on");
    let mut retry_at: Option<std::time::Instant> = None;
    loop {
        let path = schedule.database.clone();
        let last = tokio::task::spawn_blocking(move || last_import(&path)).await.ok().flatten();
        let wait = match retry_at {
            Some(at) => at.saturating_duration_since(std::time::Instant::now()),
            None => schedule.wait(last, time::OffsetDateTime::now_utc()),
        };
        // Sleep in steps, so an import by hand (`customs db import`) postpones the next update.
        if !wait.is_zero() {
            tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
            continue;
        }
        let job = schedule.clone();
        let outcome = tokio::task::spawn_blocking(move || update_once(&job))
            .await
            .unwrap_or_else(|e| Outcome::Failed(format!("the update stopped unexpectedly: {e}")));
        let (label, result, detail) = match &outcome {
            Outcome::Updated(d) => ("updated", "allowed", d.clone()),
            Outcome::Unchanged(d) => ("unchanged", "allowed", d.clone()),
            Outcome::Failed(d) => ("failed", "error", d.clone()),
        };
        registry.metrics.db_updates.get_or_create(&OutcomeLabels { outcome: label }).inc();
        registry.record(crate::audit::AuditEvent {
            principal: "scheduler".into(),
            action: "db.update".into(),
            result: result.into(),
            detail: detail.clone(),
            ..crate::audit::AuditEvent::default()
        });
        match outcome {
            Outcome::Failed(e) => {
                tracing::error!(
                    "vulnerability database update failed; scans keep the database they have, next try in {} min: {e}",
                    RETRY_AFTER_FAILURE.min(schedule.every).as_secs() / 60
                );
                retry_at = Some(std::time::Instant::now() + RETRY_AFTER_FAILURE.min(schedule.every));
            }
            Outcome::Updated(d) => {
                tracing::info!("vulnerability database {}: {d}", schedule.database.display());
                retry_at = None;
                if let Err(e) = scanning.rescan_on_database_change(registry.clock.now()).await {
                    tracing::error!("{e}");
                }
            }
            Outcome::Unchanged(d) => {
                tracing::info!("vulnerability database {}: {d}", schedule.database.display());
                // Nothing was written, so the import time does not move: wait a full interval from now.
                retry_at = Some(std::time::Instant::now() + schedule.every);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> ScanningConfig {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn schedules_are_checked() {
        assert!(Schedule::from_config(&config("")).unwrap().is_none());
        let s = Schedule::from_config(&config("db_update = \"6h\"\ndb_mirrors = [\"https://mirror.example/customs\"]"))
            .unwrap()
            .unwrap();
        assert_eq!(s.every, Duration::from_secs(6 * 3600));
        assert_eq!(s.feeds.len(), DEFAULT_OSV_ECOSYSTEMS.len());
        let err = |t: &str| Schedule::from_config(&config(t)).unwrap_err();
        assert!(err("db_update = \"1m\"").contains("at least 10 minutes"));
        assert!(err("db_update = \"6x\"").contains("unit"));
        assert!(err("db_update = \"6h\"\ndb_feeds = [\"osv:Nope\", \"bogus\"]").contains("`bogus`"));
        assert!(err("db_update = \"6h\"\ndb_official = false").contains("db_mirrors"));
        assert!(err("db_update = \"6h\"\ndb_mirrors = [\"ftp://x\"]").contains("http(s)"));
        assert!(err("db_mirrors = [\"https://x\"]").contains("need db_update"));
    }

    #[test]
    fn the_next_update_waits_for_the_interval_since_the_last_import() {
        let s = Schedule::from_config(&config("db_update = \"6h\"")).unwrap().unwrap();
        let now = time::OffsetDateTime::now_utc();
        assert_eq!(s.wait(None, now), Duration::ZERO);
        assert_eq!(s.wait(Some(now - time::Duration::hours(7)), now), Duration::ZERO);
        assert_eq!(s.wait(Some(now - time::Duration::hours(2)), now), Duration::from_secs(4 * 3600));
    }
}

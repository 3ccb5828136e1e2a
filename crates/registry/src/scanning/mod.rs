//! Scan on push: every image manifest pushed becomes a durable job in the metadata database; a bounded pool of
//! workers runs the inspection pipeline (`customs-inspect`) on it off the request path, reading the registry's
//! own storage, and stores the scan per manifest digest and vulnerability-database version.
//!
//! Jobs run at least once (a claimed job whose process died is queued again at start-up) and results are
//! idempotent (one row per digest and database version), so a crash never loses a scan nor duplicates one.

pub mod rejudge;
pub mod source;
pub mod store;
pub mod update;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use customs_inspect::ImageScan;
use serde::Deserialize;

use crate::meta::ManifestRow;
use crate::metrics::OutcomeLabels;
use crate::server::Registry;
pub use store::{ExceptionsRow, Job, JobRow, ResultRow, ScanStore};

/// How many times a job is claimed before its failure is stored as the result.
const MAX_ATTEMPTS: i64 = 3;
/// How long a claimed job belongs to its worker (scale-out requeues it after this).
const LEASE: Duration = Duration::from_secs(600);
/// How often idle workers look for jobs queued by another process (`customs registry scan`).
const POLL: Duration = Duration::from_secs(2);
/// How often pulls are written and the database's version is looked at.
const WATCH: Duration = Duration::from_secs(10);
/// Parsed scans kept in memory for pull decisions.
const CACHE_ENTRIES: usize = 256;

/// The database version of a vulnerability database nothing was imported into (or that does not exist).
pub const NO_DATABASE: &str = "none";

/// `[scanning]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanningConfig {
    /// Scan every image manifest pushed.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The vulnerability database (`customs db import --db PATH` / `customs db update --db PATH` fill it).
    #[serde(default = "default_vulnerability_db")]
    pub vulnerability_db: PathBuf,
    /// Scans that run at once.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Images pushed or pulled within this many days are rescanned whenever the vulnerability database changes;
    /// older ones keep their last result, and the API says since when.
    #[serde(default = "default_rescan_window")]
    pub rescan_window_days: i64,
    /// Update the vulnerability database this often (`6h`, `1d`) from `db_mirrors` and the official feeds; off by
    /// default: an air-gapped registry imports with `customs db import --db VULNERABILITY_DB FILES…`. Either way
    /// a new database version queues the rescans.
    #[serde(default)]
    pub db_update: Option<String>,
    /// Feeds the scheduled update fetches, named as `customs db update --feed` names them; default: the main OSV
    /// ecosystems.
    #[serde(default)]
    pub db_feeds: Vec<String>,
    /// Mirror base URLs tried first, in order (the layout `customs db update --mirror` reads).
    #[serde(default)]
    pub db_mirrors: Vec<String>,
    /// Fall back to the official URLs when every mirror failed.
    #[serde(default = "default_true")]
    pub db_official: bool,
}

impl Default for ScanningConfig {
    fn default() -> Self {
        ScanningConfig {
            enabled: true,
            vulnerability_db: default_vulnerability_db(),
            workers: default_workers(),
            rescan_window_days: default_rescan_window(),
            db_update: None,
            db_feeds: Vec::new(),
            db_mirrors: Vec::new(),
            db_official: true,
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_vulnerability_db() -> PathBuf {
    "data/vulndb.sqlite".into()
}
fn default_rescan_window() -> i64 {
    30
}
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).div_ceil(2)
}

/// Whether a stored manifest is an image (and so scanned): an image manifest whose config is an image config.
/// Indexes, signatures and other artifacts are not.
pub fn is_image(row: &ManifestRow) -> bool {
    const IMAGE_MANIFESTS: [&str; 2] = [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ];
    const IMAGE_CONFIGS: [&str; 2] = [
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    ];
    IMAGE_MANIFESTS.contains(&row.media_type.as_str())
        && row.artifact_type.as_deref().is_some_and(|t| IMAGE_CONFIGS.contains(&t))
        && !crate::manifest::inspect(Some(&row.media_type), &row.content).is_ok_and(|i| i.is_signature)
}

/// Index entries a listing or a re-judging looks at (a hostile index may list thousands).
pub const INDEX_ENTRIES: usize = 64;

/// The images a tagged manifest stands for: itself when it is an image, else the first [`INDEX_ENTRIES`]
/// entries of an index (nothing for other artifacts).
pub fn images_of(row: &ManifestRow) -> Vec<String> {
    if is_image(row) {
        return vec![row.digest.clone()];
    }
    crate::manifest::inspect(Some(&row.media_type), &row.content)
        .map(|i| i.manifests.iter().take(INDEX_ENTRIES).map(|d| d.to_string()).collect())
        .unwrap_or_default()
}

/// The scanning service: its tables, the database version jobs are queued for, and parsed scans.
pub struct Scanning {
    /// Settings.
    pub config: ScanningConfig,
    /// Jobs, results, exceptions.
    pub store: ScanStore,
    wake: tokio::sync::Notify,
    db_version: Mutex<(String, Option<Instant>)>,
    cache: Mutex<HashMap<(String, String), Arc<ImageScan>>>,
    /// Pulls not yet written: digest → (repository, time). Written in batches, never one write per GET.
    pulls: Mutex<HashMap<String, (String, String)>>,
    /// The database version rescans were last queued for.
    rescanned_for: Mutex<Option<String>>,
    /// The scheduled database update, when `db_update` is set.
    pub schedule: Option<update::Schedule>,
    /// When the daily rescan round last looked (registry clock).
    daily_checked: Mutex<Option<time::OffsetDateTime>>,
    /// Exceptions and the date as last seen, for verdicts that change with no rescan.
    pub exception_watch: rejudge::ExceptionWatch,
}

impl Scanning {
    /// The service over `store`; an error names the `[scanning]` setting that is wrong.
    pub fn new(config: ScanningConfig, store: ScanStore) -> Result<Scanning, String> {
        let schedule = update::Schedule::from_config(&config)?;
        Ok(Scanning {
            daily_checked: Mutex::new(None),
            exception_watch: rejudge::ExceptionWatch::default(),
            schedule,
            config,
            store,
            wake: tokio::sync::Notify::new(),
            db_version: Mutex::new((NO_DATABASE.to_string(), None)),
            cache: Mutex::new(HashMap::new()),
            pulls: Mutex::new(HashMap::new()),
            rescanned_for: Mutex::new(None),
        })
    }

    /// Reads the database version now, whatever was cached.
    pub async fn refresh_db_version(&self) -> String {
        self.db_version.lock().expect("lock").1 = None;
        self.db_version().await
    }

    /// Notes a pull of an image, in memory; [`Scanning::flush_pulls`] writes them.
    pub fn note_pull(&self, digest: &str, repository: &str, now: &str) {
        self.pulls
            .lock()
            .expect("lock")
            .insert(digest.to_string(), (repository.to_string(), now.to_string()));
    }

    /// Writes the pulls noted since the last flush in one transaction.
    pub async fn flush_pulls(&self) -> Result<(), crate::meta::MetaError> {
        let batch: Vec<(String, String, String)> = std::mem::take(&mut *self.pulls.lock().expect("lock"))
            .into_iter()
            .map(|(digest, (repository, at))| (digest, repository, at))
            .collect();
        if batch.is_empty() {
            return Ok(());
        }
        self.store.record_pulls(&batch).await
    }

    /// When the vulnerability database has changed since the last call (or on the first call), queues a rescan
    /// of every image pushed or pulled within the window, for the new version; returns how many were queued.
    /// Idempotent: a (digest, version) that already has a job is left alone.
    pub async fn rescan_on_database_change(&self, now: time::OffsetDateTime) -> Result<usize, crate::meta::MetaError> {
        let version = self.refresh_db_version().await;
        if version == NO_DATABASE || self.rescanned_for.lock().expect("lock").as_deref() == Some(version.as_str()) {
            return Ok(0);
        }
        self.flush_pulls().await?;
        let since = crate::clock::format(now - time::Duration::days(self.config.rescan_window_days));
        let stamp = crate::clock::format(now);
        let mut queued = 0;
        for (digest, repository) in self.store.active_since(&since).await? {
            if self.store.enqueue(&digest, &repository, &version, "rescan", &stamp, false).await? {
                queued += 1;
            }
        }
        if queued > 0 {
            tracing::info!(
                "vulnerability database {version}: {queued} image(s) used in the last {} days queued for a rescan",
                self.config.rescan_window_days
            );
            self.wake.notify_waiters();
            self.wake.notify_one();
        }
        *self.rescanned_for.lock().expect("lock") = Some(version);
        Ok(queued)
    }

    /// Defender's floor: every image pushed or pulled within the window whose newest result is more than a day
    /// old is scanned again (reason `daily`), whether or not the database changed, so a scanner upgrade or a
    /// database fed by hand is reflected within a day. Looks at most hourly; returns how many were queued.
    pub async fn rescan_daily(&self, now: time::OffsetDateTime) -> Result<usize, crate::meta::MetaError> {
        {
            let mut checked = self.daily_checked.lock().expect("lock");
            if checked.is_some_and(|at| now - at < time::Duration::hours(1)) {
                return Ok(0);
            }
            *checked = Some(now);
        }
        let version = self.db_version().await;
        if version == NO_DATABASE {
            return Ok(0);
        }
        self.flush_pulls().await?;
        let since = crate::clock::format(now - time::Duration::days(self.config.rescan_window_days));
        let day_ago = crate::clock::format(now - time::Duration::days(1));
        let stamp = crate::clock::format(now);
        let mut queued = 0;
        for (digest, repository) in self.store.active_since(&since).await? {
            // Only results of the current database: older ones are the database-change rescan's to redo.
            let stale = match self.store.latest(&digest).await? {
                Some(latest) => latest.db_version == version && latest.finished_at < day_ago,
                None => false,
            };
            if stale && self.store.enqueue(&digest, &repository, &version, "daily", &stamp, true).await? {
                queued += 1;
            }
        }
        if queued > 0 {
            tracing::info!(
                "{queued} image(s) used in the last {} days rescanned for the day",
                self.config.rescan_window_days
            );
            self.wake.notify_waiters();
            self.wake.notify_one();
        }
        Ok(queued)
    }

    /// The vulnerability database's version (the time of its last import), read again at most every 10 s.
    pub async fn db_version(&self) -> String {
        {
            let cached = self.db_version.lock().expect("lock");
            if cached.1.is_some_and(|at| at.elapsed() < Duration::from_secs(10)) {
                return cached.0.clone();
            }
        }
        let path = self.config.vulnerability_db.clone();
        let version = tokio::task::spawn_blocking(move || read_db_version(&path))
            .await
            .unwrap_or_else(|_| NO_DATABASE.to_string());
        *self.db_version.lock().expect("lock") = (version.clone(), Some(Instant::now()));
        version
    }

    /// Queues a scan of an image manifest pushed to `repository` and wakes a worker.
    pub async fn on_push(&self, repository: &str, digest: &str, now: &str) -> Result<(), crate::meta::MetaError> {
        self.store.touch_pushed(digest, repository, now).await?;
        let version = self.db_version().await;
        if self.store.enqueue(digest, repository, &version, "push", now, false).await? {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Queues a scan on demand, even when one ran for this database version; returns whether it was queued
    /// (false while one is already queued or running).
    pub async fn on_demand(&self, repository: &str, digest: &str, now: &str) -> Result<bool, crate::meta::MetaError> {
        let version = self.db_version().await;
        let queued = self.store.enqueue(digest, repository, &version, "manual", now, true).await?;
        if queued {
            self.wake.notify_one();
        }
        Ok(queued)
    }

    /// The stored scan of a result row, parsed once and kept.
    pub fn parsed(&self, row: &ResultRow) -> Option<Arc<ImageScan>> {
        let key = (row.digest.clone(), row.finished_at.clone());
        if let Some(scan) = self.cache.lock().expect("lock").get(&key) {
            return Some(scan.clone());
        }
        let scan: ImageScan = match serde_json::from_str(row.scan.as_deref()?) {
            Ok(scan) => scan,
            Err(e) => {
                tracing::error!("stored scan of {} does not parse: {e}", row.digest);
                return None;
            }
        };
        let scan = Arc::new(scan);
        let mut cache = self.cache.lock().expect("lock");
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, scan.clone());
        Some(scan)
    }
}

fn read_db_version(path: &std::path::Path) -> String {
    if !path.exists() {
        return NO_DATABASE.to_string();
    }
    customs_vulndb::Database::open_existing(path)
        .and_then(|db| db.updated())
        .ok()
        .flatten()
        .unwrap_or_else(|| NO_DATABASE.to_string())
}

/// Starts the worker pool: jobs a stopped process left running are queued again first (on PostgreSQL, those
/// whose lease ran out: other replicas may be running the rest).
pub async fn start_workers(registry: &Arc<Registry>) {
    let Some(scanning) = &registry.scanning else { return };
    let expired_before = registry
        .meta
        .engine()
        .startup_requeue_cutoff(crate::clock::format(registry.clock.now()));
    match scanning.store.requeue_abandoned(expired_before.as_deref()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!("{n} scan job(s) interrupted by the last stop are queued again"),
        Err(e) => tracing::error!("{e}"),
    }
    for _ in 0..scanning.config.workers.max(1) {
        let registry = registry.clone();
        tokio::spawn(async move { work(registry).await });
    }
    if let Some(schedule) = &scanning.schedule {
        let (registry, schedule) = (registry.clone(), schedule.clone());
        tokio::spawn(async move { update::run(registry, schedule).await });
    }
    let registry = registry.clone();
    tokio::spawn(async move { watch(registry).await });
}

/// Every few seconds: writes the pulls noted in memory, queues rescans when the database changed, and announces
/// verdicts that exceptions set or expired have flipped.
async fn watch(registry: Arc<Registry>) {
    let scanning = registry.scanning.as_ref().expect("the watcher runs with scanning on");
    loop {
        if let Err(e) = scanning.flush_pulls().await {
            tracing::error!("{e}");
        }
        if let Err(e) = scanning.rescan_on_database_change(registry.clock.now()).await {
            tracing::error!("{e}");
        }
        if let Err(e) = scanning.rescan_daily(registry.clock.now()).await {
            tracing::error!("{e}");
        }
        if let Err(e) = scanning.exception_watch.check(&registry).await {
            tracing::error!("verdicts under changed exceptions: {e}");
        }
        tokio::time::sleep(WATCH).await;
    }
}

async fn work(registry: Arc<Registry>) {
    let scanning = registry.scanning.as_ref().expect("workers run with scanning on");
    loop {
        let now = registry.clock.now();
        let lease = now + time::Duration::seconds(LEASE.as_secs() as i64);
        match scanning.store.claim(&crate::clock::format(now), &crate::clock::format(lease)).await {
            Ok(Some(job)) => run(&registry, scanning, job).await,
            Ok(None) => {
                if let Ok(n) = scanning.store.pending().await {
                    registry.metrics.scan_queue.set(n);
                }
                let _ = tokio::time::timeout(POLL, scanning.wake.notified()).await;
            }
            Err(e) => {
                tracing::error!("{e}");
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

async fn run(registry: &Arc<Registry>, scanning: &Scanning, job: Job) {
    let started_at = registry.clock.now_rfc3339();
    let began = Instant::now();
    let source = source::StoredImage {
        runtime: tokio::runtime::Handle::current(),
        meta: registry.meta.clone(),
        blobs: registry.blobs.clone(),
        repository: job.repository.clone(),
    };
    let path = scanning.config.vulnerability_db.clone();
    let digest = job.digest.clone();
    let outcome = in_background(move || scan_stored(source, &digest, &path)).await.unwrap_or_else(Err);
    let (outcome_label, scan, error, sources) = match outcome {
        Ok((scan, sources)) => ("scanned", Some(scan), None, sources),
        Err(e) if job.attempts < MAX_ATTEMPTS => {
            tracing::warn!("scan of {}@{} failed (attempt {}): {e}", job.repository, job.digest, job.attempts);
            if let Err(e) = scanning.store.retry(&job, &e).await {
                tracing::error!("{e}");
            }
            return;
        }
        Err(e) => ("failed", None, Some(e), "[]".to_string()),
    };
    let result = ResultRow {
        digest: job.digest.clone(),
        db_version: job.db_version.clone(),
        repository: job.repository.clone(),
        outcome: outcome_label.to_string(),
        scan,
        error,
        sources,
        scanner_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at,
        finished_at: registry.clock.now_rfc3339(),
    };
    // The result this one replaces, for `verdict.changed`: read only when webhooks listen.
    let previous = match &registry.webhooks {
        Some(_) => scanning.store.latest(&job.digest).await.ok().flatten(),
        None => None,
    };
    match scanning.store.finish(&job, &result).await {
        Ok(()) => {
            announce(registry, scanning, &job, &result, previous.as_ref()).await;
            registry
                .metrics
                .scans
                .get_or_create(&OutcomeLabels { outcome: outcome_label })
                .inc();
            registry.metrics.scan_seconds.observe(began.elapsed().as_secs_f64());
            registry.record(crate::audit::AuditEvent {
                principal: "scanner".into(),
                action: "scan".into(),
                repository: job.repository.clone(),
                reference: job.digest.clone(),
                result: if outcome_label == "scanned" { "allowed" } else { "error" }.into(),
                detail: match &result.error {
                    Some(e) => format!("scan failed: {e}"),
                    None => format!("scanned with vulnerability database {} ({})", job.db_version, job.reason),
                },
                ..crate::audit::AuditEvent::default()
            });
        }
        Err(e) => tracing::error!("{e}"),
    }
}

/// Tells webhooks about a stored result: `scan.completed` with the verdict or `scan.failed`, and
/// `verdict.changed` when the verdict differs from the previous result's (the same policy and exceptions judge
/// both, so the flip is the scan's: a new advisory, a severity change).
async fn announce(registry: &Registry, scanning: &Scanning, job: &Job, result: &ResultRow, previous: Option<&ResultRow>) {
    use crate::webhooks::{Event, EventKind};
    if registry.webhooks.is_none() {
        return;
    }
    let time = result.finished_at.clone();
    let Some(scan) = scanning.parsed(result) else {
        let error = result.error.clone().unwrap_or_default();
        registry
            .emit(Event::about(
                EventKind::ScanFailed,
                &job.repository,
                format!("{}@{}", job.repository, job.digest),
                serde_json::json!({"digest": job.digest, "db_version": job.db_version, "reason": job.reason, "error": error}),
                (format!("scan of {}@{} failed", job.repository, job.digest), error, false),
                time,
            ))
            .await;
        return;
    };
    let today = registry.clock.today();
    let inspection = match crate::protect::judge(scanning, &registry.protection, &job.repository, &scan, today).await {
        Ok(inspection) => inspection,
        Err(e) => {
            tracing::error!("{}@{}: no verdict for webhooks: {e}", job.repository, job.digest);
            return;
        }
    };
    let data = serde_json::json!({"db_version": job.db_version, "reason": job.reason});
    let headline = format!("{}@{} scanned ({})", job.repository, job.digest, job.reason);
    registry
        .emit(Event::about_verdict(
            EventKind::ScanCompleted,
            &job.repository,
            &job.digest,
            &inspection,
            headline,
            data,
            time.clone(),
        ))
        .await;
    // A flip is news when a newer database moved it; a late scan against an older one is not.
    let Some(before) = previous
        .filter(|p| p.db_version != result.db_version && p.db_version.as_str() < result.db_version.as_str())
        .and_then(|p| scanning.parsed(p).map(|s| (p, s)))
    else {
        return;
    };
    let Ok(was) = crate::protect::judge(scanning, &registry.protection, &job.repository, &before.1, today).await else {
        return;
    };
    if was.verdict.pass == inspection.verdict.pass {
        return;
    }
    let data = serde_json::json!({
        "db_version": job.db_version,
        "reason": job.reason,
        "previous": {"pass": was.verdict.pass, "db_version": before.0.db_version, "scanned_at": before.0.finished_at,
                     "failing_count": was.verdict.failing.len()},
    });
    let headline = format!(
        "verdict of {}@{} changed: {} → {} (vulnerability database {})",
        job.repository,
        job.digest,
        if was.verdict.pass { "pass" } else { "fail" },
        if inspection.verdict.pass { "pass" } else { "fail" },
        job.db_version
    );
    registry
        .emit(Event::about_verdict(
            EventKind::VerdictChanged,
            &job.repository,
            &job.digest,
            &inspection,
            headline,
            data,
            time,
        ))
        .await;
}

/// Runs `work` on a thread of its own at the lowest CPU priority (nice 19 on Linux), so scans never slow the
/// pushes and pulls they follow on a small machine. Its own thread, not tokio's blocking pool: an unprivileged
/// thread cannot raise its priority back, and pooled threads also serve requests.
async fn in_background<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("customs-scan".into())
        .spawn(move || {
            #[cfg(target_os = "linux")]
            // SAFETY: gettid and setpriority on the calling thread have no memory effects; failure leaves the
            // thread at its priority.
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::setpriority(libc::PRIO_PROCESS, tid, 19);
            }
            let _ = tx.send(work());
        })
        .map_err(|e| format!("starting a scan thread: {e}"))?;
    rx.await.map_err(|_| "the scan stopped unexpectedly".to_string())
}

/// Inspects a stored image: packages and secrets in one pass over its layers, matched against the database.
/// Returns the scan and the database's sources, both as JSON. A database with nothing imported is an error: a
/// scan that cannot see must not look clean.
fn scan_stored(source: source::StoredImage, digest: &str, vulnerability_db: &std::path::Path) -> Result<(String, String), String> {
    let fill = format!(
        "fill it with `customs db import --db {0} FILES…` or `customs db update --db {0}`",
        vulnerability_db.display()
    );
    if !vulnerability_db.exists() {
        return Err(format!(
            "the vulnerability database {} does not exist; {fill}",
            vulnerability_db.display()
        ));
    }
    let db = customs_vulndb::Database::open_existing(vulnerability_db).map_err(|e| format!("{e}; {fill}"))?;
    if db.updated().map_err(|e| e.to_string())?.is_none() {
        return Err(format!(
            "vulnerability database {}: nothing imported yet, so no vulnerability could be seen; {fill}",
            vulnerability_db.display()
        ));
    }
    let manifest: customs_oci::Digest = digest.parse().map_err(|e: customs_oci::ParseDigestError| e.to_string())?;
    let name = format!("{}@{digest}", source.repository);
    let image = customs_oci::Image::from_blob_source(Arc::new(source), name, &manifest, Vec::new(), &customs_oci::Platform::default())
        .map_err(|e| e.to_string())?;
    let secrets = customs_inspect::builtin_secrets();
    let mut scan = customs_inspect::survey(&image, Some(secrets), &customs_oci::NoProgress).map_err(|e| e.to_string())?;
    customs_inspect::match_database(&mut scan, &db).map_err(|e| e.to_string())?;
    let sources = db.sources().map_err(|e| e.to_string())?;
    let scan = serde_json::to_string(&scan).expect("scans serialize");
    let sources = serde_json::to_string(&sources).expect("sources serialize");
    Ok((scan, sources))
}

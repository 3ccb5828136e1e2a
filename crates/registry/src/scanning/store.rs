//! Scan jobs, scan results and repository exceptions in the metadata database.
//!
//! Portable SQL (`$N` placeholders, `ON CONFLICT`, `RETURNING`): the claim is one statement, so concurrent
//! workers never take the same job; on PostgreSQL the inner SELECT gains `FOR UPDATE SKIP LOCKED`.

use sqlx::Row;

use crate::meta::{MetaError, MetaStore, ctx};

type Result<T> = std::result::Result<T, MetaError>;

/// A job as claimed by a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// Job id.
    pub id: String,
    /// The image manifest to scan.
    pub digest: String,
    /// A repository that holds it (its blobs are read from there).
    pub repository: String,
    /// The vulnerability database version it was queued for.
    pub db_version: String,
    /// `push`, `manual` or `rescan`.
    pub reason: String,
    /// How many times it was claimed, this time included.
    pub attempts: i64,
}

/// A job as the API lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct JobRow {
    /// Job id.
    pub id: String,
    /// Manifest digest.
    pub digest: String,
    /// Repository.
    pub repository: String,
    /// Database version.
    pub db_version: String,
    /// Why it was queued.
    pub reason: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// Claims so far.
    pub attempts: i64,
    /// When it was queued.
    pub enqueued_at: String,
    /// When it finished.
    pub finished_at: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// One stored scan result: the scan (before any policy) and where it came from.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ResultRow {
    /// Manifest digest.
    pub digest: String,
    /// The vulnerability database version (time of its last import).
    pub db_version: String,
    /// The repository it was scanned from.
    pub repository: String,
    /// `scanned` or `failed`.
    pub outcome: String,
    /// The [`customs_inspect::ImageScan`] as JSON, when scanned.
    #[serde(skip)]
    pub scan: Option<String>,
    /// Why the scan failed.
    pub error: Option<String>,
    /// The database's sources and their dates, as JSON.
    #[serde(skip)]
    pub sources: String,
    /// The customs version that scanned.
    pub scanner_version: String,
    /// Start and end (RFC 3339).
    pub started_at: String,
    /// End.
    pub finished_at: String,
}

/// A repository's exceptions as stored.
#[derive(Clone, Debug)]
pub struct ExceptionsRow {
    /// exclusions.json text.
    pub body: String,
    /// When they were set.
    pub updated_at: String,
    /// Who set them.
    pub updated_by: String,
}

/// The scanning tables.
#[derive(Clone)]
pub struct ScanStore {
    meta: MetaStore,
}

fn job_row(r: &sqlx::any::AnyRow) -> JobRow {
    JobRow {
        id: r.get(0),
        digest: r.get(1),
        repository: r.get(2),
        db_version: r.get(3),
        reason: r.get(4),
        state: r.get(5),
        attempts: r.get(6),
        enqueued_at: r.get(7),
        finished_at: r.get(8),
        error: r.get(9),
    }
}

fn result_row(r: &sqlx::any::AnyRow) -> ResultRow {
    ResultRow {
        digest: r.get(0),
        db_version: r.get(1),
        repository: r.get(2),
        outcome: r.get(3),
        scan: r.get(4),
        error: r.get(5),
        sources: r.get(6),
        scanner_version: r.get(7),
        started_at: r.get(8),
        finished_at: r.get(9),
    }
}

const RESULT_COLUMNS: &str = "digest, db_version, repository, outcome, scan, error, sources, scanner_version, started_at, finished_at";
const JOB_COLUMNS: &str = "id, digest, repository, db_version, reason, state, attempts, enqueued_at, finished_at, error";

impl ScanStore {
    /// The tables in `meta`'s database.
    pub fn new(meta: MetaStore) -> ScanStore {
        ScanStore { meta }
    }

    /// The metadata database the tables are in.
    pub fn meta(&self) -> &MetaStore {
        &self.meta
    }

    /// Queues a scan of `digest` for database `db_version`; a job already queued, running or done for the pair
    /// stays as it is (scans are idempotent by digest and database version). `again` (an on-demand scan) puts a
    /// finished job back in the queue. Returns whether a job was queued.
    pub async fn enqueue(&self, digest: &str, repository: &str, db_version: &str, reason: &str, now: &str, again: bool) -> Result<bool> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let sql = if again {
            "INSERT INTO scan_jobs (id, digest, repository, db_version, reason, state, enqueued_at)
             VALUES ($1, $2, $3, $4, $5, 'queued', $6)
             ON CONFLICT (digest, db_version) DO UPDATE SET state = 'queued', reason = excluded.reason,
                 repository = excluded.repository, enqueued_at = excluded.enqueued_at, attempts = 0, error = NULL
             WHERE scan_jobs.state IN ('done', 'failed')"
        } else {
            "INSERT INTO scan_jobs (id, digest, repository, db_version, reason, state, enqueued_at)
             VALUES ($1, $2, $3, $4, $5, 'queued', $6) ON CONFLICT (digest, db_version) DO NOTHING"
        };
        let done = sqlx::query(sql)
            .bind(&id)
            .bind(digest)
            .bind(repository)
            .bind(db_version)
            .bind(reason)
            .bind(now)
            .execute(self.meta.pool())
            .await
            .map_err(ctx("queueing a scan"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Takes the oldest queued job, leasing it until `lease_until`.
    pub async fn claim(&self, now: &str, lease_until: &str) -> Result<Option<Job>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE scan_jobs SET state = 'running', attempts = attempts + 1, started_at = $1, lease_until = $2
             WHERE id = (SELECT id FROM scan_jobs WHERE state = 'queued' ORDER BY enqueued_at, id LIMIT 1{})
               AND state = 'queued'
             RETURNING id, digest, repository, db_version, reason, attempts",
            self.meta.engine().skip_locked()
        )))
        .bind(now)
        .bind(lease_until)
        .fetch_optional(self.meta.pool())
        .await
        .map_err(ctx("claiming a scan job"))?;
        Ok(row.map(|r| Job {
            id: r.get(0),
            digest: r.get(1),
            repository: r.get(2),
            db_version: r.get(3),
            reason: r.get(4),
            attempts: r.get(5),
        }))
    }

    /// Puts back jobs a stopped process was running: all of them at start-up (SQLite has one process), or
    /// those whose lease ran out before `now`.
    pub async fn requeue_abandoned(&self, now: Option<&str>) -> Result<u64> {
        let done = match now {
            None => {
                sqlx::query("UPDATE scan_jobs SET state = 'queued' WHERE state = 'running'")
                    .execute(self.meta.pool())
                    .await
            }
            Some(now) => {
                sqlx::query("UPDATE scan_jobs SET state = 'queued' WHERE state = 'running' AND lease_until < $1")
                    .bind(now)
                    .execute(self.meta.pool())
                    .await
            }
        }
        .map_err(ctx("requeueing scan jobs"))?;
        Ok(done.rows_affected())
    }

    /// Stores a job's result and closes the job, in one transaction: a crash before the commit leaves the job
    /// to run again, after it leaves one result row.
    pub async fn finish(&self, job: &Job, result: &ResultRow) -> Result<()> {
        let mut tx = self.meta.pool().begin().await.map_err(ctx("storing a scan result"))?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO scan_results ({RESULT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (digest, db_version) DO UPDATE SET repository = excluded.repository,
                 outcome = excluded.outcome, scan = excluded.scan, error = excluded.error,
                 sources = excluded.sources, scanner_version = excluded.scanner_version,
                 started_at = excluded.started_at, finished_at = excluded.finished_at"
        )))
        .bind(&result.digest)
        .bind(&result.db_version)
        .bind(&result.repository)
        .bind(&result.outcome)
        .bind(&result.scan)
        .bind(&result.error)
        .bind(&result.sources)
        .bind(&result.scanner_version)
        .bind(&result.started_at)
        .bind(&result.finished_at)
        .execute(&mut *tx)
        .await
        .map_err(ctx("storing a scan result"))?;
        let state = if result.outcome == "scanned" { "done" } else { "failed" };
        sqlx::query("UPDATE scan_jobs SET state = $1, finished_at = $2, error = $3, lease_until = NULL WHERE id = $4")
            .bind(state)
            .bind(&result.finished_at)
            .bind(&result.error)
            .bind(&job.id)
            .execute(&mut *tx)
            .await
            .map_err(ctx("closing a scan job"))?;
        tx.commit().await.map_err(ctx("storing a scan result"))
    }

    /// Puts a job that failed for a passing reason back in the queue.
    pub async fn retry(&self, job: &Job, error: &str) -> Result<()> {
        sqlx::query("UPDATE scan_jobs SET state = 'queued', error = $1, lease_until = NULL WHERE id = $2")
            .bind(error)
            .bind(&job.id)
            .execute(self.meta.pool())
            .await
            .map_err(ctx("requeueing a scan job"))?;
        Ok(())
    }

    /// The result for a manifest under the newest database version it was scanned with (the newest of those):
    /// a scan against an older database that happens to finish later never hides a newer one.
    pub async fn latest(&self, digest: &str) -> Result<Option<ResultRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RESULT_COLUMNS} FROM scan_results WHERE digest = $1
             ORDER BY (db_version <> 'none') DESC, db_version DESC, finished_at DESC LIMIT 1"
        )))
        .bind(digest)
        .fetch_optional(self.meta.pool())
        .await
        .map_err(ctx("reading a scan result"))?;
        Ok(row.as_ref().map(result_row))
    }

    /// Every result stored for a manifest, newest first.
    pub async fn results(&self, digest: &str) -> Result<Vec<ResultRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RESULT_COLUMNS} FROM scan_results WHERE digest = $1 ORDER BY finished_at DESC"
        )))
        .bind(digest)
        .fetch_all(self.meta.pool())
        .await
        .map_err(ctx("reading scan results"))?;
        Ok(rows.iter().map(result_row).collect())
    }

    /// Jobs, newest first; `state` narrows them.
    pub async fn jobs(&self, state: Option<&str>, limit: i64) -> Result<Vec<JobRow>> {
        let rows = match state {
            Some(state) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {JOB_COLUMNS} FROM scan_jobs WHERE state = $1 ORDER BY enqueued_at DESC LIMIT $2"
                )))
                .bind(state)
                .bind(limit)
                .fetch_all(self.meta.pool())
                .await
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {JOB_COLUMNS} FROM scan_jobs ORDER BY enqueued_at DESC LIMIT $1"
                )))
                .bind(limit)
                .fetch_all(self.meta.pool())
                .await
            }
        }
        .map_err(ctx("listing scan jobs"))?;
        Ok(rows.iter().map(job_row).collect())
    }

    /// How many jobs wait or run (the queue depth metric).
    pub async fn pending(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM scan_jobs WHERE state IN ('queued', 'running')")
            .fetch_one(self.meta.pool())
            .await
            .map_err(ctx("counting scan jobs"))
    }

    /// Every repository's exceptions.
    pub async fn all_exceptions(&self) -> Result<Vec<(String, ExceptionsRow)>> {
        let rows = sqlx::query("SELECT repository, body, updated_at, updated_by FROM repo_exceptions ORDER BY repository")
            .fetch_all(self.meta.pool())
            .await
            .map_err(ctx("reading exceptions"))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let row = ExceptionsRow {
                    body: r.get(1),
                    updated_at: r.get(2),
                    updated_by: r.get(3),
                };
                (r.get(0), row)
            })
            .collect())
    }

    /// A repository's exceptions.
    pub async fn exceptions(&self, repository: &str) -> Result<Option<ExceptionsRow>> {
        let row = sqlx::query("SELECT body, updated_at, updated_by FROM repo_exceptions WHERE repository = $1")
            .bind(repository)
            .fetch_optional(self.meta.pool())
            .await
            .map_err(ctx("reading exceptions"))?;
        Ok(row.map(|r| ExceptionsRow {
            body: r.get(0),
            updated_at: r.get(1),
            updated_by: r.get(2),
        }))
    }

    /// Replaces a repository's exceptions (an empty list removes them).
    pub async fn set_exceptions(&self, repository: &str, body: &str, now: &str, by: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO repo_exceptions (repository, body, updated_at, updated_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (repository) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at,
                 updated_by = excluded.updated_by",
        )
        .bind(repository)
        .bind(body)
        .bind(now)
        .bind(by)
        .execute(self.meta.pool())
        .await
        .map_err(ctx("writing exceptions"))?;
        Ok(())
    }

    /// Notes a push of an image (one write per push).
    pub async fn touch_pushed(&self, digest: &str, repository: &str, now: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO image_activity (digest, repository, last_pushed) VALUES ($1, $2, $3)
             ON CONFLICT (digest) DO UPDATE SET repository = excluded.repository, last_pushed = excluded.last_pushed",
        )
        .bind(digest)
        .bind(repository)
        .bind(now)
        .execute(self.meta.pool())
        .await
        .map_err(ctx("noting a push"))?;
        Ok(())
    }

    /// Writes a batch of pulls (digest, repository, time) in one transaction, keeping the latest time.
    pub async fn record_pulls(&self, pulls: &[(String, String, String)]) -> Result<()> {
        let mut tx = self.meta.pool().begin().await.map_err(ctx("noting pulls"))?;
        for (digest, repository, at) in pulls {
            sqlx::query(
                "INSERT INTO image_activity (digest, repository, last_pulled) VALUES ($1, $2, $3)
                 ON CONFLICT (digest) DO UPDATE SET last_pulled = excluded.last_pulled
                 WHERE image_activity.last_pulled IS NULL OR image_activity.last_pulled < excluded.last_pulled",
            )
            .bind(digest)
            .bind(repository)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(ctx("noting pulls"))?;
        }
        tx.commit().await.map_err(ctx("noting pulls"))
    }

    /// Images pushed or pulled at or after `since`: the ones rescans cover.
    pub async fn active_since(&self, since: &str) -> Result<Vec<(String, String)>> {
        let rows =
            sqlx::query("SELECT digest, repository FROM image_activity WHERE last_pushed >= $1 OR last_pulled >= $1 ORDER BY digest")
                .bind(since)
                .fetch_all(self.meta.pool())
                .await
                .map_err(ctx("listing recently used images"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// When an image was last pushed and pulled.
    pub async fn activity(&self, digest: &str) -> Result<(Option<String>, Option<String>)> {
        let row = sqlx::query("SELECT last_pushed, last_pulled FROM image_activity WHERE digest = $1")
            .bind(digest)
            .fetch_optional(self.meta.pool())
            .await
            .map_err(ctx("reading an image's activity"))?;
        Ok(row.map_or((None, None), |r| (r.get(0), r.get(1))))
    }
}

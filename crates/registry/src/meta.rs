//! Metadata in SQL: principals, group memberships, repositories, blob links, manifests, tags and uploads.
//!
//! SQLite (WAL) by default. Queries use `$N` placeholders and portable SQL so a PostgreSQL backend can share them.

use std::path::Path;
use std::str::FromStr;

use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// 2 added scan jobs, scan results, repository exceptions and pull times; 3 webhook deliveries; 4 image lineage
/// (tables only: older versions open as they are, and images stored before 4 get their lineage at start-up).
const SCHEMA_VERSION: i64 = 4;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS principals (name TEXT PRIMARY KEY, kind TEXT NOT NULL, secret_hash TEXT NOT NULL,
        disabled BIGINT NOT NULL DEFAULT 0, description TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
        rotated_at TEXT)",
    "CREATE TABLE IF NOT EXISTS group_members (group_name TEXT NOT NULL, principal TEXT NOT NULL,
        PRIMARY KEY (group_name, principal))",
    "CREATE TABLE IF NOT EXISTS repositories (name TEXT PRIMARY KEY, created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS repo_blobs (repository TEXT NOT NULL, digest TEXT NOT NULL, size BIGINT NOT NULL,
        PRIMARY KEY (repository, digest))",
    "CREATE TABLE IF NOT EXISTS manifests (repository TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT NOT NULL,
        artifact_type TEXT, subject TEXT, content BLOB NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (repository, digest))",
    "CREATE INDEX IF NOT EXISTS manifests_by_subject ON manifests (repository, subject)",
    "CREATE TABLE IF NOT EXISTS tags (repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL,
        updated_at TEXT NOT NULL, PRIMARY KEY (repository, tag))",
    "CREATE TABLE IF NOT EXISTS uploads (id TEXT PRIMARY KEY, repository TEXT NOT NULL, size BIGINT NOT NULL,
        started_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS upload_parts (upload_id TEXT NOT NULL, start_offset BIGINT NOT NULL, size BIGINT NOT NULL,
        object_key TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (upload_id, start_offset))",
    // Scan jobs: one per manifest digest and vulnerability-database version, whatever happens to the process.
    "CREATE TABLE IF NOT EXISTS scan_jobs (id TEXT PRIMARY KEY, digest TEXT NOT NULL, repository TEXT NOT NULL,
        db_version TEXT NOT NULL, reason TEXT NOT NULL, state TEXT NOT NULL, attempts BIGINT NOT NULL DEFAULT 0,
        enqueued_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, lease_until TEXT, error TEXT,
        UNIQUE (digest, db_version))",
    "CREATE INDEX IF NOT EXISTS scan_jobs_by_state ON scan_jobs (state, enqueued_at)",
    "CREATE TABLE IF NOT EXISTS scan_results (digest TEXT NOT NULL, db_version TEXT NOT NULL,
        repository TEXT NOT NULL, outcome TEXT NOT NULL, scan TEXT, error TEXT, sources TEXT NOT NULL,
        scanner_version TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
        PRIMARY KEY (digest, db_version))",
    "CREATE INDEX IF NOT EXISTS scan_results_by_digest ON scan_results (digest, finished_at)",
    // When each image was last pushed and pulled (pulls written in batches), for the rescan window.
    "CREATE TABLE IF NOT EXISTS image_activity (digest TEXT PRIMARY KEY, repository TEXT NOT NULL,
        last_pushed TEXT, last_pulled TEXT)",
    "CREATE TABLE IF NOT EXISTS repo_exceptions (repository TEXT PRIMARY KEY, body TEXT NOT NULL,
        updated_at TEXT NOT NULL, updated_by TEXT NOT NULL)",
    // Webhook deliveries: the queue and the delivery log; one row per webhook and event.
    "CREATE TABLE IF NOT EXISTS webhook_deliveries (id TEXT PRIMARY KEY, webhook TEXT NOT NULL, event_id TEXT NOT NULL,
        event_type TEXT NOT NULL, repository TEXT NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0, next_attempt_at TEXT NOT NULL, lease_until TEXT, last_status BIGINT,
        last_error TEXT, created_at TEXT NOT NULL, delivered_at TEXT, UNIQUE (webhook, event_id))",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at)",
    // Image lineage: each image's layer chain and the base it was found to be built on (crate::lineage).
    "CREATE TABLE IF NOT EXISTS image_lineage (repository TEXT NOT NULL, digest TEXT NOT NULL, chain_id TEXT NOT NULL,
        layer_count BIGINT NOT NULL, base_digest TEXT, base_chain_id TEXT, base_layers BIGINT, base_repository TEXT,
        base_tag TEXT, base_name TEXT, base_source TEXT, recorded_at TEXT NOT NULL, PRIMARY KEY (repository, digest))",
    // Every digest a tag pointed at, so "built on base/debian:12" covers its earlier images too.
    "CREATE TABLE IF NOT EXISTS tag_history (repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL,
        tagged_at TEXT NOT NULL, PRIMARY KEY (repository, tag, digest))",
    // The highest trust-data version seen per repository: an older one is a rollback (crate::signatures).
    "CREATE TABLE IF NOT EXISTS trust_versions (repository TEXT PRIMARY KEY, version BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS image_lineage_by_chain ON image_lineage (chain_id)",
    "CREATE INDEX IF NOT EXISTS image_lineage_by_base_digest ON image_lineage (base_digest)",
    "CREATE INDEX IF NOT EXISTS image_lineage_by_base_chain ON image_lineage (base_chain_id)",
    "CREATE INDEX IF NOT EXISTS image_lineage_by_base_name ON image_lineage (base_repository, base_tag)",
];

/// A database error, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("registry database ({doing}): {source}")]
pub struct MetaError {
    doing: &'static str,
    #[source]
    source: sqlx::Error,
}

type Result<T> = std::result::Result<T, MetaError>;

pub(crate) fn ctx(doing: &'static str) -> impl FnOnce(sqlx::Error) -> MetaError {
    move |source| MetaError { doing, source }
}

fn now() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).expect("format time")
}

/// A principal as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrincipalRow {
    /// Client id / user name.
    pub name: String,
    /// `service-principal` or `user`.
    pub kind: String,
    /// Argon2id PHC string of the secret.
    pub secret_hash: String,
    /// Disabled principals cannot log in.
    pub disabled: bool,
    /// Free text.
    pub description: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 time of the last secret rotation.
    pub rotated_at: Option<String>,
}

/// A stored manifest.
#[derive(Clone, Debug)]
pub struct ManifestRow {
    /// `sha256:...`.
    pub digest: String,
    /// Media type it was pushed with.
    pub media_type: String,
    /// `artifactType`, or the config media type of an image manifest.
    pub artifact_type: Option<String>,
    /// The exact bytes pushed.
    pub content: Vec<u8>,
}

/// One committed part of an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadPart {
    /// Offset of the part's first byte.
    pub offset: u64,
    /// Length.
    pub size: u64,
    /// Object key holding the bytes.
    pub key: String,
    /// SHA-256 of the part alone (lets a one-part upload commit without re-reading).
    pub digest: String,
}

/// The metadata store.
#[derive(Clone)]
pub struct MetaStore {
    pool: SqlitePool,
}

impl MetaStore {
    /// The connection pool, for the modules that keep their own tables here (scan jobs and results).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Opens (or creates) the SQLite database at `path` and applies the schema.
    pub async fn open(path: &Path) -> Result<MetaStore> {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(ctx("opening"))?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(10));
        // Another process (the server, or a CLI command beside it) may hold the lock while connections set
        // their pragmas, and SQLite answers a busy journal-mode switch at once instead of waiting: retry a
        // bounded number of times.
        let mut attempt = 0;
        let pool = loop {
            match SqlitePoolOptions::new().max_connections(8).connect_with(options.clone()).await {
                Ok(pool) => break pool,
                Err(e) if attempt < 50 && e.to_string().contains("database is locked") => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(ctx("opening")(e)),
            }
        };
        for statement in SCHEMA
            .iter()
            .chain(crate::lockout::SCHEMA)
            .chain(crate::alerts::SCHEMA)
            .chain(crate::second_factor::SCHEMA)
        {
            sqlx::query(*statement).execute(&pool).await.map_err(ctx("creating the schema"))?;
        }
        let version: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_version")
            .fetch_optional(&pool)
            .await
            .map_err(ctx("reading the schema version"))?;
        match version {
            None => {
                sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
                    .bind(SCHEMA_VERSION)
                    .execute(&pool)
                    .await
                    .map_err(ctx("writing the schema version"))?;
            }
            Some(v) if v < SCHEMA_VERSION => {
                sqlx::query("UPDATE schema_version SET version = $1")
                    .bind(SCHEMA_VERSION)
                    .execute(&pool)
                    .await
                    .map_err(ctx("writing the schema version"))?;
            }
            Some(_) => {}
        }
        Ok(MetaStore { pool })
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    // --- identities -------------------------------------------------------------------------------------------

    /// Inserts a principal; `false` when the name is taken.
    pub async fn create_principal(&self, name: &str, kind: &str, secret_hash: &str, description: &str) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO principals (name, kind, secret_hash, description, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(kind)
        .bind(secret_hash)
        .bind(description)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(ctx("creating a principal"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces a principal's secret hash; `false` when there is no such principal.
    pub async fn rotate_secret(&self, name: &str, secret_hash: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE principals SET secret_hash = $1, rotated_at = $2 WHERE name = $3")
            .bind(secret_hash)
            .bind(now())
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(ctx("rotating a secret"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Enables or disables a principal; `false` when there is no such principal.
    pub async fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool> {
        let done = sqlx::query("UPDATE principals SET disabled = $1 WHERE name = $2")
            .bind(disabled as i64)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(ctx("disabling a principal"))?;
        Ok(done.rows_affected() == 1)
    }

    fn principal_from(row: sqlx::sqlite::SqliteRow) -> PrincipalRow {
        PrincipalRow {
            name: row.get("name"),
            kind: row.get("kind"),
            secret_hash: row.get("secret_hash"),
            disabled: row.get::<i64, _>("disabled") != 0,
            description: row.get("description"),
            created_at: row.get("created_at"),
            rotated_at: row.get("rotated_at"),
        }
    }

    /// One principal.
    pub async fn principal(&self, name: &str) -> Result<Option<PrincipalRow>> {
        let row = sqlx::query("SELECT * FROM principals WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(ctx("reading a principal"))?;
        Ok(row.map(Self::principal_from))
    }

    /// Every principal, by name.
    pub async fn principals(&self) -> Result<Vec<PrincipalRow>> {
        let rows = sqlx::query("SELECT * FROM principals ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("listing principals"))?;
        Ok(rows.into_iter().map(Self::principal_from).collect())
    }

    /// Adds `principal` to `group`.
    pub async fn add_member(&self, group: &str, principal: &str) -> Result<()> {
        sqlx::query("INSERT INTO group_members (group_name, principal) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(group)
            .bind(principal)
            .execute(&self.pool)
            .await
            .map_err(ctx("adding a group member"))?;
        Ok(())
    }

    /// Removes `principal` from `group`; `false` when it was not a member.
    pub async fn remove_member(&self, group: &str, principal: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM group_members WHERE group_name = $1 AND principal = $2")
            .bind(group)
            .bind(principal)
            .execute(&self.pool)
            .await
            .map_err(ctx("removing a group member"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Groups `principal` belongs to in the database.
    pub async fn groups_of(&self, principal: &str) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT group_name FROM group_members WHERE principal = $1 ORDER BY group_name")
            .bind(principal)
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("reading group memberships"))
    }

    /// Every (group, principal) membership in the database.
    pub async fn memberships(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT group_name, principal FROM group_members ORDER BY group_name, principal")
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("listing group memberships"))?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    // --- repositories and blobs -------------------------------------------------------------------------------

    async fn ensure_repository(&self, repository: &str) -> Result<()> {
        sqlx::query("INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(repository)
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(ctx("creating a repository"))?;
        Ok(())
    }

    /// Makes a stored blob visible in `repository`.
    pub async fn link_blob(&self, repository: &str, digest: &str, size: u64) -> Result<()> {
        self.ensure_repository(repository).await?;
        sqlx::query("INSERT INTO repo_blobs (repository, digest, size) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(repository)
            .bind(digest)
            .bind(size as i64)
            .execute(&self.pool)
            .await
            .map_err(ctx("linking a blob"))?;
        Ok(())
    }

    /// Size of a blob linked into `repository`.
    pub async fn blob_in_repository(&self, repository: &str, digest: &str) -> Result<Option<u64>> {
        let size: Option<i64> = sqlx::query_scalar("SELECT size FROM repo_blobs WHERE repository = $1 AND digest = $2")
            .bind(repository)
            .bind(digest)
            .fetch_optional(&self.pool)
            .await
            .map_err(ctx("reading a blob link"))?;
        Ok(size.map(|s| s as u64))
    }

    /// Removes a blob link; `false` when there was none.
    pub async fn unlink_blob(&self, repository: &str, digest: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM repo_blobs WHERE repository = $1 AND digest = $2")
            .bind(repository)
            .bind(digest)
            .execute(&self.pool)
            .await
            .map_err(ctx("unlinking a blob"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Repository names, sorted.
    pub async fn repositories(&self) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT name FROM repositories ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("listing repositories"))
    }

    // --- manifests and tags -----------------------------------------------------------------------------------

    /// Stores a manifest and, when given, points `tag` at it, in one transaction; returns the digest the tag
    /// pointed at before, when it moved.
    pub async fn put_manifest(
        &self,
        repository: &str,
        manifest: &ManifestRow,
        subject: Option<&str>,
        tag: Option<&str>,
    ) -> Result<Option<String>> {
        self.ensure_repository(repository).await?;
        let mut tx = self.pool.begin().await.map_err(ctx("storing a manifest"))?;
        sqlx::query(
            "INSERT INTO manifests (repository, digest, media_type, artifact_type, subject, content, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(repository)
        .bind(&manifest.digest)
        .bind(&manifest.media_type)
        .bind(&manifest.artifact_type)
        .bind(subject)
        .bind(&manifest.content)
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(ctx("storing a manifest"))?;
        let mut moved_from = None;
        if let Some(tag) = tag {
            let before: Option<String> = sqlx::query_scalar("SELECT digest FROM tags WHERE repository = $1 AND tag = $2")
                .bind(repository)
                .bind(tag)
                .fetch_optional(&mut *tx)
                .await
                .map_err(ctx("tagging a manifest"))?;
            if before.as_deref() != Some(manifest.digest.as_str()) {
                sqlx::query(
                    "INSERT INTO tag_history (repository, tag, digest, tagged_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (repository, tag, digest) DO UPDATE SET tagged_at = excluded.tagged_at",
                )
                .bind(repository)
                .bind(tag)
                .bind(&manifest.digest)
                .bind(now())
                .execute(&mut *tx)
                .await
                .map_err(ctx("tagging a manifest"))?;
            }
            moved_from = before.filter(|d| *d != manifest.digest);
            sqlx::query(
                "INSERT INTO tags (repository, tag, digest, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at",
            )
            .bind(repository)
            .bind(tag)
            .bind(&manifest.digest)
            .bind(now())
            .execute(&mut *tx)
            .await
            .map_err(ctx("tagging a manifest"))?;
        }
        tx.commit().await.map_err(ctx("storing a manifest"))?;
        Ok(moved_from)
    }

    /// The digest a tag points at.
    pub async fn resolve_tag(&self, repository: &str, tag: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT digest FROM tags WHERE repository = $1 AND tag = $2")
            .bind(repository)
            .bind(tag)
            .fetch_optional(&self.pool)
            .await
            .map_err(ctx("resolving a tag"))
    }

    /// The digests `repository:tag` has pointed at, the latest first (at most `limit`). Tags set before the
    /// history was kept start with their current target.
    pub async fn tag_history(&self, repository: &str, tag: &str, limit: i64) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT digest FROM (
                 SELECT digest, tagged_at FROM tag_history WHERE repository = $1 AND tag = $2
                 UNION SELECT digest, updated_at FROM tags WHERE repository = $1 AND tag = $2) AS h
             GROUP BY digest ORDER BY MAX(tagged_at) DESC LIMIT $3",
        )
        .bind(repository)
        .bind(tag)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("reading a tag's history"))
    }

    /// The tags of `repository` that point at `digest`, sorted.
    pub async fn tags_of(&self, repository: &str, digest: &str) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT tag FROM tags WHERE repository = $1 AND digest = $2 ORDER BY tag")
            .bind(repository)
            .bind(digest)
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("listing a manifest's tags"))
    }

    /// The distinct digests the tags of `repository` point at.
    pub async fn tagged_digests(&self, repository: &str) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT DISTINCT digest FROM tags WHERE repository = $1 ORDER BY digest")
            .bind(repository)
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("listing tagged manifests"))
    }

    /// A manifest by digest.
    pub async fn manifest(&self, repository: &str, digest: &str) -> Result<Option<ManifestRow>> {
        let row = sqlx::query("SELECT digest, media_type, artifact_type, content FROM manifests WHERE repository = $1 AND digest = $2")
            .bind(repository)
            .bind(digest)
            .fetch_optional(&self.pool)
            .await
            .map_err(ctx("reading a manifest"))?;
        Ok(row.map(|r| ManifestRow {
            digest: r.get(0),
            media_type: r.get(1),
            artifact_type: r.get(2),
            content: r.get(3),
        }))
    }

    /// Whether a manifest is stored, without reading its content (index pushes check every child).
    pub async fn has_manifest(&self, repository: &str, digest: &str) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM manifests WHERE repository = $1 AND digest = $2")
            .bind(repository)
            .bind(digest)
            .fetch_optional(&self.pool)
            .await
            .map_err(ctx("reading a manifest"))?;
        Ok(found.is_some())
    }

    /// Deletes a manifest, every tag pointing at it and its lineage; `false` when there was none.
    pub async fn delete_manifest(&self, repository: &str, digest: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(ctx("deleting a manifest"))?;
        sqlx::query("DELETE FROM tags WHERE repository = $1 AND digest = $2")
            .bind(repository)
            .bind(digest)
            .execute(&mut *tx)
            .await
            .map_err(ctx("deleting a manifest"))?;
        let done = sqlx::query("DELETE FROM manifests WHERE repository = $1 AND digest = $2")
            .bind(repository)
            .bind(digest)
            .execute(&mut *tx)
            .await
            .map_err(ctx("deleting a manifest"))?;
        // Its lineage goes with it (crate::lineage keeps one row per stored image).
        sqlx::query("DELETE FROM image_lineage WHERE repository = $1 AND digest = $2")
            .bind(repository)
            .bind(digest)
            .execute(&mut *tx)
            .await
            .map_err(ctx("deleting a manifest"))?;
        tx.commit().await.map_err(ctx("deleting a manifest"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes one tag; `false` when there was none.
    pub async fn delete_tag(&self, repository: &str, tag: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM tags WHERE repository = $1 AND tag = $2")
            .bind(repository)
            .bind(tag)
            .execute(&self.pool)
            .await
            .map_err(ctx("deleting a tag"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Tags of a repository, sorted; `None` when the repository does not exist.
    pub async fn tags(&self, repository: &str) -> Result<Option<Vec<String>>> {
        let exists: Option<String> = sqlx::query_scalar("SELECT name FROM repositories WHERE name = $1")
            .bind(repository)
            .fetch_optional(&self.pool)
            .await
            .map_err(ctx("listing tags"))?;
        if exists.is_none() {
            return Ok(None);
        }
        let tags = sqlx::query_scalar("SELECT tag FROM tags WHERE repository = $1 ORDER BY tag")
            .bind(repository)
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("listing tags"))?;
        Ok(Some(tags))
    }

    /// Manifests whose `subject` is `digest`.
    pub async fn referrers(&self, repository: &str, digest: &str) -> Result<Vec<ManifestRow>> {
        let rows = sqlx::query(
            "SELECT digest, media_type, artifact_type, content FROM manifests WHERE repository = $1 AND subject = $2 ORDER BY digest",
        )
        .bind(repository)
        .bind(digest)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("listing referrers"))?;
        Ok(rows
            .into_iter()
            .map(|r| ManifestRow {
                digest: r.get(0),
                media_type: r.get(1),
                artifact_type: r.get(2),
                content: r.get(3),
            })
            .collect())
    }

    // --- uploads ----------------------------------------------------------------------------------------------

    /// Starts an upload session.
    pub async fn create_upload(&self, id: &str, repository: &str) -> Result<()> {
        sqlx::query("INSERT INTO uploads (id, repository, size, started_at) VALUES ($1, $2, 0, $3)")
            .bind(id)
            .bind(repository)
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(ctx("starting an upload"))?;
        Ok(())
    }

    /// Repository and committed size of an upload.
    pub async fn upload(&self, id: &str) -> Result<Option<(String, u64)>> {
        let row = sqlx::query("SELECT repository, size FROM uploads WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(ctx("reading an upload"))?;
        Ok(row.map(|r| (r.get(0), r.get::<i64, _>(1) as u64)))
    }

    /// Records a written part if the upload is still at `part.offset`; `false` when another writer got there
    /// first (the caller then deletes its part object).
    pub async fn add_part(&self, id: &str, part: &UploadPart) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(ctx("recording an upload part"))?;
        let done = sqlx::query("UPDATE uploads SET size = $1 WHERE id = $2 AND size = $3")
            .bind((part.offset + part.size) as i64)
            .bind(id)
            .bind(part.offset as i64)
            .execute(&mut *tx)
            .await
            .map_err(ctx("recording an upload part"))?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO upload_parts (upload_id, start_offset, size, object_key, digest) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (upload_id, start_offset) DO UPDATE SET size = excluded.size, object_key = excluded.object_key,
             digest = excluded.digest",
        )
        .bind(id)
        .bind(part.offset as i64)
        .bind(part.size as i64)
        .bind(&part.key)
        .bind(&part.digest)
        .execute(&mut *tx)
        .await
        .map_err(ctx("recording an upload part"))?;
        tx.commit().await.map_err(ctx("recording an upload part"))?;
        Ok(true)
    }

    /// Committed parts, in offset order.
    pub async fn parts(&self, id: &str) -> Result<Vec<UploadPart>> {
        let rows =
            sqlx::query("SELECT start_offset, size, object_key, digest FROM upload_parts WHERE upload_id = $1 ORDER BY start_offset")
                .bind(id)
                .fetch_all(&self.pool)
                .await
                .map_err(ctx("reading upload parts"))?;
        Ok(rows
            .into_iter()
            .map(|r| UploadPart {
                offset: r.get::<i64, _>(0) as u64,
                size: r.get::<i64, _>(1) as u64,
                key: r.get(2),
                digest: r.get(3),
            })
            .collect())
    }

    /// Forgets an upload session and its parts.
    pub async fn delete_upload(&self, id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(ctx("ending an upload"))?;
        for statement in ["DELETE FROM upload_parts WHERE upload_id = $1", "DELETE FROM uploads WHERE id = $1"] {
            sqlx::query(statement)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(ctx("ending an upload"))?;
        }
        tx.commit().await.map_err(ctx("ending an upload"))
    }
}

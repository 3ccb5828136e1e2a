//! Metadata in SQL: principals, group memberships, repositories, blob links, manifests, tags and uploads.
//!
//! SQLite (WAL) by default, PostgreSQL when `[database] url` names one, through sqlx's `Any` driver: every query
//! is written once, with `$N` placeholders and SQL both engines run ([`Engine::ddl`] adapts the few column types
//! that differ), and the integration tests run against both.

use std::borrow::Cow;
use std::path::Path;

use sqlx::AnyPool;
use sqlx::Row;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// 2 added scan jobs, scan results, repository exceptions and pull times; 3 webhook deliveries; 4 image lineage
/// (tables only: older versions open as they are, and images stored before 4 get their lineage at start-up);
/// 5 the garbage collector's times and blob claims ([`MIGRATE_TO_5`]).
const SCHEMA_VERSION: i64 = 5;

/// Garbage collection (crate::gc) needs to know when each blob link, manifest and upload was last relied on, and
/// a row per stored blob that a push and the collector both claim. Times are Unix milliseconds; rows that exist
/// at the upgrade count as touched then, so nothing is collected before one grace period has passed.
const MIGRATE_TO_5: &[&str] = &[
    "ALTER TABLE repo_blobs ADD COLUMN linked_at BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE manifests ADD COLUMN touched_at BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE uploads ADD COLUMN touched_at BIGINT NOT NULL DEFAULT 0",
    "UPDATE repo_blobs SET linked_at = $1",
    "UPDATE manifests SET touched_at = $1",
    "UPDATE uploads SET touched_at = $1",
    "INSERT INTO blobs (digest, size, state, touched_at) SELECT digest, MAX(size), 'live', $1 FROM repo_blobs
        GROUP BY digest ON CONFLICT DO NOTHING",
];

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS principals (name TEXT PRIMARY KEY, kind TEXT NOT NULL, secret_hash TEXT NOT NULL,
        disabled BIGINT NOT NULL DEFAULT 0, description TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
        rotated_at TEXT)",
    "CREATE TABLE IF NOT EXISTS group_members (group_name TEXT NOT NULL, principal TEXT NOT NULL,
        PRIMARY KEY (group_name, principal))",
    "CREATE TABLE IF NOT EXISTS repositories (name TEXT PRIMARY KEY, created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS repo_blobs (repository TEXT NOT NULL, digest TEXT NOT NULL, size BIGINT NOT NULL,
        linked_at BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (repository, digest))",
    "CREATE INDEX IF NOT EXISTS repo_blobs_by_digest ON repo_blobs (digest)",
    // One row per stored blob: `live`, or `deleting` while the collector removes it (a push waits it out).
    "CREATE TABLE IF NOT EXISTS blobs (digest TEXT PRIMARY KEY, size BIGINT NOT NULL, state TEXT NOT NULL,
        touched_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS manifests (repository TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT NOT NULL,
        artifact_type TEXT, subject TEXT, content BLOB NOT NULL, created_at TEXT NOT NULL,
        touched_at BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (repository, digest))",
    "CREATE INDEX IF NOT EXISTS manifests_by_subject ON manifests (repository, subject)",
    "CREATE TABLE IF NOT EXISTS tags (repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL,
        updated_at TEXT NOT NULL, PRIMARY KEY (repository, tag))",
    "CREATE TABLE IF NOT EXISTS uploads (id TEXT PRIMARY KEY, repository TEXT NOT NULL, size BIGINT NOT NULL,
        started_at TEXT NOT NULL, touched_at BIGINT NOT NULL DEFAULT 0)",
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

/// Now in Unix milliseconds: the garbage collector's clock (exact and comparable on every SQL engine).
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
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

/// What a manifest refers to, checked when it is stored.
#[derive(Clone, Debug, Default)]
pub struct References<'a> {
    /// Config and layer blobs, which must be linked in the repository.
    pub blobs: &'a [String],
    /// Child manifests of an index, which must be stored in the repository.
    pub manifests: &'a [String],
    /// The `subject` (may be absent: a referrer can be pushed before its subject).
    pub subject: Option<&'a str>,
}

/// A reference of a manifest that is not in its repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingReference {
    /// The digest referred to.
    pub digest: String,
    /// A child manifest (else a blob).
    pub manifest: bool,
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

/// The SQL engine holding the metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// An embedded file: one machine.
    Sqlite,
    /// A server that several replicas share.
    Postgres,
}

impl Engine {
    /// A schema statement as this engine spells it: the only difference in the schema is the type of binary
    /// columns (`BLOB` in SQLite, `BYTEA` in PostgreSQL).
    pub fn ddl(self, statement: &str) -> Cow<'_, str> {
        match self {
            Engine::Sqlite => Cow::Borrowed(statement),
            Engine::Postgres => Cow::Owned(statement.replace(" BLOB ", " BYTEA ")),
        }
    }

    /// Ends the `SELECT … LIMIT 1` that picks a queue row to claim. On PostgreSQL two replicas claiming at once
    /// would both pick the oldest row and the second, once the first commits, claim it again (the outer
    /// `UPDATE` re-checks only its own `WHERE`): the row lock makes the second skip to the next row instead.
    /// SQLite has one writer, so nothing is needed there.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// Which claimed jobs a process starting up takes back: all of them (`None`) when no other process can be
    /// working on them (SQLite, one machine); on PostgreSQL other replicas hold leases, so only those expired
    /// before `now`.
    pub fn startup_requeue_cutoff(self, now: String) -> Option<String> {
        (self == Engine::Postgres).then_some(now)
    }
}

/// Where to find the database and how to use it: [`crate::config::DatabaseConfig`] checked.
#[derive(Clone, Debug)]
pub struct Connection {
    /// A SQLite file path or a `postgres://` URL.
    pub target: Target,
    /// Pool size.
    pub max_connections: u32,
    /// PostgreSQL's `statement_timeout`.
    pub statement_timeout: std::time::Duration,
    /// How long to wait for a pooled connection.
    pub acquire_timeout: std::time::Duration,
}

/// The database a [`Connection`] names.
#[derive(Clone, Debug)]
pub enum Target {
    /// An embedded SQLite file.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL URL.
    Postgres(String),
}

impl Connection {
    /// Checks `[database]`; an error names the setting.
    pub fn from_config(config: &crate::config::DatabaseConfig) -> std::result::Result<Connection, String> {
        let span = |what: &str, text: &str| {
            Some(crate::protect::setting_duration("[database]", what, text)?)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("[database] {what} must be positive"))
        };
        let target = match &config.url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Target::Postgres(url.clone()),
            Some(_) => return Err("[database] url must start with postgres:// (leave it out for SQLite at `path`)".into()),
            None => Target::Sqlite(config.path.clone()),
        };
        if config.max_connections == 0 {
            return Err("[database] max_connections must be at least 1".into());
        }
        Ok(Connection {
            target,
            max_connections: config.max_connections,
            statement_timeout: span("statement_timeout", &config.statement_timeout)?,
            acquire_timeout: span("acquire_timeout", &config.acquire_timeout)?,
        })
    }

    /// What to name in an error about this database (never the password in a URL).
    pub fn describe(&self) -> String {
        match &self.target {
            Target::Sqlite(path) => path.display().to_string(),
            Target::Postgres(url) => match url::Url::parse(url) {
                Ok(mut u) => {
                    let _ = u.set_password(None);
                    u.to_string()
                }
                Err(_) => "the PostgreSQL URL in [database] url".into(),
            },
        }
    }
}

/// A SQLite file as a URL sqlx reads back to the same path (it percent-decodes the path part).
fn sqlite_url(path: &Path) -> Result<String> {
    let text = path.to_str().ok_or_else(|| MetaError {
        doing: "opening",
        source: sqlx::Error::Configuration(format!("{}: the database path must be UTF-8", path.display()).into()),
    })?;
    let mut url = String::from("sqlite://");
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url.push_str("?mode=rwc");
    Ok(url)
}

/// Fixed key of the advisory lock replicas take while they create or upgrade the PostgreSQL schema.
const SCHEMA_LOCK: i64 = 0x6375_7374_6f6d_7301;

/// The metadata store.
#[derive(Clone)]
pub struct MetaStore {
    pool: AnyPool,
    engine: Engine,
}

impl MetaStore {
    /// The connection pool, for the modules that keep their own tables here (scan jobs and results).
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which engine this store runs on.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Opens (or creates) the SQLite database at `path` and applies the schema.
    pub async fn open(path: &Path) -> Result<MetaStore> {
        let config = crate::config::DatabaseConfig {
            path: path.to_path_buf(),
            ..Default::default()
        };
        let connection = Connection::from_config(&config).expect("the default [database] settings are valid");
        MetaStore::connect(&connection).await
    }

    /// Opens the database `[database]` names; an error says which (never with a password).
    pub async fn from_config(config: &crate::config::DatabaseConfig) -> std::result::Result<MetaStore, String> {
        let connection = Connection::from_config(config)?;
        MetaStore::connect(&connection)
            .await
            .map_err(|e| format!("{}: {e}", connection.describe()))
    }

    /// Opens the database `connection` names (creating a SQLite file when missing) and applies the schema.
    pub async fn connect(connection: &Connection) -> Result<MetaStore> {
        sqlx::any::install_default_drivers();
        let (url, engine, max) = match &connection.target {
            Target::Sqlite(path) => {
                if let Some(parent) = path.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                (sqlite_url(path)?, Engine::Sqlite, 8)
            }
            Target::Postgres(url) => (url.clone(), Engine::Postgres, connection.max_connections),
        };
        let options: AnyConnectOptions = url.parse().map_err(ctx("reading the database URL"))?;
        let statement_timeout = connection.statement_timeout.as_millis();
        let pool_options = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(connection.acquire_timeout)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    let settings: &[String] = &match engine {
                        // busy_timeout first, so the journal-mode switch waits for another process's lock.
                        Engine::Sqlite => vec![
                            "PRAGMA busy_timeout = 10000".into(),
                            "PRAGMA journal_mode = WAL".into(),
                            "PRAGMA synchronous = NORMAL".into(),
                        ],
                        Engine::Postgres => vec![format!("SET statement_timeout = {statement_timeout}")],
                    };
                    for setting in settings {
                        sqlx::query(sqlx::AssertSqlSafe(setting.clone())).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            });
        // Another process (the server, or a CLI command beside it) may hold the lock while connections set
        // their pragmas, and SQLite answers a busy journal-mode switch at once instead of waiting: retry a
        // bounded number of times.
        let mut attempt = 0;
        let pool = loop {
            match pool_options.clone().connect_with(options.clone()).await {
                Ok(pool) => break pool,
                Err(e) if attempt < 50 && e.to_string().contains("database is locked") => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(ctx("opening")(e)),
            }
        };
        let store = MetaStore { pool, engine };
        store.apply_schema().await?;
        Ok(store)
    }

    /// Creates the tables and upgrades an older schema, on one connection; on PostgreSQL under an advisory lock,
    /// so replicas starting together do not race on `CREATE TABLE IF NOT EXISTS` or the upgrade.
    async fn apply_schema(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(ctx("creating the schema"))?;
        if self.engine == Engine::Postgres {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(SCHEMA_LOCK)
                .execute(&mut *conn)
                .await
                .map_err(ctx("locking the schema"))?;
        }
        let applied = self.apply_schema_on(&mut conn).await;
        if self.engine == Engine::Postgres {
            // The lock ends with the session anyway; unlocking lets the pooled connection be reused.
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(SCHEMA_LOCK)
                .execute(&mut *conn)
                .await;
        }
        applied
    }

    async fn apply_schema_on(&self, conn: &mut sqlx::AnyConnection) -> Result<()> {
        for statement in SCHEMA
            .iter()
            .chain(crate::lockout::SCHEMA)
            .chain(crate::alerts::SCHEMA)
            .chain(crate::second_factor::SCHEMA)
            .chain(crate::audit::SCHEMA)
        {
            sqlx::query(sqlx::AssertSqlSafe(self.engine.ddl(statement).into_owned()))
                .execute(&mut *conn)
                .await
                .map_err(ctx("creating the schema"))?;
        }
        let version: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_version")
            .fetch_optional(&mut *conn)
            .await
            .map_err(ctx("reading the schema version"))?;
        match version {
            None => {
                sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
                    .bind(SCHEMA_VERSION)
                    .execute(&mut *conn)
                    .await
                    .map_err(ctx("writing the schema version"))?;
            }
            Some(v) if v < SCHEMA_VERSION => {
                // One transaction that first moves the version (taking the write lock): a second process
                // opening the same old database at the same time finds nothing left to do.
                let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(ctx("upgrading the schema"))?;
                let moved = sqlx::query("UPDATE schema_version SET version = $1 WHERE version = $2")
                    .bind(SCHEMA_VERSION)
                    .bind(v)
                    .execute(&mut *tx)
                    .await
                    .map_err(ctx("writing the schema version"))?;
                if moved.rows_affected() == 1 && v < 5 {
                    let at = now_ms();
                    for statement in MIGRATE_TO_5 {
                        let query = sqlx::query(*statement);
                        let query = if statement.contains("$1") { query.bind(at) } else { query };
                        query.execute(&mut *tx).await.map_err(ctx("upgrading the schema to version 5"))?;
                    }
                }
                tx.commit().await.map_err(ctx("upgrading the schema"))?;
            }
            Some(_) => {}
        }
        Ok(())
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

    fn principal_from(row: AnyRow) -> PrincipalRow {
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

    /// Makes a stored blob visible in `repository` (again: a second link refreshes its time). Call it after
    /// [`MetaStore::claim_blob`] succeeded.
    pub async fn link_blob(&self, repository: &str, digest: &str, size: u64) -> Result<()> {
        self.ensure_repository(repository).await?;
        sqlx::query(
            "INSERT INTO repo_blobs (repository, digest, size, linked_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (repository, digest) DO UPDATE SET linked_at = excluded.linked_at",
        )
        .bind(repository)
        .bind(digest)
        .bind(size as i64)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(ctx("linking a blob"))?;
        Ok(())
    }

    /// Claims a blob for a push about to store or link it: records it as live and touched now. `false` while
    /// the garbage collector is deleting it (the caller waits and claims again, or stores it anew after).
    /// The collector only deletes blobs untouched for its grace period, so a claim protects the blob until the
    /// link that follows it is written.
    pub async fn claim_blob(&self, digest: &str, size: u64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO blobs (digest, size, state, touched_at) VALUES ($1, $2, 'live', $3)
             ON CONFLICT (digest) DO UPDATE SET touched_at = excluded.touched_at WHERE blobs.state = 'live'",
        )
        .bind(digest)
        .bind(size as i64)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(ctx("claiming a blob"))?;
        Ok(done.rows_affected() == 1)
    }

    /// A blob link: its size and when it was last linked or relied on (Unix ms).
    pub async fn blob_link(&self, repository: &str, digest: &str) -> Result<Option<(u64, i64)>> {
        let row = sqlx::query("SELECT size, linked_at FROM repo_blobs WHERE repository = $1 AND digest = $2")
            .bind(repository)
            .bind(digest)
            .fetch_optional(&self.pool)
            .await
            .map_err(ctx("reading a blob link"))?;
        Ok(row.map(|r| (r.get::<i64, _>(0) as u64, r.get::<i64, _>(1))))
    }

    /// Marks a blob link as relied on now (a client checked it before pushing a manifest that will use it).
    pub async fn touch_link(&self, repository: &str, digest: &str) -> Result<()> {
        sqlx::query("UPDATE repo_blobs SET linked_at = $1 WHERE repository = $2 AND digest = $3")
            .bind(now_ms())
            .bind(repository)
            .bind(digest)
            .execute(&self.pool)
            .await
            .map_err(ctx("touching a blob link"))?;
        Ok(())
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

    /// Stores a manifest and, when given, points `tag` at it, in one transaction that also checks (and marks as
    /// relied on now) every blob and child manifest it refers to, so the garbage collector cannot remove one
    /// between the check and the store. Returns the digest the tag pointed at before, when it moved, or the
    /// first reference that is not in the repository (nothing is stored then).
    pub async fn put_manifest(
        &self,
        repository: &str,
        manifest: &ManifestRow,
        references: &References<'_>,
        tag: Option<&str>,
    ) -> Result<std::result::Result<Option<String>, MissingReference>> {
        self.ensure_repository(repository).await?;
        let at = now_ms();
        let mut tx = self.pool.begin().await.map_err(ctx("storing a manifest"))?;
        for (digest, statement, manifest) in references
            .blobs
            .iter()
            .map(|d| {
                (
                    d,
                    "UPDATE repo_blobs SET linked_at = $1 WHERE repository = $2 AND digest = $3",
                    false,
                )
            })
            .chain(references.manifests.iter().map(|d| {
                (
                    d,
                    "UPDATE manifests SET touched_at = $1 WHERE repository = $2 AND digest = $3",
                    true,
                )
            }))
        {
            let done = sqlx::query(statement)
                .bind(at)
                .bind(repository)
                .bind(digest)
                .execute(&mut *tx)
                .await
                .map_err(ctx("checking a manifest's references"))?;
            if done.rows_affected() == 0 {
                return Ok(Err(MissingReference {
                    digest: digest.clone(),
                    manifest,
                }));
            }
        }
        sqlx::query(
            "INSERT INTO manifests (repository, digest, media_type, artifact_type, subject, content, created_at, touched_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (repository, digest) DO UPDATE SET touched_at = excluded.touched_at",
        )
        .bind(repository)
        .bind(&manifest.digest)
        .bind(&manifest.media_type)
        .bind(&manifest.artifact_type)
        .bind(references.subject)
        .bind(&manifest.content)
        .bind(now())
        .bind(at)
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
        Ok(Ok(moved_from))
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
        sqlx::query("INSERT INTO uploads (id, repository, size, started_at, touched_at) VALUES ($1, $2, 0, $3, $4)")
            .bind(id)
            .bind(repository)
            .bind(now())
            .bind(now_ms())
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
        let done = sqlx::query("UPDATE uploads SET size = $1, touched_at = $4 WHERE id = $2 AND size = $3")
            .bind((part.offset + part.size) as i64)
            .bind(id)
            .bind(part.offset as i64)
            .bind(now_ms())
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

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    use std::str::FromStr;

    fn database(toml_text: &str) -> crate::config::DatabaseConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn database_settings_are_checked_and_a_password_is_never_named() {
        let pg = Connection::from_config(&database(
            "url = \"postgres://customs:hunter2@db:5432/registry\"\nmax_connections = 4\nstatement_timeout = \"2m\"",
        ))
        .unwrap();
        assert!(matches!(pg.target, Target::Postgres(_)));
        assert_eq!((pg.max_connections, pg.statement_timeout.as_secs()), (4, 120));
        assert_eq!(pg.describe(), "postgres://customs@db:5432/registry");
        for (text, says) in [
            ("url = \"mysql://db/registry\"", "must start with postgres://"),
            ("max_connections = 0", "max_connections"),
            ("statement_timeout = \"0s\"", "statement_timeout must be positive"),
            ("acquire_timeout = \"soon\"", "acquire_timeout"),
        ] {
            let err = Connection::from_config(&database(text)).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
        assert!(matches!(Connection::from_config(&database("")).unwrap().target, Target::Sqlite(_)));
    }

    /// The SQLite path travels to sqlx as a URL: characters a URL gives meaning to must come back as written.
    #[tokio::test]
    async fn a_sqlite_path_with_url_characters_opens_that_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a dir?#%41/regis try.db");
        let meta = MetaStore::open(&path).await.unwrap();
        assert!(meta.create_principal("p", "user", "h", "").await.unwrap());
        assert!(path.exists(), "{}", path.display());
        drop(meta);
        assert!(MetaStore::open(&path).await.unwrap().principal("p").await.unwrap().is_some());
    }

    /// On PostgreSQL every pooled connection runs with the configured statement timeout.
    #[tokio::test]
    async fn postgres_connections_carry_the_statement_timeout() {
        let Some(admin) = customs_testkit::postgres() else { return };
        let name = format!("customs_meta_test_{}", std::process::id());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.unwrap();
        let create = format!("CREATE DATABASE {name}");
        sqlx::query(sqlx::AssertSqlSafe(create)).execute(&mut conn).await.unwrap();
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&name);
        let meta = MetaStore::connect(&Connection {
            target: Target::Postgres(url.to_string()),
            max_connections: 2,
            statement_timeout: std::time::Duration::from_millis(1500),
            acquire_timeout: std::time::Duration::from_secs(5),
        })
        .await
        .unwrap();
        assert_eq!(meta.engine(), Engine::Postgres);
        let shown: String = sqlx::query_scalar("SHOW statement_timeout").fetch_one(meta.pool()).await.unwrap();
        assert_eq!(shown, "1500ms");
        let slow = sqlx::query("SELECT pg_sleep(3)").execute(meta.pool()).await.unwrap_err();
        assert!(slow.to_string().contains("statement timeout"), "{slow}");
        meta.pool().close().await;
        let drop = format!("DROP DATABASE {name} WITH (FORCE)");
        sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut conn).await.unwrap();
    }

    /// A version-4 database (before the collector's columns) opens, upgraded: its rows count as touched at the
    /// upgrade and every linked blob has its row.
    #[tokio::test]
    async fn a_version_4_database_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        {
            let options = SqliteConnectOptions::from_str("sqlite://")
                .unwrap()
                .filename(&path)
                .create_if_missing(true);
            let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
            for statement in [
                "CREATE TABLE schema_version (version BIGINT NOT NULL)",
                "INSERT INTO schema_version (version) VALUES (4)",
                "CREATE TABLE repo_blobs (repository TEXT NOT NULL, digest TEXT NOT NULL, size BIGINT NOT NULL,
                    PRIMARY KEY (repository, digest))",
                "CREATE TABLE manifests (repository TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT NOT NULL,
                    artifact_type TEXT, subject TEXT, content BLOB NOT NULL, created_at TEXT NOT NULL,
                    PRIMARY KEY (repository, digest))",
                "CREATE TABLE uploads (id TEXT PRIMARY KEY, repository TEXT NOT NULL, size BIGINT NOT NULL,
                    started_at TEXT NOT NULL)",
                "INSERT INTO repo_blobs VALUES ('a', 'sha256:11', 5), ('b', 'sha256:11', 5), ('a', 'sha256:22', 7)",
                "INSERT INTO uploads VALUES ('u1', 'a', 0, '2026-01-01T00:00:00Z')",
            ] {
                sqlx::query(statement).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        let before = now_ms();
        let meta = MetaStore::open(&path).await.unwrap();
        let version: i64 = sqlx::query_scalar("SELECT version FROM schema_version")
            .fetch_one(meta.pool())
            .await
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let (size, linked_at) = meta.blob_link("a", "sha256:22").await.unwrap().unwrap();
        assert_eq!(size, 7);
        assert!(linked_at >= before, "old links count as linked at the upgrade");
        let blobs: Vec<(String, i64)> = sqlx::query_as("SELECT digest, size FROM blobs ORDER BY digest")
            .fetch_all(meta.pool())
            .await
            .unwrap();
        assert_eq!(blobs, [("sha256:11".to_string(), 5), ("sha256:22".to_string(), 7)]);
        let touched: i64 = sqlx::query_scalar("SELECT touched_at FROM uploads WHERE id = 'u1'")
            .fetch_one(meta.pool())
            .await
            .unwrap();
        assert!(touched >= before);
        // Opening again changes nothing and does not fail on the columns that now exist.
        drop(meta);
        MetaStore::open(&path).await.unwrap();
    }
}

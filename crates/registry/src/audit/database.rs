//! The audit log in the registry database: one chain for every replica.
//!
//! A row `audit_head` holds the newest record's sequence number and hash. An append locks that row first
//! (`UPDATE … RETURNING`: a row lock on PostgreSQL, the write lock on SQLite), chains its records to it, inserts
//! them and moves the head in the same transaction, so concurrent writers in any number of processes take turns
//! and the chain never forks or skips; `seq` is also the primary key, a second guard against a fork.
//!
//! Requests do not each hold a connection for this: appends go to one writer thread per process, which commits
//! whatever is waiting as one transaction (group commit) and answers each caller only after the commit, so a
//! request is served only once its record is stored.

use std::sync::mpsc;

use sqlx::Row;

use super::{Anchor, AuditError, AuditEvent, AuditQuery, AuditRecord, ChainCheck, GENESIS, VerifySummary, now_rfc3339};
use crate::config::DatabaseConfig;
use crate::meta::MetaStore;

/// The audit tables, created with the rest of the schema (`crate::meta`).
pub(crate) const SCHEMA: &[&str] = &[
    // `record` is the JSON line exactly as it is exported and hashed; seq and hash are repeated for lookups.
    "CREATE TABLE IF NOT EXISTS audit_records (seq BIGINT PRIMARY KEY, hash TEXT NOT NULL, record TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_head (id BIGINT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL)",
];

/// Most records one transaction commits: bounds a transaction's size under a burst.
const BATCH: usize = 256;

/// Rows one read of the chain fetches.
const PAGE: i64 = 1000;

enum Request {
    Append(AuditEvent, mpsc::SyncSender<Result<AuditRecord, AuditError>>),
    Head(mpsc::SyncSender<Result<(u64, String), AuditError>>),
}

/// Appends to the chain in the registry database through this process's writer thread.
pub struct DatabaseLog {
    requests: mpsc::Sender<Request>,
}

fn db(doing: &str) -> impl FnOnce(sqlx::Error) -> AuditError + '_ {
    move |e| AuditError::Database(format!("{doing}: {e}"))
}

fn gone() -> AuditError {
    AuditError::Database("the audit writer thread stopped".into())
}

impl DatabaseLog {
    /// Connects to the database `[database]` names (creating the schema when needed) and starts the writer
    /// thread, with a pool of its own: a thread and runtime apart from the server's, so a request waiting for its
    /// record never waits on a task that needs the same worker threads.
    pub fn open(config: &DatabaseConfig) -> Result<DatabaseLog, AuditError> {
        let config = DatabaseConfig {
            max_connections: 2,
            ..config.clone()
        };
        let (requests, inbox) = mpsc::channel();
        let (ready, opened) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(AuditError::Database(format!("starting the audit writer: {e}"))));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let meta = match open_store(&config).await {
                        Ok(meta) => {
                            let _ = ready.send(Ok(()));
                            meta
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    serve(&meta, &inbox).await;
                    meta.pool().close().await;
                });
            })
            .map_err(|e| AuditError::Database(format!("starting the audit writer: {e}")))?;
        opened.recv().map_err(|_| gone())??;
        Ok(DatabaseLog { requests })
    }

    /// Appends one event; returns the stored record once its transaction committed.
    pub fn append(&self, event: AuditEvent) -> Result<AuditRecord, AuditError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.requests.send(Request::Append(event, reply)).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }

    /// The newest record's sequence number and hash, whichever replica wrote it.
    pub fn head(&self) -> Result<(u64, String), AuditError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.requests.send(Request::Head(reply)).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
}

async fn open_store(config: &DatabaseConfig) -> Result<MetaStore, AuditError> {
    let meta = MetaStore::from_config(config).await.map_err(AuditError::Database)?;
    sqlx::query("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, $1) ON CONFLICT DO NOTHING")
        .bind(GENESIS)
        .execute(meta.pool())
        .await
        .map_err(db("creating the chain head"))?;
    Ok(meta)
}

/// The writer loop: takes the first waiting request and every append queued behind it, up to [`BATCH`].
async fn serve(meta: &MetaStore, inbox: &mpsc::Receiver<Request>) {
    // Blocking on the channel is right here: this runtime runs nothing else.
    while let Ok(first) = inbox.recv() {
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                Request::Append(event, reply) => batch.push((event, reply)),
                Request::Head(reply) => {
                    let _ = reply.send(read_head(meta).await);
                }
            }
            if batch.len() < BATCH {
                next = inbox.try_recv().ok();
            }
        }
        if batch.is_empty() {
            continue;
        }
        let events: Vec<AuditEvent> = batch.iter().map(|(event, _)| event.clone()).collect();
        match commit(meta, events).await {
            Ok(records) => {
                for ((_, reply), record) in batch.into_iter().zip(records) {
                    let _ = reply.send(Ok(record));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for (_, reply) in batch {
                    let _ = reply.send(Err(AuditError::Database(message.clone())));
                }
            }
        }
    }
}

async fn read_head(meta: &MetaStore) -> Result<(u64, String), AuditError> {
    let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(meta.pool())
        .await
        .map_err(db("reading the chain head"))?;
    Ok((row.get::<i64, _>(0) as u64, row.get(1)))
}

/// Chains `events` to the head and stores them in one transaction.
async fn commit(meta: &MetaStore, events: Vec<AuditEvent>) -> Result<Vec<AuditRecord>, AuditError> {
    let mut tx = meta.pool().begin().await.map_err(db("starting a transaction"))?;
    // Taking the head row's lock first makes concurrent writers queue here rather than fail later.
    let row = sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash")
        .fetch_one(&mut *tx)
        .await
        .map_err(db("locking the chain head"))?;
    let (mut seq, mut head) = (row.get::<i64, _>(0) as u64, row.get::<String, _>(1));
    let mut records = Vec::with_capacity(events.len());
    for event in events {
        let mut record = AuditRecord {
            seq: seq + 1,
            time: now_rfc3339(),
            event: event.bounded(),
            prev: head,
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        let line = serde_json::to_string(&record).expect("serialize");
        sqlx::query("INSERT INTO audit_records (seq, hash, record) VALUES ($1, $2, $3)")
            .bind(record.seq as i64)
            .bind(&record.hash)
            .bind(line)
            .execute(&mut *tx)
            .await
            .map_err(db("storing a record"))?;
        seq = record.seq;
        head = record.hash.clone();
        records.push(record);
    }
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(seq as i64)
        .bind(&head)
        .execute(&mut *tx)
        .await
        .map_err(db("moving the chain head"))?;
    tx.commit().await.map_err(db("committing records"))?;
    Ok(records)
}

/// Records after `after`, oldest first, at most [`PAGE`] of them, each checked against its row.
pub(super) async fn page(meta: &MetaStore, after: u64) -> Result<Vec<AuditRecord>, AuditError> {
    let rows = sqlx::query("SELECT seq, hash, record FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT $2")
        .bind(after as i64)
        .bind(PAGE)
        .fetch_all(meta.pool())
        .await
        .map_err(db("reading records"))?;
    rows.into_iter()
        .map(|row| {
            let (seq, hash, line) = (row.get::<i64, _>(0) as u64, row.get::<String, _>(1), row.get::<String, _>(2));
            let broken = |message: String| AuditError::BrokenRecord {
                place: "the registry database".into(),
                seq,
                message,
            };
            let record: AuditRecord = serde_json::from_str(&line).map_err(|e| broken(format!("not a valid record: {e}")))?;
            if record.seq != seq || record.hash != hash {
                return Err(broken(format!(
                    "the row says record {seq} with hash {hash}, its record says {} with {}",
                    record.seq, record.hash
                )));
            }
            Ok(record)
        })
        .collect()
}

/// Checks the chain in the database like [`super::verify_anchored`] checks a directory, and that the stored
/// head is its newest record (records cut from the end with the head left alone).
pub async fn verify_database(meta: &MetaStore, anchors: &[Anchor]) -> Result<VerifySummary, AuditError> {
    let mut check = ChainCheck::new(anchors);
    let mut after = 0;
    loop {
        let records = page(meta, after).await?;
        let Some(last) = records.last() else { break };
        after = last.seq;
        for record in &records {
            check.push(record).map_err(|message| AuditError::BrokenRecord {
                place: "the registry database".into(),
                seq: record.seq,
                message,
            })?;
        }
    }
    let (seq, hash) = read_head(meta).await?;
    if (seq, hash.as_str()) != (check.seq, check.head.as_str()) {
        return Err(AuditError::BrokenRecord {
            place: "the registry database".into(),
            seq,
            message: format!(
                "the chain head names record {seq} ({hash}), but the records end at {} ({}): records were removed",
                check.seq, check.head
            ),
        });
    }
    check.finish(0)
}

/// Calls `f` with every record in the database matching `q`, oldest first.
pub async fn query_database(meta: &MetaStore, q: &AuditQuery, mut f: impl FnMut(&AuditRecord)) -> Result<(), AuditError> {
    let mut after = 0;
    loop {
        let records = page(meta, after).await?;
        let Some(last) = records.last() else { return Ok(()) };
        after = last.seq;
        for record in records.iter().filter(|r| q.matches(r)) {
            f(record);
        }
    }
}

//! Append-only, hash-chained audit log in JSON lines, kept in a directory of segments (one machine) or in the
//! registry's database (replicas: one chain however many processes write it), and exported from the database as
//! segments to object storage.
//!
//! Each record carries `prev` (the previous record's hash) and `hash` = SHA-256 over `prev` and the record's own
//! fields, so editing, removing or reordering a record breaks the chain at that point. Segments rotate by size;
//! the first record of a new segment chains to the last record of the previous one, so rotation keeps the chain.
//! Rewriting the chain (editing a record and recomputing every later hash) or cutting its newest records cannot
//! be detected from the log alone: [`verify_anchored`] checks it against heads kept elsewhere, signed checkpoints
//! ([`crate::checkpoint`]) or a hash written down (a ticket, a SIEM).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The longest a field is stored: longer values (a 60,000-character reference in a hostile request) keep their
/// start and a SHA-256 of the whole, so one record stays small and still identifies what was sent.
const FIELD_LIMITS: [(&str, usize); 6] = [
    ("client_ip", 64),
    ("principal", 160),
    ("action", 64),
    ("repository", 300),
    ("reference", 300),
    ("detail", 1024),
];

/// Cuts `value` to `max` bytes at a character boundary, with the length and SHA-256 of the whole appended.
fn bound(value: &mut String, max: usize) {
    if value.len() <= max {
        return;
    }
    let digest = hex::encode(Sha256::digest(value.as_bytes()));
    let keep = max.saturating_sub(100).max(16);
    let mut cut = keep.min(value.len());
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    let total = value.len();
    value.truncate(cut);
    value.push_str(&format!("…[truncated: {total} bytes, sha256:{digest}]"));
}

/// What happened, as a caller gives it to [`AuditLog::append`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEvent {
    /// Client IP address.
    pub client_ip: String,
    /// Authenticated principal, or `anonymous`, or the name a failed login claimed.
    pub principal: String,
    /// What was attempted: `pull`, `push`, `delete`, `sign`, `login`, `token`, `principal.create`, ...
    pub action: String,
    /// Repository, when the action touches one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub repository: String,
    /// Tag or digest, when there is one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reference: String,
    /// `allowed`, `denied` or `error`.
    pub result: String,
    /// HTTP status, 0 for non-HTTP actions (CLI identity changes).
    pub status: u16,
    /// Free text: why it was denied, which grant allowed it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// A record as stored: the event plus sequence number, time and chain hashes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// RFC 3339 UTC time.
    pub time: String,
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// Hash of the previous record (64 zeros for the first).
    pub prev: String,
    /// SHA-256 over `prev` and this record's other fields.
    pub hash: String,
}

impl AuditEvent {
    /// The event with every field within its stored limit.
    fn bounded(mut self) -> AuditEvent {
        for (field, max) in FIELD_LIMITS {
            let value = match field {
                "client_ip" => &mut self.client_ip,
                "principal" => &mut self.principal,
                "action" => &mut self.action,
                "repository" => &mut self.repository,
                "reference" => &mut self.reference,
                _ => &mut self.detail,
            };
            bound(value, max);
        }
        self
    }
}

impl AuditRecord {
    /// The hash this record must carry: SHA-256 over `prev` and its other fields. Anyone can recompute it, so
    /// the chain alone shows accidents and partial edits, not a rewrite (see [`verify_anchored`]).
    pub fn compute_hash(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            seq: u64,
            time: &'a str,
            #[serde(flatten)]
            event: &'a AuditEvent,
        }
        let body = serde_json::to_vec(&Body {
            seq: self.seq,
            time: &self.time,
            event: &self.event,
        })
        .expect("serialize");
        let mut hasher = Sha256::new();
        hasher.update(self.prev.as_bytes());
        hasher.update(b"\n");
        hasher.update(&body);
        hex::encode(hasher.finalize())
    }
}

/// Errors of the audit log, each naming the file or the database.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Reading or writing a segment failed.
    #[error("audit log {path}: {source}")]
    Io {
        /// The segment or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A record is not valid JSON or breaks the chain.
    #[error("audit log {path} line {line}: {message}")]
    Broken {
        /// The segment.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A record in the database is not valid or breaks the chain.
    #[error("audit records in {place}, record {seq}: {message}")]
    BrokenRecord {
        /// The database, or the exported segments' URL.
        place: String,
        /// The record's sequence number.
        seq: u64,
        /// What is wrong.
        message: String,
    },
    /// The database could not be read or written.
    #[error("audit records in the registry database: {0}")]
    Database(String),
    /// The exported segments could not be read.
    #[error("exported audit segments: {0}")]
    Export(String),
    /// The chain is intact in itself but disagrees with a head kept elsewhere.
    #[error("audit log disagrees with {source_name}: {message}")]
    Anchor {
        /// The checkpoint file or `--expect-head`.
        source_name: String,
        /// What differs.
        message: String,
    },
}

mod database;
mod directory;
pub(crate) mod export;

pub(crate) use database::SCHEMA;
pub use database::{DatabaseLog, query_database, verify_database};
pub use directory::{DirectoryLog, query, segments, verify, verify_anchored};
pub use export::{ExportedSegment, Exporter, verify_exported};

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).expect("format time")
}

/// Where a registry's audit chain is kept (`[audit] store`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditStore {
    /// `audit-NNNNNN.jsonl` segments in `[audit] dir`: one machine.
    Directory,
    /// The registry database (`[database]`): every replica appends to one chain.
    Database,
}

/// The audit log a registry (or a CLI command beside it) appends to.
pub enum AuditLog {
    /// Segments in a directory.
    Directory(DirectoryLog),
    /// Records in the registry database.
    Database(DatabaseLog),
}

impl AuditLog {
    /// Opens (or creates) the directory log in `dir`; see [`DirectoryLog::open`].
    pub fn open(dir: &Path, rotate_bytes: u64) -> Result<AuditLog, AuditError> {
        DirectoryLog::open(dir, rotate_bytes).map(AuditLog::Directory)
    }

    /// Opens the log `[audit] store` names: the directory, or the records in `[database]`.
    pub fn from_config(config: &crate::config::RegistryConfig) -> Result<AuditLog, AuditError> {
        match config.audit_store().map_err(AuditError::Database)? {
            AuditStore::Directory => AuditLog::open(&config.audit.dir, config.audit.rotate_bytes),
            AuditStore::Database => DatabaseLog::open(&config.database).map(AuditLog::Database),
        }
    }

    /// Appends one event; returns the stored record. An error means the record was not stored.
    pub fn append(&self, event: AuditEvent) -> Result<AuditRecord, AuditError> {
        match self {
            AuditLog::Directory(log) => log.append(event),
            AuditLog::Database(log) => log.append(event),
        }
    }

    /// Sequence number and hash of the newest record of the whole chain (every replica's).
    pub fn head(&self) -> Result<(u64, String), AuditError> {
        match self {
            AuditLog::Directory(log) => Ok(log.head()),
            AuditLog::Database(log) => log.head(),
        }
    }
}

/// What `verify` found on an intact chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifySummary {
    /// Segments read.
    pub segments: usize,
    /// Records checked.
    pub records: u64,
    /// Hash of the newest record: anchor it outside the log to detect truncation later.
    pub head: String,
    /// The anchors the chain agreed with, as `SOURCE: record N`.
    pub anchored: Vec<String>,
}

/// A record the chain must hold: from a signed checkpoint (sequence number and hash) or a head written down
/// earlier (the hash alone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    /// Where the record must be, when known.
    pub seq: Option<u64>,
    /// Its hash.
    pub hash: String,
    /// Where the anchor came from (a checkpoint file, `--expect-head`), for messages.
    pub source: String,
}

/// Checks records one at a time, in chain order, wherever they are kept: each must follow the one before and
/// carry its own hash, and each anchor must name one of them.
struct ChainCheck<'a> {
    anchors: &'a [Anchor],
    // Indexed so a year of checkpoints (10^5 of them) costs a lookup per record, not a scan.
    by_seq: std::collections::HashMap<u64, Vec<usize>>,
    by_hash: std::collections::HashMap<&'a str, Vec<usize>>,
    anchored: Vec<Option<u64>>,
    seq: u64,
    head: String,
    records: u64,
}

impl<'a> ChainCheck<'a> {
    fn new(anchors: &'a [Anchor]) -> ChainCheck<'a> {
        let mut by_seq: std::collections::HashMap<u64, Vec<usize>> = std::collections::HashMap::new();
        let mut by_hash: std::collections::HashMap<&str, Vec<usize>> = std::collections::HashMap::new();
        for (i, anchor) in anchors.iter().enumerate() {
            match anchor.seq {
                Some(n) => by_seq.entry(n).or_default().push(i),
                None => by_hash.entry(anchor.hash.as_str()).or_default().push(i),
            }
        }
        ChainCheck {
            anchors,
            by_seq,
            by_hash,
            anchored: vec![None; anchors.len()],
            seq: 0,
            head: GENESIS.to_string(),
            records: 0,
        }
    }

    /// The next record of the chain; the error says what is wrong with it.
    fn push(&mut self, record: &AuditRecord) -> Result<(), String> {
        let seq = self.seq;
        if record.seq != seq + 1 {
            return Err(format!(
                "sequence jumps from {seq} to {}: records were removed or reordered",
                record.seq
            ));
        }
        if record.prev != self.head {
            return Err(format!(
                "record {} does not chain to record {seq}: a record before it was changed",
                record.seq
            ));
        }
        if record.compute_hash() != record.hash {
            return Err(format!("record {} was modified after it was written (hash mismatch)", record.seq));
        }
        for &i in self.by_seq.get(&record.seq).into_iter().flatten() {
            let anchor = &self.anchors[i];
            if anchor.hash != record.hash {
                return Err(format!(
                    "record {} has hash {}, but {} signed {} for it: the log was rewritten after that checkpoint",
                    record.seq, record.hash, anchor.source, anchor.hash
                ));
            }
            self.anchored[i] = Some(record.seq);
        }
        for &i in self.by_hash.get(record.hash.as_str()).into_iter().flatten() {
            self.anchored[i] = Some(record.seq);
        }
        self.seq = record.seq;
        self.head = record.hash.clone();
        self.records += 1;
        Ok(())
    }

    /// The summary once every record was pushed; an anchor no record matched is the error.
    fn finish(self, segments: usize) -> Result<VerifySummary, AuditError> {
        for (anchor, found) in self.anchors.iter().zip(&self.anchored) {
            if found.is_some() {
                continue;
            }
            let seq = self.seq;
            let message = match anchor.seq {
                Some(n) => format!("it covers record {n}, but the log ends at record {seq}: records after {seq} were removed"),
                None => format!(
                    "no record has hash {}: the log was rewritten or cut since that head was written down",
                    anchor.hash
                ),
            };
            return Err(AuditError::Anchor {
                source_name: anchor.source.clone(),
                message,
            });
        }
        let anchored = self
            .anchors
            .iter()
            .zip(self.anchored)
            .map(|(a, n)| format!("{}: record {}", a.source, n.unwrap_or_default()))
            .collect();
        Ok(VerifySummary {
            segments,
            records: self.records,
            head: self.head,
            anchored,
        })
    }
}

/// Filters for [`query`].
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Only this principal.
    pub principal: Option<String>,
    /// Only records at or after this RFC 3339 time.
    pub since: Option<OffsetDateTime>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this result (`allowed`, `denied`, `error`).
    pub result: Option<String>,
    /// Only this repository.
    pub repository: Option<String>,
}

impl AuditQuery {
    fn matches(&self, r: &AuditRecord) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&self.principal, &r.event.principal)
            && eq(&self.action, &r.event.action)
            && eq(&self.result, &r.event.result)
            && eq(&self.repository, &r.event.repository)
            && self
                .since
                .is_none_or(|since| OffsetDateTime::parse(&r.time, &Rfc3339).is_ok_and(|t| t >= since))
    }
}

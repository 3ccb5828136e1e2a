//! The audit log as a directory of `audit-NNNNNN.jsonl` segments, for a registry on one machine.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::{Anchor, AuditError, AuditEvent, AuditQuery, AuditRecord, ChainCheck, GENESIS, VerifySummary, now_rfc3339};

struct Writer {
    lock: File,
    dir: PathBuf,
    segment: u64,
    file: File,
    size: u64,
    seq: u64,
    head: String,
}

/// The audit log of one registry: a directory of `audit-NNNNNN.jsonl` segments.
pub struct DirectoryLog {
    writer: Mutex<Writer>,
    rotate_bytes: u64,
}

pub(super) fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("audit-{segment:06}.jsonl"))
}

pub(super) fn segment_number(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("audit-")?.strip_suffix(".jsonl")?.parse().ok()
}

/// Opens segment `n` for appending, creating it if needed.
fn open_segment(dir: &Path, n: u64) -> Result<File, AuditError> {
    let path = segment_path(dir, n);
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|source| AuditError::Io { path, source })
}

/// The segments in `dir`, oldest first.
pub fn segments(dir: &Path) -> Result<Vec<PathBuf>, AuditError> {
    let io = |source| AuditError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut found: Vec<(u64, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if let Some(n) = segment_number(&path) {
            found.push((n, path));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

impl DirectoryLog {
    /// Opens (or creates) the log in `dir`, continuing the chain of the newest segment. A torn final line (a crash
    /// mid-write) is cut off and the cut is itself recorded as an `audit.recovered` event.
    ///
    /// Several processes may hold the same log open (the server and `customs registry principal ...`): appends
    /// take an exclusive lock on `dir/.lock` and pick up records other processes wrote, so the chain never forks.
    pub fn open(dir: &Path, rotate_bytes: u64) -> Result<DirectoryLog, AuditError> {
        fs::create_dir_all(dir).map_err(|source| AuditError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let lock_path = dir.join(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| AuditError::Io {
                path: lock_path.clone(),
                source,
            })?;
        lock.lock().map_err(|source| AuditError::Io { path: lock_path, source })?;
        let writer = Self::load(dir, lock)?;
        let (writer, torn) = writer;
        let _ = writer.lock.unlock();
        let log = DirectoryLog {
            writer: Mutex::new(writer),
            rotate_bytes,
        };
        if let Some(digest) = torn {
            log.append(AuditEvent {
                principal: "customs".into(),
                action: "audit.recovered".into(),
                result: "error".into(),
                detail: format!("cut a torn final line (sha256 {digest}) left by a crash"),
                ..AuditEvent::default()
            })?;
        }
        Ok(log)
    }

    /// Reads the chain head from disk (under the lock), cutting a torn tail.
    fn load(dir: &Path, lock: File) -> Result<(Writer, Option<String>), AuditError> {
        let existing = segments(dir)?;
        let segment = existing.last().and_then(|p| segment_number(p)).unwrap_or(1);
        let (mut seq, mut head, mut torn) = (0, GENESIS.to_string(), None);
        if let Some(last) = existing.last() {
            let io = |source| AuditError::Io {
                path: last.clone(),
                source,
            };
            // Only the end of the segment matters here: the server reloads on every append another process made.
            let (offset, bytes) = read_tail(last).map_err(io)?;
            let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            if keep < bytes.len() {
                torn = Some(hex::encode(Sha256::digest(&bytes[keep..])));
                let file = OpenOptions::new().write(true).open(last).map_err(io)?;
                file.set_len(offset + keep as u64).map_err(io)?;
            }
            if let Some(line) = bytes[..keep].split(|&b| b == b'\n').rev().find(|l| !l.is_empty()) {
                let record: AuditRecord = serde_json::from_slice(line).map_err(|e| AuditError::Broken {
                    path: last.clone(),
                    line: fs::read(last).map_or(0, |all| all.iter().filter(|&&b| b == b'\n').count()),
                    message: format!("last record is not valid JSON ({e}); run `customs registry audit verify`"),
                })?;
                seq = record.seq;
                head = record.hash;
            } else if existing.len() > 1 {
                // An empty newest segment: continue from the one before.
                let (s, h) = last_record(&existing[existing.len() - 2])?;
                (seq, head) = (s, h);
            }
        }
        let file = open_segment(dir, segment)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok((
            Writer {
                lock,
                dir: dir.to_path_buf(),
                segment,
                file,
                size,
                seq,
                head,
            },
            torn,
        ))
    }

    /// Whether another process appended or rotated since this writer last wrote.
    fn stale(w: &Writer) -> bool {
        let current = fs::metadata(segment_path(&w.dir, w.segment)).map(|m| m.len()).ok();
        current != Some(w.size) || segment_path(&w.dir, w.segment + 1).exists()
    }

    /// Appends one event; returns the stored record.
    pub fn append(&self, event: AuditEvent) -> Result<AuditRecord, AuditError> {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let lock_path = guard.dir.join(".lock");
        guard.lock.lock().map_err(|source| AuditError::Io { path: lock_path, source })?;
        if Self::stale(&guard) {
            let lock = guard.lock.try_clone().map_err(|source| AuditError::Io {
                path: guard.dir.clone(),
                source,
            })?;
            let (fresh, _) = Self::load(&guard.dir.clone(), lock)?;
            *guard = fresh;
        }
        let result = self.append_locked(&mut guard, event);
        let _ = guard.lock.unlock();
        result
    }

    fn append_locked(&self, w: &mut Writer, event: AuditEvent) -> Result<AuditRecord, AuditError> {
        if w.size >= self.rotate_bytes {
            let next = w.segment + 1;
            w.file = open_segment(&w.dir, next)?;
            w.segment = next;
            w.size = 0;
        }
        let mut record = AuditRecord {
            seq: w.seq + 1,
            time: now_rfc3339(),
            event: event.bounded(),
            prev: w.head.clone(),
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        let mut line = serde_json::to_vec(&record).expect("serialize");
        line.push(b'\n');
        // One write per record on an O_APPEND file: a crash leaves at most one torn line, which `open` cuts.
        let path = segment_path(&w.dir, w.segment);
        w.file.write_all(&line).map_err(|source| AuditError::Io { path, source })?;
        w.size += line.len() as u64;
        w.seq = record.seq;
        w.head = record.hash.clone();
        Ok(record)
    }

    /// Sequence number and hash of the newest record.
    pub fn head(&self) -> (u64, String) {
        let w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        (w.seq, w.head.clone())
    }
}

/// How much of a segment's end `read_tail` reads: far more than one record.
const TAIL_BYTES: u64 = 1 << 20;

/// The end of the file at `path` from the start of a line: `(offset, bytes)`. The whole file when it is small
/// or when its last `TAIL_BYTES` hold no line break.
fn read_tail(path: &Path) -> std::io::Result<(u64, Vec<u8>)> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    if len > TAIL_BYTES {
        let start = len - TAIL_BYTES;
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::with_capacity(TAIL_BYTES as usize);
        file.read_to_end(&mut bytes)?;
        // Drop the partial line the window starts in; the last line break must lie past it.
        if let Some(first) = bytes.iter().position(|&b| b == b'\n')
            && bytes[first + 1..].contains(&b'\n')
        {
            return Ok((start + first as u64 + 1, bytes.split_off(first + 1)));
        }
    }
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok((0, bytes))
}

fn last_record(path: &Path) -> Result<(u64, String), AuditError> {
    let mut last = (0, GENESIS.to_string());
    for_each_record(path, |_, record| {
        last = (record.seq, record.hash.clone());
        Ok(())
    })?;
    Ok(last)
}

fn for_each_record(path: &Path, mut f: impl FnMut(usize, &AuditRecord) -> Result<(), String>) -> Result<(), AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.is_empty() {
            continue;
        }
        let broken = |message: String| AuditError::Broken {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let record: AuditRecord = serde_json::from_str(&line).map_err(|e| broken(format!("not a valid record: {e}")))?;
        f(i + 1, &record).map_err(broken)?;
    }
    Ok(())
}

/// Checks every record's hash and link, across segments. The first broken record is the error.
pub fn verify(dir: &Path) -> Result<VerifySummary, AuditError> {
    verify_anchored(dir, &[])
}

/// [`verify`], and each of `anchors` must be a record of the chain: a checkpoint whose record differs means the
/// log was rewritten after it was signed, and one past the end means newer records were cut.
pub fn verify_anchored(dir: &Path, anchors: &[Anchor]) -> Result<VerifySummary, AuditError> {
    let files = segments(dir)?;
    let mut check = ChainCheck::new(anchors);
    for path in &files {
        for_each_record(path, |_, record| check.push(record))?;
    }
    check.finish(files.len())
}

/// Calls `f` with every record matching `q`, oldest first.
pub fn query(dir: &Path, q: &AuditQuery, mut f: impl FnMut(&AuditRecord)) -> Result<(), AuditError> {
    for path in segments(dir)? {
        for_each_record(&path, |_, record| {
            if q.matches(record) {
                f(record);
            }
            Ok(())
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(principal: &str, result: &str) -> AuditEvent {
        AuditEvent {
            client_ip: "127.0.0.1".into(),
            principal: principal.into(),
            action: "pull".into(),
            repository: "project1".into(),
            result: result.into(),
            status: 200,
            ..AuditEvent::default()
        }
    }

    #[test]
    fn long_fields_are_stored_cut_with_a_hash_of_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let log = DirectoryLog::open(dir.path(), 1 << 20).unwrap();
        let reference = format!("sha256:{}", "a".repeat(60_000));
        let record = log
            .append(AuditEvent {
                reference: reference.clone(),
                detail: "é".repeat(5000),
                ..event("anonymous", "denied")
            })
            .unwrap();
        let line = serde_json::to_string(&record).unwrap();
        assert!(line.len() < 2500, "{} bytes", line.len());
        let whole = hex::encode(Sha256::digest(reference.as_bytes()));
        assert!(record.event.reference.contains(&whole), "{}", record.event.reference);
        assert!(record.event.reference.starts_with("sha256:aaaa"));
        assert!(record.event.reference.contains("60007 bytes"), "{}", record.event.reference);
        assert!(record.event.detail.len() <= 1100, "{}", record.event.detail.len());
        assert_eq!(verify(dir.path()).unwrap().records, 1);
    }

    #[test]
    fn chain_survives_rotation_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = DirectoryLog::open(dir.path(), 400).unwrap();
        for i in 0..10 {
            log.append(event(&format!("sp{i}"), "allowed")).unwrap();
        }
        drop(log);
        let log = DirectoryLog::open(dir.path(), 400).unwrap();
        log.append(event("sp-after-restart", "denied")).unwrap();
        let summary = verify(dir.path()).unwrap();
        assert_eq!(summary.records, 11);
        assert!(summary.segments > 2, "400-byte segments must rotate: {summary:?}");
        assert_eq!(summary.head, log.head().1);
        let mut denied = Vec::new();
        query(
            dir.path(),
            &AuditQuery {
                result: Some("denied".into()),
                ..AuditQuery::default()
            },
            |r| denied.push(r.event.principal.clone()),
        )
        .unwrap();
        assert_eq!(denied, ["sp-after-restart"]);
    }

    #[test]
    fn edits_and_removals_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let log = DirectoryLog::open(dir.path(), u64::MAX).unwrap();
        for _ in 0..3 {
            log.append(event("sp1", "denied")).unwrap();
        }
        let path = segment_path(dir.path(), 1);
        let original = fs::read_to_string(&path).unwrap();

        fs::write(&path, original.replacen("\"denied\"", "\"allowed\"", 1)).unwrap();
        let err = verify(dir.path()).unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("modified"), "{err}");

        let lines: Vec<&str> = original.lines().collect();
        fs::write(&path, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
        let err = verify(dir.path()).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("jumps"), "{err}");
    }

    #[test]
    fn two_writers_share_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let server = DirectoryLog::open(dir.path(), 300).unwrap();
        let cli = DirectoryLog::open(dir.path(), 300).unwrap();
        for i in 0..6 {
            server.append(event("server", "allowed")).unwrap();
            if i % 2 == 0 {
                cli.append(event("cli", "allowed")).unwrap();
            }
        }
        let summary = verify(dir.path()).unwrap();
        assert_eq!(summary.records, 9);
        assert_eq!(summary.head, server.head().1);
    }

    #[test]
    fn torn_tail_is_cut_and_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let log = DirectoryLog::open(dir.path(), u64::MAX).unwrap();
        log.append(event("sp1", "allowed")).unwrap();
        drop(log);
        let path = segment_path(dir.path(), 1);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"seq\":2,\"time\":\"2026").unwrap();
        let log = DirectoryLog::open(dir.path(), u64::MAX).unwrap();
        assert_eq!(log.head().0, 2);
        let summary = verify(dir.path()).unwrap();
        assert_eq!(summary.records, 2);
        let mut actions = Vec::new();
        query(dir.path(), &AuditQuery::default(), |r| actions.push(r.event.action.clone())).unwrap();
        assert_eq!(actions, ["pull", "audit.recovered"]);
    }

    #[test]
    fn a_segment_larger_than_the_tail_window_reopens_from_its_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = DirectoryLog::open(dir.path(), u64::MAX).unwrap();
        let detail = "x".repeat(1000);
        let count = TAIL_BYTES as usize / 1000 + 10;
        for _ in 0..count {
            log.append(AuditEvent {
                detail: detail.clone(),
                ..event("sp1", "allowed")
            })
            .unwrap();
        }
        let head = log.head();
        drop(log);
        let path = segment_path(dir.path(), 1);
        assert!(fs::metadata(&path).unwrap().len() > TAIL_BYTES);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"seq\":").unwrap();
        let log = DirectoryLog::open(dir.path(), u64::MAX).unwrap();
        assert_eq!(
            log.head().0,
            head.0 + 1,
            "continues after the last whole record, then records the cut"
        );
        let summary = verify(dir.path()).unwrap();
        assert_eq!(summary.records as usize, count + 1);
    }
}

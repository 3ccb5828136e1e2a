//! Signed checkpoints of the audit chain, so that rewriting the log (editing a record and recomputing every later
//! hash) or cutting its newest records is detected.
//!
//! The chain alone cannot show either: whoever can write the log can also recompute it. A checkpoint is the head
//! (sequence number and hash) signed with an Ed25519 key the registry's operators keep apart from the log (a file
//! outside the data directory, readable by the registry's user only), and copied where the registry cannot
//! rewrite it: an object store written create-only (a bucket with retention: S3 Object Lock, Azure immutable
//! blob storage) and the `audit.checkpoint` webhook (a SIEM). `customs registry audit verify --checkpoint FILE
//! --key PUB` then fails when the log no longer holds the signed head.
//!
//! What a checkpoint cannot show: records written after the newest exported checkpoint may still be rewritten by
//! someone who can write the log and read the key. The interval bounds that window.

pub mod note;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use note::{Checkpoint, ORIGIN_PREFIX, SigningKey, VerifierKey};

use crate::audit::Anchor;

/// `[audit.checkpoints]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// The private signing key (`customs registry audit keygen`): outside the audit directory, mode 0600.
    pub key: PathBuf,
    /// How often the head is signed when records were added (`5m`).
    #[serde(default = "default_interval")]
    pub interval: String,
    /// Where local copies go [default: `checkpoints/` in the audit directory].
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// An object store URL checkpoints are copied to, create-only (`file:///mnt/worm/customs-audit`).
    #[serde(default)]
    pub export: Option<String>,
}

fn default_interval() -> String {
    "5m".into()
}

/// The origin line of a registry's checkpoints, from its service name.
pub fn origin(service: &str) -> String {
    format!("{ORIGIN_PREFIX}{service}")
}

/// Reads a signing key file, refusing one others may read or one kept inside the audit directory.
pub fn load_signing_key(path: &Path, audit_dir: &Path) -> Result<SigningKey, String> {
    let what = format!("checkpoint key {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| format!("{what}: {e}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(|e| format!("{what}: {e}"))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(format!("{what}: readable by others (mode {:o}); chmod 600 it", mode & 0o777));
        }
    }
    if let (Ok(key), Ok(audit)) = (path.canonicalize(), audit_dir.canonicalize())
        && key.starts_with(&audit)
    {
        return Err(format!(
            "{what}: inside the audit directory {}; keep the key apart from the log it signs",
            audit.display()
        ));
    }
    SigningKey::parse(&text, &what)
}

/// A verifier key given as a file or as the key text itself.
pub fn load_verifier_key(arg: &str) -> Result<VerifierKey, String> {
    let path = Path::new(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{arg}: {e}"))?;
        VerifierKey::parse(&text, arg)
    } else {
        VerifierKey::parse(arg, "--key")
    }
}

/// What one checkpoint write did.
#[derive(Clone, Debug)]
pub struct Written {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Its signed note.
    pub note: String,
    /// The local copy.
    pub path: PathBuf,
    /// Where it was exported, when configured.
    pub exported: Option<String>,
}

/// Signs heads and stores the checkpoints.
pub struct Checkpointer {
    key: SigningKey,
    origin: String,
    dir: PathBuf,
    export: Option<(Arc<dyn ObjectStore>, object_store::path::Path, String)>,
    /// How often the server signs.
    pub interval: std::time::Duration,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("origin", &self.origin)
            .field("dir", &self.dir)
            .finish()
    }
}

impl Checkpointer {
    /// Loads the key and opens the export store; errors name the setting.
    pub fn new(config: &CheckpointConfig, audit_dir: &Path, service: &str) -> Result<Checkpointer, String> {
        let key = load_signing_key(&config.key, audit_dir).map_err(|e| format!("[audit.checkpoints] {e}"))?;
        let interval = crate::protect::parse_age(&config.interval)
            .map_err(|e| format!("[audit.checkpoints] interval {e}"))?
            .try_into()
            .ok()
            .filter(|d: &std::time::Duration| !d.is_zero())
            .ok_or("[audit.checkpoints] interval must be positive")?;
        let export = config
            .export
            .as_deref()
            .map(|url| {
                let parsed = url::Url::parse(url).map_err(|e| format!("[audit.checkpoints] export `{url}`: {e}"))?;
                let (store, prefix) = object_store::parse_url(&parsed)
                    .map_err(|e| format!("[audit.checkpoints] export `{url}`: {e} (file:// URLs are supported)"))?;
                Ok::<_, String>((Arc::from(store), prefix, url.trim_end_matches('/').to_string()))
            })
            .transpose()?;
        Ok(Checkpointer {
            key,
            origin: origin(service),
            dir: config.dir.clone().unwrap_or_else(|| audit_dir.join("checkpoints")),
            export,
            interval,
        })
    }

    /// The verifier key of the signing key.
    pub fn verifier(&self) -> VerifierKey {
        self.key.verifier()
    }

    /// The highest sequence number with a local checkpoint.
    pub fn latest(&self) -> Option<u64> {
        std::fs::read_dir(&self.dir)
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| checkpoint_seq(&e.path()))
            .max()
    }

    /// Signs `(seq, head)` now, writes the local copy and exports it. Writing the same head twice is a no-op;
    /// another head for a sequence number already checkpointed is refused (the log was rewritten).
    pub async fn write(&self, seq: u64, head: &str) -> Result<Written, String> {
        let checkpoint = Checkpoint {
            origin: self.origin.clone(),
            seq,
            head: head.to_string(),
            time: OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .expect("0 ns is valid")
                .format(&Rfc3339)
                .expect("format time"),
        };
        let note = checkpoint.sign(&self.key);
        let name = format!("checkpoint-{seq:012}.note");
        let path = self.dir.join(&name);
        match std::fs::read_to_string(&path) {
            Ok(existing) => {
                let old = Checkpoint::open(&existing, &self.key.verifier(), &path.display().to_string())?;
                if old.head != head {
                    return Err(format!(
                        "{}: already signs head {} for record {seq}, now {head}: the log was rewritten",
                        path.display(),
                        old.head
                    ));
                }
                return Ok(Written {
                    checkpoint: old,
                    note: existing,
                    path,
                    exported: None,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        crate::keyfile::create_public(&path, note.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
        let exported = match &self.export {
            Some((store, prefix, url)) => {
                let location = prefix.clone().join(name.as_str());
                let options = PutOptions {
                    mode: PutMode::Create,
                    ..PutOptions::default()
                };
                match store.put_opts(&location, PutPayload::from(note.clone()), options).await {
                    Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Some(format!("{url}/{name}")),
                    Err(e) => return Err(format!("exporting {name} to {url}: {e}")),
                }
            }
            None => None,
        };
        Ok(Written {
            checkpoint,
            note,
            path,
            exported,
        })
    }
}

/// The server's checkpoint task: at start and then every interval, signs the head when records were added since
/// the newest checkpoint. Each checkpoint is also an `audit.checkpoint` webhook event; a failure is a metric and
/// an error line, and is tried again at the next interval.
pub(crate) async fn run(registry: &crate::server::Registry, checkpointer: &Checkpointer) {
    use crate::metrics::OutcomeLabels;
    let mut last = checkpointer.latest().unwrap_or(0);
    registry.metrics.audit_checkpoint_seq.set(last as i64);
    loop {
        let (seq, head) = registry.audit.head().unwrap_or_else(|e| {
            tracing::error!("audit checkpoint: {e}");
            (0, String::new())
        });
        if seq > last {
            match checkpointer.write(seq, &head).await {
                Ok(written) => {
                    last = seq;
                    let outcome = OutcomeLabels { outcome: "written" };
                    registry.metrics.audit_checkpoints.get_or_create(&outcome).inc();
                    registry.metrics.audit_checkpoint_seq.set(seq as i64);
                    registry.emit(event(&written, &checkpointer.verifier())).await;
                }
                Err(e) => {
                    registry
                        .metrics
                        .audit_checkpoints
                        .get_or_create(&OutcomeLabels { outcome: "failed" })
                        .inc();
                    tracing::error!("audit checkpoint of record {seq}: {e}");
                }
            }
        }
        tokio::time::sleep(checkpointer.interval).await;
    }
}

/// The `audit.checkpoint` event: `data` holds origin, seq, head, time, the verifier key and the signed note.
fn event(written: &Written, key: &VerifierKey) -> crate::webhooks::Event {
    let c = &written.checkpoint;
    let data = serde_json::json!({
        "origin": c.origin,
        "seq": c.seq,
        "head": c.head,
        "signed_at": c.time,
        "key": key.encode(),
        "note": written.note,
    });
    crate::webhooks::Event::about(
        crate::webhooks::EventKind::AuditCheckpoint,
        "",
        format!("audit@{}", c.seq),
        data,
        (
            format!("audit checkpoint: record {}", c.seq),
            format!("head {} signed by {}", c.head, key.name()),
            true,
        ),
        c.time.clone(),
    )
}

/// `checkpoint-000000001042.note` → 1042.
fn checkpoint_seq(path: &Path) -> Option<u64> {
    path.file_name()?
        .to_str()?
        .strip_prefix("checkpoint-")?
        .strip_suffix(".note")?
        .parse()
        .ok()
}

/// The checkpoints at `path` (a note, or a folder of `*.note` files) checked with `key` and for `origin`, as
/// anchors for [`crate::audit::verify_anchored`]. The first bad one is the error.
pub fn anchors(path: &Path, key: &VerifierKey, origin: &str) -> Result<Vec<(Anchor, Checkpoint)>, String> {
    let files = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "note"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(format!("{}: no .note files", path.display()));
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let what = file.display().to_string();
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(
                std::fs::File::open(&file).map_err(|e| format!("{what}: {e}"))?,
                note::NOTE_LIMIT as u64 + 1,
            ),
            &mut text,
        )
        .map_err(|e| format!("{what}: {e}"))?;
        let checkpoint = Checkpoint::open(&text, key, &what)?;
        if checkpoint.origin != origin {
            return Err(format!(
                "{what}: a checkpoint of `{}`, not of this registry's log (`{origin}`)",
                checkpoint.origin
            ));
        }
        out.push((
            Anchor {
                seq: Some(checkpoint.seq),
                hash: checkpoint.head.clone(),
                source: what,
            },
            checkpoint,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEvent, AuditLog, verify, verify_anchored};

    fn event(i: usize) -> AuditEvent {
        AuditEvent {
            client_ip: "10.0.0.1".into(),
            principal: format!("sp{i}"),
            action: "pull".into(),
            repository: "project1".into(),
            result: "allowed".into(),
            status: 200,
            ..AuditEvent::default()
        }
    }

    /// Rewrites every record from line `from` (1-based) on: the edit and the recomputed hashes that follow, as an
    /// attacker with write access to the log would.
    fn rewrite_chain(segment: &Path, from: usize, edit: impl Fn(&mut crate::audit::AuditRecord)) {
        let text = std::fs::read_to_string(segment).unwrap();
        let mut records: Vec<crate::audit::AuditRecord> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        for i in from - 1..records.len() {
            if i == from - 1 {
                edit(&mut records[i]);
            }
            if i > 0 {
                records[i].prev = records[i - 1].hash.clone();
            }
            records[i].hash = records[i].compute_hash();
        }
        let lines: Vec<String> = records.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
        std::fs::write(segment, lines.join("\n") + "\n").unwrap();
    }

    fn setup(dir: &Path) -> (AuditLog, Checkpointer, PathBuf) {
        let key_path = dir.join("keys/audit.key");
        let key = SigningKey::generate("registry.example-audit").unwrap();
        crate::keyfile::create_private(&key_path, key.encode().as_bytes()).unwrap();
        let audit_dir = dir.join("audit");
        let log = AuditLog::open(&audit_dir, u64::MAX).unwrap();
        let config = CheckpointConfig {
            key: key_path,
            interval: "1m".into(),
            dir: None,
            export: Some(format!("file://{}", dir.join("worm").display())),
        };
        let checkpointer = Checkpointer::new(&config, &audit_dir, "registry.example").unwrap();
        (log, checkpointer, audit_dir)
    }

    #[tokio::test]
    async fn a_rewritten_chain_passes_alone_and_fails_against_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let (log, checkpointer, audit_dir) = setup(dir.path());
        for i in 0..10 {
            log.append(event(i)).unwrap();
        }
        let (seq, head) = log.head().unwrap();
        let written = checkpointer.write(seq, &head).await.unwrap();
        assert_eq!(written.checkpoint.seq, 10);
        let exported = dir.path().join("worm").join("checkpoint-000000000010.note");
        assert_eq!(std::fs::read_to_string(&exported).unwrap(), written.note);
        for i in 10..12 {
            log.append(event(i)).unwrap();
        }
        let verifier = checkpointer.verifier();
        let found = anchors(&exported, &verifier, &origin("registry.example")).unwrap();
        let anchors_only: Vec<Anchor> = found.into_iter().map(|(a, _)| a).collect();
        let summary = verify_anchored(&audit_dir, &anchors_only).unwrap();
        assert_eq!(summary.records, 12);
        assert_eq!(summary.anchored.len(), 1);

        // Record 3's principal changed and every later hash recomputed: intact as a chain, not as checkpointed.
        let segment = crate::audit::segments(&audit_dir).unwrap().remove(0);
        rewrite_chain(&segment, 3, |r| r.event.principal = "someone-else".into());
        assert_eq!(
            verify(&audit_dir).unwrap().records,
            12,
            "the rewrite is invisible to the chain alone"
        );
        let err = verify_anchored(&audit_dir, &anchors_only).unwrap_err().to_string();
        assert!(err.contains("record 10") && err.contains("rewritten"), "{err}");
    }

    #[tokio::test]
    async fn cut_records_and_a_forgotten_head_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let (log, checkpointer, audit_dir) = setup(dir.path());
        for i in 0..6 {
            log.append(event(i)).unwrap();
        }
        let (seq, head) = log.head().unwrap();
        checkpointer.write(seq, &head).await.unwrap();
        let local = audit_dir.join("checkpoints");
        let segment = crate::audit::segments(&audit_dir).unwrap().remove(0);
        let text = std::fs::read_to_string(&segment).unwrap();
        let kept: Vec<&str> = text.lines().take(4).collect();
        std::fs::write(&segment, kept.join("\n") + "\n").unwrap();
        assert_eq!(verify(&audit_dir).unwrap().records, 4, "a cut tail is invisible to the chain alone");
        let found: Vec<Anchor> = anchors(&local, &checkpointer.verifier(), &origin("registry.example"))
            .unwrap()
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        let err = verify_anchored(&audit_dir, &found).unwrap_err().to_string();
        assert!(err.contains("covers record 6") && err.contains("ends at record 4"), "{err}");
        let expect = Anchor {
            seq: None,
            hash: head.clone(),
            source: "--expect-head".into(),
        };
        let err = verify_anchored(&audit_dir, &[expect]).unwrap_err().to_string();
        assert!(err.contains("--expect-head") && err.contains("no record has hash"), "{err}");
    }

    #[tokio::test]
    async fn keys_are_kept_apart_and_a_second_head_for_one_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (log, checkpointer, audit_dir) = setup(dir.path());
        log.append(event(0)).unwrap();
        let (seq, head) = log.head().unwrap();
        checkpointer.write(seq, &head).await.unwrap();
        checkpointer.write(seq, &head).await.unwrap();
        assert_eq!(checkpointer.latest(), Some(1));
        let err = checkpointer.write(seq, &"0".repeat(64)).await.unwrap_err();
        assert!(err.contains("rewritten"), "{err}");

        let inside = audit_dir.join("audit.key");
        crate::keyfile::create_private(&inside, SigningKey::generate("k").unwrap().encode().as_bytes()).unwrap();
        assert!(load_signing_key(&inside, &audit_dir).unwrap_err().contains("apart"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let open = dir.path().join("open.key");
            std::fs::write(&open, SigningKey::generate("k").unwrap().encode()).unwrap();
            std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(load_signing_key(&open, &audit_dir).unwrap_err().contains("chmod 600"));
        }
        let other = anchors(&audit_dir.join("checkpoints"), &checkpointer.verifier(), &origin("other.example")).unwrap_err();
        assert!(other.contains("not of this registry's log"), "{other}");
    }
}

//! Export of the database chain as segments to object storage, where the registry cannot rewrite them (a
//! bucket with object lock or retention, a WORM mount).
//!
//! Each segment is `audit-{first seq, 12 digits}.jsonl` holding the records after the previous segment's last
//! one, one JSON line each as in a directory log, so a copy of the export verifies like a directory log
//! (`customs registry audit verify --dir`). Segments are written create-only: when two replicas export at once,
//! one segment wins and the other replica starts after it next time, so the segments never overlap.

use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::{Anchor, AuditError, AuditRecord, ChainCheck, VerifySummary};
use crate::meta::MetaStore;

/// Most records one segment holds.
const SEGMENT_RECORDS: usize = 10_000;

/// A segment written by [`Exporter::export_next`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedSegment {
    /// The object's name.
    pub name: String,
    /// Its first and last sequence numbers.
    pub first: u64,
    /// Its last sequence number.
    pub last: u64,
}

/// Copies new records from the database to `[audit] export`.
pub struct Exporter {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    url: String,
    /// The last sequence number this exporter knows is exported, so each round does not list every segment;
    /// forgotten when another replica is found to have written the next segment first.
    exported: std::sync::Mutex<Option<u64>>,
}

fn open_url(url: &str) -> Result<(Arc<dyn ObjectStore>, ObjectPath), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("`{url}`: {e}"))?;
    let (store, prefix) =
        object_store::parse_url(&parsed).map_err(|e| format!("`{url}`: {e} (file://, s3:// and az:// URLs are supported)"))?;
    Ok((Arc::from(store), prefix))
}

fn segment_first(name: &str) -> Option<u64> {
    name.strip_prefix("audit-")?.strip_suffix(".jsonl")?.parse().ok()
}

impl Exporter {
    /// The exporter for `url` (`file:///mnt/worm/audit`, `s3://bucket/audit`, `az://container/audit`; cloud
    /// credentials from the environment, as for `[storage]`).
    pub fn new(url: &str) -> Result<Exporter, String> {
        let (store, prefix) = open_url(url)?;
        Ok(Exporter {
            store,
            prefix,
            url: url.trim_end_matches('/').to_string(),
            exported: std::sync::Mutex::new(None),
        })
    }

    /// Where segments go, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The exported segments' names and first sequence numbers, oldest first.
    async fn segments(&self) -> Result<Vec<(u64, ObjectPath)>, String> {
        use futures_util::TryStreamExt;
        let listed: Vec<_> = self
            .store
            .list(Some(&self.prefix))
            .try_collect()
            .await
            .map_err(|e| format!("listing {}: {e}", self.url))?;
        let mut found: Vec<(u64, ObjectPath)> = listed
            .into_iter()
            .filter_map(|meta| meta.location.filename().and_then(segment_first).map(|n| (n, meta.location.clone())))
            .collect();
        found.sort();
        Ok(found)
    }

    async fn read(&self, location: &ObjectPath) -> Result<String, String> {
        let bytes = self
            .store
            .get(location)
            .await
            .map_err(|e| format!("reading {}/{}: {e}", self.url, location.filename().unwrap_or_default()))?
            .bytes()
            .await
            .map_err(|e| format!("reading {}: {e}", location))?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{}: not UTF-8", location))
    }

    /// The last sequence number already exported (0 when nothing is).
    async fn exported_up_to(&self) -> Result<u64, String> {
        let Some((_, newest)) = self.segments().await?.pop() else {
            return Ok(0);
        };
        let text = self.read(&newest).await?;
        let last = text
            .lines()
            .rev()
            .find(|l| !l.is_empty())
            .ok_or(format!("{newest}: empty segment"))?;
        let record: AuditRecord = serde_json::from_str(last).map_err(|e| format!("{newest}: last line: {e}"))?;
        Ok(record.seq)
    }

    /// Writes one segment of the records not yet exported; `None` when there are none, or when another replica
    /// wrote the same segment first.
    pub async fn export_next(&self, meta: &MetaStore) -> Result<Option<ExportedSegment>, String> {
        let known = *self.exported.lock().expect("not poisoned");
        let after = match known {
            Some(seq) => seq,
            None => self.exported_up_to().await?,
        };
        let mut records: Vec<AuditRecord> = Vec::new();
        let mut next = after;
        while records.len() < SEGMENT_RECORDS {
            let page = super::database::page(meta, next).await.map_err(|e| e.to_string())?;
            let Some(last) = page.last() else { break };
            next = last.seq;
            records.extend(page);
        }
        records.truncate(SEGMENT_RECORDS);
        let (Some(first), Some(last)) = (records.first().map(|r| r.seq), records.last().map(|r| r.seq)) else {
            *self.exported.lock().expect("not poisoned") = Some(after);
            return Ok(None);
        };
        let mut body = Vec::new();
        for record in &records {
            serde_json::to_writer(&mut body, record).expect("serialize");
            body.push(b'\n');
        }
        let name = format!("audit-{first:012}.jsonl");
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&self.prefix.clone().join(name.as_str()), PutPayload::from(body), options)
            .await
        {
            Ok(_) => {
                *self.exported.lock().expect("not poisoned") = Some(last);
                Ok(Some(ExportedSegment { name, first, last }))
            }
            Err(object_store::Error::AlreadyExists { .. }) => {
                // Another replica wrote it: where the export stands is read again next time.
                *self.exported.lock().expect("not poisoned") = None;
                Ok(None)
            }
            Err(e) => Err(format!("writing {}/{name}: {e}", self.url)),
        }
    }
}

/// Checks the chain in the segments exported to `url`, like [`super::verify_anchored`] for a directory.
pub async fn verify_exported(url: &str, anchors: &[Anchor]) -> Result<VerifySummary, AuditError> {
    let exporter = Exporter::new(url).map_err(AuditError::Export)?;
    let segments = exporter.segments().await.map_err(AuditError::Export)?;
    let mut check = ChainCheck::new(anchors);
    for (_, location) in &segments {
        let text = exporter.read(location).await.map_err(AuditError::Export)?;
        for line in text.lines().filter(|l| !l.is_empty()) {
            let broken = |seq: u64, message: String| AuditError::BrokenRecord {
                place: format!("{}/{}", exporter.url, location.filename().unwrap_or_default()),
                seq,
                message,
            };
            let record: AuditRecord = serde_json::from_str(line).map_err(|e| broken(check.seq + 1, format!("not a valid record: {e}")))?;
            check.push(&record).map_err(|message| broken(record.seq, message))?;
        }
    }
    check.finish(segments.len())
}

/// The server's export task: every `interval`, writes segments until every record is exported. Replicas may all
/// run it (segments are create-only); a failure is a metric and an error line, tried again next interval.
pub(crate) async fn run(registry: &crate::server::Registry, exporter: &Exporter, interval: std::time::Duration) {
    loop {
        loop {
            match exporter.export_next(&registry.meta).await {
                Ok(Some(segment)) => {
                    registry.metrics.audit_exported_seq.set(segment.last as i64);
                    tracing::info!(
                        "audit records {}-{} exported to {}/{}",
                        segment.first,
                        segment.last,
                        exporter.url(),
                        segment.name
                    );
                }
                Ok(None) => break,
                Err(e) => {
                    registry.metrics.audit_export_failures.inc();
                    tracing::error!("audit export: {e}");
                    break;
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
}

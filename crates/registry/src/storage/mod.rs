//! Blob bytes in an `object_store` (local disk by default; S3, Azure Blob and GCS are the same trait).
//!
//! Uploads are staged as part objects under `uploads/<id>/`; a part only counts once the metadata store records
//! it, and a blob only becomes visible when its verified bytes are renamed to `blobs/sha256/<xx>/<hex>`. A crash
//! at any point leaves at most unreferenced staging objects, never a partial blob.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, GetResult, GetResultPayload, ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::meta::UploadPart;

mod local;
mod remote;

/// Bytes per multipart chunk handed to the object store.
const CHUNK: usize = 8 << 20;

/// A storage failure, or a client stream that broke mid-body.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object store failed.
    #[error("blob storage: {0}")]
    Store(#[from] object_store::Error),
    /// Reading the request body failed (client went away).
    #[error("request body: {0}")]
    Body(String),
    /// The body is larger than allowed.
    #[error("request body exceeds {0} bytes")]
    TooLarge(u64),
}

/// An upload's bytes, checked: ready to become the blob, or why not.
#[derive(Debug, PartialEq, Eq)]
pub enum Assembly {
    /// The bytes hash to the expected digest; [`BlobStore::publish`] makes them the blob.
    Verified(Verified),
    /// The uploaded bytes hash to something else; nothing was stored.
    DigestMismatch(Digest),
    /// The parts do not cover `0..size` contiguously.
    Incomplete,
}

/// Verified bytes of an upload, not yet visible as a blob.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    /// The object holding them; `None` for the empty blob.
    source: Option<ObjectPath>,
    /// Whether `source` was assembled for this commit (else it is the upload's only part).
    assembled: bool,
}

/// An object found while listing storage, for the garbage collector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    /// Its key (for a local filesystem's own staging file, the path below the root).
    pub key: String,
    /// Bytes.
    pub size: u64,
    /// Last written, Unix milliseconds.
    pub modified_ms: i64,
}

impl StoredObject {
    /// The upload an object under `uploads/<id>/` belongs to.
    pub fn upload_id(&self) -> Option<&str> {
        self.key.strip_prefix("uploads/")?.split('/').next().filter(|id| !id.is_empty())
    }
}

/// The next chunk of a request body, counted into `received`; `None` at its end, an error when the client
/// broke off or the body passed `limit` bytes.
async fn next_chunk<S, E>(body: &mut S, received: &mut u64, limit: u64) -> Result<Option<Bytes>, StorageError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    match body.next().await {
        None => Ok(None),
        Some(Err(e)) => Err(StorageError::Body(e.to_string())),
        Some(Ok(chunk)) => {
            *received += chunk.len() as u64;
            if *received > limit {
                return Err(StorageError::TooLarge(limit));
            }
            Ok(Some(chunk))
        }
    }
}

/// Bytes per read when streaming a local file.
const READ_CHUNK: usize = 1 << 20;

/// Streams `range` of a local file in 1 MiB reads on one blocking task, a few reads ahead of the client.
/// (object_store's own local stream reads 8 KiB per blocking task, which caps a pull at a few hundred MB/s.)
fn read_file(mut file: std::fs::File, range: Range<u64>) -> BoxStream<'static, Result<Bytes, object_store::Error>> {
    use std::io::{Read, Seek, SeekFrom};
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, object_store::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let fail = |e: std::io::Error| object_store::Error::Generic {
            store: "local",
            source: Box::new(e),
        };
        if let Err(e) = file.seek(SeekFrom::Start(range.start)) {
            let _ = tx.blocking_send(Err(fail(e)));
            return;
        }
        let mut remaining = range.end - range.start;
        while remaining > 0 {
            // Read into spare capacity: zeroing a fresh megabyte per read cost 6% of a pull's CPU.
            let want = READ_CHUNK.min(remaining as usize);
            let mut buf = Vec::with_capacity(want);
            match (&mut file).take(want as u64).read_to_end(&mut buf) {
                Ok(n) if n == want => {}
                Ok(n) => {
                    let short = std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("blob ended {} bytes early", remaining - n as u64),
                    );
                    let _ = tx.blocking_send(Err(fail(short)));
                    return;
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(fail(e)));
                    return;
                }
            }
            remaining -= buf.len() as u64;
            if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                return; // the client went away
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }).boxed()
}

/// Blob storage.
#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// The directory of a local store: its multipart staging files (`<key>#<n>`) are invisible to listing,
    /// and a process killed mid-upload leaves them behind for the collector to find here.
    local_root: Option<std::path::PathBuf>,
    /// Whether completed writes are made durable before they count.
    fsync: bool,
}

fn blob_key(digest: &Digest) -> ObjectPath {
    let hex = digest.hex();
    ObjectPath::from(format!("blobs/{}/{}/{}", digest.algorithm().name(), &hex[..2], hex))
}

impl BlobStore {
    /// Blobs under a local directory (created if missing). `fsync` makes every completed write durable.
    pub fn local(root: &Path, fsync: bool) -> Result<BlobStore, StorageError> {
        std::fs::create_dir_all(root).map_err(|e| object_store::Error::Generic {
            store: "local",
            source: Box::new(e),
        })?;
        let store = LocalFileSystem::new_with_prefix(root)?
            .with_fsync(fsync)
            .with_automatic_cleanup(true);
        Ok(BlobStore {
            store: Arc::new(store),
            local_root: Some(root.to_path_buf()),
            fsync,
        })
    }

    /// The blob store `[storage]` names; an error names the setting or the directory.
    pub fn from_config(config: &crate::config::StorageConfig) -> Result<BlobStore, String> {
        match config.backend {
            crate::config::StorageBackend::Local => {
                BlobStore::local(&config.root, config.fsync).map_err(|e| format!("storage {}: {e}", config.root.display()))
            }
            _ => Ok(BlobStore::new(remote::build(config)?)),
        }
    }

    /// Blobs in any object store (its service cleans up abandoned multipart uploads, e.g. an S3 lifecycle rule).
    pub fn new(store: Arc<dyn ObjectStore>) -> BlobStore {
        BlobStore {
            store,
            local_root: None,
            fsync: true,
        }
    }

    /// Size of a stored blob.
    pub async fn size(&self, digest: &Digest) -> Result<Option<u64>, StorageError> {
        match self.store.head(&blob_key(digest)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A small blob's bytes (configs, signature payloads, trust documents), refusing more than `limit`;
    /// `None` when it is not stored.
    pub async fn read_small(&self, digest: &Digest, limit: usize) -> Result<Option<Vec<u8>>, String> {
        use futures_util::StreamExt;
        let Some(mut stream) = self.get(digest, None).await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            if bytes.len() + chunk.len() > limit {
                return Err(format!("blob {digest} is larger than {limit} bytes"));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(bytes))
    }

    /// A blob's bytes, whole or a range; `None` when it is not stored.
    pub async fn get(
        &self,
        digest: &Digest,
        range: Option<Range<u64>>,
    ) -> Result<Option<BoxStream<'static, Result<Bytes, object_store::Error>>>, StorageError> {
        let options = GetOptions::default().with_range(range.map(GetRange::Bounded));
        match self.store.get_opts(&blob_key(digest), options).await {
            Ok(GetResult {
                payload: GetResultPayload::File(file, _),
                range,
                ..
            }) => Ok(Some(read_file(file, range))),
            Ok(result) => Ok(Some(result.into_stream())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Streams `body` into a new part object of upload `id` starting at `offset`. On any error the part is
    /// aborted and nothing is left behind.
    pub async fn write_part<S, E>(&self, id: &str, offset: u64, body: S, limit: u64) -> Result<UploadPart, StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let key = format!("uploads/{id}/{offset:020}-{}", uuid::Uuid::new_v4().simple());
        if let Some(root) = &self.local_root {
            return local::write_part(root, key, offset, body, limit, self.fsync).await;
        }
        let upload = self.store.put_multipart(&ObjectPath::from(key.as_str())).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, CHUNK);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = body;
        let failure = loop {
            match next_chunk(&mut body, &mut size, limit).await {
                Ok(None) => break None,
                Err(e) => break Some(e),
                Ok(Some(chunk)) => {
                    hasher.update(&chunk);
                    writer.put(chunk);
                    if let Err(e) = writer.wait_for_capacity(4).await {
                        break Some(e.into());
                    }
                }
            }
        };
        if let Some(failure) = failure {
            let _ = writer.abort().await;
            return Err(failure);
        }
        writer.finish().await?;
        Ok(UploadPart {
            offset,
            size,
            key,
            digest: Digest::from_sha256(hasher).to_string(),
        })
    }

    /// Deletes part objects (after a commit, a cancel or a lost race).
    pub async fn delete_parts(&self, parts: &[UploadPart]) {
        for part in parts {
            let _ = self.store.delete(&ObjectPath::from(part.key.as_str())).await;
        }
    }

    /// Verifies that `parts` hold `size` bytes hashing to `expected`, assembling several parts into one object.
    /// Nothing is visible as a blob until [`BlobStore::publish`].
    pub async fn assemble(&self, id: &str, parts: &[UploadPart], size: u64, expected: &Digest) -> Result<Assembly, StorageError> {
        let mut at = 0;
        for part in parts {
            if part.offset != at {
                return Ok(Assembly::Incomplete);
            }
            at += part.size;
        }
        if at != size {
            return Ok(Assembly::Incomplete);
        }
        if let [part] = parts
            && expected.algorithm() == crate::digest::Algorithm::Sha256
        {
            // One part: its digest was computed while it streamed in, so no second read.
            if part.digest != expected.as_str() {
                return Ok(Assembly::DigestMismatch(part.digest.parse().expect("computed digest")));
            }
            return Ok(Assembly::Verified(Verified {
                source: Some(ObjectPath::from(part.key.as_str())),
                assembled: false,
            }));
        }
        if parts.is_empty() {
            let actual = Digest::of_with(expected.algorithm(), b"");
            if &actual != expected {
                return Ok(Assembly::DigestMismatch(actual));
            }
            return Ok(Assembly::Verified(Verified {
                source: None,
                assembled: false,
            }));
        }
        let assembled = ObjectPath::from(format!("uploads/{id}/assembled-{}", uuid::Uuid::new_v4().simple()));
        let mut writer = WriteMultipart::new_with_chunk_size(self.store.put_multipart(&assembled).await?, CHUNK);
        // The parts' own digests are SHA-256; another algorithm is computed over the assembled bytes.
        let mut hasher = crate::digest::Hasher::new(expected.algorithm());
        for part in parts {
            let mut stream = self.store.get(&ObjectPath::from(part.key.as_str())).await?.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        let _ = writer.abort().await;
                        return Err(e.into());
                    }
                };
                hasher.update(&chunk);
                writer.put(chunk);
                writer.wait_for_capacity(4).await?;
            }
        }
        writer.finish().await?;
        let actual = hasher.finish();
        if &actual != expected {
            let _ = self.store.delete(&assembled).await;
            return Ok(Assembly::DigestMismatch(actual));
        }
        Ok(Assembly::Verified(Verified {
            source: Some(assembled),
            assembled: true,
        }))
    }

    /// Makes verified bytes the blob `digest` (claim it in the metadata store first: see `MetaStore::claim_blob`).
    pub async fn publish(&self, verified: &Verified, digest: &Digest) -> Result<(), StorageError> {
        let target = blob_key(digest);
        match &verified.source {
            Some(source) => {
                // Content-addressed: a stored blob of this digest already holds these bytes. Replacing it would
                // cost freeing its blocks (170 ms for 256 MiB here) inside the request, so the copy goes after.
                if self.store.head(&target).await.is_ok() {
                    let (store, source) = (self.store.clone(), source.clone());
                    tokio::spawn(async move {
                        let _ = store.delete(&source).await;
                    });
                    return Ok(());
                }
                self.store.rename(source, &target).await?
            }
            None => {
                self.store.put(&target, object_store::PutPayload::default()).await?;
            }
        }
        Ok(())
    }

    /// Drops verified bytes that will not be published (an assembled copy; a single part stays with its upload).
    pub async fn discard(&self, verified: &Verified) {
        if verified.assembled
            && let Some(source) = &verified.source
        {
            let _ = self.store.delete(source).await;
        }
    }

    // --- garbage collection -----------------------------------------------------------------------------------

    /// Every stored blob with its size and write time; objects under `blobs/` whose key is not a digest are
    /// skipped (they are not this registry's).
    pub async fn list_blobs(&self) -> Result<Vec<(Digest, StoredObject)>, StorageError> {
        let mut listing = self.store.list(Some(&ObjectPath::from("blobs")));
        let mut found = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            let key = meta.location.to_string();
            let mut segments = key.split('/').skip(1);
            let (Some(algorithm), Some(_), Some(hex), None) = (segments.next(), segments.next(), segments.next(), segments.next()) else {
                continue;
            };
            let Ok(digest) = format!("{algorithm}:{hex}").parse::<Digest>() else {
                continue;
            };
            if blob_key(&digest).as_ref() != key {
                continue;
            }
            found.push((
                digest,
                StoredObject {
                    key,
                    size: meta.size,
                    modified_ms: meta.last_modified.timestamp_millis(),
                },
            ));
        }
        Ok(found)
    }

    /// Every object of upload staging (parts and assembled copies), and on a local filesystem its own staging
    /// files of writes that never finished.
    pub async fn list_staging(&self) -> Result<Vec<StoredObject>, StorageError> {
        let mut listing = self.store.list(Some(&ObjectPath::from("uploads")));
        let mut found = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            found.push(StoredObject {
                key: meta.location.to_string(),
                size: meta.size,
                modified_ms: meta.last_modified.timestamp_millis(),
            });
        }
        if let Some(root) = self.local_root.clone() {
            let unfinished = tokio::task::spawn_blocking(move || unfinished_local_writes(&root))
                .await
                .map_err(|e| StorageError::Body(e.to_string()))?;
            found.extend(unfinished);
        }
        Ok(found)
    }

    /// Deletes a blob's bytes; `false` when they were already gone.
    pub async fn delete_blob(&self, digest: &Digest) -> Result<bool, StorageError> {
        match self.store.delete(&blob_key(digest)).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a staging object listed by [`BlobStore::list_staging`].
    pub async fn delete_staging(&self, object: &StoredObject) -> Result<(), StorageError> {
        if object.key.contains('#')
            && let Some(root) = &self.local_root
        {
            let path = root.join(&object.key);
            return match std::fs::remove_file(&path) {
                Ok(()) => {
                    // Leave no empty upload directory behind (fails harmlessly while it still holds files).
                    if let Some(parent) = path.parent() {
                        let _ = std::fs::remove_dir(parent);
                    }
                    Ok(())
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(StorageError::Store(object_store::Error::Generic {
                    store: "local",
                    source: Box::new(e),
                })),
            };
        }
        match self.store.delete(&ObjectPath::from(object.key.as_str())).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// A local filesystem's staging files of multipart writes (`uploads/<id>/<name>#<digits>`), which its listing
/// hides: only two levels are walked, so the cost is bounded by the number of uploads.
fn unfinished_local_writes(root: &Path) -> Vec<StoredObject> {
    let mut found = Vec::new();
    let Ok(uploads) = std::fs::read_dir(root.join("uploads")) else {
        return found;
    };
    for upload in uploads.flatten() {
        let Ok(files) = std::fs::read_dir(upload.path()) else {
            continue;
        };
        for file in files.flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            let Some((_, suffix)) = name.split_once('#') else {
                continue;
            };
            if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Ok(meta) = file.metadata() else { continue };
            let modified_ms = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64);
            found.push(StoredObject {
                key: format!("uploads/{}/{name}", upload.file_name().to_string_lossy()),
                size: meta.len(),
                modified_ms,
            });
        }
    }
    found
}

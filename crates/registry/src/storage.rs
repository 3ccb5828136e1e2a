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

/// The outcome of committing an upload.
#[derive(Debug, PartialEq, Eq)]
pub enum Commit {
    /// The blob is stored under the expected digest.
    Stored,
    /// The uploaded bytes hash to something else; nothing was stored.
    DigestMismatch(Digest),
    /// The parts do not cover `0..size` contiguously.
    Incomplete,
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
            let mut buf = vec![0u8; READ_CHUNK.min(remaining as usize)];
            if let Err(e) = file.read_exact(&mut buf) {
                let _ = tx.blocking_send(Err(fail(e)));
                return;
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
        Ok(BlobStore { store: Arc::new(store) })
    }

    /// Blobs in any object store.
    pub fn new(store: Arc<dyn ObjectStore>) -> BlobStore {
        BlobStore { store }
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
        let upload = self.store.put_multipart(&ObjectPath::from(key.as_str())).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, CHUNK);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = body;
        let failure = loop {
            match body.next().await {
                None => break None,
                Some(Err(e)) => break Some(StorageError::Body(e.to_string())),
                Some(Ok(chunk)) => {
                    size += chunk.len() as u64;
                    if size > limit {
                        break Some(StorageError::TooLarge(limit));
                    }
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

    /// Verifies that `parts` hold `size` bytes hashing to `expected` and makes them the blob.
    pub async fn commit(&self, id: &str, parts: &[UploadPart], size: u64, expected: &Digest) -> Result<Commit, StorageError> {
        let mut at = 0;
        for part in parts {
            if part.offset != at {
                return Ok(Commit::Incomplete);
            }
            at += part.size;
        }
        if at != size {
            return Ok(Commit::Incomplete);
        }
        let target = blob_key(expected);
        if let [part] = parts
            && expected.algorithm() == crate::digest::Algorithm::Sha256
        {
            // One part: its digest was computed while it streamed in, so no second read.
            if part.digest != expected.as_str() {
                return Ok(Commit::DigestMismatch(part.digest.parse().expect("computed digest")));
            }
            self.store.rename(&ObjectPath::from(part.key.as_str()), &target).await?;
            return Ok(Commit::Stored);
        }
        if parts.is_empty() {
            let actual = Digest::of_with(expected.algorithm(), b"");
            if &actual != expected {
                return Ok(Commit::DigestMismatch(actual));
            }
            self.store.put(&target, object_store::PutPayload::default()).await?;
            return Ok(Commit::Stored);
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
            return Ok(Commit::DigestMismatch(actual));
        }
        self.store.rename(&assembled, &target).await?;
        Ok(Commit::Stored)
    }
}

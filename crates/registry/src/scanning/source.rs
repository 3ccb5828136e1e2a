//! The registry's own storage as a [`customs_oci::BlobSource`]: a worker thread reads pushed manifests and
//! blobs straight from the metadata store and the object store, streaming, with no HTTP round trip.

use std::io::Read;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::runtime::Handle;

use crate::meta::MetaStore;
use crate::storage::BlobStore;

/// One repository's manifests and the registry's blobs, read from a blocking thread.
pub struct StoredImage {
    /// The runtime the stores' futures run on.
    pub runtime: Handle,
    /// Manifests.
    pub meta: MetaStore,
    /// Blobs.
    pub blobs: BlobStore,
    /// The repository the manifests are looked up in.
    pub repository: String,
}

impl std::fmt::Debug for StoredImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stored image in {}", self.repository)
    }
}

fn io_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn digest_of(d: &customs_oci::Digest) -> std::io::Result<crate::digest::Digest> {
    d.to_string().parse().map_err(io_error)
}

impl customs_oci::BlobSource for StoredImage {
    fn open_blob(&self, digest: &customs_oci::Digest) -> std::io::Result<Box<dyn Read + Send>> {
        let d = digest_of(digest)?;
        let stream = self.runtime.block_on(self.blobs.get(&d, None)).map_err(io_error)?;
        let stream = stream.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("blob {digest} is not stored")))?;
        Ok(Box::new(StreamReader {
            runtime: self.runtime.clone(),
            stream,
            chunk: Bytes::new(),
            ended: false,
        }))
    }

    fn manifest(&self, digest: &customs_oci::Digest) -> std::io::Result<Vec<u8>> {
        let row = self
            .runtime
            .block_on(self.meta.manifest(&self.repository, &digest.to_string()))
            .map_err(io_error)?;
        row.map(|r| r.content).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("manifest {digest} is not in {}", self.repository),
            )
        })
    }
}

/// A blob stream read as `Read`, one chunk at a time.
struct StreamReader {
    runtime: Handle,
    stream: BoxStream<'static, Result<Bytes, object_store::Error>>,
    chunk: Bytes,
    /// The stream ended: it must not be polled again (readers do read again after a 0).
    ended: bool,
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.runtime.block_on(self.stream.next()) {
                None => {
                    self.ended = true;
                    return Ok(0);
                }
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(io_error(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        Ok(n)
    }
}

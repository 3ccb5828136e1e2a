//! The collector's reads and conditional deletes in the metadata database.
//!
//! Every delete re-checks, in the same statement, the condition the plan was made on: untouched since the
//! cutoff, and for a blob no link. A push that relies on a row touches that row, so in SQLite (one writer) and
//! in PostgreSQL (the row lock orders the two statements, and the re-check reads the row's new version) the
//! delete either happens before the push — which then fails cleanly — or not at all.

use sqlx::Row;

use crate::meta::{MetaError, MetaStore, UploadPart, ctx};

type Result<T> = std::result::Result<T, MetaError>;

/// A stored manifest as the collector sees it.
#[derive(Clone, Debug)]
pub(crate) struct StoredManifest {
    pub digest: String,
    pub media_type: String,
    pub content: Vec<u8>,
    pub touched_at: i64,
}

/// A row of the `blobs` table, with whether any repository links it.
#[derive(Clone, Debug)]
pub(crate) struct BlobRow {
    pub digest: String,
    pub size: u64,
    pub deleting: bool,
    pub touched_at: i64,
}

/// An upload session.
#[derive(Clone, Debug)]
pub(crate) struct UploadRow {
    pub id: String,
    pub touched_at: i64,
}

/// The collector's queries over the registry database.
#[derive(Clone)]
pub(crate) struct GcStore {
    meta: MetaStore,
}

impl GcStore {
    pub fn new(meta: MetaStore) -> GcStore {
        GcStore { meta }
    }

    pub fn meta(&self) -> &MetaStore {
        &self.meta
    }

    pub async fn manifests(&self, repository: &str) -> Result<Vec<StoredManifest>> {
        let rows = sqlx::query("SELECT digest, media_type, content, touched_at FROM manifests WHERE repository = $1")
            .bind(repository)
            .fetch_all(self.meta.pool())
            .await
            .map_err(ctx("listing manifests for garbage collection"))?;
        Ok(rows
            .into_iter()
            .map(|r| StoredManifest {
                digest: r.get(0),
                media_type: r.get(1),
                content: r.get(2),
                touched_at: r.get(3),
            })
            .collect())
    }

    /// `(digest, size, linked_at)` of every link of `repository`.
    pub async fn links(&self, repository: &str) -> Result<Vec<(String, u64, i64)>> {
        let rows = sqlx::query("SELECT digest, size, linked_at FROM repo_blobs WHERE repository = $1")
            .bind(repository)
            .fetch_all(self.meta.pool())
            .await
            .map_err(ctx("listing blob links for garbage collection"))?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get::<i64, _>(1) as u64, r.get(2))).collect())
    }

    pub async fn blob_rows(&self) -> Result<Vec<BlobRow>> {
        let rows = sqlx::query("SELECT digest, size, state, touched_at FROM blobs")
            .fetch_all(self.meta.pool())
            .await
            .map_err(ctx("listing blobs for garbage collection"))?;
        Ok(rows
            .into_iter()
            .map(|r| BlobRow {
                digest: r.get(0),
                size: r.get::<i64, _>(1) as u64,
                deleting: r.get::<String, _>(2) == "deleting",
                touched_at: r.get(3),
            })
            .collect())
    }

    pub async fn uploads(&self) -> Result<Vec<UploadRow>> {
        let rows = sqlx::query("SELECT id, touched_at FROM uploads")
            .fetch_all(self.meta.pool())
            .await
            .map_err(ctx("listing uploads for garbage collection"))?;
        Ok(rows
            .into_iter()
            .map(|r| UploadRow {
                id: r.get(0),
                touched_at: r.get(1),
            })
            .collect())
    }

    /// Deletes an untagged manifest untouched since `cutoff` (and its lineage); `false` when it was tagged,
    /// touched or already gone meanwhile.
    pub async fn delete_untagged_manifest(&self, repository: &str, digest: &str, cutoff: i64) -> Result<bool> {
        let mut tx = self.meta.pool().begin().await.map_err(ctx("collecting a manifest"))?;
        let done = sqlx::query(
            "DELETE FROM manifests WHERE repository = $1 AND digest = $2 AND touched_at < $3
             AND NOT EXISTS (SELECT 1 FROM tags WHERE tags.repository = $1 AND tags.digest = $2)",
        )
        .bind(repository)
        .bind(digest)
        .bind(cutoff)
        .execute(&mut *tx)
        .await
        .map_err(ctx("collecting a manifest"))?;
        if done.rows_affected() == 1 {
            sqlx::query("DELETE FROM image_lineage WHERE repository = $1 AND digest = $2")
                .bind(repository)
                .bind(digest)
                .execute(&mut *tx)
                .await
                .map_err(ctx("collecting a manifest"))?;
        }
        tx.commit().await.map_err(ctx("collecting a manifest"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a link untouched since `cutoff`; `false` when a push relied on it meanwhile.
    pub async fn unlink_if_stale(&self, repository: &str, digest: &str, cutoff: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM repo_blobs WHERE repository = $1 AND digest = $2 AND linked_at < $3")
            .bind(repository)
            .bind(digest)
            .bind(cutoff)
            .execute(self.meta.pool())
            .await
            .map_err(ctx("collecting a blob link"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a live blob for deletion when no repository links it and no push claimed it since `cutoff`.
    pub async fn mark_deleting(&self, digest: &str, cutoff: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE blobs SET state = 'deleting' WHERE digest = $1 AND state = 'live' AND touched_at < $2
             AND NOT EXISTS (SELECT 1 FROM repo_blobs WHERE repo_blobs.digest = $1)",
        )
        .bind(digest)
        .bind(cutoff)
        .execute(self.meta.pool())
        .await
        .map_err(ctx("marking a blob for collection"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims a stored object that has no row (left by a crash before its link) for deletion; `false` when a
    /// push claimed it first.
    pub async fn claim_orphan(&self, digest: &str, size: u64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO blobs (digest, size, state, touched_at) SELECT $1, $2, 'deleting', $3
             WHERE NOT EXISTS (SELECT 1 FROM repo_blobs WHERE repo_blobs.digest = $1) ON CONFLICT DO NOTHING",
        )
        .bind(digest)
        .bind(size as i64)
        .bind(crate::meta::now_ms())
        .execute(self.meta.pool())
        .await
        .map_err(ctx("claiming an unreferenced blob"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets a blob whose bytes were deleted.
    pub async fn forget_blob(&self, digest: &str) -> Result<()> {
        sqlx::query("DELETE FROM blobs WHERE digest = $1 AND state = 'deleting'")
            .bind(digest)
            .execute(self.meta.pool())
            .await
            .map_err(ctx("forgetting a collected blob"))?;
        Ok(())
    }

    /// Ends an upload untouched since `cutoff`, returning its parts; `None` when it moved on meanwhile.
    pub async fn end_stale_upload(&self, id: &str, cutoff: i64) -> Result<Option<Vec<UploadPart>>> {
        let mut tx = self.meta.pool().begin().await.map_err(ctx("collecting an upload"))?;
        let done = sqlx::query("DELETE FROM uploads WHERE id = $1 AND touched_at < $2")
            .bind(id)
            .bind(cutoff)
            .execute(&mut *tx)
            .await
            .map_err(ctx("collecting an upload"))?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let rows = sqlx::query("SELECT start_offset, size, object_key, digest FROM upload_parts WHERE upload_id = $1")
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(ctx("collecting an upload"))?;
        sqlx::query("DELETE FROM upload_parts WHERE upload_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(ctx("collecting an upload"))?;
        tx.commit().await.map_err(ctx("collecting an upload"))?;
        Ok(Some(
            rows.into_iter()
                .map(|r| UploadPart {
                    offset: r.get::<i64, _>(0) as u64,
                    size: r.get::<i64, _>(1) as u64,
                    key: r.get(2),
                    digest: r.get(3),
                })
                .collect(),
        ))
    }
}

//! The `image_lineage` table: per stored image, the chain id of its layers and the base it was found to be
//! built on. Portable SQL (`$N` placeholders) like the rest of the metadata.

use sqlx::Row;

use crate::meta::{MetaError, MetaStore, ctx};

type Result<T> = std::result::Result<T, MetaError>;

/// Bound parameters per `IN (…)` list: well under SQLite's and PostgreSQL's limits.
const CHUNK: usize = 200;

/// One image's lineage as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LineageRow {
    /// Repository the image is stored in.
    pub repository: String,
    /// Manifest digest.
    pub digest: String,
    /// OCI chain id of all its layers.
    pub chain_id: String,
    /// How many layers it has.
    pub layer_count: i64,
    /// Manifest digest of its base: the annotated one, else the stored image whose layers are the longest prefix.
    pub base_digest: Option<String>,
    /// Chain id of the base's layers (the prefix shared with the base), when the registry holds the base.
    pub base_chain_id: Option<String>,
    /// How many of its layers come from the base.
    pub base_layers: Option<i64>,
    /// Repository of the base in this registry.
    pub base_repository: Option<String>,
    /// Tag named by the `org.opencontainers.image.base.name` annotation.
    pub base_tag: Option<String>,
    /// The annotation's full value, as pushed.
    pub base_name: Option<String>,
    /// `annotation` or `layers`: how the base was found.
    pub base_source: Option<String>,
    /// When the image was pushed (RFC 3339).
    pub recorded_at: String,
}

/// An image that depends on a base, with the tags that point at it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Dependent {
    /// Its lineage.
    #[serde(flatten)]
    pub lineage: LineageRow,
    /// Tags of its repository pointing at it.
    pub tags: Vec<String>,
    /// Whether it is built on the base's current image (else on an older one: rebuild it).
    pub base_current: bool,
}

/// Lineage rows in the metadata database.
#[derive(Clone)]
pub struct LineageStore {
    meta: MetaStore,
}

fn from_row(r: sqlx::any::AnyRow) -> LineageRow {
    LineageRow {
        repository: r.get("repository"),
        digest: r.get("digest"),
        chain_id: r.get("chain_id"),
        layer_count: r.get("layer_count"),
        base_digest: r.get("base_digest"),
        base_chain_id: r.get("base_chain_id"),
        base_layers: r.get("base_layers"),
        base_repository: r.get("base_repository"),
        base_tag: r.get("base_tag"),
        base_name: r.get("base_name"),
        base_source: r.get("base_source"),
        recorded_at: r.get("recorded_at"),
    }
}

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

impl LineageStore {
    /// The table in `meta`.
    pub fn new(meta: MetaStore) -> LineageStore {
        LineageStore { meta }
    }

    /// Stores (or replaces) an image's lineage.
    pub async fn put(&self, row: &LineageRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO image_lineage (repository, digest, chain_id, layer_count, base_digest, base_chain_id,
                 base_layers, base_repository, base_tag, base_name, base_source, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (repository, digest) DO UPDATE SET chain_id = excluded.chain_id,
                 layer_count = excluded.layer_count, base_digest = excluded.base_digest,
                 base_chain_id = excluded.base_chain_id, base_layers = excluded.base_layers,
                 base_repository = excluded.base_repository, base_tag = excluded.base_tag,
                 base_name = excluded.base_name, base_source = excluded.base_source",
        )
        .bind(&row.repository)
        .bind(&row.digest)
        .bind(&row.chain_id)
        .bind(row.layer_count)
        .bind(&row.base_digest)
        .bind(&row.base_chain_id)
        .bind(row.base_layers)
        .bind(&row.base_repository)
        .bind(&row.base_tag)
        .bind(&row.base_name)
        .bind(&row.base_source)
        .bind(&row.recorded_at)
        .execute(self.meta.pool())
        .await
        .map_err(ctx("recording an image's lineage"))?;
        Ok(())
    }

    /// One image's lineage.
    pub async fn get(&self, repository: &str, digest: &str) -> Result<Option<LineageRow>> {
        let row = sqlx::query("SELECT * FROM image_lineage WHERE repository = $1 AND digest = $2")
            .bind(repository)
            .bind(digest)
            .fetch_optional(self.meta.pool())
            .await
            .map_err(ctx("reading an image's lineage"))?;
        Ok(row.map(from_row))
    }

    /// The lineage of a digest in whichever repository holds it (the same digest has the same layers anywhere);
    /// `prefer` first when it holds it.
    pub async fn get_anywhere(&self, digest: &str, prefer: Option<&str>) -> Result<Option<LineageRow>> {
        let row = sqlx::query(
            "SELECT * FROM image_lineage WHERE digest = $1
             ORDER BY CASE WHEN repository = $2 THEN 0 ELSE 1 END, recorded_at, repository LIMIT 1",
        )
        .bind(digest)
        .bind(prefer.unwrap_or(""))
        .fetch_optional(self.meta.pool())
        .await
        .map_err(ctx("reading an image's lineage"))?;
        Ok(row.map(from_row))
    }

    /// The stored image whose layers are the longest strict prefix of an image with chain ids `chains` (one per
    /// layer, bottom first): the best base by layers. Among equals, a tagged image, then the first pushed.
    pub async fn longest_prefix(&self, chains: &[String], exclude_digest: &str) -> Result<Option<LineageRow>> {
        let prefixes = &chains[..chains.len().saturating_sub(1)];
        let mut best: Option<(bool, LineageRow)> = None;
        for chunk in prefixes.chunks(CHUNK) {
            let sql = format!(
                // CASE keeps the flag an integer on both engines (EXISTS is a boolean in PostgreSQL).
                "SELECT l.*, CASE WHEN EXISTS (SELECT 1 FROM tags t WHERE t.repository = l.repository
                     AND t.digest = l.digest) THEN 1 ELSE 0 END AS tagged
                 FROM image_lineage l WHERE l.digest <> $1 AND l.chain_id IN ({})",
                placeholders(2, chunk.len())
            );
            // Only `$N` placeholders are formatted in; every value is bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(exclude_digest);
            for chain in chunk {
                query = query.bind(chain);
            }
            let rows = query
                .fetch_all(self.meta.pool())
                .await
                .map_err(ctx("looking for an image's base"))?;
            for r in rows {
                let tagged = r.get::<i64, _>("tagged") != 0;
                let row = from_row(r);
                let better = match &best {
                    None => true,
                    Some((best_tagged, b)) => {
                        (row.layer_count, tagged, std::cmp::Reverse(&row.recorded_at))
                            > (b.layer_count, *best_tagged, std::cmp::Reverse(&b.recorded_at))
                    }
                };
                if better {
                    best = Some((tagged, row));
                }
            }
        }
        Ok(best.map(|(_, row)| row))
    }

    /// Tagged images built on any of `digests` (by digest or by the chain of their base layers), or annotated
    /// as built on `repository:tag`, each marked by whether it is built on one of `current` (digests or
    /// chains); with `stale_only`, those that are are left out.
    pub async fn dependents(
        &self,
        base: (&[String], &[String]),
        named: Option<(&str, &str)>,
        current: (&[String], &[String]),
        stale_only: bool,
    ) -> Result<Vec<Dependent>> {
        let (digests, chains) = base;
        let mut found: Vec<LineageRow> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut keep = |rows: Vec<sqlx::any::AnyRow>, found: &mut Vec<LineageRow>| {
            for r in rows {
                let row = from_row(r);
                if seen.insert((row.repository.clone(), row.digest.clone())) {
                    found.push(row);
                }
            }
        };
        const TAGGED: &str = "EXISTS (SELECT 1 FROM tags t WHERE t.repository = l.repository AND t.digest = l.digest)";
        for (column, values) in [("base_digest", digests), ("base_chain_id", chains)] {
            for chunk in values.chunks(CHUNK) {
                let sql = format!(
                    "SELECT l.* FROM image_lineage l WHERE l.{column} IN ({}) AND {TAGGED}",
                    placeholders(1, chunk.len())
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for value in chunk {
                    query = query.bind(value);
                }
                let rows = query
                    .fetch_all(self.meta.pool())
                    .await
                    .map_err(ctx("listing an image's dependents"))?;
                keep(rows, &mut found);
            }
        }
        if let Some((repository, tag)) = named {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT l.* FROM image_lineage l WHERE l.base_repository = $1 AND l.base_tag = $2 AND {TAGGED}"
            )))
            .bind(repository)
            .bind(tag)
            .fetch_all(self.meta.pool())
            .await
            .map_err(ctx("listing an image's dependents"))?;
            keep(rows, &mut found);
        }
        let (current_digests, current_chains) = current;
        let on_current = |row: &LineageRow| {
            row.base_digest.as_ref().is_some_and(|d| current_digests.contains(d))
                || row.base_chain_id.as_ref().is_some_and(|c| current_chains.contains(c))
        };
        // The base's own images are not its dependents.
        found.retain(|row| !current_digests.contains(&row.digest) && !digests.contains(&row.digest));
        if stale_only {
            found.retain(|row| !on_current(row));
        }
        found.sort_by(|a, b| (&a.repository, &a.recorded_at).cmp(&(&b.repository, &b.recorded_at)));
        let mut out = Vec::with_capacity(found.len());
        for lineage in found {
            let base_current = on_current(&lineage);
            let tags = self.meta.tags_of(&lineage.repository, &lineage.digest).await?;
            out.push(Dependent {
                lineage,
                tags,
                base_current,
            });
        }
        Ok(out)
    }

    /// Tagged images of `repository` pushed after `after` (RFC 3339), newest first: candidates for a newer base.
    pub async fn tagged_since(&self, repository: &str, after: &str) -> Result<Vec<(LineageRow, Vec<String>)>> {
        let rows = sqlx::query(
            "SELECT l.* FROM image_lineage l WHERE l.repository = $1 AND l.recorded_at > $2
               AND EXISTS (SELECT 1 FROM tags t WHERE t.repository = l.repository AND t.digest = l.digest)
             ORDER BY l.recorded_at DESC LIMIT 50",
        )
        .bind(repository)
        .bind(after)
        .fetch_all(self.meta.pool())
        .await
        .map_err(ctx("listing newer images"))?;
        let mut out = Vec::with_capacity(rows.len());
        for lineage in rows.into_iter().map(from_row) {
            let tags = self.meta.tags_of(&lineage.repository, &lineage.digest).await?;
            out.push((lineage, tags));
        }
        Ok(out)
    }

    /// Image manifests stored before lineage was recorded, oldest first, after the (pushed at, digest) position
    /// `after` (keyset paging, so images that cannot be recorded are passed once): (repository, manifest, pushed at).
    pub async fn unrecorded(&self, after: (&str, &str), limit: i64) -> Result<Vec<(String, crate::meta::ManifestRow, String)>> {
        let rows = sqlx::query(
            "SELECT m.repository, m.digest, m.media_type, m.artifact_type, m.content, m.created_at FROM manifests m
             WHERE m.artifact_type IN ('application/vnd.oci.image.config.v1+json',
                                       'application/vnd.docker.container.image.v1+json')
               AND (m.created_at > $1 OR (m.created_at = $1 AND m.digest > $2))
               AND NOT EXISTS (SELECT 1 FROM image_lineage l WHERE l.repository = m.repository AND l.digest = m.digest)
             ORDER BY m.created_at, m.digest LIMIT $3",
        )
        .bind(after.0)
        .bind(after.1)
        .bind(limit)
        .fetch_all(self.meta.pool())
        .await
        .map_err(ctx("listing images without lineage"))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let row = crate::meta::ManifestRow {
                    digest: r.get(1),
                    media_type: r.get(2),
                    artifact_type: r.get(3),
                    content: r.get(4),
                };
                (r.get(0), row, r.get(5))
            })
            .collect())
    }

    /// Forgets an image's lineage while its manifest stays (the next start's backfill records it again).
    pub async fn delete(&self, repository: &str, digest: &str) -> Result<()> {
        sqlx::query("DELETE FROM image_lineage WHERE repository = $1 AND digest = $2")
            .bind(repository)
            .bind(digest)
            .execute(self.meta.pool())
            .await
            .map_err(ctx("forgetting an image's lineage"))?;
        Ok(())
    }
}

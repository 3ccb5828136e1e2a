//! Base images and rebuild triggers: which image each stored image is built on, and who must rebuild when a tag
//! used as a base moves.
//!
//! An image's base is the one its `org.opencontainers.image.base.name` / `.base.digest` annotations name (buildah
//! and `docker buildx` write them), checked against the layers when the registry holds that image; otherwise the
//! stored image whose layers are the longest strict prefix of its own. Layers are compared by OCI chain id (the
//! config's `rootfs.diff_ids` folded bottom up), so a recompressed layer still matches.
//!
//! When a tag moves, every tagged image built on its old target (by digest, by the chain of its base layers, or
//! by an annotation naming the tag) and not yet on the new one gets a `base.updated` event, one per repository.

pub mod store;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::meta::{ManifestRow, MetaStore};
use crate::server::Registry;
pub use store::{Dependent, LineageRow, LineageStore};

/// The annotation naming the image an image was built from (`registry/repository:tag`).
pub const BASE_NAME_ANNOTATION: &str = "org.opencontainers.image.base.name";
/// The annotation giving the manifest digest of the image an image was built from.
pub const BASE_DIGEST_ANNOTATION: &str = "org.opencontainers.image.base.digest";
/// Image configs larger than this get no lineage (real ones are a few KiB; history makes some larger).
const MAX_CONFIG_BYTES: usize = 8 << 20;
/// Images with more layers than this get no lineage: it bounds the work one push can cause.
const MAX_LAYERS: usize = 10_000;

/// What an image manifest says about its config and base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestFacts {
    /// Digest of the config blob.
    pub config: Digest,
    /// `org.opencontainers.image.base.name`.
    pub base_name: Option<String>,
    /// `org.opencontainers.image.base.digest`.
    pub base_digest: Option<String>,
}

/// Reads the config digest and base annotations of an image manifest.
pub fn manifest_facts(manifest: &[u8]) -> Result<ManifestFacts, String> {
    let value: Value = serde_json::from_slice(manifest).map_err(|e| format!("manifest is not JSON: {e}"))?;
    let config = value["config"]["digest"]
        .as_str()
        .ok_or("the manifest has no config digest")?
        .parse()
        .map_err(|e| format!("config digest: {e}"))?;
    let annotation = |key: &str| value["annotations"][key].as_str().map(str::to_string).filter(|s| !s.is_empty());
    let base_digest = annotation(BASE_DIGEST_ANNOTATION).filter(|d| d.parse::<Digest>().is_ok());
    Ok(ManifestFacts {
        config,
        base_name: annotation(BASE_NAME_ANNOTATION),
        base_digest,
    })
}

/// The chain id after each layer, bottom first, from an image config's `rootfs.diff_ids` (OCI image spec:
/// `ChainID(L₀) = DiffID(L₀)`, `ChainID(L₀|…|Lₙ) = SHA256(ChainID(L₀|…|Lₙ₋₁) + " " + DiffID(Lₙ))`).
pub fn chain_ids(config: &[u8]) -> Result<Vec<String>, String> {
    #[derive(serde::Deserialize)]
    struct Config {
        rootfs: RootFs,
    }
    #[derive(serde::Deserialize)]
    struct RootFs {
        diff_ids: Vec<String>,
    }
    let config: Config = serde_json::from_slice(config).map_err(|e| format!("image config: {e}"))?;
    let ids = config.rootfs.diff_ids;
    if ids.len() > MAX_LAYERS {
        return Err(format!("{} layers, more than the {MAX_LAYERS} lineage is kept for", ids.len()));
    }
    let mut chains: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        id.parse::<Digest>().map_err(|e| format!("diff id `{id}`: {e}"))?;
        let chain = match chains.last() {
            None => id,
            Some(below) => format!("sha256:{}", hex::encode(Sha256::digest(format!("{below} {id}")))),
        };
        chains.push(chain);
    }
    Ok(chains)
}

/// The repository and tag an image reference names in this registry: the host (a first component with a dot,
/// a colon or `localhost`) and any `@digest` are dropped, and a missing tag is `latest`.
/// `localhost:5000/base/debian:12` → (`base/debian`, `12`).
pub fn base_reference(name: &str) -> Option<(String, String)> {
    let name = name.split('@').next()?;
    let path = match name.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => rest,
        _ => name,
    };
    let (repository, tag) = match path.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, tag),
        _ => (path, "latest"),
    };
    (crate::route::valid_repository(repository) && crate::route::valid_tag(tag)).then(|| (repository.to_string(), tag.to_string()))
}

/// Digests of an index's entries; empty for anything else.
fn index_children(row: &ManifestRow) -> Vec<String> {
    crate::manifest::inspect(Some(&row.media_type), &row.content)
        .map(|info| info.manifests.iter().map(|d| d.to_string()).collect())
        .unwrap_or_default()
}

async fn read_config(registry: &Registry, digest: &Digest) -> Result<Vec<u8>, String> {
    registry
        .blobs
        .read_small(digest, MAX_CONFIG_BYTES)
        .await?
        .ok_or_else(|| format!("config blob {digest} is not stored"))
}

/// Records the lineage of an image manifest stored in `repository` (pushed at `pushed_at`): its layers' chain
/// and its base.
pub async fn record(registry: &Registry, repository: &str, row: &ManifestRow, pushed_at: &str) -> Result<LineageRow, String> {
    let facts = manifest_facts(&row.content)?;
    let chains = chain_ids(&read_config(registry, &facts.config).await?)?;
    let Some(chain_id) = chains.last().cloned() else {
        return Err("the image has no layers".into());
    };
    let store = &registry.lineage;
    let named = facts.base_name.as_deref().and_then(base_reference);
    // The annotated base, when the registry holds it (or one platform of it) and its layers are our bottom ones.
    let mut annotated = None;
    if let Some(digest) = &facts.base_digest {
        let prefer = named.as_ref().map(|(r, _)| r.as_str());
        let mut candidates = vec![digest.clone()];
        if let Some((base_repository, _)) = &named
            && let Ok(Some(index)) = registry.meta.manifest(base_repository, digest).await
        {
            candidates.extend(index_children(&index));
        }
        for candidate in candidates {
            if let Some(base) = store.get_anywhere(&candidate, prefer).await.map_err(|e| e.to_string())?
                && is_prefix(&base, &chains)
            {
                annotated = Some(base);
                break;
            }
        }
    }
    let by_layers = match annotated {
        Some(base) => Some(base),
        None => store.longest_prefix(&chains, &row.digest).await.map_err(|e| e.to_string())?,
    };
    let lineage = LineageRow {
        repository: repository.to_string(),
        digest: row.digest.clone(),
        chain_id,
        layer_count: chains.len() as i64,
        base_digest: facts.base_digest.clone().or_else(|| by_layers.as_ref().map(|b| b.digest.clone())),
        base_chain_id: by_layers.as_ref().map(|b| b.chain_id.clone()),
        base_layers: by_layers.as_ref().map(|b| b.layer_count),
        base_repository: named
            .as_ref()
            .map(|(r, _)| r.clone())
            .or_else(|| by_layers.as_ref().map(|b| b.repository.clone())),
        base_tag: named.as_ref().map(|(_, t)| t.clone()),
        base_name: facts.base_name.clone(),
        base_source: if facts.base_name.is_some() || facts.base_digest.is_some() {
            Some("annotation".into())
        } else {
            by_layers.as_ref().map(|_| "layers".into())
        },
        recorded_at: pushed_at.to_string(),
    };
    store.put(&lineage).await.map_err(|e| e.to_string())?;
    Ok(lineage)
}

fn is_prefix(base: &LineageRow, chains: &[String]) -> bool {
    let n = base.layer_count as usize;
    n > 0 && n < chains.len() && chains[n - 1] == base.chain_id
}

/// Records lineage for image manifests stored before the registry kept it (an upgrade), oldest first so bases
/// are known before the images built on them.
pub async fn backfill(registry: &Registry) {
    let mut after = (String::new(), String::new());
    let mut recorded = 0usize;
    loop {
        let page = match registry.lineage.unrecorded((&after.0, &after.1), 100).await {
            Ok(page) => page,
            Err(e) => {
                tracing::error!("{e}");
                return;
            }
        };
        let Some((_, last, pushed_at)) = page.last() else { break };
        after = (pushed_at.clone(), last.digest.clone());
        for (repository, row, pushed_at) in &page {
            if !crate::scanning::is_image(row) {
                continue;
            }
            match record(registry, repository, row, pushed_at).await {
                Ok(_) => recorded += 1,
                Err(e) => tracing::warn!("lineage of {repository}@{}: {e}", row.digest),
            }
        }
    }
    if recorded > 0 {
        tracing::info!("recorded the base images of {recorded} image(s) stored before lineage was kept");
    }
}

/// A manifest digest with its index entries, and the chains of those the registry has lineage for.
async fn expand(meta: &MetaStore, store: &LineageStore, repository: &str, digest: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let mut digests = vec![digest.to_string()];
    if let Some(row) = meta.manifest(repository, digest).await.map_err(|e| e.to_string())? {
        digests.extend(index_children(&row));
    }
    let mut chains = Vec::new();
    for d in &digests {
        if let Some(l) = store.get_anywhere(d, Some(repository)).await.map_err(|e| e.to_string())? {
            chains.push(l.chain_id);
        }
    }
    Ok((digests, chains))
}

/// How many earlier targets of a tag count as its versions (bounds the work of one tag move).
const TAG_HISTORY: i64 = 50;

/// Every digest `repository:tag` pointed at (the last [`TAG_HISTORY`]) but `except`, expanded like [`expand`].
async fn tag_versions(
    meta: &MetaStore,
    store: &LineageStore,
    repository: &str,
    tag: &str,
    except: &[String],
) -> Result<(Vec<String>, Vec<String>), String> {
    let (mut digests, mut chains) = (Vec::new(), Vec::new());
    for digest in meta.tag_history(repository, tag, TAG_HISTORY).await.map_err(|e| e.to_string())? {
        if except.contains(&digest) {
            continue;
        }
        let (d, c) = expand(meta, store, repository, &digest).await?;
        digests.extend(d);
        chains.extend(c);
    }
    Ok((digests, chains))
}

/// Tagged images built on `repository@digest`; with `tag` (whose current target `digest` is), also those built
/// on an earlier image of the tag or annotated as built on it, marked as not on the current base.
pub async fn dependents(meta: &MetaStore, repository: &str, digest: &str, tag: Option<&str>) -> Result<Vec<Dependent>, String> {
    let store = LineageStore::new(meta.clone());
    let (current_digests, current_chains) = expand(meta, &store, repository, digest).await?;
    let (mut digests, mut chains) = (current_digests.clone(), current_chains.clone());
    if let Some(tag) = tag {
        let (d, c) = tag_versions(meta, &store, repository, tag, &current_digests).await?;
        digests.extend(d);
        chains.extend(c);
    }
    store
        .dependents(
            (&digests, &chains),
            tag.map(|t| (repository, t)),
            (&current_digests, &current_chains),
            false,
        )
        .await
        .map_err(|e| e.to_string())
}

/// A tag moved from `old` to `new`: tells each repository with tagged images on an earlier target (`old` or
/// before) or annotated with the tag's name that its base was updated (`base.updated`: the base, old and new
/// digests, each image with its current verdict). An image not rebuilt is told again at the next move.
pub async fn on_tag_moved(registry: &Registry, repository: &str, tag: &str, old: &str, new: &str) -> Result<usize, String> {
    let store = &registry.lineage;
    let (new_digests, new_chains) = expand(&registry.meta, store, repository, new).await?;
    let (old_digests, old_chains) = tag_versions(&registry.meta, store, repository, tag, &new_digests).await?;
    let found = store
        .dependents(
            (&old_digests, &old_chains),
            Some((repository, tag)),
            (&new_digests, &new_chains),
            true,
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut by_repository: BTreeMap<String, Vec<Dependent>> = BTreeMap::new();
    for dependent in found {
        by_repository
            .entry(dependent.lineage.repository.clone())
            .or_default()
            .push(dependent);
    }
    let time = registry.clock.now_rfc3339();
    for (dependent_repository, images) in &by_repository {
        let event = base_updated_event(registry, (repository, tag, old, new), dependent_repository, images, time.clone()).await;
        tracing::info!(
            "{repository}:{tag} moved from {old} to {new}: {} image(s) of {dependent_repository} are built on the old one",
            images.len()
        );
        registry.emit(event).await;
    }
    Ok(by_repository.len())
}

/// The current verdict of an image, when scanning is on and it has a result.
async fn verdict_of(registry: &Registry, repository: &str, digest: &str) -> Option<customs_inspect::Inspection> {
    let scanning = registry.scanning.as_ref()?;
    let latest = scanning.store.latest(digest).await.ok()??;
    let scan = scanning.parsed(&latest)?;
    crate::protect::judge(scanning, &registry.protection, repository, &scan, registry.clock.today())
        .await
        .ok()
}

async fn base_updated_event(
    registry: &Registry,
    (base_repository, tag, old, new): (&str, &str, &str, &str),
    repository: &str,
    images: &[Dependent],
    time: String,
) -> crate::webhooks::Event {
    use crate::webhooks::event::verdict_json;
    use crate::webhooks::{Event, EventKind, Message};
    let mut listed = Vec::new();
    let mut first_verdict = None;
    for image in images {
        let inspection = verdict_of(registry, repository, &image.lineage.digest).await;
        listed.push(json!({
            "digest": image.lineage.digest,
            "tags": image.tags,
            "found_by": image.lineage.base_source,
            "base_layers": image.lineage.base_layers,
            "verdict": inspection.as_ref().map(verdict_json),
        }));
        if first_verdict.is_none()
            && let Some(inspection) = inspection
        {
            first_verdict = Some((image.lineage.digest.clone(), inspection));
        }
    }
    let headline = format!(
        "base image {base_repository}:{tag} was updated ({old} → {new}): rebuild {} image(s) of {repository}",
        images.len()
    );
    let data = json!({
        "repository": repository,
        "base": {"repository": base_repository, "tag": tag, "old_digest": old, "new_digest": new},
        "images": listed,
    });
    let message = match first_verdict {
        Some((digest, inspection)) => Message::Verdict {
            image: format!("{repository}@{digest}"),
            pass: inspection.verdict.pass,
            reasons: inspection.verdict.reasons.clone(),
            failing: inspection.verdict.failing.iter().map(|&i| inspection.findings[i].clone()).collect(),
            headline,
        },
        None => Message::Text {
            title: headline,
            text: images.iter().map(|i| i.lineage.digest.as_str()).collect::<Vec<_>>().join("\n"),
            good: false,
        },
    };
    Event::new(EventKind::BaseUpdated, repository, repository.to_string(), time, data, message)
}

/// What a scan result says about the image's base: where it was found, how many findings its layers bring,
/// and, when the base's repository holds a newer tagged image with fewer findings, that image.
pub async fn base_summary(
    registry_meta: &MetaStore,
    scanning: &crate::scanning::Scanning,
    repository: &str,
    digest: &str,
    scan: &customs_inspect::ImageScan,
) -> Result<Value, String> {
    let store = LineageStore::new(registry_meta.clone());
    let lineage = store.get(repository, digest).await.map_err(|e| e.to_string())?;
    let layers = lineage
        .as_ref()
        .and_then(|l| l.base_layers.map(|n| n as usize))
        .or(scan.base_layers);
    let from_base = layers.map(|n| scan.findings.iter().filter(|f| f.package.layer.is_some_and(|l| l < n)).count());
    let mut summary = json!({
        "found_by": lineage.as_ref().and_then(|l| l.base_source.clone()).or_else(|| scan.base_layers.map(|_| "history".to_string())),
        "name": lineage.as_ref().and_then(|l| l.base_name.clone()),
        "repository": lineage.as_ref().and_then(|l| l.base_repository.clone()),
        "tag": lineage.as_ref().and_then(|l| l.base_tag.clone()),
        "digest": lineage.as_ref().and_then(|l| l.base_digest.clone()),
        "layers": layers,
        "findings_from_base": from_base,
        "findings": scan.findings.len(),
        "newer": Value::Null,
    });
    let (Some(lineage), Some(from_base)) = (lineage, from_base) else {
        return Ok(summary);
    };
    let (Some(base_repository), Some(base_digest)) = (&lineage.base_repository, &lineage.base_digest) else {
        return Ok(summary);
    };
    let Some(base) = store.get(base_repository, base_digest).await.map_err(|e| e.to_string())? else {
        return Ok(summary);
    };
    if summary["tag"].is_null() {
        let tags = registry_meta
            .tags_of(base_repository, base_digest)
            .await
            .map_err(|e| e.to_string())?;
        summary["tags"] = json!(tags);
    }
    let mut best: Option<(usize, (LineageRow, Vec<String>), String)> = None;
    for candidate in store
        .tagged_since(base_repository, &base.recorded_at)
        .await
        .map_err(|e| e.to_string())?
    {
        if candidate.0.digest == base.digest {
            continue;
        }
        let Some(result) = scanning.store.latest(&candidate.0.digest).await.map_err(|e| e.to_string())? else {
            continue;
        };
        let Some(candidate_scan) = scanning.parsed(&result) else { continue };
        let findings = candidate_scan.findings.len();
        if findings < from_base && best.as_ref().is_none_or(|(n, _, _)| findings < *n) {
            best = Some((findings, candidate, result.db_version.clone()));
        }
    }
    if let Some((findings, (candidate, tags), db_version)) = best {
        let name = match tags.first() {
            Some(tag) => format!("{base_repository}:{tag}"),
            None => format!("{base_repository}@{}", candidate.digest),
        };
        summary["newer"] = json!({
            "repository": base_repository,
            "tags": tags,
            "digest": candidate.digest,
            "pushed_at": candidate.recorded_at,
            "findings": findings,
            "db_version": db_version,
            "recommendation": format!(
                "rebuild on {name} ({}): {findings} finding(s) instead of the {from_base} this image's base layers bring",
                candidate.digest
            ),
        });
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn chain_ids_follow_the_image_spec() {
        let config = format!(r#"{{"rootfs":{{"type":"layers","diff_ids":["{A}","{B}"]}}}}"#);
        let chains = chain_ids(config.as_bytes()).unwrap();
        assert_eq!(chains[0], A);
        let expected = format!("sha256:{}", hex::encode(Sha256::digest(format!("{A} {B}"))));
        assert_eq!(chains[1], expected);
        assert!(chain_ids(br#"{"rootfs":{"diff_ids":["md5:00"]}}"#).unwrap_err().contains("md5"));
        assert!(chain_ids(b"{}").unwrap_err().contains("image config"));
        let many = format!(
            r#"{{"rootfs":{{"diff_ids":[{}]}}}}"#,
            vec![format!("\"{A}\""); MAX_LAYERS + 1].join(",")
        );
        assert!(chain_ids(many.as_bytes()).unwrap_err().contains("more than"));
    }

    #[test]
    fn base_references_drop_the_host_and_default_the_tag() {
        let r = |s: &str| base_reference(s).map(|(a, b)| format!("{a} {b}"));
        assert_eq!(r("localhost:5000/base/debian:12").as_deref(), Some("base/debian 12"));
        assert_eq!(r("registry.example.com/base/debian").as_deref(), Some("base/debian latest"));
        assert_eq!(r("docker.io/library/debian:12@sha256:00").as_deref(), Some("library/debian 12"));
        assert_eq!(r("base/debian:12").as_deref(), Some("base/debian 12"));
        assert_eq!(r("localhost/app").as_deref(), Some("app latest"));
        assert_eq!(r("Bad Name:x"), None);
    }

    #[test]
    fn manifest_facts_read_the_annotations() {
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{A}"}},"layers":[],
               "annotations":{{"{BASE_NAME_ANNOTATION}":"localhost/base/debian:12","{BASE_DIGEST_ANNOTATION}":"{B}"}}}}"#
        );
        let facts = manifest_facts(manifest.as_bytes()).unwrap();
        assert_eq!(facts.config.as_str(), A);
        assert_eq!(facts.base_name.as_deref(), Some("localhost/base/debian:12"));
        assert_eq!(facts.base_digest.as_deref(), Some(B));
        let bad = format!(r#"{{"config":{{"digest":"{A}"}},"annotations":{{"{BASE_DIGEST_ANNOTATION}":"nope"}}}}"#);
        assert_eq!(manifest_facts(bad.as_bytes()).unwrap().base_digest, None);
        assert!(manifest_facts(b"{}").unwrap_err().contains("config"));
    }
}

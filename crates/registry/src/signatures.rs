//! Signature enforcement: in repositories whose `[[protect]]` rule says `require_signature = true`, an image (or
//! index) is served only when it carries a cosign signature by a current delegation of that repository, in trust
//! data (`customs trust`) certified by the root the registry pins (`[trust] root = "root.pub"`). Everything is
//! read from the registry's own storage: the repository's `customs-trust` artifact, the `sha256-<hex>.sig`
//! manifest and the OCI 1.1 signature referrers, and their payload blobs.
//!
//! The highest trust-data version seen per repository is kept in the database, so trust data rolled back to an
//! older version (one that still lists a revoked key) is refused, across restarts too.

use std::collections::BTreeMap;
use std::path::PathBuf;

use customs_trust::image::{Signers, check_payload};
use customs_trust::manifest::{SIGNATURE_ARTIFACT_TYPE, signature_layers, signature_tag};
use customs_trust::metadata::{LAYER_MEDIA_TYPE, TRUST_TAG, TrustDocument};
use customs_trust::payload::MAX_PAYLOAD_BYTES;
use serde::Deserialize;

use crate::digest::Digest;
use crate::server::Registry;

/// `[trust]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// The root public key every repository's trust data must be certified by (`root.pub` of
    /// `customs trust init`).
    pub root: PathBuf,
}

/// Signature manifests read per image at most.
const MAX_SIGNATURE_MANIFESTS: usize = 64;
/// The largest trust document read.
const MAX_TRUST_BYTES: usize = 4 << 20;

/// The pinned root.
pub struct TrustAnchor {
    root: customs_trust::PublicKey,
}

impl TrustAnchor {
    /// Reads the root key; an error names the file.
    pub fn load(config: &TrustConfig) -> Result<TrustAnchor, String> {
        let shown = config.root.display().to_string();
        let pem = std::fs::read_to_string(&config.root).map_err(|e| format!("[trust] root {shown}: {e}"))?;
        let root = customs_trust::PublicKey::from_pem(&pem, &shown).map_err(|e| format!("[trust] root: {e}"))?;
        Ok(TrustAnchor { root })
    }
}

fn layer_digest(manifest: &[u8], media_type: &str) -> Option<Digest> {
    let value: serde_json::Value = serde_json::from_slice(manifest).ok()?;
    value["layers"].as_array()?.iter().find(|l| l["mediaType"] == media_type)?["digest"]
        .as_str()?
        .parse()
        .ok()
}

/// Whether `repository@digest` is signed by a current delegation: the delegation's name, or why not.
pub async fn check_signed(reg: &Registry, repository: &str, digest: &str) -> Result<String, String> {
    let anchor = reg
        .trust
        .as_ref()
        .ok_or("no [trust] root is configured, so no signature can be checked")?;
    let db = |e: crate::meta::MetaError| e.to_string();
    // The trust data.
    let trust_digest = reg.meta.resolve_tag(repository, TRUST_TAG).await.map_err(db)?.ok_or_else(|| {
        format!("{repository} has no trust data: `customs trust repo add REGISTRY/{repository}`, then `customs trust signer add`")
    })?;
    let trust_manifest = reg
        .meta
        .manifest(repository, &trust_digest)
        .await
        .map_err(db)?
        .ok_or("the trust data's manifest is missing")?;
    let document = layer_digest(&trust_manifest.content, LAYER_MEDIA_TYPE).ok_or("the trust data's manifest holds no trust document")?;
    let bytes = reg
        .blobs
        .read_small(&document, MAX_TRUST_BYTES)
        .await?
        .ok_or("the trust document's blob is missing")?;
    let seen = seen_version(reg, repository).await.map_err(db)?;
    let data = TrustDocument::verify(&bytes, &anchor.root, repository, seen)?;
    if data.version > seen {
        raise_version(reg, repository, data.version).await.map_err(db)?;
    }
    // The signatures: the `.sig` tag and the OCI 1.1 referrers.
    let mut manifests = Vec::new();
    if let Some(tagged) = reg.meta.resolve_tag(repository, &signature_tag(digest)).await.map_err(db)?
        && let Some(row) = reg.meta.manifest(repository, &tagged).await.map_err(db)?
    {
        manifests.push(row.content);
    }
    for row in reg.meta.referrers(repository, digest).await.map_err(db)? {
        if row.artifact_type.as_deref() == Some(SIGNATURE_ARTIFACT_TYPE) {
            manifests.push(row.content);
        }
    }
    let signers = Signers::Delegations(data, reg.clock.today().to_string());
    let mut reasons = Vec::new();
    for manifest in manifests.iter().take(MAX_SIGNATURE_MANIFESTS) {
        for layer in signature_layers(manifest).unwrap_or_default() {
            let Ok(payload_digest) = layer.payload_digest.parse::<Digest>() else {
                continue;
            };
            let payload = match reg.blobs.read_small(&payload_digest, MAX_PAYLOAD_BYTES as usize).await {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(e) => {
                    reasons.push(e);
                    continue;
                }
            };
            match check_payload(&signers, &payload, &layer.signature, digest, repository, &BTreeMap::new()) {
                Ok((_, Some(signer))) => return Ok(signer),
                Ok((_, None)) => {}
                Err(why) => reasons.push(why),
            }
        }
    }
    reasons.sort();
    reasons.dedup();
    Err(if reasons.is_empty() {
        format!(
            "{repository}@{digest} is not signed; sign it with a delegate's key: `customs sign REGISTRY/{repository}@{digest} --key KEY`"
        )
    } else {
        format!("{repository}@{digest} has no valid signature: {}", reasons.join("; "))
    })
}

async fn seen_version(reg: &Registry, repository: &str) -> Result<u64, crate::meta::MetaError> {
    let v: Option<i64> = sqlx::query_scalar("SELECT version FROM trust_versions WHERE repository = $1")
        .bind(repository)
        .fetch_optional(reg.meta.pool())
        .await
        .map_err(crate::meta::ctx("reading the trust version"))?;
    Ok(v.unwrap_or(0).max(0) as u64)
}

async fn raise_version(reg: &Registry, repository: &str, version: u64) -> Result<(), crate::meta::MetaError> {
    sqlx::query(
        "INSERT INTO trust_versions (repository, version) VALUES ($1, $2)
         ON CONFLICT (repository) DO UPDATE SET version = excluded.version WHERE trust_versions.version < excluded.version",
    )
    .bind(repository)
    .bind(version as i64)
    .execute(reg.meta.pool())
    .await
    .map_err(crate::meta::ctx("recording the trust version"))?;
    Ok(())
}

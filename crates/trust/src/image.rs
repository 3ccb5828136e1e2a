//! Signing an image in a registry and verifying its signatures, as cosign does with a key: the registry I/O
//! around [`crate::payload`] and [`crate::manifest`].

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use customs_oci::{Digest, RegistryClient};

use crate::key::PublicKey;
use crate::manifest::{self, SignatureLayer};
use crate::metadata::{self, TrustData, TrustDocument};
use crate::payload::{MAX_PAYLOAD_BYTES, Payload};
use crate::signer::Signer;

/// Index entries signed with `--recursive` at most.
const MAX_INDEX_ENTRIES: usize = 256;

/// Why signing or verifying could not be done (as opposed to a signature that does not verify).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ImageError(pub String);

fn err(e: impl std::fmt::Display) -> ImageError {
    ImageError(e.to_string())
}

/// How to sign.
#[derive(Clone, Debug, Default)]
pub struct SignOptions {
    /// Claims added to the payload's `optional` (`-a key=value`).
    pub claims: BTreeMap<String, String>,
    /// Store each signature as an OCI 1.1 referrer of the image instead of under the `.sig` tag.
    pub referrers: bool,
    /// Of an index, sign each platform's manifest too.
    pub recursive: bool,
}

/// One signature made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    /// The manifest signed.
    pub digest: String,
    /// Where the signature went: the `.sig` tag, or the referrer manifest's digest.
    pub stored_as: String,
}

/// `registry/repository`, as cosign writes `docker-reference`.
pub fn docker_reference(client: &RegistryClient) -> String {
    let r = client.reference();
    format!("{}/{}", r.registry, r.repository)
}

/// The manifest the client's reference names, with its digest.
fn target(client: &RegistryClient) -> Result<customs_oci::FetchedManifest, ImageError> {
    let reference = client.reference();
    let target = reference.target();
    client
        .fetch_manifest(&target)
        .map_err(err)?
        .ok_or_else(|| ImageError(format!("{reference}: no such manifest in the registry")))
}

/// Signs the image the client names (its digest: a tag is resolved once, and the digest is what is signed).
pub fn sign(client: &RegistryClient, key: &dyn Signer, options: &SignOptions) -> Result<Vec<Signed>, ImageError> {
    let image = target(client)?;
    let mut subjects = vec![(image.media_type.clone(), image.digest.to_string(), image.bytes.len() as u64)];
    if options.recursive {
        let value: serde_json::Value = serde_json::from_slice(&image.bytes).map_err(err)?;
        for entry in value["manifests"].as_array().into_iter().flatten().take(MAX_INDEX_ENTRIES) {
            if let (Some(media_type), Some(digest), Some(size)) =
                (entry["mediaType"].as_str(), entry["digest"].as_str(), entry["size"].as_u64())
            {
                subjects.push((media_type.to_string(), digest.to_string(), size));
            }
        }
    }
    let reference = docker_reference(client);
    let mut signed = Vec::new();
    for (media_type, digest, size) in subjects {
        let payload = Payload::new(&reference, &digest, &options.claims).to_bytes();
        let signature = STANDARD.encode(key.sign(&payload).map_err(err)?);
        let payload_digest = client.push_blob(&payload).map_err(err)?;
        let layer = SignatureLayer {
            payload_digest: payload_digest.to_string(),
            payload_size: payload.len() as u64,
            signature,
        };
        let stored_as = if options.referrers {
            let empty = client.push_blob(b"{}").map_err(err)?;
            let manifest = manifest::referrer_manifest(&layer, (&media_type, &digest, size), &empty.to_string());
            let stored = Digest::sha256_of(&manifest);
            client
                .push_manifest(&stored.to_string(), manifest::OCI_MANIFEST, &manifest)
                .map_err(err)?;
            stored.to_string()
        } else {
            // Signatures accumulate under the tag, as cosign's: the new layer is added to those already there.
            let tag = manifest::signature_tag(&digest);
            let mut layers = match client.fetch_manifest(&tag).map_err(err)? {
                Some(existing) => manifest::signature_layers(&existing.bytes).map_err(err)?,
                None => Vec::new(),
            };
            layers.retain(|l| l != &layer);
            layers.push(layer);
            let config = manifest::tag_config(&layers);
            let config_digest = client.push_blob(&config).map_err(err)?;
            let manifest = manifest::tag_manifest(&layers, &config, &config_digest.to_string());
            client.push_manifest(&tag, manifest::OCI_MANIFEST, &manifest).map_err(err)?;
            tag
        };
        signed.push(Signed { digest, stored_as });
    }
    Ok(signed)
}

/// A signature that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The payload: repository, digest and claims.
    pub payload: Payload,
    /// `tag` (`sha256-….sig`) or `referrer` (OCI 1.1).
    pub found_in: &'static str,
    /// The delegation that signed, when verified against trust data.
    pub signer: Option<String>,
}

/// What verification found: the signatures that verified and why each other one did not.
#[derive(Clone, Debug, Default)]
pub struct Verification {
    /// The manifest digest checked.
    pub digest: String,
    /// Signatures that verified against the key, for this digest and repository, with the required claims.
    pub verified: Vec<Verified>,
    /// One line per signature that did not.
    pub rejected: Vec<String>,
}

/// Who may have signed: one key, or the delegations of the repository's trust data.
pub enum Signers {
    /// A public key (`--key cosign.pub`).
    Key(PublicKey),
    /// The current delegations of checked trust data, on a day (`YYYY-MM-DD`).
    Delegations(TrustData, String),
}

impl Signers {
    /// Who made `signature` over `payload`: the key (`None` for a plain key) or the delegation's name.
    fn check(&self, payload: &[u8], signature: &[u8]) -> Result<Option<String>, String> {
        match self {
            Signers::Key(key) => key.verify(payload, signature).map(|_| None).map_err(|e| e.to_string()),
            Signers::Delegations(data, today) => TrustDocument::signer(data, payload, signature, today).map(|d| Some(d.name.clone())),
        }
    }
}

/// The signatures of the image the client names, checked against `signers`: each must verify cryptographically
/// (by a current delegation, with trust data), name this manifest digest, name this repository (a signature
/// copied from another repository does not count), and carry every claim in `claims`.
pub fn verify(client: &RegistryClient, signers: &Signers, claims: &BTreeMap<String, String>) -> Result<Verification, ImageError> {
    let image = target(client)?;
    let digest = image.digest.to_string();
    let mut found: Vec<(SignatureLayer, &'static str)> = Vec::new();
    if let Some(tagged) = client.fetch_manifest(&manifest::signature_tag(&digest)).map_err(err)? {
        found.extend(
            manifest::signature_layers(&tagged.bytes)
                .map_err(err)?
                .into_iter()
                .map(|l| (l, "tag")),
        );
    }
    for descriptor in client
        .referrers(&image.digest, Some(manifest::SIGNATURE_ARTIFACT_TYPE))
        .map_err(err)?
        .into_iter()
        .take(manifest::MAX_SIGNATURES)
    {
        let Some(referrer) = descriptor["digest"].as_str() else { continue };
        if let Some(m) = client.fetch_manifest(referrer).map_err(err)? {
            found.extend(
                manifest::signature_layers(&m.bytes)
                    .map_err(err)?
                    .into_iter()
                    .map(|l| (l, "referrer")),
            );
        }
    }
    // The same signature may be listed twice (cosign's OCI 1.1 manifest repeats the tag's layers): once counts.
    let mut seen = std::collections::HashSet::new();
    found.retain(|(l, _)| seen.insert((l.payload_digest.clone(), l.signature.clone())));
    let repository = client.reference().repository.clone();
    let mut out = Verification {
        digest: digest.clone(),
        ..Verification::default()
    };
    for (layer, found_in) in found {
        match check(client, signers, &layer, &digest, &repository, claims) {
            Ok((payload, signer)) => out.verified.push(Verified { payload, found_in, signer }),
            Err(why) => out.rejected.push(format!("{} ({found_in}): {why}", layer.payload_digest)),
        }
    }
    Ok(out)
}

fn check(
    client: &RegistryClient,
    signers: &Signers,
    layer: &SignatureLayer,
    digest: &str,
    repository: &str,
    claims: &BTreeMap<String, String>,
) -> Result<(Payload, Option<String>), String> {
    if layer.payload_size > MAX_PAYLOAD_BYTES {
        return Err(format!("a {} byte payload is larger than a signature's", layer.payload_size));
    }
    let payload_digest: Digest = layer.payload_digest.parse().map_err(|e| format!("payload digest: {e}"))?;
    let bytes = client.fetch_blob(&payload_digest, MAX_PAYLOAD_BYTES).map_err(|e| e.to_string())?;
    check_payload(signers, &bytes, &layer.signature, digest, repository, claims)
}

/// Checks one signature whose payload bytes are at hand (the registry reads them from its own storage): it
/// verifies (by a current delegation, with trust data), names `digest` and `repository`, and has `claims`.
/// Returns the payload and the delegation's name.
pub fn check_payload(
    signers: &Signers,
    bytes: &[u8],
    signature_b64: &str,
    digest: &str,
    repository: &str,
    claims: &BTreeMap<String, String>,
) -> Result<(Payload, Option<String>), String> {
    let signature = STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| "the signature annotation is not base64".to_string())?;
    let signer = signers.check(bytes, &signature)?;
    let payload = Payload::parse(bytes)?;
    if payload.critical.image.docker_manifest_digest != digest {
        return Err(format!(
            "it signs {}, not this image ({digest})",
            payload.critical.image.docker_manifest_digest
        ));
    }
    if payload.repository() != repository {
        return Err(format!(
            "it was made for {}, not for this repository ({repository}): a signature copied between repositories does not count",
            payload.critical.identity.docker_reference
        ));
    }
    for (k, v) in claims {
        match payload.claim(k) {
            Some(found) if found == v => {}
            Some(found) => return Err(format!("claim {k} is `{found}`, not `{v}`")),
            None => return Err(format!("claim {k} is missing")),
        }
    }
    Ok((payload, signer))
}

/// The repository's stored trust document, if it has one.
pub fn fetch_trust(client: &RegistryClient) -> Result<Option<Vec<u8>>, ImageError> {
    let Some(m) = client.fetch_manifest(metadata::TRUST_TAG).map_err(err)? else {
        return Ok(None);
    };
    let value: serde_json::Value = serde_json::from_slice(&m.bytes).map_err(err)?;
    let layer = value["layers"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["mediaType"] == metadata::LAYER_MEDIA_TYPE))
        .ok_or_else(|| {
            ImageError(format!(
                "{}: the {} manifest holds no trust document",
                client.reference(),
                metadata::TRUST_TAG
            ))
        })?;
    let digest: Digest = layer["digest"].as_str().unwrap_or_default().parse().map_err(err)?;
    Ok(Some(client.fetch_blob(&digest, 4 << 20).map_err(err)?))
}

/// Stores a trust document as the repository's `customs-trust` artifact.
pub fn publish_trust(client: &RegistryClient, document: &TrustDocument) -> Result<(), ImageError> {
    let bytes = document.to_bytes();
    let layer = client.push_blob(&bytes).map_err(err)?;
    let empty = client.push_blob(b"{}").map_err(err)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_MANIFEST,
        "artifactType": metadata::ARTIFACT_TYPE,
        "config": {"mediaType": manifest::EMPTY_CONFIG, "size": 2, "digest": empty.to_string()},
        "layers": [{"mediaType": metadata::LAYER_MEDIA_TYPE, "size": bytes.len(), "digest": layer.to_string()}],
        "annotations": {"dev.customs.trust.version": document.signed.version.to_string()},
    })
    .to_string();
    client
        .push_manifest(metadata::TRUST_TAG, manifest::OCI_MANIFEST, manifest.as_bytes())
        .map_err(err)?;
    Ok(())
}

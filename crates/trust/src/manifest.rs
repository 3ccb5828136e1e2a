//! The manifests cosign stores signatures in: an OCI image manifest tagged `sha256-<hex>.sig` beside the image,
//! one simple-signing layer per signature with the base64 DER signature in an annotation; or, in OCI 1.1 mode,
//! one manifest per signature that names the image as its `subject` (found through the referrers API).

use serde_json::{Value, json};

/// Media type of a signature layer (its bytes are the payload).
pub const SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// `artifactType` of cosign's OCI 1.1 signatures.
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The empty config of artifacts (`{}`).
pub const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
/// Signature layers read from one manifest at most (a hostile manifest may list millions).
pub const MAX_SIGNATURES: usize = 256;

/// The tag cosign keeps an image's signatures under: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// One signature as a manifest layer: the payload blob and the signature over it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureLayer {
    /// Digest of the payload blob.
    pub payload_digest: String,
    /// Its size.
    pub payload_size: u64,
    /// Base64 of the DER signature.
    pub signature: String,
}

impl SignatureLayer {
    fn descriptor(&self) -> Value {
        json!({
            "mediaType": SIMPLESIGNING,
            "size": self.payload_size,
            "digest": self.payload_digest,
            "annotations": {SIGNATURE_ANNOTATION: self.signature},
        })
    }
}

/// The signature layers of a manifest (tag or referrer form), at most [`MAX_SIGNATURES`].
pub fn signature_layers(manifest: &[u8]) -> Result<Vec<SignatureLayer>, String> {
    let value: Value = serde_json::from_slice(manifest).map_err(|e| format!("signature manifest is not JSON: {e}"))?;
    let layers = value["layers"].as_array().ok_or("signature manifest has no layers")?;
    Ok(layers
        .iter()
        .filter(|l| l["mediaType"] == SIMPLESIGNING)
        .filter_map(|l| {
            Some(SignatureLayer {
                payload_digest: l["digest"].as_str()?.to_string(),
                payload_size: l["size"].as_u64()?,
                signature: l["annotations"][SIGNATURE_ANNOTATION].as_str()?.to_string(),
            })
        })
        .take(MAX_SIGNATURES)
        .collect())
}

/// The config blob of a tag-form signature manifest: an empty image config whose layers are the payloads.
pub fn tag_config(layers: &[SignatureLayer]) -> Vec<u8> {
    json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| &l.payload_digest).collect::<Vec<_>>()},
        "config": {},
    })
    .to_string()
    .into_bytes()
}

/// The tag-form manifest holding `layers`, with the config blob `config` (from [`tag_config`]).
pub fn tag_manifest(layers: &[SignatureLayer], config: &[u8], config_digest: &str) -> Vec<u8> {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": config_digest},
        "layers": layers.iter().map(SignatureLayer::descriptor).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes()
}

/// An OCI 1.1 signature manifest for one signature of `subject` (the image's descriptor: media type, digest,
/// size). Its config is the empty blob `{}` (digest `empty_digest`).
pub fn referrer_manifest(layer: &SignatureLayer, subject: (&str, &str, u64), empty_digest: &str) -> Vec<u8> {
    let (media_type, digest, size) = subject;
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SIGNATURE_ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_CONFIG, "size": 2, "digest": empty_digest},
        "layers": [layer.descriptor()],
        "subject": {"mediaType": media_type, "size": size, "digest": digest},
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_carry_their_signatures() {
        let d = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        assert_eq!(
            signature_tag(d),
            "sha256-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.sig"
        );
        let layer = SignatureLayer {
            payload_digest: d.into(),
            payload_size: 10,
            signature: "MEUC".into(),
        };
        let config = tag_config(std::slice::from_ref(&layer));
        let manifest = tag_manifest(&[layer.clone(), layer.clone()], &config, d);
        assert_eq!(signature_layers(&manifest).unwrap(), vec![layer.clone(), layer.clone()]);
        let referrer: Value = serde_json::from_slice(&referrer_manifest(&layer, (OCI_MANIFEST, d, 5), d)).unwrap();
        assert_eq!(referrer["subject"]["digest"], d);
        assert_eq!(referrer["artifactType"], SIGNATURE_ARTIFACT_TYPE);
        assert!(signature_layers(b"{}").is_err());
        let many = json!({"layers": vec![layer.descriptor(); MAX_SIGNATURES + 10]}).to_string();
        assert_eq!(signature_layers(many.as_bytes()).unwrap().len(), MAX_SIGNATURES);
    }
}

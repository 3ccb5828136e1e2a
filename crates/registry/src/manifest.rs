//! Checking pushed manifests: media type, schema, referenced blobs and manifests, subject and artifact type,
//! and whether the manifest is a signature (cosign or Notation), which `sign` rights may push.

use serde_json::Value;

use crate::digest::Digest;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest v2 schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Artifact types of signatures and attestations: cosign (legacy and bundle), Notation, in-toto.
const SIGNATURE_ARTIFACT_TYPES: [&str; 4] = [
    "application/vnd.dev.cosign.artifact.sig.v1+json",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.cncf.notary.signature",
    "application/vnd.in-toto+json",
];
const COSIGN_SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// What the registry needs to know about a pushed manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestInfo {
    /// The media type it is stored and served with.
    pub media_type: String,
    /// `artifactType`, or the config media type of an image manifest (the referrers API's rule).
    pub artifact_type: Option<String>,
    /// The `subject` digest, when the manifest refers to another one.
    pub subject: Option<String>,
    /// Blobs that must exist in the repository (config and layers).
    pub blobs: Vec<Digest>,
    /// Manifests that must exist in the repository (index entries).
    pub manifests: Vec<Digest>,
    /// Whether it is a signature or attestation.
    pub is_signature: bool,
}

/// Whether a tag follows cosign's tag scheme for signatures and attestations (`sha256-<hex>.sig|.att|.sbom`).
pub fn is_cosign_tag(tag: &str) -> bool {
    tag.strip_prefix("sha256-")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(hex, suffix)| hex.len() == 64 && ["sig", "att", "sbom"].contains(&suffix))
}

fn descriptor_digest(value: &Value, what: &str) -> Result<Digest, String> {
    let digest = value
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{what} has no digest"))?;
    digest.parse().map_err(|e| format!("{what}: {e}"))
}

/// Checks a manifest body against its `Content-Type` and extracts what the registry needs.
pub fn inspect(content_type: Option<&str>, body: &[u8]) -> Result<ManifestInfo, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("manifest is not valid JSON: {e}"))?;
    if value.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err("only schemaVersion 2 manifests are accepted (Docker schema 1 is deprecated)".into());
    }
    let declared = value.get("mediaType").and_then(Value::as_str);
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "application/octet-stream");
    let media_type = match (header, declared) {
        (Some(h), Some(d)) if h != d => return Err(format!("Content-Type `{h}` differs from the manifest's mediaType `{d}`")),
        (Some(h), _) => h.to_string(),
        (None, Some(d)) => d.to_string(),
        (None, None) if value.get("manifests").is_some() => OCI_INDEX.to_string(),
        (None, None) => OCI_MANIFEST.to_string(),
    };
    let subject = match value.get("subject") {
        Some(s) => Some(descriptor_digest(s, "subject")?.to_string()),
        None => None,
    };
    let mut info = ManifestInfo {
        media_type: media_type.clone(),
        artifact_type: value.get("artifactType").and_then(Value::as_str).map(str::to_string),
        subject,
        blobs: Vec::new(),
        manifests: Vec::new(),
        is_signature: false,
    };
    match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let config = value.get("config").ok_or("image manifest has no config")?;
            info.blobs.push(descriptor_digest(config, "config")?);
            if info.artifact_type.is_none() {
                info.artifact_type = config.get("mediaType").and_then(Value::as_str).map(str::to_string);
            }
            let layers = value
                .get("layers")
                .and_then(Value::as_array)
                .ok_or("image manifest has no layers array")?;
            for (i, layer) in layers.iter().enumerate() {
                let digest = descriptor_digest(layer, &format!("layer {i}"))?;
                // Layers with `urls` are non-distributable (foreign) and live elsewhere.
                if layer.get("urls").is_none() {
                    info.blobs.push(digest);
                }
                if layer.get("mediaType").and_then(Value::as_str) == Some(COSIGN_SIMPLESIGNING) {
                    info.is_signature = true;
                }
            }
        }
        OCI_INDEX | DOCKER_LIST => {
            let manifests = value
                .get("manifests")
                .and_then(Value::as_array)
                .ok_or("index has no manifests array")?;
            for (i, m) in manifests.iter().enumerate() {
                info.manifests.push(descriptor_digest(m, &format!("manifests[{i}]"))?);
            }
        }
        other => return Err(format!("unsupported manifest media type `{other}`")),
    }
    if info.artifact_type.as_deref().is_some_and(|t| SIGNATURE_ARTIFACT_TYPES.contains(&t)) {
        info.is_signature = true;
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn image_manifest_and_signature() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D}","size":0}},
            "layers":[{{"mediaType":"{COSIGN_SIMPLESIGNING}","digest":"{D}","size":0}}]}}"#
        );
        let info = inspect(Some(OCI_MANIFEST), body.as_bytes()).unwrap();
        assert_eq!(info.blobs.len(), 2);
        assert!(info.is_signature);
        assert_eq!(info.artifact_type.as_deref(), Some("application/vnd.oci.image.config.v1+json"));
        let err = inspect(Some(DOCKER_MANIFEST), body.as_bytes()).unwrap_err();
        assert!(err.contains("differs"), "{err}");
    }

    #[test]
    fn notation_artifact_with_subject() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.cncf.notary.signature",
            "config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{D}","size":2}},"layers":[],
            "subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":10}}}}"#
        );
        let info = inspect(None, body.as_bytes()).unwrap();
        assert_eq!(info.subject.as_deref(), Some(D));
        assert!(info.is_signature);
    }

    #[test]
    fn bad_manifests() {
        assert!(inspect(None, b"{").unwrap_err().contains("JSON"));
        assert!(inspect(None, br#"{"schemaVersion":1}"#).unwrap_err().contains("schemaVersion"));
        assert!(
            inspect(Some("text/plain"), br#"{"schemaVersion":2}"#)
                .unwrap_err()
                .contains("unsupported")
        );
        let index = r#"{"schemaVersion":2,"manifests":[{"digest":"sha512:00"}]}"#;
        assert!(inspect(None, index.as_bytes()).unwrap_err().contains("sha512"));
        assert!(is_cosign_tag(&format!("sha256-{}.sig", "a".repeat(64))));
        assert!(!is_cosign_tag("sha256-abc.sig"));
    }
}

//! The simple-signing payload cosign signs: which image (manifest digest) in which repository, plus optional
//! claims (`-a key=value`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The payload's `critical.type`.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";
/// The largest payload read back (real ones are a few hundred bytes).
pub const MAX_PAYLOAD_BYTES: u64 = 64 << 10;

/// A simple-signing payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// What is signed.
    pub critical: Critical,
    /// Claims beside it (`null` when none, as cosign writes).
    pub optional: Option<BTreeMap<String, serde_json::Value>>,
}

/// The signed image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Critical {
    /// The repository.
    pub identity: Identity,
    /// The manifest.
    pub image: Image,
    /// [`SIGNATURE_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
}

/// `critical.identity`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// `registry/repository`, as the signer addressed it.
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

/// `critical.image`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// `sha256:…` of the manifest.
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

impl Payload {
    /// The payload for `digest` in `docker_reference` (`registry/repository`) with `claims`.
    pub fn new(docker_reference: &str, digest: &str, claims: &BTreeMap<String, String>) -> Payload {
        Payload {
            critical: Critical {
                identity: Identity {
                    docker_reference: docker_reference.to_string(),
                },
                image: Image {
                    docker_manifest_digest: digest.to_string(),
                },
                kind: SIGNATURE_TYPE.to_string(),
            },
            optional: (!claims.is_empty()).then(|| {
                claims
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect()
            }),
        }
    }

    /// The bytes that are signed and stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("payloads serialize")
    }

    /// Reads stored payload bytes.
    pub fn parse(bytes: &[u8]) -> Result<Payload, String> {
        let payload: Payload = serde_json::from_slice(bytes).map_err(|e| format!("the signed payload is not simple signing: {e}"))?;
        if payload.critical.kind != SIGNATURE_TYPE {
            return Err(format!(
                "the signed payload's type is `{}`, not `{SIGNATURE_TYPE}`",
                payload.critical.kind
            ));
        }
        Ok(payload)
    }

    /// The repository path the payload names (`registry/` dropped, as for Docker references).
    pub fn repository(&self) -> &str {
        repository_of(&self.critical.identity.docker_reference)
    }

    /// The claim `key`, when it is a string.
    pub fn claim(&self, key: &str) -> Option<&str> {
        self.optional.as_ref()?.get(key)?.as_str()
    }
}

/// `registry/repo/path` → `repo/path` (a first component with a dot, a colon or `localhost` is a host).
pub fn repository_of(reference: &str) -> &str {
    let reference = reference.split('@').next().unwrap_or(reference);
    match reference.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => rest,
        _ => reference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_cosign_shaped() {
        let d = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let bare = Payload::new("127.0.0.1:5443/prod/app", d, &BTreeMap::new());
        assert_eq!(
            String::from_utf8(bare.to_bytes()).unwrap(),
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"127.0.0.1:5443/prod/app"}},"image":{{"docker-manifest-digest":"{d}"}},"type":"cosign container image signature"}},"optional":null}}"#
            )
        );
        assert_eq!(bare.repository(), "prod/app");
        let claims = BTreeMap::from([("pipeline".to_string(), "release".to_string())]);
        let with = Payload::parse(&Payload::new("r.example/prod/app", d, &claims).to_bytes()).unwrap();
        assert_eq!(with.claim("pipeline"), Some("release"));
        assert!(Payload::parse(br#"{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"y"},"type":"other"},"optional":null}"#).is_err());
        assert!(Payload::parse(b"[]").is_err());
        assert_eq!(repository_of("prod/app"), "prod/app");
        assert_eq!(repository_of("localhost/prod/app@sha256:00"), "prod/app");
    }
}

//! Trust data: who may sign a repository's images. A root key (kept offline) certifies one key per repository;
//! the repository key signs the repository's trust document, which lists its delegations (a release pipeline's
//! key each, with an expiry) and the revoked ones. The document carries a version that only grows, so a
//! verifier that saw version N refuses N−1 (a rollback to a list that still had a revoked key).
//!
//! Revocation is total: a revoked delegation's signatures no longer count, whenever they were made. The time
//! in a signature is the signer's own claim, so "signed before the revocation" cannot be trusted without a
//! transparency log; a revoked pipeline's images are re-signed by a current delegate.

use serde::{Deserialize, Serialize};

use crate::key::{PrivateKey, PublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// `schema` of trust documents.
pub const SCHEMA: &str = "customs.trust/v1";
/// The tag a repository's trust document is stored under.
pub const TRUST_TAG: &str = "customs-trust";
/// `artifactType` of the trust document's manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.customs.trust.v1+json";
/// Media type of the document's layer.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.customs.trust.document.v1+json";
/// Delegations per repository at most (bounds the work of one verification).
pub const MAX_DELEGATIONS: usize = 256;

/// A key allowed to sign the repository's images.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    /// Who it is (`release-pipeline`).
    pub name: String,
    /// Its public key (PKIX PEM).
    pub public_key: String,
    /// The last day it may sign (`YYYY-MM-DD`), if any.
    pub expires: Option<String>,
    /// The day it was added.
    pub added: String,
}

/// A delegation taken back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Who it was.
    pub name: String,
    /// Its public key.
    pub public_key: String,
    /// The day it was revoked.
    pub revoked: String,
}

/// The signed part of a trust document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustData {
    /// [`SCHEMA`].
    pub schema: String,
    /// The repository path it governs.
    pub repository: String,
    /// Grows by one at each change.
    pub version: u64,
    /// The root key (PEM) that certified the repository key.
    pub root_key: String,
    /// The repository key (PEM) that signs this document.
    pub repository_key: String,
    /// The root's signature (base64 DER) over [`certificate_bytes`].
    pub repository_key_certificate: String,
    /// Current delegations.
    pub delegations: Vec<Delegation>,
    /// Revoked ones.
    pub revoked: Vec<Revocation>,
}

/// A trust document as stored: the data and the repository key's signature over it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustDocument {
    /// What is signed.
    pub signed: TrustData,
    /// Base64 DER signature by the repository key over the serialized `signed`.
    pub signature: String,
}

/// What the root signs when it certifies a repository key.
pub fn certificate_bytes(repository: &str, repository_key_pem: &str) -> Vec<u8> {
    format!("{SCHEMA} repository-key\n{repository}\n{}", repository_key_pem.trim()).into_bytes()
}

impl TrustData {
    /// The first document of a repository: its key certified by `root`, no delegations.
    pub fn new(repository: &str, root: &PrivateKey, repository_key: &PublicKey) -> TrustData {
        let repository_key = repository_key.to_pem();
        TrustData {
            schema: SCHEMA.into(),
            repository: repository.into(),
            version: 1,
            root_key: root.public_key().to_pem(),
            repository_key_certificate: STANDARD.encode(root.sign(&certificate_bytes(repository, &repository_key))),
            repository_key,
            delegations: Vec::new(),
            revoked: Vec::new(),
        }
    }

    /// Signs it with the repository key.
    pub fn sign(self, repository_key: &PrivateKey) -> Result<TrustDocument, String> {
        if repository_key.public_key() != PublicKey::from_pem(&self.repository_key, "repository key").map_err(|e| e.to_string())? {
            return Err(format!("this is not the key of {} named in its trust data", self.repository));
        }
        let bytes = serde_json::to_vec(&self).expect("trust data serializes");
        Ok(TrustDocument {
            signature: STANDARD.encode(repository_key.sign(&bytes)),
            signed: self,
        })
    }
}

impl TrustDocument {
    /// The stored bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("trust documents serialize")
    }

    /// Reads a stored document of `repository` and checks it against the `root` the verifier trusts: the root
    /// certified the repository key, the repository key signed the document, it is about this repository, and
    /// its version is not older than `min_version` (the highest seen before).
    pub fn verify(bytes: &[u8], root: &PublicKey, repository: &str, min_version: u64) -> Result<TrustData, String> {
        let doc: TrustDocument =
            serde_json::from_slice(bytes).map_err(|e| format!("the trust document of {repository} does not parse: {e}"))?;
        let data = doc.signed;
        if data.schema != SCHEMA {
            return Err(format!("trust document schema `{}`, not `{SCHEMA}`", data.schema));
        }
        if data.repository != repository {
            return Err(format!(
                "the trust document is about {}, not {repository}: trust data copied from another repository does not count",
                data.repository
            ));
        }
        let named_root = PublicKey::from_pem(&data.root_key, "the document's root key").map_err(|e| e.to_string())?;
        if &named_root != root {
            return Err(format!(
                "the trust data of {repository} was certified by another root (key {}), not the trusted one ({})",
                named_root.id(),
                root.id()
            ));
        }
        let certificate = STANDARD
            .decode(&data.repository_key_certificate)
            .map_err(|_| "the repository key's certificate is not base64".to_string())?;
        root.verify(&certificate_bytes(repository, &data.repository_key), &certificate)
            .map_err(|_| format!("the repository key of {repository} is not certified by the trusted root"))?;
        let repository_key = PublicKey::from_pem(&data.repository_key, "repository key").map_err(|e| e.to_string())?;
        let signature = STANDARD
            .decode(&doc.signature)
            .map_err(|_| "the document's signature is not base64".to_string())?;
        let signed_bytes = serde_json::to_vec(&data).expect("trust data serializes");
        repository_key
            .verify(&signed_bytes, &signature)
            .map_err(|_| format!("the trust document of {repository} is not signed by its repository key (altered?)"))?;
        if data.version < min_version {
            return Err(format!(
                "the trust document of {repository} is version {}, older than version {min_version} seen before: a rollback is refused",
                data.version
            ));
        }
        if data.delegations.len() > MAX_DELEGATIONS || data.revoked.len() > MAX_DELEGATIONS * 16 {
            return Err(format!(
                "the trust document of {repository} lists more delegations than {MAX_DELEGATIONS}"
            ));
        }
        Ok(data)
    }

    /// The signer a signature (over `payload`) is from, on `today` (`YYYY-MM-DD`): a current, unexpired
    /// delegation; else why not (revoked, expired, unknown key).
    pub fn signer<'a>(data: &'a TrustData, payload: &[u8], signature: &[u8], today: &str) -> Result<&'a Delegation, String> {
        for d in &data.delegations {
            let Ok(key) = PublicKey::from_pem(&d.public_key, &d.name) else {
                continue;
            };
            if key.verify(payload, signature).is_ok() {
                return match &d.expires {
                    Some(expires) if expires.as_str() < today => {
                        Err(format!("signed by {}, whose delegation expired on {expires}", d.name))
                    }
                    _ => Ok(d),
                };
            }
        }
        for r in &data.revoked {
            if PublicKey::from_pem(&r.public_key, &r.name).is_ok_and(|k| k.verify(payload, signature).is_ok()) {
                return Err(format!("signed by {}, whose delegation was revoked on {}", r.name, r.revoked));
            }
        }
        Err(format!("not signed by any delegation of {}", data.repository))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(k: &PrivateKey) -> String {
        k.public_key().to_pem()
    }

    #[test]
    fn the_chain_root_repository_delegation_holds_and_breaks_where_it_should() {
        let (root, repo, pipeline, stranger) = (
            PrivateKey::generate(),
            PrivateKey::generate(),
            PrivateKey::generate(),
            PrivateKey::generate(),
        );
        let mut data = TrustData::new("prod/app", &root, &repo.public_key());
        data.delegations.push(Delegation {
            name: "release".into(),
            public_key: pem(&pipeline),
            expires: Some("2027-01-31".into()),
            added: "2026-12-01".into(),
        });
        data.version = 2;
        let bytes = data.clone().sign(&repo).unwrap().to_bytes();
        let trusted = root.public_key();
        let checked = TrustDocument::verify(&bytes, &trusted, "prod/app", 2).unwrap();
        let sig = pipeline.sign(b"payload");
        assert_eq!(
            TrustDocument::signer(&checked, b"payload", &sig, "2026-12-02").unwrap().name,
            "release"
        );
        assert!(
            TrustDocument::signer(&checked, b"payload", &sig, "2027-02-01")
                .unwrap_err()
                .contains("expired")
        );
        let foreign = stranger.sign(b"payload");
        assert!(
            TrustDocument::signer(&checked, b"payload", &foreign, "2026-12-02")
                .unwrap_err()
                .contains("not signed by any")
        );
        // Rolled back, about another repository, under another root, altered, signed by the wrong key.
        assert!(
            TrustDocument::verify(&bytes, &trusted, "prod/app", 3)
                .unwrap_err()
                .contains("rollback")
        );
        assert!(
            TrustDocument::verify(&bytes, &trusted, "prod/other", 0)
                .unwrap_err()
                .contains("another repository")
        );
        assert!(
            TrustDocument::verify(&bytes, &stranger.public_key(), "prod/app", 0)
                .unwrap_err()
                .contains("another root")
        );
        let altered = String::from_utf8(bytes.clone()).unwrap().replace("2027-01-31", "2099-01-31");
        assert!(
            TrustDocument::verify(altered.as_bytes(), &trusted, "prod/app", 0)
                .unwrap_err()
                .contains("altered")
        );
        assert!(data.clone().sign(&stranger).is_err());
        // A repository key the root never certified.
        let mut forged = data.clone();
        forged.repository_key = pem(&stranger);
        let forged = forged.sign(&stranger).unwrap().to_bytes();
        assert!(
            TrustDocument::verify(&forged, &trusted, "prod/app", 0)
                .unwrap_err()
                .contains("not certified")
        );
        // Revoked: its signatures no longer count.
        let mut revoked = checked.clone();
        let d = revoked.delegations.remove(0);
        revoked.revoked.push(Revocation {
            name: d.name,
            public_key: d.public_key,
            revoked: "2026-12-05".into(),
        });
        assert!(
            TrustDocument::signer(&revoked, b"payload", &sig, "2026-12-06")
                .unwrap_err()
                .contains("revoked on 2026-12-05")
        );
        assert!(TrustDocument::verify(b"{", &trusted, "prod/app", 0).is_err());
    }
}

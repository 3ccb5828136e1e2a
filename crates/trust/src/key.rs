//! ECDSA P-256 keys (cosign's required scheme, SHA-256), the private half only ever on disk encrypted: cosign's
//! `ENCRYPTED SIGSTORE PRIVATE KEY` PEM (a JSON envelope: scrypt key derivation, NaCl secretbox), so a key made by
//! `cosign generate-key-pair` signs here and one made here signs with cosign. Public keys are PKIX PEM
//! (`PUBLIC KEY`), as `cosign.pub`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// PEM label cosign 2 writes.
pub const ENCRYPTED_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// PEM label cosign 1 wrote (still read).
const OLD_ENCRYPTED_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// scrypt cost cosign 2.5 writes (N = 2^16, r = 8, p = 1).
const SCRYPT_LOG_N: u8 = 16;
/// The most costly scrypt a key file may ask for (N = 2^20, 1 GiB at r = 8): a hostile file cannot make us
/// spend more memory than that.
const MAX_SCRYPT_LOG_N: u8 = 20;

/// Why a key could not be read, made or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file is not a key of the expected kind.
    #[error("{what}: {why}")]
    Malformed {
        /// The file or input.
        what: String,
        /// Why.
        why: String,
    },
    /// The password does not open the key.
    #[error("{0}: wrong password (set it in CUSTOMS_PASSWORD or COSIGN_PASSWORD)")]
    WrongPassword(String),
    /// The signature does not verify.
    #[error("the signature does not verify with this key")]
    BadSignature,
}

fn malformed(what: &str, why: impl std::fmt::Display) -> KeyError {
    KeyError::Malformed {
        what: what.to_string(),
        why: why.to_string(),
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[allow(non_snake_case)]
struct ScryptParams {
    N: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// A public key that verifies image signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Reads a PKIX PEM public key (`-----BEGIN PUBLIC KEY-----`, as `cosign.pub`); `what` names it in errors.
    pub fn from_pem(pem: &str, what: &str) -> Result<PublicKey, KeyError> {
        VerifyingKey::from_public_key_pem(pem.trim()).map(PublicKey).map_err(|e| {
            malformed(
                what,
                format!("not a P-256 public key in PEM ({e}); cosign.pub and `customs trust generate-key` write one"),
            )
        })
    }

    /// The public key of a P-256 verifying key (from an HSM, say).
    pub fn from_verifying_key(key: VerifyingKey) -> PublicKey {
        PublicKey(key)
    }

    /// The key as PKIX PEM.
    pub fn to_pem(&self) -> String {
        self.0.to_public_key_pem(LineEnding::LF).expect("a valid key encodes")
    }

    /// A short id: the first 16 hex digits of the SHA-256 of the key's DER (SubjectPublicKeyInfo).
    pub fn id(&self) -> String {
        use sha2::Digest as _;
        let der = self.0.to_public_key_der().expect("a valid key encodes");
        let hash = sha2::Sha256::digest(der.as_bytes());
        hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// Checks an ASN.1 DER ECDSA signature of `payload` (SHA-256).
    pub fn verify(&self, payload: &[u8], der_signature: &[u8]) -> Result<(), KeyError> {
        let signature = DerSignature::try_from(der_signature).map_err(|_| KeyError::BadSignature)?;
        self.0.verify(payload, &signature).map_err(|_| KeyError::BadSignature)
    }
}

/// A private key, in memory only while it signs.
pub struct PrivateKey(SigningKey);

impl PrivateKey {
    /// A new random key.
    pub fn generate() -> PrivateKey {
        loop {
            let mut bytes = Zeroizing::new([0u8; 32]);
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut *bytes);
            // A random 256-bit string is a valid scalar except with negligible probability; retry then.
            if let Ok(key) = SigningKey::from_slice(&*bytes) {
                return PrivateKey(key);
            }
        }
    }

    /// Its public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(*self.0.verifying_key())
    }

    /// An ASN.1 DER ECDSA P-256 signature of `payload` (SHA-256), as cosign stores them.
    pub fn sign(&self, payload: &[u8]) -> Vec<u8> {
        let signature: DerSignature = self.0.sign(payload);
        signature.as_bytes().to_vec()
    }

    /// The key encrypted with `password`, as cosign's encrypted PEM.
    pub fn to_encrypted_pem(&self, password: &[u8]) -> String {
        let der = self.0.to_pkcs8_der().expect("a valid key encodes");
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
        let key = derive(password, &salt, SCRYPT_LOG_N, 8, 1).expect("cosign's own parameters are valid");
        let ciphertext = XSalsa20Poly1305::new(key.as_slice().into())
            .encrypt(Nonce::from_slice(&nonce), der.as_bytes())
            .expect("encryption of a small buffer cannot fail");
        let envelope = Envelope {
            kdf: Kdf {
                name: "scrypt".into(),
                params: ScryptParams {
                    N: 1 << SCRYPT_LOG_N,
                    r: 8,
                    p: 1,
                },
                salt: salt.to_vec(),
            },
            cipher: Cipher {
                name: "nacl/secretbox".into(),
                nonce: nonce.to_vec(),
            },
            ciphertext,
        };
        let json = serde_json::to_vec(&envelope).expect("the envelope serializes");
        pem_block(ENCRYPTED_LABEL, &json)
    }

    /// Opens cosign's encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`, or cosign 1's `ENCRYPTED COSIGN PRIVATE
    /// KEY`) with `password`; `what` names the file in errors. A plaintext private key is refused: keys are
    /// never kept unencrypted.
    pub fn from_encrypted_pem(pem: &str, password: &[u8], what: &str) -> Result<PrivateKey, KeyError> {
        let (label, body) = parse_pem(pem).ok_or_else(|| malformed(what, "not a PEM file"))?;
        if label != ENCRYPTED_LABEL && label != OLD_ENCRYPTED_LABEL {
            let why = if label.contains("PRIVATE KEY") {
                format!(
                    "a plaintext `{label}`: keys must be encrypted at rest; import it with `cosign import-key-pair` or make one with `customs trust generate-key`"
                )
            } else {
                format!("a `{label}` block, not an encrypted private key")
            };
            return Err(malformed(what, why));
        }
        let envelope: Envelope = serde_json::from_slice(&body).map_err(|e| malformed(what, format!("envelope: {e}")))?;
        if envelope.kdf.name != "scrypt" || envelope.cipher.name != "nacl/secretbox" {
            return Err(malformed(
                what,
                format!(
                    "unsupported {} / {} (cosign uses scrypt / nacl/secretbox)",
                    envelope.kdf.name, envelope.cipher.name
                ),
            ));
        }
        let n = envelope.kdf.params.N;
        if !n.is_power_of_two() || n < 2 {
            return Err(malformed(what, format!("scrypt N = {n} is not a power of two")));
        }
        let log_n = n.trailing_zeros() as u8;
        let (r, p) = (envelope.kdf.params.r, envelope.kdf.params.p);
        if log_n > MAX_SCRYPT_LOG_N || r == 0 || r > 32 || p == 0 || p > 16 {
            return Err(malformed(
                what,
                format!("scrypt N = {n}, r = {r}, p = {p} is beyond what a key file may ask (N ≤ 2^{MAX_SCRYPT_LOG_N}, r ≤ 32, p ≤ 16)"),
            ));
        }
        if envelope.cipher.nonce.len() != 24 {
            return Err(malformed(what, "the secretbox nonce is not 24 bytes"));
        }
        let key = derive(password, &envelope.kdf.salt, log_n, r, p).map_err(|e| malformed(what, e))?;
        let der = Zeroizing::new(
            XSalsa20Poly1305::new(key.as_slice().into())
                .decrypt(Nonce::from_slice(&envelope.cipher.nonce), envelope.ciphertext.as_slice())
                .map_err(|_| KeyError::WrongPassword(what.to_string()))?,
        );
        SigningKey::from_pkcs8_der(&der).map(PrivateKey).map_err(|e| {
            malformed(
                what,
                format!("not an ECDSA P-256 key ({e}); customs signs with P-256 as cosign does"),
            )
        })
    }
}

fn derive(password: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32) -> Result<Zeroizing<[u8; 32]>, String> {
    let params = scrypt::Params::new(log_n, r, p).map_err(|e| format!("scrypt parameters: {e}"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, salt, &params, &mut *key).map_err(|e| format!("scrypt: {e}"))?;
    Ok(key)
}

fn pem_block(label: &str, bytes: &[u8]) -> String {
    let encoded = STANDARD.encode(bytes);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The first PEM block: its label and decoded bytes.
fn parse_pem(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_string();
    let body_start = label_end + 5;
    let end_marker = format!("-----END {label}-----");
    let body_end = rest.find(&end_marker)?;
    let body: String = rest.get(body_start..body_end)?.chars().filter(|c| !c.is_whitespace()).collect();
    Some((label, STANDARD.decode(body).ok()?))
}

/// The password for a key: `CUSTOMS_PASSWORD`, else `COSIGN_PASSWORD` (cosign's), else empty (as cosign
/// allows). Never from the command line, where it would show in process lists.
pub fn password_from_env() -> Zeroizing<Vec<u8>> {
    Zeroizing::new(
        std::env::var("CUSTOMS_PASSWORD")
            .or_else(|_| std::env::var("COSIGN_PASSWORD"))
            .unwrap_or_default()
            .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_round_trips_encrypted_and_signs() {
        let key = PrivateKey::generate();
        let pem = key.to_encrypted_pem(b"secret");
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        assert!(!pem.contains("BEGIN PRIVATE KEY") && !pem.contains("BEGIN EC PRIVATE KEY"));
        let opened = PrivateKey::from_encrypted_pem(&pem, b"secret", "k").unwrap();
        let public = PublicKey::from_pem(&key.public_key().to_pem(), "pub").unwrap();
        let signature = opened.sign(b"payload");
        public.verify(b"payload", &signature).unwrap();
        assert!(matches!(public.verify(b"other", &signature), Err(KeyError::BadSignature)));
        assert!(matches!(public.verify(b"payload", b"junk"), Err(KeyError::BadSignature)));
        assert!(matches!(
            PrivateKey::from_encrypted_pem(&pem, b"wrong", "k"),
            Err(KeyError::WrongPassword(_))
        ));
    }

    #[test]
    fn hostile_and_plaintext_key_files_are_refused_with_the_reason() {
        let plain = PrivateKey::generate().0.to_pkcs8_pem(LineEnding::LF).unwrap();
        let err = PrivateKey::from_encrypted_pem(&plain, b"", "plain.key").err().unwrap().to_string();
        assert!(err.contains("plain.key") && err.contains("encrypted at rest"), "{err}");
        let costly = r#"{"kdf":{"name":"scrypt","params":{"N":1073741824,"r":8,"p":1},"salt":"AA=="},"cipher":{"name":"nacl/secretbox","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"ciphertext":"AA=="}"#;
        let err = PrivateKey::from_encrypted_pem(&pem_block(ENCRYPTED_LABEL, costly.as_bytes()), b"", "k")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("beyond"), "{err}");
        for junk in [
            "",
            "not pem",
            "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n!!\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----",
        ] {
            assert!(PrivateKey::from_encrypted_pem(junk, b"", "k").is_err());
        }
        assert!(PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "p").is_err());
    }
}

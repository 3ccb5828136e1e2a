//! Where a signing key lives: an encrypted key file, a PKCS#11 token (an HSM; SoftHSM2 in the tests), or a
//! cloud KMS. `customs sign --key REF` takes any of them:
//!
//! - a path: cosign's encrypted PEM (password from `CUSTOMS_PASSWORD`/`COSIGN_PASSWORD`);
//! - `pkcs11:token=LABEL;object=KEY-LABEL` (RFC 7512 as cosign writes it; `?module-path=/path/to/module.so`,
//!   else `CUSTOMS_PKCS11_MODULE`, else SoftHSM2's), the user PIN from `CUSTOMS_PKCS11_PIN`: the private key never
//!   leaves the token;
//! - `azurekms://VAULT/KEY`, `awskms://…`, `gcpkms://…`, `hashivault://…`: parsed and routed to a [`KmsBackend`];
//!   none is built in yet (an Azure Key Vault backend is the first planned), so such a key is refused with that
//!   reason rather than guessed at.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::Digest as _;

use crate::key::{KeyError, PrivateKey, PublicKey};

/// SoftHSM2's module on Debian.
const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// DER of the P-256 curve's OID (prime256v1), the `CKA_EC_PARAMS` of the keys made here.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Something that signs image payloads (ECDSA P-256, SHA-256, DER signatures).
pub trait Signer {
    /// The public key verifiers check with.
    fn public_key(&self) -> Result<PublicKey, KeyError>;
    /// A DER signature of `payload`.
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, KeyError>;
}

impl Signer for PrivateKey {
    fn public_key(&self) -> Result<PublicKey, KeyError> {
        Ok(PrivateKey::public_key(self))
    }

    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, KeyError> {
        Ok(PrivateKey::sign(self, payload))
    }
}

/// A key reference as `--key` gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRef {
    /// An encrypted key file.
    File(std::path::PathBuf),
    /// A key in a PKCS#11 token.
    Pkcs11(Pkcs11Uri),
    /// A key in a cloud KMS: the scheme (`azurekms`) and the rest.
    Kms {
        /// `azurekms`, `awskms`, `gcpkms` or `hashivault`.
        scheme: String,
        /// What follows `://`.
        resource: String,
    },
}

/// The parts of a `pkcs11:` URI customs uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token=`: the token's label.
    pub token: String,
    /// `object=`: the key's label.
    pub object: String,
    /// `module-path=`, if given.
    pub module: Option<String>,
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl KeyRef {
    /// Reads `--key`.
    pub fn parse(s: &str) -> Result<KeyRef, String> {
        if let Some(rest) = s.strip_prefix("pkcs11:") {
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            let attr = |part: &str, key: &str| {
                part.split(if part == query { '&' } else { ';' })
                    .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
                    .map(percent_decode)
            };
            let token = attr(path, "token").ok_or_else(|| format!("{s}: a pkcs11 URI needs token=LABEL"))?;
            let object = attr(path, "object").ok_or_else(|| format!("{s}: a pkcs11 URI needs object=KEY-LABEL"))?;
            return Ok(KeyRef::Pkcs11(Pkcs11Uri {
                token,
                object,
                module: attr(query, "module-path"),
            }));
        }
        for scheme in ["azurekms", "awskms", "gcpkms", "hashivault"] {
            if let Some(resource) = s.strip_prefix(&format!("{scheme}://")) {
                if resource.is_empty() {
                    return Err(format!("{s}: name the key after {scheme}://"));
                }
                return Ok(KeyRef::Kms {
                    scheme: scheme.into(),
                    resource: resource.into(),
                });
            }
        }
        Ok(KeyRef::File(s.into()))
    }
}

/// A cloud KMS that signs without handing out the key. Backends implement it; [`open_signer`] routes
/// `SCHEME://…` references to them.
pub trait KmsBackend {
    /// The scheme it serves (`azurekms`).
    fn scheme(&self) -> &str;
    /// A signer for the key `resource` names.
    fn signer(&self, resource: &str) -> Result<Box<dyn Signer>, KeyError>;
}

/// The signer a reference names; `password` opens a key file, `backends` serve KMS references.
pub fn open_signer(reference: &KeyRef, password: &[u8], backends: &[&dyn KmsBackend]) -> Result<Box<dyn Signer>, KeyError> {
    match reference {
        KeyRef::File(path) => {
            let shown = path.display().to_string();
            let pem = std::fs::read_to_string(path).map_err(|e| KeyError::Malformed {
                what: shown.clone(),
                why: e.to_string(),
            })?;
            Ok(Box::new(PrivateKey::from_encrypted_pem(&pem, password, &shown)?))
        }
        KeyRef::Pkcs11(uri) => Ok(Box::new(Pkcs11Key::open(uri)?)),
        KeyRef::Kms { scheme, resource } => match backends.iter().find(|b| b.scheme() == scheme) {
            Some(backend) => backend.signer(resource),
            None => Err(KeyError::Malformed {
                what: format!("{scheme}://{resource}"),
                why: format!(
                    "no {scheme} backend is built into this customs yet; sign with a pkcs11: key (an HSM) or an encrypted key file"
                ),
            }),
        },
    }
}

fn hsm(what: &str, e: impl std::fmt::Display) -> KeyError {
    KeyError::Malformed {
        what: what.to_string(),
        why: e.to_string(),
    }
}

/// A P-256 key inside a PKCS#11 token: signing happens in the token.
pub struct Pkcs11Key {
    session: Session,
    private: cryptoki::object::ObjectHandle,
    public: PublicKey,
    shown: String,
    // The module stays loaded while the session lives.
    _context: Pkcs11,
}

fn session_for(uri: &Pkcs11Uri) -> Result<(Pkcs11, Session, String), KeyError> {
    let shown = format!("pkcs11:token={};object={}", uri.token, uri.object);
    let module = uri
        .module
        .clone()
        .or_else(|| std::env::var("CUSTOMS_PKCS11_MODULE").ok())
        .unwrap_or_else(|| DEFAULT_MODULE.into());
    let context = Pkcs11::new(&module).map_err(|e| hsm(&shown, format!("loading the PKCS#11 module {module}: {e}")))?;
    context
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(|e| hsm(&shown, format!("initializing {module}: {e}")))?;
    let slot = context
        .get_slots_with_token()
        .map_err(|e| hsm(&shown, e))?
        .into_iter()
        .find(|s| context.get_token_info(*s).is_ok_and(|t| t.label().trim() == uri.token))
        .ok_or_else(|| hsm(&shown, format!("no token labelled `{}` in {module}", uri.token)))?;
    let session = context.open_rw_session(slot).map_err(|e| hsm(&shown, e))?;
    let pin = std::env::var("CUSTOMS_PKCS11_PIN").map_err(|_| hsm(&shown, "set CUSTOMS_PKCS11_PIN to the token's user PIN"))?;
    session
        .login(UserType::User, Some(&AuthPin::from(pin)))
        .map_err(|e| hsm(&shown, format!("login: {e}")))?;
    Ok((context, session, shown))
}

fn public_of(session: &Session, label: &str, shown: &str) -> Result<PublicKey, KeyError> {
    let handle = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(|e| hsm(shown, e))?
        .into_iter()
        .next()
        .ok_or_else(|| hsm(shown, "the token holds no public key with that label"))?;
    let attributes = session
        .get_attributes(handle, &[AttributeType::EcPoint])
        .map_err(|e| hsm(shown, e))?;
    let Some(Attribute::EcPoint(point)) = attributes.into_iter().next() else {
        return Err(hsm(shown, "the public key has no EC point (is it a P-256 key?)"));
    };
    // CKA_EC_POINT is a DER OCTET STRING around the uncompressed point.
    let raw = match point.as_slice() {
        [0x04, len, rest @ ..] if *len as usize == rest.len() => rest,
        other => other,
    };
    let key = VerifyingKey::from_sec1_bytes(raw).map_err(|_| hsm(shown, "the public key is not on P-256"))?;
    Ok(PublicKey::from_verifying_key(key))
}

impl Pkcs11Key {
    /// Opens the key the URI names.
    pub fn open(uri: &Pkcs11Uri) -> Result<Pkcs11Key, KeyError> {
        let (context, session, shown) = session_for(uri)?;
        let private = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(uri.object.as_bytes().to_vec()),
            ])
            .map_err(|e| hsm(&shown, e))?
            .into_iter()
            .next()
            .ok_or_else(|| hsm(&shown, "the token holds no private key with that label"))?;
        let public = public_of(&session, &uri.object, &shown)?;
        Ok(Pkcs11Key {
            session,
            private,
            public,
            shown,
            _context: context,
        })
    }

    /// Makes a P-256 key pair inside the token (private: sensitive, not extractable) and returns its public key.
    pub fn generate(uri: &Pkcs11Uri) -> Result<PublicKey, KeyError> {
        let (_context, session, shown) = session_for(uri)?;
        let label = uri.object.as_bytes().to_vec();
        if !session
            .find_objects(&[Attribute::Label(label.clone())])
            .map_err(|e| hsm(&shown, e))?
            .is_empty()
        {
            return Err(hsm(&shown, "the token already holds an object with that label"));
        }
        session
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[
                    Attribute::Token(true),
                    Attribute::Private(false),
                    Attribute::KeyType(KeyType::EC),
                    Attribute::EcParams(P256_PARAMS.to_vec()),
                    Attribute::Verify(true),
                    Attribute::Label(label.clone()),
                ],
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Sign(true),
                    Attribute::Label(label),
                ],
            )
            .map_err(|e| hsm(&shown, format!("generating a P-256 key pair: {e}")))?;
        public_of(&session, &uri.object, &shown)
    }
}

impl Signer for Pkcs11Key {
    fn public_key(&self) -> Result<PublicKey, KeyError> {
        Ok(self.public.clone())
    }

    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, KeyError> {
        // CKM_ECDSA signs a digest: hash here, so any token that does P-256 works.
        let digest = sha2::Sha256::digest(payload);
        let raw = self
            .session
            .sign(&Mechanism::Ecdsa, self.private, &digest)
            .map_err(|e| hsm(&self.shown, format!("signing: {e}")))?;
        let signature = Signature::from_slice(&raw).map_err(|_| hsm(&self.shown, "the token's signature is not r||s of P-256"))?;
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_references_are_routed_by_their_form() {
        assert_eq!(KeyRef::parse("cosign.key").unwrap(), KeyRef::File("cosign.key".into()));
        assert_eq!(
            KeyRef::parse("pkcs11:token=customs;object=release%20key?module-path=/usr/lib/x.so&pin-value=no").unwrap(),
            KeyRef::Pkcs11(Pkcs11Uri {
                token: "customs".into(),
                object: "release key".into(),
                module: Some("/usr/lib/x.so".into()),
            })
        );
        assert!(KeyRef::parse("pkcs11:object=x").unwrap_err().contains("token="));
        assert_eq!(
            KeyRef::parse("azurekms://my-vault.vault.azure.net/release").unwrap(),
            KeyRef::Kms {
                scheme: "azurekms".into(),
                resource: "my-vault.vault.azure.net/release".into()
            }
        );
        let kms = KeyRef::parse("awskms://alias/release").unwrap();
        let err = open_signer(&kms, b"", &[]).err().unwrap().to_string();
        assert!(err.contains("no awskms backend"), "{err}");
        assert!(KeyRef::parse("gcpkms://").is_err());
    }
}

//! Checkpoints as C2SP signed notes (<https://c2sp.org/signed-note>), the format Go's checksum database and
//! transparency logs use: a text body, a blank line, and one `— NAME BASE64` line per signature, where BASE64
//! holds a 4-byte key hash and an Ed25519 signature over the body. Keys are written the same way as those tools
//! write them (`NAME+HASH+BASE64` to verify, `PRIVATE+KEY+NAME+HASH+BASE64` to sign), so a checkpoint can be
//! checked with `golang.org/x/mod/sumdb/note` as well as with `customs registry audit verify`.
//!
//! The body of a checkpoint names the log, the sequence number and hash of the chain head, and when it was signed:
//!
//! ```text
//! customs-registry audit registry.example.com
//! 1042
//! 9f2c…(64 hex digits)
//! time 2026-12-03T08:00:00Z
//! ```

use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// The signed-note algorithm byte of Ed25519.
const ED25519_ALGORITHM: u8 = 1;
/// The longest checkpoint read: a body and a few signatures take a few hundred bytes.
pub const NOTE_LIMIT: usize = 8 << 10;
/// What every checkpoint's first line starts with.
pub const ORIGIN_PREFIX: &str = "customs-registry audit ";

/// The 4-byte key hash of the signed-note format: SHA-256 over name, newline, algorithm and public key.
fn key_hash(name: &str, public: &[u8]) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([ED25519_ALGORITHM]);
    hasher.update(public);
    let digest = hasher.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 128 || name.chars().any(|c| c.is_whitespace() || c == '+' || c.is_control()) {
        return Err(format!(
            "key name `{name}` must be 1 to 128 characters without spaces or `+` (e.g. registry.example.com-audit)"
        ));
    }
    Ok(())
}

/// A private Ed25519 key that signs checkpoints.
pub struct SigningKey {
    name: String,
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.verifier().encode())
    }
}

impl SigningKey {
    /// A new random key called `name`.
    pub fn generate(name: &str) -> Result<SigningKey, String> {
        check_name(name)?;
        let pair = Ed25519KeyPair::generate().map_err(|_| "the system could not generate an Ed25519 key".to_string())?;
        Ok(SigningKey {
            name: name.to_string(),
            pair,
        })
    }

    /// Parses `PRIVATE+KEY+NAME+HASH+BASE64`; `what` names the source in errors.
    pub fn parse(text: &str, what: &str) -> Result<SigningKey, String> {
        let bad = |why: &str| format!("{what}: not a checkpoint signing key ({why}); make one with `customs registry audit keygen`");
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("no PRIVATE+KEY+ prefix"))?;
        let (name, hash, key) = split_key(rest).ok_or_else(|| bad("expected NAME+HASH+KEY"))?;
        check_name(name).map_err(|e| format!("{what}: {e}"))?;
        let key = STANDARD.decode(key).map_err(|_| bad("the key is not base64"))?;
        let seed = match key.split_first() {
            Some((&ED25519_ALGORITHM, seed)) if seed.len() == 32 => seed,
            _ => return Err(bad("not an Ed25519 seed")),
        };
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| bad("the seed is rejected"))?;
        let signing = SigningKey {
            name: name.to_string(),
            pair,
        };
        if signing.verifier().hash != hash {
            return Err(bad("its key hash does not match the key"));
        }
        Ok(signing)
    }

    /// The key as `PRIVATE+KEY+NAME+HASH+BASE64`.
    pub fn encode(&self) -> String {
        let seed = self.pair.seed().and_then(|s| s.as_be_bytes()).expect("an Ed25519 key has a seed");
        let mut bytes = vec![ED25519_ALGORITHM];
        bytes.extend_from_slice(seed.as_ref());
        let verifier = self.verifier();
        format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, verifier.hash, STANDARD.encode(bytes))
    }

    /// The public half.
    pub fn verifier(&self) -> VerifierKey {
        let public: [u8; 32] = self
            .pair
            .public_key()
            .as_ref()
            .try_into()
            .expect("Ed25519 public keys are 32 bytes");
        VerifierKey {
            hash: key_hash(&self.name, &public),
            name: self.name.clone(),
            public,
        }
    }
}

/// `NAME+HASH+KEY` → its parts, the hash as a number.
fn split_key(text: &str) -> Option<(&str, u32, &str)> {
    let mut parts = text.splitn(3, '+');
    let name = parts.next()?;
    let hash = parts.next()?;
    let key = parts.next()?;
    if hash.len() != 8 {
        return None;
    }
    Some((name, u32::from_str_radix(hash, 16).ok()?, key))
}

/// A public key that checks checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    hash: u32,
    public: [u8; 32],
}

impl VerifierKey {
    /// Parses `NAME+HASH+BASE64`; `what` names the source in errors.
    pub fn parse(text: &str, what: &str) -> Result<VerifierKey, String> {
        let bad = |why: &str| format!("{what}: not a checkpoint verifier key ({why}); it looks like NAME+1a2b3c4d+AQ…");
        let text = text.trim();
        if text.starts_with("PRIVATE+KEY+") {
            return Err(format!(
                "{what} is a private signing key: give the verifier key (the .pub file) instead, and keep the private one away from verifiers"
            ));
        }
        let (name, hash, key) = split_key(text).ok_or_else(|| bad("expected NAME+HASH+KEY"))?;
        check_name(name).map_err(|e| format!("{what}: {e}"))?;
        let key = STANDARD.decode(key).map_err(|_| bad("the key is not base64"))?;
        let public: [u8; 32] = match key.split_first() {
            Some((&ED25519_ALGORITHM, public)) => public.try_into().map_err(|_| bad("not 32 bytes of Ed25519"))?,
            _ => return Err(bad("not an Ed25519 key")),
        };
        if key_hash(name, &public) != hash {
            return Err(bad("its key hash does not match the key"));
        }
        Ok(VerifierKey {
            name: name.to_string(),
            hash,
            public,
        })
    }

    /// The key as `NAME+HASH+BASE64`.
    pub fn encode(&self) -> String {
        let mut bytes = vec![ED25519_ALGORITHM];
        bytes.extend_from_slice(&self.public);
        format!("{}+{:08x}+{}", self.name, self.hash, STANDARD.encode(bytes))
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A signed statement that the audit chain of `origin` had `seq` records ending in `head` at `time`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// `customs-registry audit SERVICE`.
    pub origin: String,
    /// Sequence number of the head record.
    pub seq: u64,
    /// Its hash (64 hex digits).
    pub head: String,
    /// When it was signed (RFC 3339).
    pub time: String,
}

impl Checkpoint {
    fn body(&self) -> String {
        format!("{}\n{}\n{}\ntime {}\n", self.origin, self.seq, self.head, self.time)
    }

    /// The checkpoint as a signed note.
    pub fn sign(&self, key: &SigningKey) -> String {
        let body = self.body();
        let signature = key.pair.sign(body.as_bytes());
        let mut blob = key.verifier().hash.to_be_bytes().to_vec();
        blob.extend_from_slice(signature.as_ref());
        format!("{body}\n\u{2014} {} {}\n", key.name, STANDARD.encode(blob))
    }

    /// Reads a signed note and checks its signature by `key`. Errors say what is wrong (`what` names the note).
    pub fn open(note: &str, key: &VerifierKey, what: &str) -> Result<Checkpoint, String> {
        if note.len() > NOTE_LIMIT {
            return Err(format!("{what}: {} bytes; a checkpoint is at most {NOTE_LIMIT}", note.len()));
        }
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| format!("{what}: not a signed note (no blank line before the signatures)"))?;
        let (body, signatures) = (&note[..split + 1], &note[split + 2..]);
        if !signatures.ends_with('\n') {
            return Err(format!("{what}: not a signed note (the last signature line is not ended)"));
        }
        let mut signers = Vec::new();
        for line in signatures.lines() {
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or_else(|| format!("{what}: `{}` is not a signature line", line.chars().take(40).collect::<String>()))?;
            let (name, blob) = rest
                .rsplit_once(' ')
                .ok_or_else(|| format!("{what}: a signature line has no signature"))?;
            let blob = STANDARD
                .decode(blob)
                .map_err(|_| format!("{what}: the signature by `{name}` is not base64"))?;
            if blob.len() < 4 {
                return Err(format!("{what}: the signature by `{name}` is too short"));
            }
            let hash = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]);
            if name == key.name && hash == key.hash {
                UnparsedPublicKey::new(&ED25519, &key.public)
                    .verify(body.as_bytes(), &blob[4..])
                    .map_err(|_| {
                        format!(
                            "{what}: the signature by {} does not verify: the checkpoint was changed or forged",
                            key.name
                        )
                    })?;
                return Checkpoint::parse_body(body, what);
            }
            signers.push(format!("{name}+{hash:08x}"));
        }
        Err(format!(
            "{what}: not signed by {}+{:08x} (signed by: {})",
            key.name,
            key.hash,
            if signers.is_empty() {
                "nobody".to_string()
            } else {
                signers.join(", ")
            }
        ))
    }

    fn parse_body(body: &str, what: &str) -> Result<Checkpoint, String> {
        let lines: Vec<&str> = body.lines().collect();
        let bad = |why: &str| format!("{what}: signed, but not an audit checkpoint ({why})");
        let [origin, seq, head, time] = lines[..] else {
            return Err(bad("expected 4 lines: origin, sequence number, head hash, time"));
        };
        if !origin.starts_with(ORIGIN_PREFIX) {
            return Err(bad("its first line does not name a customs registry audit log"));
        }
        let seq = seq.parse().map_err(|_| bad("the sequence number is not a number"))?;
        if head.len() != 64 || !head.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(bad("the head is not 64 lowercase hex digits"));
        }
        let time = time.strip_prefix("time ").ok_or_else(|| bad("no time line"))?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            seq,
            head: head.to_string(),
            time: time.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: format!("{ORIGIN_PREFIX}registry.example"),
            seq: 1042,
            head: "ab".repeat(32),
            time: "2026-12-03T08:00:00Z".into(),
        }
    }

    #[test]
    fn a_signed_checkpoint_opens_with_its_key_and_keys_round_trip() {
        let key = SigningKey::generate("registry.example-audit").unwrap();
        let note = checkpoint().sign(&key);
        assert!(note.starts_with("customs-registry audit registry.example\n1042\n"), "{note}");
        assert!(note.contains("\n\n\u{2014} registry.example-audit "), "{note}");
        let verifier = VerifierKey::parse(&key.verifier().encode(), "pub").unwrap();
        assert_eq!(Checkpoint::open(&note, &verifier, "note").unwrap(), checkpoint());
        let again = SigningKey::parse(&key.encode(), "key").unwrap();
        assert_eq!(again.verifier(), key.verifier());
        assert_eq!(
            Checkpoint::open(&checkpoint().sign(&again), &verifier, "note").unwrap(),
            checkpoint()
        );
    }

    /// Keys carry their hash (a wrong one is refused) and the seed is Ed25519's: the all-zero seed gives the
    /// well-known public key 3b6a27bc….
    #[test]
    fn key_encoding_follows_the_signed_note_format() {
        let mut seed = vec![ED25519_ALGORITHM];
        seed.extend_from_slice(&[0u8; 32]);
        let text = format!("PRIVATE+KEY+test+{:08x}+{}", 0, STANDARD.encode(&seed));
        // The hash in `text` is wrong on purpose: it must be refused, and the right one accepted.
        assert!(SigningKey::parse(&text, "k").unwrap_err().contains("key hash"));
        let pair = Ed25519KeyPair::from_seed_unchecked(&[0u8; 32]).unwrap();
        let hash = key_hash("test", pair.public_key().as_ref());
        let key = SigningKey::parse(&format!("PRIVATE+KEY+test+{hash:08x}+{}", STANDARD.encode(&seed)), "k").unwrap();
        let public = hex::encode(key.verifier().public);
        assert_eq!(public, "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29");
        assert!(key.verifier().encode().starts_with(&format!("test+{hash:08x}+AT")));
    }

    #[test]
    fn changed_forged_and_foreign_checkpoints_are_refused() {
        let key = SigningKey::generate("audit").unwrap();
        let verifier = key.verifier();
        let note = checkpoint().sign(&key);
        let changed = note.replacen("1042", "1043", 1);
        assert!(Checkpoint::open(&changed, &verifier, "n").unwrap_err().contains("does not verify"));
        let other = SigningKey::generate("audit").unwrap();
        let err = Checkpoint::open(&checkpoint().sign(&other), &verifier, "n").unwrap_err();
        assert!(err.contains("not signed by audit+"), "{err}");
        let err = Checkpoint::open(&note.replace('\u{2014}', "-"), &verifier, "n").unwrap_err();
        assert!(err.contains("not a signature line"), "{err}");
        let err = Checkpoint::open(&"x".repeat(NOTE_LIMIT + 1), &verifier, "n").unwrap_err();
        assert!(err.contains("at most"), "{err}");
        assert!(VerifierKey::parse(&key.encode(), "k").unwrap_err().contains("private"));
        assert!(SigningKey::generate("has space").is_err());
    }

    proptest! {
        /// Arbitrary text is an error, never a panic.
        #[test]
        fn arbitrary_notes_never_panic(text in "(\\PC|\n){0,300}") {
            let key = SigningKey::generate("audit").unwrap();
            prop_assert!(Checkpoint::open(&text, &key.verifier(), "n").is_err());
            let _ = VerifierKey::parse(&text, "k");
            let _ = SigningKey::parse(&text, "k");
        }
    }
}

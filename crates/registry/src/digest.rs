//! Content digests: `sha256:<64 lowercase hex>` (the canonical one) and `sha512:<128 lowercase hex>`, the two
//! algorithms OCI image-spec 1.1 registers.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

/// A digest algorithm the registry stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// SHA-256, the default.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// `sha256` or `sha512`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A streaming hash of either algorithm.
#[derive(Clone)]
pub enum Hasher {
    /// SHA-256.
    Sha256(Sha256),
    /// SHA-512.
    Sha512(Sha512),
}

impl Hasher {
    /// A new hasher.
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    /// Hashes more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything hashed.
    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest(format!("sha256:{}", hex::encode(h.finalize()))),
            Hasher::Sha512(h) => Digest(format!("sha512:{}", hex::encode(h.finalize()))),
        }
    }
}

/// A validated content digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// The SHA-256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::of_with(Algorithm::Sha256, bytes)
    }

    /// The digest of `bytes` with `algorithm`.
    pub fn of_with(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(bytes);
        hasher.finish()
    }

    /// From a finished SHA-256 hasher.
    pub fn from_sha256(hasher: Sha256) -> Digest {
        Digest(format!("sha256:{}", hex::encode(hasher.finalize())))
    }

    /// Its algorithm.
    pub fn algorithm(&self) -> Algorithm {
        if self.0.starts_with("sha512:") {
            Algorithm::Sha512
        } else {
            Algorithm::Sha256
        }
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.0[self.algorithm().name().len() + 1..]
    }

    /// The full `sha256:...` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not a digest the registry accepts.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Not `algorithm:encoded`.
    #[error("`{0}` is not a digest (expected sha256:<64 hex characters> or sha512:<128 hex characters>)")]
    Malformed(String),
    /// A well-formed digest of an algorithm this registry does not store.
    #[error("digest algorithm `{0}` is not supported; use sha256 or sha512")]
    Unsupported(String),
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Digest, DigestError> {
        let (algorithm, encoded) = s.split_once(':').ok_or_else(|| DigestError::Malformed(s.to_string()))?;
        let algorithm_ok = !algorithm.is_empty()
            && algorithm
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
        if !algorithm_ok || encoded.is_empty() {
            return Err(DigestError::Malformed(s.to_string()));
        }
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => return Err(DigestError::Unsupported(other.to_string())),
        };
        if encoded.len() != algorithm.hex_len() || !encoded.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(DigestError::Malformed(s.to_string()));
        }
        Ok(Digest(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sha256_and_sha512() {
        let d = Digest::of(b"");
        assert_eq!(
            d.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.as_str().parse::<Digest>().unwrap(), d);
        assert!(matches!("sha512:abcd".parse::<Digest>(), Err(DigestError::Malformed(_))));
        assert!(matches!("sha384:abcd".parse::<Digest>(), Err(DigestError::Unsupported(_))));
        let long = Digest::of_with(Algorithm::Sha512, b"");
        assert!(long.as_str().starts_with("sha512:cf83e1357eefb8bd"), "{long}");
        assert_eq!(long.as_str().parse::<Digest>().unwrap(), long);
        assert_eq!(long.hex().len(), 128);
        assert_eq!(long.algorithm(), Algorithm::Sha512);
        assert!(matches!("sha256:ABCD".parse::<Digest>(), Err(DigestError::Malformed(_))));
        assert!(matches!("latest".parse::<Digest>(), Err(DigestError::Malformed(_))));
        assert!(matches!(
            format!("sha256:{}", "A".repeat(64)).parse::<Digest>(),
            Err(DigestError::Malformed(_))
        ));
    }
}

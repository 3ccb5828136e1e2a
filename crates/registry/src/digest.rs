//! Content digests (`sha256:<64 lowercase hex>`): the only algorithm the registry stores.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A validated SHA-256 content digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// From a finished hasher.
    pub fn from_hasher(hasher: Sha256) -> Digest {
        Digest(format!("sha256:{}", hex::encode(hasher.finalize())))
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
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
    #[error("`{0}` is not a digest (expected sha256:<64 hex characters>)")]
    Malformed(String),
    /// A well-formed digest of an algorithm this registry does not store.
    #[error("digest algorithm `{0}` is not supported; use sha256")]
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
        if algorithm != "sha256" {
            return Err(DigestError::Unsupported(algorithm.to_string()));
        }
        if encoded.len() != 64 || !encoded.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(DigestError::Malformed(s.to_string()));
        }
        Ok(Digest(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sha256_only() {
        let d = Digest::of(b"");
        assert_eq!(
            d.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.as_str().parse::<Digest>().unwrap(), d);
        assert!(matches!("sha512:abcd".parse::<Digest>(), Err(DigestError::Unsupported(_))));
        assert!(matches!("sha256:ABCD".parse::<Digest>(), Err(DigestError::Malformed(_))));
        assert!(matches!("latest".parse::<Digest>(), Err(DigestError::Malformed(_))));
        assert!(matches!(
            format!("sha256:{}", "A".repeat(64)).parse::<Digest>(),
            Err(DigestError::Malformed(_))
        ));
    }
}

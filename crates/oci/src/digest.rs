//! Content digests (`sha256:<hex>`) and a reader that verifies them while streaming.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

use crate::error::{Error, Result};

/// A content digest as used in OCI descriptors, e.g. `sha256:e3b0c442…`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// The hash algorithms the OCI image spec registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the default everywhere.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    fn name(self) -> &'static str {
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

impl Digest {
    /// The digest of `bytes` with SHA-256.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// The algorithm part (`sha256`).
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part, which is also the blob's file name in an OCI layout.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Checks `bytes` against this digest; `input` names them in the error.
    pub fn verify(&self, input: &str, bytes: &[u8]) -> Result<()> {
        let mut hasher = Hasher::new(self.algorithm);
        hasher.update(bytes);
        hasher.finish_against(input, self)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

/// The reason a digest string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {0:?}: expected sha256:<64 lowercase hex> or sha512:<128 lowercase hex>")]
pub struct ParseDigestError(String);

impl FromStr for Digest {
    type Err = ParseDigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseDigestError(s.to_string());
        let (alg, hex) = s.split_once(':').ok_or_else(err)?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(err()),
        };
        // Lowercase only: the hex doubles as a file name, and two spellings of one digest must not exist.
        if hex.len() != algorithm.hex_len() || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(err());
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest {
                algorithm: Algorithm::Sha256,
                hex: hex::encode(h.finalize()),
            },
            Hasher::Sha512(h) => Digest {
                algorithm: Algorithm::Sha512,
                hex: hex::encode(h.finalize()),
            },
        }
    }

    fn finish_against(self, input: &str, expected: &Digest) -> Result<()> {
        let actual = self.finish();
        if &actual == expected {
            Ok(())
        } else {
            Err(Error::DigestMismatch {
                input: input.to_string(),
                expected: expected.to_string(),
                actual: actual.to_string(),
            })
        }
    }
}

/// Wraps a reader, hashing every byte that passes through and counting them.
///
/// Call [`VerifyingReader::verify`] once the stream was read to its end.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Option<Hasher>,
    expected: Option<Digest>,
    read: u64,
}

impl<R: Read> VerifyingReader<R> {
    /// Verifies against `expected` when given; otherwise only counts bytes.
    pub fn new(inner: R, expected: Option<Digest>) -> Self {
        let hasher = expected.as_ref().map(|d| Hasher::new(d.algorithm));
        VerifyingReader {
            inner,
            hasher,
            expected,
            read: 0,
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Reads whatever is left, then compares the digest; `input` names the stream in errors.
    ///
    /// Returns the total number of bytes the stream held.
    pub fn verify(mut self, input: &str) -> Result<u64> {
        io::copy(&mut self, &mut io::sink()).map_err(|e| Error::io(input, e))?;
        if let (Some(hasher), Some(expected)) = (self.hasher, self.expected) {
            hasher.finish_against(input, &expected)?;
        }
        Ok(self.read)
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        let s = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let d: Digest = s.parse().unwrap();
        assert_eq!(d.to_string(), s);
        assert_eq!(d, Digest::sha256_of(b""));
    }

    #[test]
    fn refuses_uppercase_short_and_unknown() {
        for bad in [
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:abc",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn verifying_reader_catches_mismatch() {
        let good = Digest::sha256_of(b"hello");
        let r = VerifyingReader::new(&b"hello"[..], Some(good.clone()));
        r.verify("blob").unwrap();
        let r = VerifyingReader::new(&b"hellO"[..], Some(good));
        let err = r.verify("blob").unwrap_err().to_string();
        assert!(err.starts_with("blob: digest mismatch"), "{err}");
    }
}

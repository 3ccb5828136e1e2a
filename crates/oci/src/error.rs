//! Errors that name the input they came from and say what to do next.

use std::io;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while opening or reading an image.
///
/// Every variant carries `input`: the file, blob or layer the problem was
/// found in, so that a user can tell which of many inputs is bad.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading from the filesystem or a stream failed.
    #[error("{input}: {source}")]
    Io {
        /// The file, blob or layer that was being read.
        input: String,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The input is not a well-formed image.
    #[error("{input}: {message}")]
    Invalid {
        /// The file, blob or layer that is malformed.
        input: String,
        /// What is wrong with it.
        message: String,
    },
    /// A blob's content does not hash to the digest its descriptor promised.
    #[error(
        "{input}: digest mismatch: expected {expected}, content hashes to {actual}; the image is corrupt or was tampered with, fetch it again"
    )]
    DigestMismatch {
        /// The blob or layer that was verified.
        input: String,
        /// The digest the manifest or config promised.
        expected: String,
        /// The digest of the bytes actually read.
        actual: String,
    },
    /// A layer holds a path that would escape the image root (`../`) or is otherwise unsafe.
    #[error("{input}: refusing unsafe path {path:?}: {why}")]
    UnsafePath {
        /// The layer holding the entry.
        input: String,
        /// The path as written in the layer.
        path: String,
        /// Why it was refused.
        why: &'static str,
    },
    /// The image does not hold a manifest for the requested platform.
    #[error("{input}: no image for platform {wanted}; available: {available}. Pick one with --platform")]
    PlatformNotFound {
        /// The index that was searched.
        input: String,
        /// The platform that was asked for.
        wanted: String,
        /// The platforms the index offers.
        available: String,
    },
}

impl Error {
    pub(crate) fn io(input: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            input: input.into(),
            source,
        }
    }

    pub(crate) fn invalid(input: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            input: input.into(),
            message: message.into(),
        }
    }
}

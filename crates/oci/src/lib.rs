//! Container image sources and a layer-aware filesystem view.
//!
//! Open an image with [`Image::open`] (docker-archive tarball, OCI layout
//! directory or tar, or a plain rootfs directory), then call
//! [`Image::filesystem`] with an [`Interest`] that says which files' bytes to
//! keep. Every layer is read once, streaming, with its digest verified; the
//! result is an [`FsView`]: the final tree after whiteouts, the layer that last
//! wrote each file, and the file versions later layers deleted or overwrote.
//!
//! Paths are never trusted: `..` that climbs out of the root is an error, and
//! symlinks resolve inside the image root, never on the host.

#![warn(missing_docs)]

mod config;
mod digest;
mod error;
mod fs;
mod layer;
pub mod path;
mod registry;
mod rootfs;
mod source;
mod tar_entries;

pub use config::{History, ImageConfig, RootFs, RuntimeConfig};
pub use digest::{Algorithm, Digest, ParseDigestError, VerifyingReader};
pub use error::{Error, Result};
pub use fs::{EntryKind, EntryMeta, FileEntry, FsBuilder, FsView, HiddenBy, HiddenEntry, LayerInfo};
pub use layer::{Both, Compression, Interest, LayerChanges, NoContent, decompress, read_layer_tar};
pub use registry::{FetchedManifest, Reference, RegistryClient, RegistryOptions, docker_config_credentials, http_agent};
pub use source::{BlobSource, Image, LayerBlob, NoProgress, OpenOptions, Platform, Progress, Source};

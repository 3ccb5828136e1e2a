//! Image signatures as cosign makes them, so cosign users and customs verify each other's: keys in cosign's
//! encrypted format ([`key`]), the simple-signing payload ([`payload`]), the signature manifests stored beside
//! an image under `sha256-<hex>.sig` or as OCI 1.1 referrers ([`manifest`]), and signing and verifying an image
//! in a registry ([`image`]).
//!
//! The core (keys, payloads, manifests) is pure; [`image`] does the registry I/O through
//! `customs_oci::RegistryClient`.

pub mod image;
pub mod key;
pub mod manifest;
pub mod metadata;
pub mod payload;
pub mod signer;

pub use key::{KeyError, PrivateKey, PublicKey};

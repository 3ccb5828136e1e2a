//! Package detection in a container filesystem.
//!
//! [`CatalogInterest`] tells [`customs_oci::Image::filesystem`] which files to
//! keep, so one pass over each layer feeds every cataloger; [`catalog`] then
//! turns the resulting view into an [`Inventory`]: dpkg (incl. distroless
//! `status.d`), apk, rpm (SQLite database), Python, Node, Java (Maven metadata
//! in nested archives), Go binaries and Rust binaries built with cargo-auditable.
//! Every package carries a PURL, the file that proved it and the layer that added it.

#![warn(missing_docs)]

mod apk;
mod binary;
mod control;
mod dpkg;
mod java;
pub mod lockfile;
mod node;
mod os_release;
mod package;
mod python;
mod rpm;

use customs_oci::{EntryMeta, FsView, Interest};
use serde::Serialize;

pub use package::{Distro, Package, PackageKind};

/// Limit for package databases and metadata files.
const MAX_METADATA: u64 = 256 << 20;
/// Limit for binaries and archives read whole.
const MAX_ARTIFACT: u64 = 512 << 20;
/// Binaries smaller than this are shims and scripts, never Go or Rust programs.
const MIN_BINARY: u64 = 4 << 10;

/// Everything found in an image.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Inventory {
    /// The distribution, when the image says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distro: Option<Distro>,
    /// Packages sorted by kind, name, version and location.
    pub packages: Vec<Package>,
    /// Problems that made the inventory incomplete.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub warnings: Vec<String>,
    /// Files that name packages but could not be read (a lockfile that does not parse): a gate cannot pass
    /// what it could not see, so it fails on these.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub unreadable: Vec<String>,
}

/// The files catalogers need, and how each is reduced before it is kept.
#[derive(Clone, Copy, Debug, Default)]
pub struct CatalogInterest;

impl CatalogInterest {
    fn is_metadata(path: &str) -> bool {
        os_release::PATHS.contains(&path)
            || dpkg::wants(path)
            || path == apk::INSTALLED
            || rpm::SQLITE_PATHS.contains(&path)
            || python::wants(path)
            || node::wants(path)
    }
}

impl Interest for CatalogInterest {
    fn wants(&self, entry: &EntryMeta) -> Option<u64> {
        if Self::is_metadata(entry.path) {
            Some(MAX_METADATA)
        } else if java::wants(entry.path) || (entry.mode & 0o111 != 0 && entry.size >= MIN_BINARY) {
            Some(MAX_ARTIFACT)
        } else {
            None
        }
    }

    fn keep(&self, entry: &EntryMeta, bytes: &[u8]) -> Option<Vec<u8>> {
        let path = entry.path;
        if Self::is_metadata(path) {
            Some(bytes.to_vec())
        } else if binary::is_elf(bytes) {
            binary::extract(bytes).and_then(|info| serde_json::to_vec(&info).ok())
        } else if java::wants(path) {
            let coords = java::extract(bytes);
            (!coords.is_empty()).then(|| serde_json::to_vec(&coords).ok()).flatten()
        } else {
            None
        }
    }
}

/// Finds every package in `view`.
pub fn catalog(view: &FsView) -> Inventory {
    let distro = os_release::detect(view);
    let mut warnings = Vec::new();
    let mut packages = dpkg::catalog(view, distro.as_ref());
    packages.extend(apk::catalog(view, distro.as_ref()));
    packages.extend(rpm::catalog(view, distro.as_ref(), &mut warnings));
    for entry in view.files() {
        let Some(content) = &entry.content else { continue };
        let found: Vec<Package> = if python::wants(&entry.path) {
            python::parse(&String::from_utf8_lossy(content), &entry.path).into_iter().collect()
        } else if node::wants(&entry.path) {
            node::parse(content, &entry.path).into_iter().collect()
        } else if CatalogInterest::is_metadata(&entry.path) {
            continue;
        } else if java::wants(&entry.path) {
            java::packages(content, &entry.path)
        } else {
            binary::packages(content, &entry.path)
        };
        packages.extend(found.into_iter().map(|mut p| {
            p.layer = Some(entry.layer);
            p
        }));
    }
    packages.sort_by(|a, b| (a.kind, &a.name, &a.version, &a.location).cmp(&(b.kind, &b.name, &b.version, &b.location)));
    packages.dedup_by(|a, b| a.kind == b.kind && a.name == b.name && a.version == b.version && a.location == b.location);
    Inventory {
        distro,
        packages,
        warnings,
        unreadable: Vec::new(),
    }
}

/// The files source mode reads: lockfiles and manifests, by name ([`lockfile::Format::of`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct SourceInterest;

impl Interest for SourceInterest {
    fn wants(&self, entry: &EntryMeta) -> Option<u64> {
        lockfile::Format::of(entry.path).map(|_| MAX_METADATA)
    }

    fn keep(&self, _: &EntryMeta, bytes: &[u8]) -> Option<Vec<u8>> {
        Some(bytes.to_vec())
    }
}

/// Folders whose lockfiles describe someone else's project: installed dependencies and vendored code, which
/// the project's own lockfile already pins.
fn is_dependency_folder(path: &str) -> bool {
    path.split('/').any(|part| matches!(part, "node_modules" | "vendor" | ".git"))
}

/// Every package the lockfiles and manifests in `view` (a project folder read with [`SourceInterest`]) pin.
/// A file its name calls a lockfile but that does not parse is a warning naming it: the inventory is then
/// incomplete, and says so.
pub fn catalog_source(view: &FsView) -> Inventory {
    let mut packages = Vec::new();
    let mut warnings = Vec::new();
    let mut unreadable = Vec::new();
    for entry in view.files() {
        let (Some(format), Some(content)) = (lockfile::Format::of(&entry.path), &entry.content) else {
            continue;
        };
        if is_dependency_folder(&entry.path) {
            continue;
        }
        match lockfile::parse(format, content, &entry.path) {
            Ok(parsed) => {
                packages.extend(parsed.packages);
                warnings.extend(parsed.warnings);
            }
            Err(e) => {
                warnings.push(format!("{e}; its packages were not checked"));
                unreadable.push(entry.path.clone());
            }
        }
    }
    packages.sort_by(|a, b| (a.kind, &a.name, &a.version, &a.location, a.line).cmp(&(b.kind, &b.name, &b.version, &b.location, b.line)));
    Inventory {
        distro: None,
        packages,
        warnings,
        unreadable,
    }
}

/// PEP 503 normalization of a Python distribution name: lowercase, runs of `-_.` become `-`.
pub fn normalize_python_name(name: &str) -> String {
    python::normalize(name)
}

/// Parses a dpkg status file (or one `status.d` entry) on its own, for fixtures and tools.
pub fn parse_dpkg_status(text: &str, location: &str) -> Vec<Package> {
    dpkg::parse(text, location, None)
}

/// Parses an apk `installed` database on its own, for fixtures and tools.
pub fn parse_apk_installed(text: &str, location: &str) -> Vec<Package> {
    apk::parse(text, location, None)
}

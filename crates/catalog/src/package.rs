//! The package model every cataloger produces.

use serde::{Deserialize, Serialize};

/// The ecosystem a package belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageKind {
    /// Debian/Ubuntu packages from the dpkg database.
    Deb,
    /// Alpine packages from the apk database.
    Apk,
    /// RPM packages from the rpm database.
    Rpm,
    /// Python distributions (`*.dist-info`, `*.egg-info`).
    Python,
    /// Node packages under `node_modules`.
    Npm,
    /// Java archives with Maven metadata.
    Maven,
    /// Go modules compiled into a binary.
    Go,
    /// Rust crates recorded by cargo-auditable, or pinned in `Cargo.lock`.
    Cargo,
    /// Ruby gems pinned in `Gemfile.lock`.
    Gem,
    /// PHP packages pinned in `composer.lock`.
    Composer,
}

impl PackageKind {
    /// The PURL type for this ecosystem.
    pub fn purl_type(self) -> &'static str {
        match self {
            PackageKind::Deb => "deb",
            PackageKind::Apk => "apk",
            PackageKind::Rpm => "rpm",
            PackageKind::Python => "pypi",
            PackageKind::Npm => "npm",
            PackageKind::Maven => "maven",
            PackageKind::Go => "golang",
            PackageKind::Cargo => "cargo",
            PackageKind::Gem => "gem",
            PackageKind::Composer => "composer",
        }
    }

    /// True for packages of the operating system's own package manager.
    pub fn is_os(self) -> bool {
        matches!(self, PackageKind::Deb | PackageKind::Apk | PackageKind::Rpm)
    }
}

/// One installed package and the evidence for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// Name as its ecosystem spells it (Maven: `group:artifact`).
    pub name: String,
    /// Version as its ecosystem spells it (dpkg: with epoch).
    pub version: String,
    /// The ecosystem.
    pub kind: PackageKind,
    /// The source package it was built from (dpkg `Source:`, apk origin, rpm source name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    /// The source package's version, when it differs from `version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// CPU architecture, for OS packages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Declared licences, as written.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub licenses: Vec<String>,
    /// Package URL.
    pub purl: String,
    /// The file that proved the package is installed.
    pub location: String,
    /// Index of the layer that added the package, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    /// The line of `location` that names the package (lockfiles and manifests), 1-based.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub line: Option<u32>,
    /// Whether the project names it itself (`true`) or it comes in through another package (`false`), where the
    /// lockfile says.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub direct: Option<bool>,
    /// Needed only to develop or test the project (npm `devDependencies`, Poetry's dev group, …): not shipped,
    /// so the gate leaves it out unless asked (`--include-dev-deps`).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub dev: bool,
}

impl Package {
    /// `location`, with `:line` when the line is known: where to look.
    pub fn place(&self) -> String {
        match self.line {
            Some(line) => format!("{}:{line}", self.location),
            None => self.location.clone(),
        }
    }
}

/// The distribution an image is built on, from `os-release`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distro {
    /// `ID` (`debian`, `alpine`, `rhel`, …).
    pub id: String,
    /// `VERSION_ID` (`12`, `3.19.1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// `VERSION_CODENAME` (`bookworm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codename: Option<String>,
    /// `PRETTY_NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
    /// `ID_LIKE`, split.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub id_like: Vec<String>,
}

impl Distro {
    /// `debian-12`-style qualifier used in OS package PURLs.
    pub fn purl_qualifier(&self) -> String {
        match &self.version_id {
            Some(v) => format!("{}-{v}", self.id),
            None => self.id.clone(),
        }
    }
}

/// Builds a PURL; falls back to a minimal hand-escaped form if a part is refused.
pub(crate) fn purl(kind: PackageKind, namespace: Option<&str>, name: &str, version: &str, qualifiers: &[(&str, &str)]) -> String {
    let build = || -> Result<String, packageurl::Error> {
        let mut p = packageurl::PackageUrl::new(kind.purl_type(), name)?;
        if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
            p.with_namespace(ns)?;
        }
        if !version.is_empty() {
            p.with_version(version)?;
        }
        for (k, v) in qualifiers {
            if !v.is_empty() {
                p.add_qualifier(*k, *v)?;
            }
        }
        Ok(p.to_string())
    };
    build().unwrap_or_else(|_| {
        format!(
            "pkg:{}/{}@{}",
            kind.purl_type(),
            name.replace(['/', '@', '?', '#'], "_"),
            version.replace(['?', '#'], "_")
        )
    })
}

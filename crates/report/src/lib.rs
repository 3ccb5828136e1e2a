//! Renderings of customs results for people and for CI: a table, JSON, and
//! the SBOM standards CycloneDX 1.6 and SPDX 2.3 (JSON).
//!
//! Renderers are pure: they take the result and a [`DocumentStamp`] (time and
//! unique id, chosen by the caller) and return text, so output is reproducible
//! in tests.

#![warn(missing_docs)]

mod cyclonedx;
mod findings;
mod gate;
mod github;
mod lint;
pub mod notify;
mod sarif;
mod spdx;
mod summary;
mod table;

use customs_catalog::Inventory;
use customs_oci::{Digest, LayerInfo};
use serde::Serialize;

pub use cyclonedx::{cyclonedx, cyclonedx_with_vulnerabilities};
pub use findings::{findings_json, findings_table, findings_table_styled};
pub use gate::{GateResult, findings_sarif_with_secrets, gate_json, gate_junit, gate_markdown, gate_sarif, gate_vex};
pub use github::{GithubJob, github_snapshot};
pub use lint::{LintedFile, lint_checkstyle, lint_json, lint_junit, lint_sarif, lint_tty};
pub use sarif::findings_sarif;
pub use spdx::spdx;
pub use summary::scan_summary;
pub use table::table;

/// The image (or directory) an inventory describes.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Subject {
    /// The source as the user named it.
    pub name: String,
    /// Manifest digest, when the source has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<Digest>,
    /// Config digest (the image ID), when the source has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<Digest>,
    /// Tags the source records.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub tags: Vec<String>,
    /// `os/arch` of the image, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The layers, base first.
    pub layers: Vec<LayerInfo>,
}

/// What makes one generated document unique: when it was made and its id.
#[derive(Clone, Copy, Debug)]
pub struct DocumentStamp {
    /// Creation time.
    pub created: time::OffsetDateTime,
    /// Serial number / namespace id.
    pub id: uuid::Uuid,
}

impl DocumentStamp {
    /// Now, with a random id.
    pub fn now() -> Self {
        DocumentStamp {
            created: time::OffsetDateTime::now_utc(),
            id: uuid::Uuid::new_v4(),
        }
    }

    pub(crate) fn created_rfc3339(&self) -> String {
        let t = self
            .created
            .to_offset(time::UtcOffset::UTC)
            .replace_nanosecond(0)
            .unwrap_or(self.created);
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
    }
}

/// The version written into generated documents.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where a finding's package was found, for a table cell: `file:line` for a lockfile's package (source mode),
/// else the image layer that added it.
pub fn where_found(p: &customs_catalog::Package) -> String {
    match (p.line, p.layer) {
        (Some(_), _) => p.place(),
        (None, Some(layer)) => layer.to_string(),
        (None, None) => "-".into(),
    }
}

/// The inventory as customs' own JSON: subject, distro, packages, warnings.
pub fn json(subject: &Subject, inventory: &Inventory) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        schema: &'static str,
        subject: &'a Subject,
        #[serde(flatten)]
        inventory: &'a Inventory,
    }
    let mut s = serde_json::to_string_pretty(&Doc {
        schema: "customs.sbom/v1",
        subject,
        inventory,
    })
    .expect("inventory serializes");
    s.push('\n');
    s
}

/// A short, stable reference for a package inside one document.
pub(crate) fn package_ref(index: usize, p: &customs_catalog::Package) -> String {
    let mut s = format!("{}-{index}-", p.kind.purl_type());
    s.extend(p.name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
            c
        } else {
            '-'
        }
    }));
    s
}

#[cfg(test)]
pub(crate) mod fixture {
    use customs_catalog::{Distro, Inventory, Package, PackageKind};
    use customs_oci::LayerInfo;

    use super::{DocumentStamp, Subject};

    pub fn stamp() -> DocumentStamp {
        DocumentStamp {
            created: time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            id: uuid::Uuid::from_u128(0x1234),
        }
    }

    pub fn subject() -> Subject {
        Subject {
            name: "app.tar".into(),
            manifest_digest: None,
            config_digest: Some(
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                    .parse()
                    .unwrap(),
            ),
            tags: vec!["localhost/app:1.0".into()],
            platform: Some("linux/amd64".into()),
            layers: vec![LayerInfo {
                index: 0,
                digest: None,
                diff_id: None,
                created_by: Some("ADD rootfs.tar /".into()),
            }],
        }
    }

    pub fn inventory() -> Inventory {
        let pkg = |name: &str, version: &str, kind, purl: &str, licenses: Vec<String>| Package {
            name: name.into(),
            version: version.into(),
            kind,
            source_name: None,
            source_version: None,
            arch: None,
            licenses,
            purl: purl.into(),
            location: "var/lib/dpkg/status".into(),
            layer: Some(0),
            line: None,
            direct: None,
            dev: false,
        };
        Inventory {
            distro: Some(Distro {
                id: "debian".into(),
                version_id: Some("12".into()),
                codename: Some("bookworm".into()),
                pretty_name: None,
                id_like: vec![],
            }),
            packages: vec![
                pkg(
                    "libssl3",
                    "3.0.11-1~deb12u2",
                    PackageKind::Deb,
                    "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64",
                    vec![],
                ),
                pkg(
                    "requests",
                    "2.31.0",
                    PackageKind::Python,
                    "pkg:pypi/requests@2.31.0",
                    vec!["Apache-2.0".into()],
                ),
                pkg(
                    "org.example:lib",
                    "1.0",
                    PackageKind::Maven,
                    "pkg:maven/org.example/lib@1.0",
                    vec!["Apache 2.0 or whatever".into()],
                ),
            ],
            warnings: vec![],
            unreadable: vec![],
        }
    }
}

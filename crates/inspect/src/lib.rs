//! The inspection pipeline: image → [`ImageScan`] (packages, vulnerabilities, secrets) → [`Inspection`] (the
//! verdict under a [`GatePolicy`]).
//!
//! `customs gate`, the registry's scan-on-push workers and deploy checks all call [`survey`],
//! [`match_database`] and [`decide`], so one image, database and policy give one verdict wherever it is taken.
//! The scan is the expensive part and serializes (the registry stores it per manifest digest); the decision is
//! pure and cheap, so it is taken again whenever an exception, the policy or the date changes.

#![warn(missing_docs)]

mod decide;

use customs_catalog::{CatalogInterest, Inventory, catalog};
use customs_oci::{Image, Progress};
use customs_report::Subject;
use customs_vulndb::{Database, Support};
use serde::{Deserialize, Serialize};

pub use decide::{GatePolicy, Inspection, all_secret_severities, decide, fail_verdict, secret_hits};

/// What one pass over an image found, before any policy is applied.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageScan {
    /// The image.
    pub subject: Subject,
    /// The packages found (a caller may narrow them before matching).
    pub inventory: Inventory,
    /// Known vulnerabilities of those packages (empty until [`match_database`]).
    #[serde(default)]
    pub findings: Vec<customs_vulndb::Finding>,
    /// What qualifies the result: ecosystems the database does not cover first.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Secrets, when a secret scanner ran.
    #[serde(default)]
    pub secrets: Vec<customs_secrets::ImageFinding>,
    /// Whether a secret scanner ran (no secrets found is not the same as none looked for).
    #[serde(default)]
    pub secrets_scanned: bool,
    /// What the database could check, per ecosystem (empty until [`match_database`]).
    #[serde(default)]
    pub coverage: Vec<customs_vulndb::Coverage>,
    /// Whether packages were matched against a database.
    #[serde(default)]
    pub matched: bool,
    /// How many bottom layers the base image has, when the history tells.
    #[serde(default)]
    pub base_layers: Option<usize>,
}

/// An image that could not be read, or a database that could not be queried.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// Reading the image failed (the message names it).
    #[error(transparent)]
    Image(#[from] customs_oci::Error),
    /// Querying the vulnerability database failed.
    #[error(transparent)]
    Database(#[from] customs_vulndb::DbError),
}

/// Reads every layer of `image` once: its packages, and with a scanner its secrets in the same pass.
///
/// The inventory's own warnings (unreadable databases, layers not read) become the scan's warnings.
pub fn survey(image: &Image, secrets: Option<&customs_secrets::Scanner>, progress: &dyn Progress) -> Result<ImageScan, InspectError> {
    survey_with(image, CatalogInterest, catalog, secrets, progress)
}

/// [`survey`] of a project folder (opened as a rootfs image) read as source code: the packages its lockfiles
/// and manifests pin ([`customs_catalog::catalog_source`]) instead of installed ones.
pub fn survey_source(
    image: &Image,
    secrets: Option<&customs_secrets::Scanner>,
    progress: &dyn Progress,
) -> Result<ImageScan, InspectError> {
    survey_with(
        image,
        customs_catalog::SourceInterest,
        customs_catalog::catalog_source,
        secrets,
        progress,
    )
}

fn survey_with<I: customs_oci::Interest + Copy>(
    image: &Image,
    packages: I,
    catalog: fn(&customs_oci::FsView) -> Inventory,
    secrets: Option<&customs_secrets::Scanner>,
    progress: &dyn Progress,
) -> Result<ImageScan, InspectError> {
    let (view, found) = match secrets {
        None => (image.filesystem_with_progress(&packages, progress)?, Vec::new()),
        Some(scanner) => {
            let interest = customs_oci::Both(packages, customs_secrets::SecretInterest { scanner, first_layer: 0 });
            let both = image.filesystem_with_progress(&interest, progress)?;
            let secret_view = both.map_content(customs_oci::Both::<I, customs_secrets::SecretInterest<'_>>::second);
            let found = customs_secrets::image_findings(&secret_view, &image.config, scanner, 0);
            (
                both.map_content(customs_oci::Both::<I, customs_secrets::SecretInterest<'_>>::first),
                found,
            )
        }
    };
    let mut inventory = catalog(&view);
    inventory.warnings.splice(0..0, view.warnings.iter().cloned());
    let warnings = std::mem::take(&mut inventory.warnings);
    let subject = Subject {
        name: image.name.clone(),
        manifest_digest: image.manifest_digest.clone(),
        config_digest: image.config_digest.clone(),
        tags: image.tags.clone(),
        platform: match (&image.config.os, &image.config.architecture) {
            (Some(os), Some(arch)) => Some(format!("{os}/{arch}")),
            _ => None,
        },
        layers: redacted_layers(&view.layers),
    };
    Ok(ImageScan {
        subject,
        inventory,
        findings: Vec::new(),
        warnings,
        secrets: found,
        secrets_scanned: secrets.is_some(),
        coverage: Vec::new(),
        matched: false,
        base_layers: customs_secrets::base_layer_count(&image.config),
    })
}

/// Matches the scan's packages against `db`: findings, coverage per ecosystem, and a warning (first, since it
/// qualifies every "0 vulnerabilities") for each ecosystem the database holds nothing for.
pub fn match_database(scan: &mut ImageScan, db: &Database) -> Result<(), InspectError> {
    scan.findings = customs_vulndb::scan(db, &scan.inventory)?;
    scan.coverage = customs_vulndb::coverage(db, &scan.inventory)?;
    let uncovered = scan.coverage.iter().filter(|c| !c.covered()).map(customs_vulndb::Coverage::warning);
    scan.warnings.splice(0..0, uncovered);
    scan.matched = true;
    Ok(())
}

/// The distribution release's security support when it has ended by `today`; its warning then leads the
/// scan's warnings (it qualifies everything else the scan says).
pub fn note_support(scan: &mut ImageScan, today: time::Date) -> Option<Support> {
    let ended = scan
        .inventory
        .distro
        .as_ref()
        .and_then(customs_vulndb::support)
        .filter(|s| s.ended(today));
    if let Some(s) = &ended {
        scan.warnings.insert(0, s.warning());
    }
    ended
}

/// The built-in secret rules, compiled once per process (compiling them costs more than scanning most images).
pub fn builtin_secrets() -> &'static customs_secrets::Scanner {
    static BUILTIN: std::sync::OnceLock<customs_secrets::Scanner> = std::sync::OnceLock::new();
    BUILTIN.get_or_init(customs_secrets::Scanner::builtin)
}

/// Layer facts for reports, with secrets in build commands masked: a report must not leak what it reports.
pub fn redacted_layers(layers: &[customs_oci::LayerInfo]) -> Vec<customs_oci::LayerInfo> {
    let scanner = builtin_secrets();
    layers
        .iter()
        .map(|l| customs_oci::LayerInfo {
            created_by: l.created_by.as_deref().map(|c| scanner.redact(c)),
            ..l.clone()
        })
        .collect()
}

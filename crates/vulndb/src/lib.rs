//! The vulnerability database: importers (OSV JSON/YAML/zip, the Debian security tracker JSON and DSA/DLA
//! lists, Alpine secdb, NVD feeds and CVE 5 records for severity, CISA KEV, FIRST EPSS), per-ecosystem version
//! order, matching and severity.
//!
//! Build a [`Database`] with [`Database::import`], then [`scan`] an inventory.
//! Everything a finding says (fixed version, fix state, severity and who rated
//! it) comes from the stored advisories; nothing is fetched at scan time.

#![warn(missing_docs)]

mod alpine;
mod db;
mod debian;
mod exploit;
mod feeds;
mod import;
mod matcher;
mod model;
mod names;
mod osv;
mod severity;
mod support;
mod update;
mod version;

pub use db::{Database, DbError, ImportReport, SCHEMA_VERSION, SourceStatus, Status};
pub use exploit::{Epss, Kev};
pub use feeds::{DEFAULT_OSV_ECOSYSTEMS, DownloadError, DownloadOptions, Feed, Fetched, download};
pub use matcher::{Coverage, Finding, coverage, evaluate, query_for, scan};
pub use model::{Advisory, Affected, Event, FixState, Rated, Severity};
pub use names::normalize_package;
pub use osv::normalize_ecosystem;
pub use severity::Score;
pub use support::{Support, support};
pub use update::{UpdateError, UpdateReport, update};
pub use version::Scheme;

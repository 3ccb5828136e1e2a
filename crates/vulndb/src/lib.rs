//! The vulnerability database: importers (OSV JSON/YAML/zip, Debian security
//! tracker, Alpine secdb), per-ecosystem version order, matching and severity.
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
mod matcher;
mod model;
mod names;
mod osv;
mod support;
mod version;

pub use db::{Database, DbError, ImportReport, SCHEMA_VERSION, SourceStatus, Status};
pub use exploit::{Epss, Kev};
pub use feeds::{DEFAULT_OSV_ECOSYSTEMS, DownloadError, DownloadOptions, Feed, Fetched, download};
pub use matcher::{Coverage, Finding, coverage, evaluate, query_for, scan};
pub use model::{Advisory, Affected, Event, FixState, Rated, Severity};
pub use names::normalize_package;
pub use osv::normalize_ecosystem;
pub use support::{Support, support};
pub use version::Scheme;

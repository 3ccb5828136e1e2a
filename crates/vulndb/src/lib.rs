//! The vulnerability database: importers, per-ecosystem version order, matching, severity.

#![warn(missing_docs)]

mod version;

pub use version::Scheme;

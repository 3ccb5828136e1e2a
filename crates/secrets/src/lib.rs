//! Secret detection for images, file trees and git history.
//!
//! [`Scanner`] compiles the rules once; a case-insensitive Aho-Corasick pass
//! over each window finds the rules' keywords, and only the rules whose
//! keywords appear run their regexes. Windows overlap so a secret that spans a
//! window border is still found, once. Every finding is masked and carries a
//! stable fingerprint.

#![warn(missing_docs)]

mod config;
mod git;
mod image;
mod rules;
mod scanner;

pub use config::{AllowRule, CustomRule, ExcludeBlock, SecretConfig};
pub use git::{GitError, GitFinding, HistoryScan, scan_history};
pub use image::{ImageFinding, MAX_FILE_BYTES, SecretInterest, base_layer_count, image_findings};
pub use rules::{BUILTIN, BUILTIN_ALLOWED_PATHS, FORMER_IDS, RuleSpec, Severity, former_ids, names_rule};
pub use scanner::{Finding, ScanOptions, Scanner, is_binary, mask, printable_strings, shannon_entropy};

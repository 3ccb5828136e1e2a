//! The normalized advisory model every importer produces and the database stores.

use serde::{Deserialize, Serialize};

/// How bad a vulnerability is, in the policy's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// No severity from the vendor nor a CVSS vector.
    Unknown,
    /// Negligible or low.
    Low,
    /// Medium (GHSA's MODERATE).
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Reads a vendor label (`HIGH`, `moderate`, Debian `high**`, `unimportant`, …).
    pub fn from_label(label: &str) -> Option<Severity> {
        let l = label.trim().trim_end_matches('*').to_ascii_lowercase();
        Some(match l.as_str() {
            "critical" => Severity::Critical,
            "high" | "important" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" | "negligible" | "unimportant" | "minor" => Severity::Low,
            _ => return None,
        })
    }

    /// The severity of a CVSS v3.x or v4.0 vector's base score.
    pub fn from_cvss(vector: &str) -> Option<(Severity, f64)> {
        let cvss: cvss::Cvss = vector.parse().ok()?;
        let score = cvss.score();
        let severity = match cvss.severity() {
            cvss::Severity::Critical => Severity::Critical,
            cvss::Severity::High => Severity::High,
            cvss::Severity::Medium => Severity::Medium,
            cvss::Severity::Low | cvss::Severity::None => Severity::Low,
        };
        Some((severity, score))
    }

    /// Upper-case name, as reports print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("unknown") {
            return Ok(Severity::Unknown);
        }
        Severity::from_label(s).ok_or_else(|| format!("unknown severity {s:?}: use UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL"))
    }
}

/// A severity and where it came from (`debian`, `ghsa`, `cvss_v3`, …).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rated {
    /// The severity.
    pub severity: Severity,
    /// Who said so.
    pub source: String,
    /// The CVSS base score, when the severity was computed from a vector.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub score: Option<f64>,
    /// The CVSS vector, when there is one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vector: Option<String>,
}

/// Whether and how a vulnerability is fixed for a package.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixState {
    /// A fixed version exists.
    Fixed,
    /// Affected, no fix yet.
    Affected,
    /// The vendor decided not to fix it (Debian `no-dsa`/`ignored`, …).
    WillNotFix,
    /// The fix was postponed to a later update.
    Deferred,
    /// The release is out of support.
    EndOfLife,
}

/// One OSV-style range event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Versions from this one on are affected (`0` means all).
    Introduced(String),
    /// Versions from this one on are fixed.
    Fixed(String),
    /// This is the last affected version.
    LastAffected(String),
}

/// Which versions of one package an advisory affects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    /// OSV ecosystem (`Debian:12`, `PyPI`, `Alpine:v3.19`, …).
    pub ecosystem: String,
    /// Package name, normalized for the ecosystem (source package for distros).
    pub package: String,
    /// Ranges of events, each evaluated on its own (ECOSYSTEM and SEMVER ranges).
    #[serde(default)]
    pub ranges: Vec<Vec<Event>>,
    /// Versions listed as affected one by one.
    #[serde(default)]
    pub versions: Vec<String>,
    /// Fix state when the source states one beyond what the ranges say (Debian's `no-dsa`, …).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub state: Option<FixState>,
    /// A severity that applies to this package only (Debian urgency per release).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub severity: Option<Rated>,
}

/// An advisory: one vulnerability as one source describes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    /// Identifier (`RUSTSEC-2021-0001`, `DEBIAN-CVE-2024-1234`, `ALPINE-CVE-…`).
    pub id: String,
    /// Other identifiers (CVE, GHSA, …).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// One-line summary.
    #[serde(default)]
    pub summary: String,
    /// Last modification (RFC 3339), when known.
    #[serde(default)]
    pub modified: Option<String>,
    /// When withdrawn, if it was: withdrawn advisories never match.
    #[serde(default)]
    pub withdrawn: Option<String>,
    /// The advisory-wide severity, when the source gives one.
    #[serde(default)]
    pub severity: Option<Rated>,
    /// Reference URLs.
    #[serde(default)]
    pub references: Vec<String>,
    /// The packages it affects.
    #[serde(default)]
    pub affected: Vec<Affected>,
}

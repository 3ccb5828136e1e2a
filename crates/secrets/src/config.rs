//! The rules file, compatible with Trivy's `trivy-secret.yaml`: custom rules,
//! allow rules, enabling or disabling built-in rules and allowances, excluded blocks.

use serde::Deserialize;

use crate::rules::Severity;

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SecretConfig {
    /// Extra rules.
    #[serde(default)]
    pub rules: Vec<CustomRule>,
    /// Allowances for every rule.
    #[serde(default)]
    pub allow_rules: Vec<AllowRule>,
    /// When set, only these built-in rules run.
    #[serde(default)]
    pub enable_builtin_rules: Option<Vec<String>>,
    /// Rules (built-in or custom) not to run.
    #[serde(default)]
    pub disable_rules: Vec<String>,
    /// Built-in allowances to drop (`tests`, `examples`, `docs`, `markdown`).
    #[serde(default)]
    pub disable_allow_rules: Vec<String>,
    /// Blocks of text where nothing is reported, for every rule.
    #[serde(default)]
    pub exclude_block: Option<ExcludeBlock>,
}

/// A rule from the file.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CustomRule {
    /// Id.
    pub id: String,
    /// Family.
    #[serde(default)]
    pub category: String,
    /// What it finds.
    #[serde(default)]
    pub title: String,
    /// `CRITICAL`, `HIGH`, `MEDIUM` or `LOW` (any case); default MEDIUM.
    #[serde(default)]
    pub severity: Option<String>,
    /// The pattern.
    pub regex: String,
    /// Case-insensitive prefilter words.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// The capture group holding the secret.
    #[serde(default)]
    pub secret_group_name: Option<String>,
    /// Only files whose path matches this regex.
    #[serde(default)]
    pub path: Option<String>,
    /// Allowances for this rule.
    #[serde(default)]
    pub allow_rules: Vec<AllowRule>,
    /// Blocks where this rule reports nothing.
    #[serde(default)]
    pub exclude_block: Option<ExcludeBlock>,
    /// Least Shannon entropy (bits per byte) of the secret; lower-entropy matches are dropped.
    /// An extension of Trivy's format (gitleaks has the same field).
    #[serde(default)]
    pub entropy: Option<f64>,
}

/// A match is ignored when its text matches `regex` or its file's path matches `path`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AllowRule {
    /// Id, for `disable-allow-rules`.
    #[serde(default)]
    pub id: Option<String>,
    /// Why.
    #[serde(default)]
    pub description: Option<String>,
    /// Pattern over the matched text.
    #[serde(default)]
    pub regex: Option<String>,
    /// Pattern over the path.
    #[serde(default)]
    pub path: Option<String>,
}

/// Regions of a file (between the regexes' matches) where nothing is reported.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ExcludeBlock {
    /// Why.
    #[serde(default)]
    pub description: Option<String>,
    /// Each match is an excluded region.
    #[serde(default)]
    pub regexes: Vec<String>,
}

impl SecretConfig {
    /// Reads a rules file; errors name it.
    pub fn read(path: &std::path::Path) -> Result<SecretConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let config: SecretConfig = serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        for r in &config.rules {
            r.severity().map_err(|e| format!("{}: rule {}: {e}", path.display(), r.id))?;
        }
        Ok(config)
    }
}

impl CustomRule {
    /// The severity, MEDIUM when unset.
    pub fn severity(&self) -> Result<Severity, String> {
        Ok(match self.severity.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None => Severity::Medium,
            Some("CRITICAL") => Severity::Critical,
            Some("HIGH") => Severity::High,
            Some("MEDIUM") => Severity::Medium,
            Some("LOW") => Severity::Low,
            Some(other) => return Err(format!("unknown severity {other:?}: use CRITICAL, HIGH, MEDIUM or LOW")),
        })
    }
}

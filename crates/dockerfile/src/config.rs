//! `.customs-lint.yaml`, with hadolint's keys so an existing `.hadolint.yaml` can be renamed as is.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::rules::{Level, rule};

/// Lint settings: which rules run, at which level, and the rules' parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LintConfig {
    /// Rule ids never reported.
    pub ignored: Vec<String>,
    /// Level overrides per rule id.
    pub overrides: Vec<(String, Level)>,
    /// Registries FROM may pull from (DL3026); empty disables the check.
    pub trusted_registries: Vec<String>,
    /// Findings at or above this level fail `customs lint`; `None` never fails.
    pub failure_threshold: Option<Level>,
    /// Required labels and their types (DL3049–DL3058).
    pub label_schema: Vec<(String, String)>,
    /// Report labels outside the schema (DL3050).
    pub strict_labels: bool,
    /// Ignore inline pragmas.
    pub disable_ignore_pragma: bool,
}

/// A lint config that cannot be used, naming the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// The file.
    pub path: String,
    /// What is wrong and where.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    #[serde(default)]
    ignored: Vec<String>,
    #[serde(default)]
    r#override: BTreeMap<String, Vec<String>>,
    #[serde(default, rename = "trustedRegistries", alias = "trusted-registries")]
    trusted_registries: Vec<String>,
    #[serde(default)]
    failure_threshold: Option<String>,
    #[serde(default)]
    label_schema: BTreeMap<String, String>,
    #[serde(default)]
    strict_labels: bool,
    #[serde(default)]
    disable_ignore_pragma: bool,
    #[serde(default)]
    no_fail: bool,
    // hadolint output settings, accepted so a .hadolint.yaml works unchanged; the CLI flags decide.
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    no_color: bool,
}

const LABEL_TYPES: &[&str] = &["text", "url", "rfc3339", "spdx", "hash", "semver", "email"];

impl LintConfig {
    /// The defaults: every rule at its own level, failing on `warning` or worse (hadolint's default is `info`,
    /// which fails on style nits; the policy cares about warnings and errors).
    pub fn new() -> LintConfig {
        LintConfig {
            failure_threshold: Some(Level::Warning),
            ..LintConfig::default()
        }
    }

    /// Reads `.customs-lint.yaml` or a `.hadolint.yaml`.
    pub fn read(path: &Path) -> Result<LintConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        LintConfig::parse(&text).map_err(|message| ConfigError {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses config text; unknown keys, rule ids, levels and label types are errors.
    pub fn parse(text: &str) -> Result<LintConfig, String> {
        if text.trim().is_empty() {
            return Ok(LintConfig::new());
        }
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        let _ = (raw.format, raw.no_color);
        let check_id = |id: &str| -> Result<String, String> {
            rule(id)
                .map(|r| r.id.to_string())
                .ok_or_else(|| format!("unknown rule id `{id}` (see `customs lint --list-rules`)"))
        };
        let mut config = LintConfig::new();
        for id in &raw.ignored {
            config.ignored.push(check_id(id)?);
        }
        for (level, ids) in &raw.r#override {
            let level = Level::parse(level).ok_or_else(|| format!("override: unknown level `{level}` (error, warning, info, style)"))?;
            for id in ids {
                config.overrides.push((check_id(id)?, level));
            }
        }
        config.trusted_registries = raw.trusted_registries;
        if let Some(t) = raw.failure_threshold {
            config.failure_threshold = match t.as_str() {
                "none" | "ignore" => None,
                other => Some(Level::parse(other).ok_or_else(|| format!("failure-threshold: unknown level `{other}`"))?),
            };
        }
        if raw.no_fail {
            config.failure_threshold = None;
        }
        for (label, kind) in raw.label_schema {
            if !LABEL_TYPES.contains(&kind.as_str()) {
                return Err(format!(
                    "label-schema: `{label}` has unknown type `{kind}` (one of {})",
                    LABEL_TYPES.join(", ")
                ));
            }
            config.label_schema.push((label, kind));
        }
        config.strict_labels = raw.strict_labels;
        config.disable_ignore_pragma = raw.disable_ignore_pragma;
        Ok(config)
    }

    /// True if `id` is in `ignored`.
    pub fn is_ignored(&self, id: &str) -> bool {
        self.ignored.iter().any(|i| i.eq_ignore_ascii_case(id))
    }

    /// The overridden level of `id`, if any.
    pub fn level_of(&self, id: &str) -> Option<Level> {
        self.overrides
            .iter()
            .rev()
            .find(|(i, _)| i.eq_ignore_ascii_case(id))
            .map(|(_, l)| *l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hadolint_config_keys() {
        let c = LintConfig::parse(
            "ignored: [DL3008, dl3009]\noverride:\n  error: [DL3015]\ntrustedRegistries: [docker.io, my.registry:5000]\nfailure-threshold: error\nlabel-schema:\n  maintainer: email\nformat: tty\n",
        )
        .unwrap();
        assert_eq!(c.ignored, vec!["DL3008", "DL3009"]);
        assert_eq!(c.level_of("DL3015"), Some(Level::Error));
        assert_eq!(c.failure_threshold, Some(Level::Error));
        assert_eq!(c.trusted_registries.len(), 2);
    }

    #[test]
    fn rejects_unknown_keys_ids_and_levels() {
        assert!(LintConfig::parse("ignore: [DL3008]\n").unwrap_err().contains("ignore"));
        assert!(LintConfig::parse("ignored: [DL9999]\n").unwrap_err().contains("DL9999"));
        assert!(LintConfig::parse("override:\n  fatal: [DL3008]\n").unwrap_err().contains("fatal"));
        assert!(LintConfig::parse("label-schema:\n  a: colour\n").unwrap_err().contains("colour"));
    }
}

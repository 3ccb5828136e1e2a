//! The project's policy file: `customs.toml` or `.customs.yaml` in the project root.
//!
//! ```toml
//! [gate]
//! fail_on = ["CRITICAL", "HIGH"]
//! ignore_unfixed = false
//! exit_code = 1
//!
//! [exceptions]
//! file = "exclusions.json"
//! max_age_days = 180
//! require_reason = true
//!
//! [[notify]]
//! url_env = "SLACK_WEBHOOK_URL"   # the URL itself stays out of the repository
//! format = "slack"                # slack, teams or json
//!
//! [flags]                         # command-line defaults (Trivy's trivy.yaml)
//! severity = ["CRITICAL", "HIGH"] # for every command that has --severity
//! [flags.scan]
//! skip-dirs = ["node_modules"]    # for `customs scan` only
//! ```

use std::path::{Path, PathBuf};

use customs_vulndb::Severity;
use serde::Deserialize;

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Gate thresholds.
    #[serde(default)]
    pub gate: GateSection,
    /// Where exceptions are and how long they live.
    #[serde(default)]
    pub exceptions: ExceptionSection,
    /// Who hears about failures.
    #[serde(default)]
    pub notify: Vec<NotifyTarget>,
    /// Command-line defaults: a flag's long name and its value, at the top for every command that has the flag,
    /// or in a table named after one command (`[flags.scan]`). The command line interprets them.
    #[serde(default)]
    pub flags: std::collections::BTreeMap<String, serde_json::Value>,
}

/// `[gate]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GateSection {
    /// Severities that fail the gate.
    pub fail_on: Option<Vec<String>>,
    /// Findings with no fixed version do not fail the gate.
    pub ignore_unfixed: Option<bool>,
    /// Exit code on failure.
    pub exit_code: Option<u8>,
    /// Look for secrets in the image (default true).
    pub secrets: Option<bool>,
    /// Secret severities that fail the gate, or `["none"]` (default: all).
    pub fail_on_secret: Option<Vec<String>>,
    /// The Dockerfile to lint, relative to the policy file.
    pub dockerfile: Option<PathBuf>,
    /// Lint level that fails the gate: error, warning, info, style or none.
    pub fail_on_lint: Option<String>,
    /// Lint config, relative to the policy file.
    pub lint_config: Option<PathBuf>,
    /// Ecosystems (`Debian:12`, `npm`) the database may hold nothing for without failing the gate.
    pub allow_uncovered: Option<Vec<String>>,
    /// Findings without a severity rating: `fail` (default) or `warn`.
    pub unknown: Option<String>,
    /// Known exploited vulnerabilities (CISA KEV) fail whatever their severity (default true).
    pub fail_on_kev: Option<bool>,
    /// An EPSS probability (`0.5`) or percentile (`p95`) that fails whatever the severity.
    pub fail_on_epss: Option<String>,
}

/// `[exceptions]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExceptionSection {
    /// The exclusions file, relative to the policy file.
    pub file: Option<PathBuf>,
    /// A `.trivyignore` to read too.
    pub trivyignore: Option<PathBuf>,
    /// Exceptions expire this many days after their `date`.
    pub max_age_days: Option<i64>,
    /// Every exception must say why.
    pub require_reason: Option<bool>,
}

/// A webhook to call when the gate fails.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotifyTarget {
    /// The URL, when it is not secret.
    pub url: Option<String>,
    /// An environment variable holding the URL (Slack and Teams URLs are secrets).
    pub url_env: Option<String>,
    /// Payload shape.
    #[serde(default)]
    pub format: NotifyFormat,
    /// Also notify when the gate passes.
    #[serde(default)]
    pub always: bool,
}

/// Payload shapes.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NotifyFormat {
    /// customs' JSON.
    #[default]
    Json,
    /// Slack incoming webhook (`text` with mrkdwn).
    Slack,
    /// Microsoft Teams incoming webhook (MessageCard).
    Teams,
}

impl GateSection {
    /// The keys this section sets, as they are spelled in the file (`fail_on`).
    pub fn keys_set(&self) -> Vec<&'static str> {
        let set = [
            ("fail_on", self.fail_on.is_some()),
            ("ignore_unfixed", self.ignore_unfixed.is_some()),
            ("exit_code", self.exit_code.is_some()),
            ("secrets", self.secrets.is_some()),
            ("fail_on_secret", self.fail_on_secret.is_some()),
            ("dockerfile", self.dockerfile.is_some()),
            ("fail_on_lint", self.fail_on_lint.is_some()),
            ("lint_config", self.lint_config.is_some()),
            ("allow_uncovered", self.allow_uncovered.is_some()),
            ("unknown", self.unknown.is_some()),
            ("fail_on_kev", self.fail_on_kev.is_some()),
            ("fail_on_epss", self.fail_on_epss.is_some()),
        ];
        set.into_iter().filter(|(_, on)| *on).map(|(k, _)| k).collect()
    }
}

impl PolicyFile {
    /// Severities parsed from `fail_on`; an unknown name is an error naming it.
    pub fn fail_on(&self) -> Result<Option<Vec<Severity>>, String> {
        self.gate
            .fail_on
            .as_ref()
            // `none` alone: vulnerabilities are reported, never fail.
            .map(|v| {
                v.iter()
                    .filter(|s| !s.trim().eq_ignore_ascii_case("none"))
                    .map(|s| s.parse::<Severity>())
                    .collect()
            })
            .transpose()
    }

    /// Reads `path` (TOML, or YAML for `.yaml`/`.yml`); errors name the file.
    pub fn read(path: &Path) -> Result<PolicyFile, String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
        let file: PolicyFile = if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            serde_saphyr::from_str(&text).map_err(|e| format!("{shown}: {e}"))?
        } else {
            toml::from_str(&text).map_err(|e| format!("{shown}: {e}"))?
        };
        file.fail_on().map_err(|e| format!("{shown}: gate.fail_on: {e}"))?;
        for (i, n) in file.notify.iter().enumerate() {
            if n.url.is_some() == n.url_env.is_some() {
                return Err(format!("{shown}: notify[{i}]: give exactly one of `url` and `url_env`"));
            }
        }
        Ok(file)
    }

    /// The policy file in `dir`, if there is one: `customs.toml`, then `customs.yaml`, then `.customs.yaml`.
    pub fn find(dir: &Path) -> Option<PathBuf> {
        ["customs.toml", "customs.yaml", "customs.yml", ".customs.yaml", ".customs.yml"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_toml_and_yaml_alike() {
        let dir = std::env::temp_dir().join(format!("customs-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let toml_path = dir.join("customs.toml");
        std::fs::write(&toml_path, "[gate]\nfail_on = [\"critical\"]\nexit_code = 3\n[exceptions]\nmax_age_days = 90\n[[notify]]\nurl_env = \"HOOK\"\nformat = \"teams\"\n").unwrap();
        let t = PolicyFile::read(&toml_path).unwrap();
        assert_eq!(t.fail_on().unwrap(), Some(vec![Severity::Critical]));
        assert_eq!(
            (t.gate.exit_code, t.exceptions.max_age_days, t.notify[0].format),
            (Some(3), Some(90), NotifyFormat::Teams)
        );
        let yaml_path = dir.join(".customs.yaml");
        std::fs::write(&yaml_path, "gate:\n  fail_on: [critical]\n  exit_code: 3\nexceptions:\n  max_age_days: 90\nnotify:\n  - url_env: HOOK\n    format: teams\n").unwrap();
        assert_eq!(PolicyFile::read(&yaml_path).unwrap(), t);

        std::fs::write(&toml_path, "[gate]\nfail_on = [\"none\"]\n").unwrap();
        assert_eq!(
            PolicyFile::read(&toml_path).unwrap().fail_on().unwrap(),
            Some(Vec::new()),
            "report only"
        );
        std::fs::write(&toml_path, "[gate]\nfail_on = [\"SEVERE\"]\n").unwrap();
        assert!(PolicyFile::read(&toml_path).unwrap_err().contains("unknown severity \"SEVERE\""));
        std::fs::write(&toml_path, "[gate]\nfailon = [\"HIGH\"]\n").unwrap();
        assert!(PolicyFile::read(&toml_path).unwrap_err().contains("unknown field `failon`"));
        std::fs::write(&toml_path, "[[notify]]\nformat = \"slack\"\n").unwrap();
        assert!(
            PolicyFile::read(&toml_path)
                .unwrap_err()
                .contains("exactly one of `url` and `url_env`")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

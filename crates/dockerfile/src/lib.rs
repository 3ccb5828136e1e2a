//! Dockerfile linting for the Secure Image Policy.
//!
//! [`Dockerfile::parse`] reads the full syntax (directives, continuations, heredocs, flags) and keeps
//! going after a broken instruction; [`lint`] runs the policy rules (`CPxxx`) and hadolint's rules
//! (under hadolint's `DLxxxx` ids) over it, then applies the [`LintConfig`] and inline pragmas.

#![deny(missing_docs)]

mod config;
mod rules;
mod shell;
mod syntax;

pub use config::{ConfigError, LintConfig};
pub use rules::{Level, RULES, RuleInfo, registry_of, rule, split_image};
pub use shell::{Script, ShellCommand};
pub use syntax::{CommandForm, Dockerfile, Flag, Instruction, Kind, ParseProblem, key_values, unquote};

use serde::Serialize;

/// One problem found in a Dockerfile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LintFinding {
    /// Rule id (`DL3008`, `CP001`), or `DL1000` for a parse problem (hadolint's id for it).
    pub rule: String,
    /// Level after config overrides.
    pub level: Level,
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

/// The outcome of linting one file.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LintReport {
    /// Findings in line order.
    pub findings: Vec<LintFinding>,
    /// Findings dropped by pragmas or `ignored`, for `--show-suppressed`-style review.
    pub suppressed: usize,
}

impl LintReport {
    /// True if any finding is at or above `threshold`.
    pub fn fails(&self, threshold: Level) -> bool {
        self.findings.iter().any(|f| f.level <= threshold)
    }
}

/// Facts from outside the Dockerfile text that some rules need.
#[derive(Clone, Copy, Default)]
pub struct LintContext<'a> {
    /// Whether the build context has a `.dockerignore`; `None` skips CP006.
    pub has_dockerignore: Option<bool>,
    /// Secret scanner used on ENV/ARG values (CP004 also checks names without it).
    pub secrets: Option<&'a customs_secrets::Scanner>,
}

/// Lints Dockerfile `text` with `config`.
pub fn lint(text: &str, config: &LintConfig, context: &LintContext<'_>) -> LintReport {
    let file = Dockerfile::parse(text);
    lint_parsed(&file, text, config, context)
}

/// Lints an already parsed file (`text` is its source, for pragmas).
pub fn lint_parsed(file: &Dockerfile, text: &str, config: &LintConfig, context: &LintContext<'_>) -> LintReport {
    let input = rules::RuleInput {
        trusted_registries: &config.trusted_registries,
        label_schema: &config.label_schema,
        strict_labels: config.strict_labels,
        has_dockerignore: context.has_dockerignore,
        secrets: context.secrets,
    };
    let pragmas = if config.disable_ignore_pragma {
        Pragmas::default()
    } else {
        Pragmas::read(text, file)
    };
    let mut report = LintReport::default();
    for p in &file.problems {
        report.findings.push(LintFinding {
            rule: "DL1000".into(),
            level: Level::Error,
            line: p.line,
            message: format!("Dockerfile syntax: {}", p.message),
            fix: "Fix the instruction; the rest of the file was still checked.".into(),
        });
    }
    for hit in rules::check(file, &input) {
        let info = rules::rule(hit.rule).expect("every hit names a known rule");
        if config.is_ignored(info.id) || pragmas.ignores(info.id, hit.line) {
            report.suppressed += 1;
            continue;
        }
        let message = match &hit.detail {
            Some(d) => format!("{}: {d}", info.title),
            None => info.title.to_string(),
        };
        report.findings.push(LintFinding {
            rule: info.id.to_string(),
            level: config.level_of(info.id).unwrap_or(info.level),
            line: hit.line,
            message,
            fix: info.fix.to_string(),
        });
    }
    report.findings.sort_by(|a, b| (a.line, &a.rule).cmp(&(b.line, &b.rule)));
    report
}

/// Inline `# hadolint ignore=ID,...` / `# customs ignore=ID,...` comments (next instruction) and
/// `# hadolint global ignore=...` (whole file).
#[derive(Debug, Default)]
struct Pragmas {
    global: Vec<String>,
    /// (line of the instruction the pragma applies to, ids)
    local: Vec<(usize, Vec<String>)>,
}

impl Pragmas {
    fn read(text: &str, file: &Dockerfile) -> Pragmas {
        let mut pragmas = Pragmas::default();
        for (i, line) in text.lines().enumerate() {
            let Some(comment) = line.trim_start().strip_prefix('#') else {
                continue;
            };
            let comment = comment.trim();
            let Some(rest) = comment.strip_prefix("hadolint").or_else(|| comment.strip_prefix("customs")) else {
                continue;
            };
            let rest = rest.trim_start();
            let (global, rest) = match rest.strip_prefix("global") {
                Some(r) => (true, r.trim_start()),
                None => (false, rest),
            };
            let Some(ids) = rest.strip_prefix("ignore=") else { continue };
            let ids: Vec<String> = ids
                .split(',')
                .map(|s| s.split_whitespace().next().unwrap_or_default().to_ascii_uppercase())
                .collect();
            if global {
                pragmas.global.extend(ids);
            } else if let Some(next) = file.instructions.iter().find(|inst| inst.line > i + 1) {
                pragmas.local.push((next.line, ids));
            }
        }
        pragmas
    }

    fn ignores(&self, id: &str, line: usize) -> bool {
        self.global.iter().any(|g| g == id) || self.local.iter().any(|(l, ids)| *l == line && ids.iter().any(|g| g == id))
    }
}

//! Dockerfile lint results: a terminal listing with source excerpts, JSON, SARIF 2.1.0, JUnit XML
//! and Checkstyle XML (what Jenkins and many editors read).

use std::collections::BTreeMap;

use customs_dockerfile::{Level, LintFinding, LintReport, rule};
use serde_json::{Value, json};

use crate::TOOL_VERSION;
use crate::gate::xml;

/// One linted Dockerfile.
#[derive(Clone, Debug)]
pub struct LintedFile {
    /// The path as the user gave it.
    pub path: String,
    /// Its text, for excerpts.
    pub source: String,
    /// What the linter found.
    pub report: LintReport,
}

/// Terminal listing: `path:line rule level: message`, the source line under it, then the fix.
pub fn lint_tty(files: &[LintedFile], color: bool) -> String {
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let mut out = String::new();
    for file in files {
        let lines: Vec<&str> = file.source.lines().collect();
        for f in &file.report.findings {
            let level = match f.level {
                Level::Error => paint("1;31", "error"),
                Level::Warning => paint("1;33", "warning"),
                Level::Info => paint("1;36", "info"),
                Level::Style => paint("2", "style"),
            };
            out.push_str(&format!(
                "{}:{} {} {level}: {}\n",
                paint("1", &file.path),
                f.line,
                paint("1", &f.rule),
                f.message
            ));
            if let Some(text) = lines.get(f.line.saturating_sub(1)) {
                let text: String = text.chars().take(160).collect();
                out.push_str(&format!("  {} | {}\n", paint("2", &format!("{:>4}", f.line)), text));
            }
            out.push_str(&format!("       = {}\n", paint("2", &format!("fix: {}", f.fix))));
        }
    }
    let total: usize = files.iter().map(|f| f.report.findings.len()).sum();
    let suppressed: usize = files.iter().map(|f| f.report.suppressed).sum();
    out.push_str(&format!(
        "{total} finding(s) in {} file(s), {suppressed} suppressed by config or pragmas\n",
        files.len()
    ));
    out
}

/// JSON: `{"files": [{"path", "findings": [...], "suppressed"}]}` (see docs/json-reports.md).
pub fn lint_json(files: &[LintedFile]) -> String {
    let doc = json!({
        "tool": {"name": "customs", "version": TOOL_VERSION},
        "files": files.iter().map(|f| json!({"path": f.path, "findings": f.report.findings, "suppressed": f.report.suppressed})).collect::<Vec<_>>(),
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("json values serialize");
    s.push('\n');
    s
}

fn sarif_level(l: Level) -> &'static str {
    match l {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Info | Level::Style => "note",
    }
}

/// SARIF 2.1.0 with one rule per lint id and locations in the Dockerfile.
pub fn lint_sarif(files: &[LintedFile]) -> String {
    let mut rules: BTreeMap<String, Value> = BTreeMap::new();
    let mut results = Vec::new();
    for file in files {
        for f in &file.report.findings {
            rules.entry(f.rule.clone()).or_insert_with(|| rule_descriptor(f));
            results.push(json!({
                "ruleId": f.rule,
                "level": sarif_level(f.level),
                "message": {"text": format!("{} Fix: {}", f.message, f.fix)},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": file.path}, "region": {"startLine": f.line}}}],
                "partialFingerprints": {"customs/v1": format!("{}/{}/{}", f.rule, file.path, line_text(&file.source, f.line).trim())},
            }));
        }
    }
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "customs-lint", "version": TOOL_VERSION, "informationUri": "https://example.invalid/customs", "rules": rules.into_values().collect::<Vec<_>>()}},
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("json values serialize");
    s.push('\n');
    s
}

/// A SARIF `reportingDescriptor` for a lint rule.
pub(crate) fn rule_descriptor(f: &LintFinding) -> Value {
    let info = rule(&f.rule);
    let title = info.map_or(f.message.as_str(), |i| i.title);
    let hadolint = f.rule.starts_with("DL") && f.rule != "DL1000";
    let help_uri = if hadolint {
        format!("https://github.com/hadolint/hadolint/wiki/{}", f.rule)
    } else {
        String::new()
    };
    let mut d = json!({
        "id": f.rule,
        "shortDescription": {"text": title},
        "help": {"text": f.fix},
        "defaultConfiguration": {"level": sarif_level(info.map_or(f.level, |i| i.level))},
        "properties": {"tags": ["dockerfile", "security"]},
    });
    if !help_uri.is_empty() {
        d["helpUri"] = json!(help_uri);
    }
    d
}

fn line_text(source: &str, line: usize) -> &str {
    source.lines().nth(line.saturating_sub(1)).unwrap_or_default()
}

/// JUnit XML: one test suite per file, one test case per finding (failures at or above `threshold`,
/// the rest reported as passed with the finding in system-out), and a passing case for a clean file.
pub fn lint_junit(files: &[LintedFile], threshold: Option<Level>) -> String {
    let mut suites = String::new();
    let (mut all_tests, mut all_failures) = (0, 0);
    for file in files {
        let mut cases = String::new();
        let mut failures = 0;
        for f in &file.report.findings {
            let failing = threshold.is_some_and(|t| f.level <= t);
            failures += usize::from(failing);
            cases.push_str(&lint_testcase(file, f, failing, None));
        }
        let mut tests = file.report.findings.len();
        if tests == 0 {
            cases.push_str(&format!(
                "    <testcase classname=\"lint.{}\" name=\"no findings\"/>\n",
                xml(&file.path)
            ));
            tests = 1;
        }
        all_tests += tests;
        all_failures += failures;
        suites.push_str(&format!(
            "  <testsuite name=\"customs lint {}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">\n{cases}  </testsuite>\n",
            xml(&file.path)
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"customs lint\" tests=\"{all_tests}\" failures=\"{all_failures}\" errors=\"0\">\n{suites}</testsuites>\n"
    )
}

/// One JUnit test case for a lint finding, the same in `customs lint` and `customs gate` reports: a failure with
/// the source line and the fix, a skip naming the exception, or a pass with the finding in `system-out`.
pub(crate) fn lint_testcase(file: &LintedFile, f: &LintFinding, failing: bool, skipped: Option<&str>) -> String {
    let mut case = format!(
        "    <testcase classname=\"lint.{}\" name=\"{} line {}\">\n",
        xml(&file.path),
        xml(&f.rule),
        f.line
    );
    if failing {
        case.push_str(&format!(
            "      <failure message=\"{}\" type=\"{}\">{}:{} {}\nFix: {}</failure>\n",
            xml(&f.message),
            f.level.as_str(),
            xml(&file.path),
            f.line,
            xml(line_text(&file.source, f.line).trim()),
            xml(&f.fix)
        ));
    } else if let Some(why) = skipped {
        case.push_str(&format!("      <skipped message=\"{}\"/>\n", xml(why)));
    } else {
        case.push_str(&format!(
            "      <system-out>{} ({}): {}</system-out>\n",
            xml(&f.rule),
            f.level.as_str(),
            xml(&f.message)
        ));
    }
    case.push_str("    </testcase>\n");
    case
}

/// Checkstyle XML, the format Jenkins' warnings plugin and many editors read.
pub fn lint_checkstyle(files: &[LintedFile]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<checkstyle version=\"4.3\">\n");
    for file in files {
        out.push_str(&format!("  <file name=\"{}\">\n", xml(&file.path)));
        for f in &file.report.findings {
            let severity = match f.level {
                Level::Error => "error",
                Level::Warning => "warning",
                Level::Info | Level::Style => "info",
            };
            out.push_str(&format!(
                "    <error line=\"{}\" column=\"1\" severity=\"{severity}\" message=\"{}\" source=\"customs.{}\"/>\n",
                f.line,
                xml(&f.message),
                xml(&f.rule)
            ));
        }
        out.push_str("  </file>\n");
    }
    out.push_str("</checkstyle>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use customs_dockerfile::{LintConfig, LintContext, lint};

    fn sample() -> Vec<LintedFile> {
        let source = "FROM debian\nRUN apt-get update && apt-get install -y curl\nADD app.py /app/\n".to_string();
        let report = lint(&source, &LintConfig::new(), &LintContext::default());
        vec![LintedFile {
            path: "Dockerfile".into(),
            source,
            report,
        }]
    }

    #[test]
    fn renders_every_format() {
        let files = sample();
        insta::assert_snapshot!("lint_tty", lint_tty(&files, false));
        insta::assert_snapshot!("lint_sarif", lint_sarif(&files));
        insta::assert_snapshot!("lint_junit", lint_junit(&files, Some(Level::Warning)));
        insta::assert_snapshot!("lint_checkstyle", lint_checkstyle(&files));
        insta::assert_snapshot!("lint_json", lint_json(&files));
    }
}

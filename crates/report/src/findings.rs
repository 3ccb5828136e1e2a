//! Vulnerability findings as a table and as JSON.

use comfy_table::{ContentArrangement, Table, presets::NOTHING};
use customs_vulndb::Finding;
use serde::Serialize;

use crate::Subject;

/// Findings as a table: worst first, with fixed version and layer.
pub fn findings_table(subject: &Subject, findings: &[Finding], warnings: &[String]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for f in findings {
        *counts.entry(std::cmp::Reverse(f.severity)).or_insert(0usize) += 1;
    }
    let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{}: {n}", s.0.as_str())).collect();
    let mut out = format!(
        "{}: {} vulnerabilities{}\n",
        subject.name,
        findings.len(),
        if summary.is_empty() {
            String::new()
        } else {
            format!(" ({})", summary.join(", "))
        }
    );
    if !findings.is_empty() {
        let mut t = Table::new();
        t.load_style(NOTHING)
            .force_no_tty()
            .set_content_arrangement(ContentArrangement::Disabled);
        t.set_header(["SEVERITY", "ID", "PACKAGE", "INSTALLED", "FIXED", "STATE", "LAYER", "TITLE"]);
        for f in findings {
            let title: String = f.title.chars().take(60).collect();
            t.add_row([
                f.severity.as_str().to_string(),
                f.id.clone(),
                f.package.name.clone(),
                f.package.version.clone(),
                f.fixed_version.clone().unwrap_or_else(|| "-".into()),
                serde_json::to_value(f.fix_state)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                f.package.layer.map_or_else(|| "-".into(), |l| l.to_string()),
                title,
            ]);
        }
        for line in t.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    for w in warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

/// Findings as customs' own JSON.
pub fn findings_json(subject: &Subject, findings: &[Finding], warnings: &[String]) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        schema: &'static str,
        subject: &'a Subject,
        findings: &'a [Finding],
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        warnings: &'a [String],
    }
    let mut s = serde_json::to_string_pretty(&Doc {
        schema: "customs.scan/v1",
        subject,
        findings,
        warnings,
    })
    .expect("findings serialize");
    s.push('\n');
    s
}

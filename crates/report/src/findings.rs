//! Vulnerability findings as a table and as JSON.

use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table, presets::NOTHING};
use customs_vulndb::Finding;
use customs_vulndb::Severity;
use serde::Serialize;

use crate::Subject;

fn severity_cell(s: Severity, color: bool) -> Cell {
    let cell = Cell::new(s.as_str());
    if !color {
        return cell;
    }
    match s {
        Severity::Critical => cell.fg(Color::Red).add_attribute(Attribute::Bold),
        Severity::High => cell.fg(Color::Red),
        Severity::Medium => cell.fg(Color::Yellow),
        Severity::Low => cell.fg(Color::Blue),
        Severity::Unknown => cell.fg(Color::DarkGrey),
    }
}

/// Findings as a plain table: worst first, with fixed version and layer.
pub fn findings_table(subject: &Subject, findings: &[Finding], warnings: &[String]) -> String {
    findings_table_styled(subject, findings, warnings, false)
}

/// Like [`findings_table`], with severities in colour when `color` (for terminals).
pub fn findings_table_styled(subject: &Subject, findings: &[Finding], warnings: &[String], color: bool) -> String {
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
        if color {
            t.enforce_styling();
        }
        // Lockfile findings (source mode) have a file and line where image findings have a layer.
        let lines = findings.iter().any(|f| f.package.line.is_some());
        t.set_header([
            "SEVERITY",
            "ID",
            "PACKAGE",
            "INSTALLED",
            "FIXED",
            "STATE",
            if lines { "WHERE" } else { "LAYER" },
            "TITLE",
        ]);
        for f in findings {
            let title: String = f.title.chars().take(60).collect();
            let state = serde_json::to_value(f.fix_state)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            // Trivy users search by CVE: show it beside an advisory id that is not one.
            let mut id = match f.aliases.iter().find(|a| a.starts_with("CVE-")) {
                Some(cve) if !f.id.starts_with("CVE-") => format!("{} {cve}", f.id),
                _ => f.id.clone(),
            };
            // Exploited in the wild comes first in a reader's triage: say it beside the id.
            if f.kev.is_some() {
                id.push_str(" KEV");
            }
            t.add_row(vec![
                severity_cell(f.severity, color),
                Cell::new(id),
                Cell::new(&f.package.name),
                Cell::new(&f.package.version),
                Cell::new(f.fixed_version.as_deref().unwrap_or("-")),
                Cell::new(state),
                Cell::new(crate::where_found(&f.package)),
                Cell::new(title),
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

//! The "report summary" block of the table output (Trivy prints one): per ecosystem the packages found, the
//! vulnerabilities by severity and whether the database could check it at all, then the secrets.

use std::collections::BTreeMap;

use comfy_table::presets::NOTHING;
use comfy_table::{ContentArrangement, Table};
use customs_vulndb::{Coverage, Finding};

/// Counts as `3 (CRITICAL 1, HIGH 2)`, worst first; `0` for none.
fn counts<'a>(severities: impl Iterator<Item = &'a str>) -> String {
    let mut by: BTreeMap<usize, (&str, usize)> = BTreeMap::new();
    let order = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"];
    let mut total = 0;
    for s in severities {
        total += 1;
        let rank = order.iter().position(|o| *o == s).unwrap_or(order.len());
        by.entry(rank).or_insert((s, 0)).1 += 1;
    }
    if total == 0 {
        return "0".into();
    }
    let parts: Vec<String> = by.values().map(|(s, n)| format!("{s} {n}")).collect();
    format!("{total} ({})", parts.join(", "))
}

/// The block: a row per ecosystem in `coverage` (empty when no vulnerability scan ran), and a secrets row when
/// `secrets` were looked for.
pub fn scan_summary(coverage: &[Coverage], findings: &[Finding], secrets: Option<&[customs_secrets::ImageFinding]>) -> String {
    let mut t = Table::new();
    t.load_style(NOTHING)
        .force_no_tty()
        .set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(["TARGET", "PACKAGES", "FOUND"]);
    for c in coverage {
        let found = if c.covered() {
            counts(findings.iter().filter(|f| f.ecosystem == c.ecosystem).map(|f| f.severity.as_str()))
        } else {
            "not checked: no advisories in the database".into()
        };
        t.add_row(vec![c.ecosystem.clone(), c.packages.to_string(), found]);
    }
    // Findings of an ecosystem the coverage does not list (it lists every one found; this is a safety net).
    let listed = |e: &str| coverage.iter().any(|c| c.ecosystem == e);
    let other: Vec<&Finding> = findings.iter().filter(|f| !listed(&f.ecosystem)).collect();
    if !other.is_empty() {
        t.add_row(vec!["other".into(), "-".into(), counts(other.iter().map(|f| f.severity.as_str()))]);
    }
    if let Some(secrets) = secrets {
        t.add_row(vec![
            "secrets".into(),
            "-".into(),
            counts(secrets.iter().map(|s| s.finding.severity.as_str())),
        ]);
    }
    let mut out = String::from("Report summary\n");
    for line in t.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_are_worst_first() {
        assert_eq!(
            super::counts(["LOW", "CRITICAL", "LOW", "HIGH"].into_iter()),
            "4 (CRITICAL 1, HIGH 1, LOW 2)"
        );
        assert_eq!(super::counts(std::iter::empty()), "0");
    }
}

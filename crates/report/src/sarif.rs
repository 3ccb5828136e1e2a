//! SARIF 2.1.0 for GitHub code scanning: one rule per advisory, one result per finding.

use std::collections::BTreeMap;

use customs_vulndb::{Finding, Severity};
use serde_json::{Value, json};

use crate::{Subject, TOOL_VERSION};

/// GitHub reads `security-severity` (a CVSS-like number) to rank alerts.
fn security_severity(f: &Finding) -> f64 {
    f.cvss_score.unwrap_or(match f.severity {
        Severity::Critical => 9.5,
        Severity::High => 8.0,
        Severity::Medium => 5.5,
        Severity::Low => 2.0,
        Severity::Unknown => 0.0,
    })
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Unknown => "note",
    }
}

/// Findings as a SARIF 2.1.0 log.
pub fn findings_sarif(subject: &Subject, findings: &[Finding]) -> String {
    let mut rules: BTreeMap<&str, Value> = BTreeMap::new();
    let mut results = Vec::new();
    for f in findings {
        let help = f.references.first().cloned().unwrap_or_default();
        let rule = rules.entry(f.id.as_str()).or_insert_with(|| {
            json!({
                "id": f.id,
                "name": f.aliases.first().unwrap_or(&f.id),
                "shortDescription": {"text": if f.title.is_empty() { f.id.clone() } else { f.title.clone() }},
                "helpUri": help,
                "help": {"text": format!("{} ({}). {}", f.id, f.aliases.join(", "), f.references.join(" "))},
                "properties": {"security-severity": "0.0", "tags": ["vulnerability", "security", f.severity.as_str()]},
            })
        });
        // A rule's severity is the worst of its results.
        let current: f64 = rule["properties"]["security-severity"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0);
        let score = security_severity(f);
        if score > current {
            rule["properties"]["security-severity"] = json!(format!("{score:.1}"));
        }
        let fixed = f
            .fixed_version
            .as_deref()
            .map_or_else(|| "no fixed version yet".to_string(), |v| format!("fixed in {v}"));
        // Exploitation facts for triage: CISA KEV and FIRST EPSS, when the database has them.
        let mut properties = serde_json::Map::new();
        if let Some(k) = &f.kev {
            properties.insert(
                "kev".into(),
                json!({"dateAdded": k.date_added, "dueDate": k.due_date, "ransomware": k.ransomware}),
            );
        }
        if let Some(e) = &f.epss {
            properties.insert("epss".into(), json!({"score": e.score, "percentile": e.percentile}));
        }
        let mut result = json!({
            "ruleId": f.id,
            "level": level(f.severity),
            "message": {"text": format!("{} {} in {} is affected by {} ({}): {fixed}. Layer {}.",
                f.package.name, f.installed, subject.name, f.id, f.severity.as_str(),
                f.package.layer.map_or_else(|| "unknown".into(), |l| l.to_string()))},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": f.package.location.split('!').next().unwrap_or(&f.package.location)}, "region": {"startLine": f.package.line.unwrap_or(1)}}}],
            "partialFingerprints": {"customs/v1": format!("{}/{}/{}", f.id, f.package.purl, f.package.location)},
        });
        if !properties.is_empty() {
            result["properties"] = Value::Object(properties);
        }
        results.push(result);
    }
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "customs", "version": TOOL_VERSION, "informationUri": "https://example.invalid/customs", "rules": rules.into_values().collect::<Vec<_>>()}},
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("json values serialize");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use customs_vulndb::{FixState, Severity};

    use crate::fixture;

    #[test]
    fn renders_sarif() {
        let inv = fixture::inventory();
        let finding = customs_vulndb::Finding {
            id: "TEST-0001".into(),
            aliases: vec!["CVE-0000-0001".into()],
            package: inv.packages[1].clone(),
            ecosystem: "PyPI".into(),
            installed: "2.31.0".into(),
            fixed_version: Some("2.32.0".into()),
            fix_state: FixState::Fixed,
            severity: Severity::Medium,
            severity_source: "cvss_v3".into(),
            cvss_score: Some(6.1),
            cvss: Vec::new(),
            title: "Synthetic advisory for the snapshot".into(),
            references: vec!["https://example.invalid/TEST-0001".into()],
            kev: None,
            epss: None,
        };
        insta::assert_snapshot!(super::findings_sarif(&fixture::subject(), &[finding]));
    }
}

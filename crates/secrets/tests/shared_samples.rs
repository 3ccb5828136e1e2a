//! Recall and precision on the planted secrets of `../shared/data/fixtures/secret-samples`
//! (Trivy's and detect-secrets' test data), against `tests/expected-samples.txt`, which gives every file of the
//! folder a verdict: what customs reports there, what it misses (and why), or that nothing is to be found.
//! Skipped (a failure under CUSTOMS_REQUIRE_ALL=1) when that folder is absent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use customs_secrets::Scanner;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The verdicts of `tests/expected-samples.txt`.
#[derive(Default)]
struct Verdicts {
    /// (path, rule) -> findings customs reports.
    expected: BTreeMap<(String, String), usize>,
    /// (path, rule) -> real secrets customs misses, with the reason.
    missed: BTreeMap<(String, String), usize>,
    /// Every path with a verdict.
    paths: BTreeSet<String>,
}

fn verdicts() -> Verdicts {
    let spec = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expected-samples.txt")).unwrap();
    let mut v = Verdicts::default();
    for line in spec.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (verdict, why) = line.split_once(" — ").unwrap_or((line, ""));
        let f: Vec<&str> = verdict.split_whitespace().collect();
        match f.as_slice() {
            [_, "none"] => {}
            [path, "missed", rule, n] => {
                assert!(!why.is_empty(), "a miss needs its reason: {line:?}");
                *v.missed.entry((path.to_string(), rule.to_string())).or_default() += n.parse::<usize>().unwrap();
            }
            [path, rule, n] => *v.expected.entry((path.to_string(), rule.to_string())).or_default() += n.parse::<usize>().unwrap(),
            _ => panic!("bad line {line:?}"),
        }
        v.paths.insert(f[0].to_string());
    }
    v
}

#[test]
fn every_sample_file_has_a_verdict_and_the_scanner_meets_it() {
    let Some(root) = customs_testkit::shared_data("fixtures/secret-samples") else {
        return;
    };
    let v = verdicts();
    let scanner = Scanner::builtin();
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut found: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut present = BTreeSet::new();
    for p in &all {
        let rel = p.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
        for f in scanner.scan(&rel, &std::fs::read(p).unwrap()) {
            *found.entry((rel.clone(), f.rule_id)).or_default() += 1;
        }
        present.insert(rel);
    }
    let without: Vec<&String> = present.difference(&v.paths).collect();
    assert!(
        without.is_empty(),
        "sample files without a verdict in tests/expected-samples.txt: {without:?}"
    );
    let stale: Vec<&String> = v.paths.difference(&present).collect();
    assert!(stale.is_empty(), "verdicts for files that are not in the samples: {stale:?}");

    let got = |k: &(String, String)| found.get(k).copied().unwrap_or(0);
    let reported: usize = v.expected.values().sum();
    let missed: usize = v.missed.values().sum();
    let hit: usize = v.expected.iter().map(|(k, n)| got(k).min(*n)).sum();
    let total: usize = found.values().sum();
    let correct: usize = found.iter().map(|(k, n)| v.expected.get(k).copied().unwrap_or(0).min(*n)).sum();
    let line = format!(
        "secret samples ({} files): recall {hit}/{} = {:.3} (known misses {missed}), precision {correct}/{total} = {:.3}",
        present.len(),
        reported + missed,
        hit as f64 / (reported + missed) as f64,
        correct as f64 / total.max(1) as f64
    );
    // Printed on the terminal, not into libtest's captured output.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");

    let short: Vec<_> = v.expected.iter().filter(|(k, n)| got(k) < **n).collect();
    assert!(short.is_empty(), "expected findings not reported: {short:?}");
    let extra: Vec<_> = found
        .iter()
        .filter(|(k, n)| v.expected.get(*k).copied().unwrap_or(0) < **n)
        .collect();
    assert!(
        extra.is_empty(),
        "findings beyond the verdicts (a false positive, or a known miss now found: update tests/expected-samples.txt): {extra:?}"
    );
}

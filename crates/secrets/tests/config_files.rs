//! Rules files in Trivy's `trivy-secret.yaml` format, using Trivy's own fixtures from
//! `../shared/data/fixtures/secret-samples/trivy-testdata`. Skipped (a failure under CUSTOMS_REQUIRE_ALL=1) when absent.

use std::path::PathBuf;

use customs_secrets::{BUILTIN, ScanOptions, Scanner, SecretConfig};

fn dir() -> Option<PathBuf> {
    customs_testkit::shared_data("fixtures/secret-samples/trivy-testdata")
}

/// Rule ids and masked values found in `file` with the rules file `config`.
fn scan(config: &str, file: &str) -> Vec<(String, String)> {
    let d = dir().unwrap();
    let cfg = SecretConfig::read(&d.join(config)).unwrap();
    let scanner = Scanner::from_config(BUILTIN, &cfg, &ScanOptions::default()).unwrap();
    scanner
        .scan(file, &std::fs::read(d.join(file)).unwrap())
        .into_iter()
        .map(|f| (f.rule_id, f.masked))
        .collect()
}

#[test]
fn trivy_config_semantics() {
    if dir().is_none() {
        return;
    }
    let rule1 = |v: Vec<(String, String)>| v.into_iter().filter(|(r, _)| r == "rule1").map(|(_, m)| m).collect::<Vec<_>>();
    // A custom rule with a named secret group finds both values.
    assert_eq!(rule1(scan("config.yaml", "secret.txt")), vec!["som******", "oth*******"]);
    // The value inside the excluded block is not reported.
    assert_eq!(rule1(scan("exclude-block.yaml", "secret.txt")), vec!["oth*******"]);
    // An allow rule's regex drops the match containing "other".
    assert_eq!(rule1(scan("allow-regex.yaml", "secret.txt")), vec!["som******"]);
    // An allow rule's path drops every match in .txt files.
    assert!(rule1(scan("allow-path.yaml", "secret.txt")).is_empty());
    // A disabled rule does not run.
    assert!(rule1(scan("config-disable-rule1.yaml", "secret.txt")).is_empty());
    // Only the enabled built-in runs.
    let ids: Vec<String> = scan("config-enable-ghp.yaml", "builtin-rule-secret.txt")
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(ids, vec!["github-pat"]);
    // Without a rules file, both built-ins run on the same file.
    let scanner = Scanner::builtin();
    let all = scanner.scan(
        "builtin-rule-secret.txt",
        &std::fs::read(dir().unwrap().join("builtin-rule-secret.txt")).unwrap(),
    );
    assert_eq!(all.len(), 2);
}

#[test]
fn bad_rules_files_name_themselves() {
    let tmp = std::env::temp_dir().join(format!("customs-secret-cfg-{}.yaml", std::process::id()));
    std::fs::write(&tmp, "rules:\n  - id: r\n    regex: x\n    severity: SEVERE\n").unwrap();
    let e = SecretConfig::read(&tmp).unwrap_err();
    assert!(e.contains("rule r") && e.contains("unknown severity"), "{e}");
    std::fs::write(&tmp, "rulez: []\n").unwrap();
    assert!(SecretConfig::read(&tmp).unwrap_err().contains("unknown field"));
    std::fs::write(&tmp, "rules:\n  - id: r\n    regex: '(unclosed'\n").unwrap();
    let cfg = SecretConfig::read(&tmp).unwrap();
    assert!(
        Scanner::from_config(BUILTIN, &cfg, &ScanOptions::default())
            .err()
            .unwrap()
            .contains("rule r")
    );
    std::fs::remove_file(&tmp).unwrap();
}

//! Secrets in git history: deleted in a later commit, only on another branch, or still in HEAD after edits.
//! Skips with a message when `git` is not installed.

use std::path::Path;
use std::process::Command;

use customs_secrets::{Scanner, scan_history};

fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=Dev One",
            "-c",
            "user.email=dev@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn commit(repo: &Path, message: &str) -> String {
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", message]);
    git(repo, &["rev-parse", "HEAD"])
}

// Assembled at run time so this file itself holds no token-shaped string.
fn aws_key() -> String {
    format!("AKIA{}", "Q7Z3X9W2V5T8R4M6")
}
fn github_token() -> String {
    format!("ghp_{}", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8")
}
fn slack_token() -> String {
    format!("xoxb-{}-{}", "1234567890123", "AbCdEfGhIjKlMnOpQrStUvWx")
}

#[test]
fn every_secret_ever_committed_is_found_once_with_its_commit() {
    if customs_testkit::tool("git", "apt-get install git").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"]);

    std::fs::create_dir_all(repo.join("config")).unwrap();
    std::fs::write(repo.join("config/prod.env"), format!("AWS_ACCESS_KEY_ID={}\n", aws_key())).unwrap();
    std::fs::write(repo.join("app.py"), format!("SLACK = \"{}\"\n", slack_token())).unwrap();
    let first = commit(repo, "initial");

    std::fs::remove_file(repo.join("config/prod.env")).unwrap();
    std::fs::write(repo.join("app.py"), format!("# edited\nSLACK = \"{}\"\nprint(1)\n", slack_token())).unwrap();
    commit(repo, "remove the env file, edit app");

    git(repo, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(repo.join("token.txt"), format!("token: {}\n", github_token())).unwrap();
    let feature = commit(repo, "a token on a branch");
    git(repo, &["checkout", "-q", "main"]);

    let scan = scan_history(repo, &Scanner::builtin()).unwrap();
    assert_eq!(scan.commits, 3);
    let by_rule = |rule: &str| {
        let hits: Vec<_> = scan.findings.iter().filter(|f| f.finding.rule_id == rule).collect();
        assert_eq!(hits.len(), 1, "{rule}: {:#?}", scan.findings);
        hits[0].clone()
    };

    let aws = by_rule("aws-access-key-id");
    assert_eq!(aws.commit, first);
    assert_eq!(aws.finding.path, "config/prod.env");
    assert!(!aws.in_head, "deleted from HEAD, still in history");
    assert_eq!(aws.author, "Dev One <dev@example.com>");
    assert!(!aws.finding.masked.contains(&aws_key()));

    let slack = by_rule("slack-access-token");
    assert_eq!(slack.commit, first, "reported once, at the commit that introduced it");
    assert!(slack.in_head, "a later version of app.py in HEAD still holds it");

    let github = by_rule("github-pat");
    assert_eq!(github.commit, feature, "every ref is scanned, not only HEAD");
    assert!(!github.in_head);

    // Skipped paths are skipped in history too.
    let options = customs_secrets::ScanOptions {
        skip: vec!["config/**".into()],
        ..Default::default()
    };
    let scanner = Scanner::new(customs_secrets::BUILTIN, &options).unwrap();
    let scan = scan_history(repo, &scanner).unwrap();
    assert!(scan.findings.iter().all(|f| f.finding.rule_id != "aws-access-key-id"));
    assert_eq!(scan.findings.len(), 2);

    let err = scan_history(&repo.join("config-missing"), &Scanner::builtin())
        .unwrap_err()
        .to_string();
    assert!(err.contains("config-missing"), "{err}");
    let plain = tempfile::tempdir().unwrap();
    let err = scan_history(plain.path(), &Scanner::builtin()).unwrap_err().to_string();
    assert!(err.contains("not a git repository"), "{err}");
}

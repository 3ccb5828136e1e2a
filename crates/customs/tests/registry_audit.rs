//! `customs registry audit` end to end: `verify` on a tampered log (exit code and the first broken line),
//! `query --since/--principal`, and two processes appending at the same time (the file lock keeps one chain).

use std::path::Path;
use std::process::{Command, Output};

fn customs(dir: &Path) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin!("customs"));
    c.current_dir(dir).env_remove("SUDO_USER");
    c
}

/// A registry folder with a config and no server: the CLI's identity commands append to its audit log.
fn registry_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("registry.toml"), "[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    dir
}

/// Runs `customs registry ARGS` as OS user `user` (the audit names the operator `cli:USER`).
fn registry(dir: &Path, user: &str, args: &[&str]) -> Output {
    let out = customs(dir).env("USER", user).arg("registry").args(args).output().unwrap();
    assert!(
        out.status.success() || args[0] == "audit",
        "registry {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn records(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn verify_names_the_first_tampered_record_and_query_filters() {
    let dir = registry_dir();
    let d = dir.path();
    registry(d, "alice", &["principal", "create", "sp-one"]);
    registry(d, "alice", &["principal", "create", "sp-two"]);
    registry(d, "bob", &["principal", "disable", "sp-one"]);
    registry(d, "bob", &["group", "add", "builders", "sp-two"]);

    let verify = registry(d, "alice", &["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stdout));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("audit log intact: 4 records"));

    // --principal: the operator each record names.
    let alice = records(&registry(d, "x", &["audit", "query", "--principal", "cli:alice"]));
    assert_eq!(
        alice.iter().map(|r| r["action"].as_str().unwrap()).collect::<Vec<_>>(),
        ["principal.create", "principal.create"]
    );
    // For people: a table with a header and a line per record, then the count.
    let table = registry(d, "x", &["audit", "query", "--principal", "cli:alice", "--format", "table"]);
    let text = String::from_utf8_lossy(&table.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].split_whitespace().eq([
            "SEQ",
            "TIME",
            "PRINCIPAL",
            "CLIENT",
            "ACTION",
            "REPOSITORY",
            "REFERENCE",
            "RESULT",
            "STATUS",
            "DETAIL"
        ]),
        "{text}"
    );
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[1].contains("cli:alice") && lines[1].contains("principal.create"), "{text}");
    assert_eq!(lines[3], "2 records");
    let bob = records(&registry(d, "x", &["audit", "query", "--principal", "cli:bob"]));
    assert_eq!(
        bob.iter().map(|r| r["action"].as_str().unwrap()).collect::<Vec<_>>(),
        ["principal.disable", "group.add"]
    );
    assert!(records(&registry(d, "x", &["audit", "query", "--principal", "cli:nobody"])).is_empty());
    // --since: a date before today keeps everything, a time after the last record nothing; the record's own
    // time is included (at or after).
    assert_eq!(records(&registry(d, "x", &["audit", "query", "--since", "2020-01-01"])).len(), 4);
    assert!(records(&registry(d, "x", &["audit", "query", "--since", "2999-01-01T00:00:00Z"])).is_empty());
    let third = bob[0]["time"].as_str().unwrap().to_string();
    let since = records(&registry(d, "x", &["audit", "query", "--since", &third]));
    assert_eq!(since.len(), 2, "the record at exactly --since and the one after it");
    let bad = registry(d, "x", &["audit", "query", "--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--since yesterday"));

    // Tamper with record 2 (a changed detail): verify fails with exit 1 and names line 2 of the segment.
    let segment = d.join("data/audit/audit-000001.jsonl");
    let text = std::fs::read_to_string(&segment).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[1].contains("sp-two"));
    let tampered = lines[1].replace("sp-two", "sp-owt");
    let rewritten = [lines[0], &tampered, lines[2], lines[3]].join("\n") + "\n";
    std::fs::write(&segment, rewritten).unwrap();
    let verify = registry(d, "alice", &["audit", "verify"]);
    let said = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(1), "{said}");
    assert!(
        said.contains("audit log BROKEN") && said.contains("audit-000001.jsonl line 2") && said.contains("record 2 was modified"),
        "{said}"
    );

    // Removing a record instead: the sequence jump is found at the line after the gap.
    let removed = [lines[0], lines[2], lines[3]].join("\n") + "\n";
    std::fs::write(&segment, removed).unwrap();
    let said = String::from_utf8_lossy(&registry(d, "alice", &["audit", "verify"]).stdout).into_owned();
    assert!(said.contains("line 2") && said.contains("sequence jumps from 1 to 3"), "{said}");
}

/// Two processes creating principals at the same time: every record lands once, in one unbroken chain. Without
/// the lock both would chain to the same head and `verify` would fail.
#[test]
fn two_processes_appending_at_once_keep_one_chain() {
    let dir = registry_dir();
    let d = dir.path();
    const EACH: usize = 12;
    let spawn = |who: &'static str| {
        let d = d.to_path_buf();
        std::thread::spawn(move || {
            for i in 0..EACH {
                let name = format!("{who}-{i}");
                let out = customs(&d)
                    .env("USER", who)
                    .args(["registry", "principal", "create", &name])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
            }
        })
    };
    let (a, b) = (spawn("left"), spawn("right"));
    a.join().unwrap();
    b.join().unwrap();
    let verify = registry(d, "x", &["audit", "verify"]);
    let said = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "{said}");
    assert!(said.contains(&format!("{} records", 2 * EACH)), "{said}");
    let all = records(&registry(d, "x", &["audit", "export"]));
    let seqs: Vec<u64> = all.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=2 * EACH as u64).collect::<Vec<_>>());
    for who in ["left", "right"] {
        let mine = records(&registry(d, "x", &["audit", "query", "--principal", &format!("cli:{who}")]));
        assert_eq!(mine.len(), EACH, "{who}");
    }
}

#[test]
fn names_the_audit_log_uses_for_itself_cannot_be_taken_and_disable_states_its_real_bound() {
    let dir = registry_dir();
    let d = dir.path();
    for name in ["anonymous", "cli", "customs", "registry", "scheduler"] {
        let out = customs(d).args(["registry", "principal", "create", name]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("reserved"), "{name}: {stderr}");
    }
    registry(d, "alice", &["principal", "create", "sp-one"]);
    let out = registry(d, "alice", &["principal", "disable", "sp-one"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refuses its logins from the next request and its tokens within 2 s"),
        "{stderr}"
    );
    let out = customs(d).args(["registry", "principal", "unlock", "sp-one"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("principal:sp-one is not locked"));
}

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

/// Signed checkpoints from the CLI: `audit keygen`, `audit checkpoint`, then `verify --checkpoint --key`. A
/// rewrite that recomputes every later hash passes `verify` alone and fails against the checkpoint; cutting the
/// newest records fails against a head written down earlier (`--expect-head`).
#[test]
fn checkpoints_catch_a_recomputed_chain_and_expected_heads_catch_a_cut() {
    use customs_registry::audit::AuditRecord;
    let dir = registry_dir();
    let d = dir.path();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("audit.key");
    let key_arg = key.to_str().unwrap();
    let made = registry(d, "alice", &["audit", "keygen", "--name", "registry.test-audit", "--out", key_arg]);
    assert_eq!(made.status.code(), Some(0), "{}", String::from_utf8_lossy(&made.stderr));
    let public = keys.path().join("audit.key.pub");
    let verifier = std::fs::read_to_string(&public).unwrap();
    assert_eq!(String::from_utf8_lossy(&made.stdout), verifier);
    assert!(verifier.starts_with("registry.test-audit+"), "{verifier}");
    // A second keygen never overwrites the key.
    let again = registry(d, "alice", &["audit", "keygen", "--name", "other", "--out", key_arg]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwritten"));

    let worm = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[audit.checkpoints]\nkey = \"{key_arg}\"\nexport = \"file://{}\"\n",
        worm.path().display()
    );
    std::fs::write(d.join("registry.toml"), config).unwrap();
    for name in ["sp-one", "sp-two", "sp-three"] {
        registry(d, "alice", &["principal", "create", name]);
    }
    let signed = registry(d, "alice", &["audit", "checkpoint"]);
    assert_eq!(signed.status.code(), Some(0), "{}", String::from_utf8_lossy(&signed.stderr));
    let note = String::from_utf8_lossy(&signed.stdout).into_owned();
    assert!(note.starts_with("customs-registry audit customs-registry\n3\n"), "{note}");
    let exported: Vec<_> = std::fs::read_dir(worm.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(exported.len(), 1, "{exported:?}");
    assert_eq!(std::fs::read_to_string(&exported[0]).unwrap(), note);

    let public_arg = public.to_str().unwrap();
    let worm_arg = worm.path().to_str().unwrap();
    let checked = registry(d, "x", &["audit", "verify", "--checkpoint", worm_arg, "--key", public_arg]);
    let said = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(0), "{said}");
    assert!(said.contains("agrees with 1 signed checkpoints (newest: record 3"), "{said}");
    let head = said.split("head ").nth(1).unwrap()[..64].to_string();
    // --checkpoint without the key to check it is refused rather than trusted.
    let keyless = registry(d, "x", &["audit", "verify", "--checkpoint", worm_arg]);
    assert_eq!(keyless.status.code(), Some(2));
    // A different key does not open the checkpoint.
    let other = keys.path().join("other.key");
    registry(
        d,
        "x",
        &["audit", "keygen", "--name", "registry.test-audit", "--out", other.to_str().unwrap()],
    );
    let wrong = registry(
        d,
        "x",
        &[
            "audit",
            "verify",
            "--checkpoint",
            worm_arg,
            "--key",
            &format!("{}.pub", other.display()),
        ],
    );
    assert_eq!(wrong.status.code(), Some(1), "{}", String::from_utf8_lossy(&wrong.stdout));
    assert!(String::from_utf8_lossy(&wrong.stdout).contains("NOT VERIFIED"));

    // Rewrite record 2 and recompute every later hash: the chain alone is intact, the checkpoint disagrees.
    let segment = d.join("data/audit/audit-000001.jsonl");
    let original = std::fs::read_to_string(&segment).unwrap();
    let mut records: Vec<AuditRecord> = original.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    records[1].event.principal = "cli:mallory".into();
    for i in 1..records.len() {
        records[i].prev = records[i - 1].hash.clone();
        records[i].hash = records[i].compute_hash();
    }
    let lines: Vec<String> = records.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
    std::fs::write(&segment, lines.join("\n") + "\n").unwrap();
    let alone = registry(d, "x", &["audit", "verify"]);
    assert_eq!(alone.status.code(), Some(0), "{}", String::from_utf8_lossy(&alone.stdout));
    let caught = registry(d, "x", &["audit", "verify", "--checkpoint", worm_arg, "--key", public_arg]);
    let said = String::from_utf8_lossy(&caught.stdout);
    assert_eq!(caught.status.code(), Some(1), "{said}");
    assert!(
        said.contains("audit log BROKEN") && said.contains("rewritten after that checkpoint"),
        "{said}"
    );

    // Cut the newest record instead: the chain alone is intact, the head written down earlier is missing.
    let cut: Vec<&str> = original.lines().take(2).collect();
    std::fs::write(&segment, cut.join("\n") + "\n").unwrap();
    assert_eq!(registry(d, "x", &["audit", "verify"]).status.code(), Some(0));
    let expect = registry(d, "x", &["audit", "verify", "--expect-head", &head]);
    let said = String::from_utf8_lossy(&expect.stdout);
    assert_eq!(expect.status.code(), Some(1), "{said}");
    assert!(said.contains("audit log BROKEN"), "{said}");
    let malformed = registry(d, "x", &["audit", "verify", "--expect-head", "abc"]);
    assert_eq!(malformed.status.code(), Some(2));
}

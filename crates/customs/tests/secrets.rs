//! `customs secrets` on images: deleted files, layers, config, base layers.

use std::path::PathBuf;

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;

fn secrets_json(image: &str, extra: &[&str]) -> Value {
    let out = cargo_bin_cmd!("customs")
        .args(["secrets", image, "-f", "json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn demo_image_deleted_key_is_found_and_masked() {
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/demo-image")
        .display()
        .to_string();
    let doc = secrets_json(&demo, &[]);
    let f = &doc["findings"][0];
    assert_eq!(
        (f["rule_id"].as_str(), f["path"].as_str(), f["layer"].as_u64()),
        (Some("aws-access-key-id"), Some("app/settings.env"), Some(2))
    );
    assert_eq!((f["hidden"].as_str(), f["hidden_in"].as_u64()), (Some("deleted"), Some(3)));
    assert_eq!(f["created_by"], "COPY settings.env /app/");
    assert!(
        !doc.to_string().contains("AKIAIOSFODNN7EXAMPLE"),
        "the secret never appears unmasked"
    );
    let table = cargo_bin_cmd!("customs").args(["secrets", &demo]).output().unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("deleted in layer 3 but still in the image") && !text.contains("AKIAIOSFODNN7EXAMPLE"),
        "{text}"
    );
    // Skipping a directory hides it.
    assert_eq!(
        secrets_json(&demo, &["--skip-dirs", "app"])["findings"].as_array().unwrap().len(),
        0
    );
}

#[test]
fn real_image_leaked_env_and_base_layers() {
    let Some(image) = customs_testkit::test_image("bookworm-app.oci") else {
        return;
    };
    let doc = secrets_json(image.to_str().unwrap(), &["--skip-base-layers"]);
    assert_eq!(doc["skipped_layers"], 1, "the base image is the first layer, up to its CMD");
    let findings = doc["findings"].as_array().unwrap();
    let leaked: Vec<&Value> = findings.iter().filter(|f| f["path"] == "app/leaked.env").collect();
    let rules: Vec<&str> = leaked.iter().map(|f| f["rule_id"].as_str().unwrap()).collect();
    assert_eq!(rules, vec!["aws-access-key-id", "aws-secret-access-key"]);
    for f in &leaked {
        assert_eq!(
            (f["layer"].as_u64(), f["hidden"].as_str(), f["hidden_in"].as_u64()),
            (Some(3), Some("deleted"), Some(4))
        );
        assert!(f["created_by"].as_str().unwrap().contains("leaked.env"));
    }
    // The build command that wrote it is in the history, and is reported too.
    assert!(findings.iter().any(|f| f["path"].as_str().unwrap().starts_with("config:history")));
    assert!(!doc.to_string().contains("AKIAIOSFODNN7EXAMPLE"));
}

#[test]
fn rules_file_adds_and_disables_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/demo-image")
        .display()
        .to_string();
    // The demo's dpkg status says "Package: openssl"; a custom rule may find anything, here that line.
    // With the AWS rule off, the generic rule would report the key's `aws_access_key_id = …` line: off too.
    std::fs::write(
        tmp.path().join("customs-secret.yaml"),
        "rules:\n  - id: custom-openssl\n    category: test\n    title: custom rule\n    severity: low\n    keywords: [openssl]\n    regex: 'Package: (?P<secret>openssl)'\ndisable-rules:\n  - aws-access-key-id\n  - generic-credential\n",
    )
    .unwrap();
    let out = cargo_bin_cmd!("customs")
        .current_dir(tmp.path())
        .args(["secrets", &demo, "-f", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rules: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    assert_eq!(rules, vec!["custom-openssl"], "{doc:#}");
    assert_eq!(doc["findings"][0]["severity"], "LOW");
}

#[test]
fn secrets_history_reports_a_key_removed_from_the_tree() {
    if customs_testkit::tool("git", "apt-get install git").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .current_dir(dir.path())
            .args([
                "-c",
                "user.name=ci",
                "-c",
                "user.email=ci@example.com",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .status()
            .unwrap();
        assert!(ok.success(), "git {args:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(
        dir.path().join("prod.env"),
        format!("AWS_ACCESS_KEY_ID=AKIA{}\n", "Q7Z3X9W2V5T8R4M6"),
    )
    .unwrap();
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "oops"]);
    git(&["rm", "-q", "prod.env"]);
    git(&["commit", "-q", "-m", "remove it"]);

    let out = assert_cmd::cargo::cargo_bin_cmd!("customs")
        .args(["secrets", "--format", "json", "--history"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["findings"].as_array().unwrap().len(), 0, "the working tree is clean");
    let past = &doc["history"];
    assert_eq!(past["commits"], 2);
    assert_eq!(past["findings"][0]["rule_id"], "aws-access-key-id");
    assert_eq!(past["findings"][0]["in_head"], false);
    assert_eq!(past["findings"][0]["commit"].as_str().unwrap().len(), 40);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Q7Z3X9W2V5T8R4M6"), "masked");

    let plain = tempfile::tempdir().unwrap();
    let out = assert_cmd::cargo::cargo_bin_cmd!("customs")
        .args(["secrets", "--history"])
        .arg(plain.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a git repository"));
}

/// A root filesystem folder (`dir:`) is walked without its top-level `proc`, `sys` and `dev` (a live system's
/// kernel interfaces), and an entry that cannot be read is a warning, never the end of the scan: `dir:/` used
/// to fail on a kernel thread's `/proc/PID/exe`.
#[test]
fn rootfs_scans_skip_kernel_folders_and_survive_unreadable_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let key = format!("AWS_ACCESS_KEY_ID=AKIA{}\n", "Q7Z3X9W2V5T8R4M6");
    for dir in ["etc", "proc/1", "sys/kernel", "dev", "srv/proc"] {
        std::fs::create_dir_all(tmp.path().join(dir)).unwrap();
        std::fs::write(tmp.path().join(dir).join("app.env"), &key).unwrap();
    }
    let doc = secrets_json(&format!("dir:{}", tmp.path().display()), &[]);
    let mut paths: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        ["etc/app.env", "srv/proc/app.env"],
        "only the top-level kernel folders are skipped"
    );

    // A kernel thread's /proc/PID/exe cannot be read (readlink fails): the scan goes on and says so.
    let kernel_thread = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .find(|e| std::fs::read_link(e.path().join("exe")).is_err() && e.path().join("exe").symlink_metadata().is_ok());
    let Some(pid) = kernel_thread else {
        return customs_testkit::skip("no process here has an unreadable /proc/PID/exe (no kernel thread is visible)");
    };
    let out = cargo_bin_cmd!("customs")
        .args(["sbom", &format!("dir:{}", pid.path().display()), "-f", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Its unreadable entries (exe, fdinfo, …) are warnings; past ten they are counted.
    let warnings = doc["warnings"].to_string();
    assert!(warnings.contains(": skipped "), "{doc:#}");
}

/// `secrets --format sarif` is SARIF (it printed customs' own JSON), valid against the schema; `--exit-code N`
/// on `secrets` and `scan` exits N when something is found (Trivy's convention), 0 otherwise.
#[test]
fn secrets_sarif_is_sarif_and_exit_code_reports_findings() {
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/demo-image")
        .display()
        .to_string();
    let tmp = tempfile::tempdir().unwrap();
    let sarif = tmp.path().join("s.sarif");
    let out = cargo_bin_cmd!("customs")
        .args(["secrets", &demo, "--format", "sarif", "-o"])
        .arg(&sarif)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log: Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    assert_eq!(log["version"], "2.1.0");
    assert_eq!(log["runs"][0]["results"][0]["ruleId"], "aws-access-key-id");
    if let Some((ok, text)) = customs_testkit::validate_report("sarif", &sarif) {
        assert!(ok, "{text}");
    }
    let code = |args: &[&str]| cargo_bin_cmd!("customs").args(args).output().unwrap().status.code();
    assert_eq!(code(&["secrets", &demo, "--exit-code", "5"]), Some(5));
    assert_eq!(code(&["secrets", &demo]), Some(0), "0 unless asked");
    assert_eq!(
        code(&["secrets", &demo, "--exit-code", "5", "--skip-dirs", "app"]),
        Some(0),
        "nothing found"
    );
    assert_eq!(code(&["scan", &demo, "--scanners", "secret", "--exit-code", "3"]), Some(3));
    assert_eq!(
        code(&["scan", &demo, "--scanners", "secret", "--exit-code", "3", "--severity", "LOW"]),
        Some(0),
        "below --severity"
    );
}

/// A one-layer docker-archive of `entries` (path, bytes, or a hard link's target) with this config `config`
/// section (`Labels`, `Cmd`, …).
fn docker_archive(dir: &std::path::Path, entries: &[(&str, Result<&[u8], &str>)], config: serde_json::Value) -> std::path::PathBuf {
    use sha2::Digest;
    let mut layer = tar::Builder::new(Vec::new());
    for (path, what) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        match what {
            Ok(bytes) => {
                h.set_size(bytes.len() as u64);
                h.set_entry_type(tar::EntryType::Regular);
                layer.append_data(&mut h, path, *bytes).unwrap();
            }
            Err(target) => {
                h.set_size(0);
                h.set_entry_type(tar::EntryType::Link);
                layer.append_link(&mut h, path, target).unwrap();
            }
        }
    }
    let layer = layer.into_inner().unwrap();
    let diff_id = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&layer)));
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "COPY app /app"}],
    });
    let manifest = serde_json::json!([{"Config": "config.json", "RepoTags": ["t:1"], "Layers": ["layer.tar"]}]);
    let path = dir.join("image.tar");
    let mut archive = tar::Builder::new(std::fs::File::create(&path).unwrap());
    for (name, bytes) in [
        ("layer.tar", layer),
        ("config.json", config.to_string().into_bytes()),
        ("manifest.json", manifest.to_string().into_bytes()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        archive.append_data(&mut h, name, bytes.as_slice()).unwrap();
    }
    archive.finish().unwrap();
    path
}

#[test]
fn a_hard_linked_secret_is_reported_once_and_labels_and_cmd_are_scanned() {
    let dir = tempfile::tempdir().unwrap();
    // Assembled so this file holds no credential-shaped literal.
    let key = format!("aws_access_key_id = {}{}\n", "AKIAZ4N5QW3R", "TY7UPX2K");
    let token = format!("ghp_{}{}", "aB3dE5fG7hJ9kL1mN3pQ5rS7t", "V9wX1yZ3a5C7");
    let image = docker_archive(
        dir.path(),
        &[("app/secret.env", Ok(key.as_bytes())), ("app/copy.env", Err("app/secret.env"))],
        serde_json::json!({"Labels": {"ci.token": token}, "Cmd": ["serve", "--api-key", format!("sk_live_{}", "4eC39HqLyjWDarjtT1zdp7dc")]}),
    );
    let doc = secrets_json(image.to_str().unwrap(), &[]);
    let mut found: Vec<(String, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap().to_string(), f["rule_id"].as_str().unwrap().to_string()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("app/secret.env".to_string(), "aws-access-key-id".to_string()),
            ("config:cmd".to_string(), "stripe-secret-token".to_string()),
            ("config:label[ci.token]".to_string(), "github-pat".to_string()),
        ],
        "the hard link's copy is the same secret: once"
    );
}

#[test]
fn a_rules_file_naming_an_unknown_rule_warns_or_fails_with_strict_and_trivys_file_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/demo-image")
        .display()
        .to_string();
    let run = |args: &[&str]| {
        cargo_bin_cmd!("customs")
            .current_dir(tmp.path())
            .args(["secrets", &demo, "-f", "json"])
            .args(args)
            .output()
            .unwrap()
    };
    // Trivy's file, read when no customs-secret.yaml is there; a typo in it disables nothing, and says so.
    std::fs::write(
        tmp.path().join("trivy-secret.yaml"),
        "disable-rules:\n  - aws-acess-key-id\n  - generic-credential\n",
    )
    .unwrap();
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("note: secret rules from ./trivy-secret.yaml"), "{stderr}");
    assert!(stderr.contains("names rule ids no rule has: aws-acess-key-id"), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["findings"][0]["rule_id"], "aws-access-key-id",
        "the misspelt id disabled nothing"
    );
    let out = run(&["--strict"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--strict makes this an error"));
    // A former id still means its rules: disabling `openai-api-key` disables the five OpenAI key rules.
    std::fs::write(
        tmp.path().join("trivy-secret.yaml"),
        "disable-rules: [aws-access-key-id, generic-credential]\n",
    )
    .unwrap();
    let out = run(&["--disable-rule", "openai-api-key", "--strict"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["findings"].as_array().map(Vec::len), Some(0), "{doc:#}");
    // customs' own file wins over Trivy's.
    std::fs::write(tmp.path().join("customs-secret.yaml"), "disable-rules: []\n").unwrap();
    let out = run(&[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("note: secret rules from ./customs-secret.yaml"));
}

#[test]
fn files_over_the_size_cap_are_said_once_and_the_cap_is_a_flag() {
    let dir = tempfile::tempdir().unwrap();
    let key = format!("aws_access_key_id = {}{}\n", "AKIAZ4N5QW3R", "TY7UPX2K");
    // Two files of 2 MiB with the key at the end.
    let big = |_: u8| {
        let mut v = vec![b'#'; 2 << 20];
        v.extend_from_slice(key.as_bytes());
        v
    };
    let (a, b) = (big(0), big(1));
    let image = docker_archive(dir.path(), &[("app/a.log", Ok(&a)), ("app/b.log", Ok(&b))], serde_json::json!({}));
    let capped = secrets_json(image.to_str().unwrap(), &["--max-file-size", "1"]);
    assert_eq!(capped["findings"].as_array().map(Vec::len), Some(0));
    let warnings: Vec<&str> = capped["warnings"].as_array().unwrap().iter().filter_map(|w| w.as_str()).collect();
    let over: Vec<&&str> = warnings.iter().filter(|w| w.contains("over the size limit")).collect();
    assert_eq!(over.len(), 1, "said once: {warnings:?}");
    assert!(over[0].contains("2 file(s)") && over[0].contains("--max-file-size"), "{}", over[0]);
    let default = secrets_json(image.to_str().unwrap(), &[]);
    assert_eq!(default["findings"].as_array().map(Vec::len), Some(2), "32 MiB by default");
}

//! `customs gate`: thresholds, exclusions.json semantics, reports and exit codes.
//! Runs on the bundled demo image always, and on the real bookworm test image when it was built.

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;

mod support;
use support::{demo_image, validate};

/// A database with one synthetic HIGH advisory for `package` below `fixed` in `ecosystem`.
fn db_with(dir: &Path, ecosystem: &str, package: &str, fixed: &str) -> PathBuf {
    let record = serde_json::json!({
        "id": "TEST-GATE-1", "aliases": ["CVE-0000-0001"], "summary": "Synthetic advisory for the gate tests",
        "database_specific": {"severity": "HIGH"},
        "affected": [{"package": {"ecosystem": ecosystem, "name": package}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]
    });
    support::osv_database(dir, &[record])
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn gate(dir: &Path, db: &Path, image: &str, args: &[&str]) -> Run {
    let out = cargo_bin_cmd!("customs")
        .current_dir(dir)
        .args(["gate", image, "--no-secrets", "--db"])
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

fn exercise(image: &str, package: &str, db: &Path, dir: &Path) {
    exercise_with(image, package, db, dir, 1);
}

/// `hits`: how many findings the advisory yields in this image (a source package may have several binaries).
fn exercise_with(image: &str, package: &str, db: &Path, dir: &Path, hits: usize) {
    let ex = dir.join("exclusions.json");
    let _ = std::fs::remove_file(&ex);
    // No exceptions: HIGH fails the gate with exit 1, and every report says so.
    let r = gate(
        dir,
        db,
        image,
        &[
            "--report",
            "junit=gate.xml",
            "--report",
            "sarif=gate.sarif",
            "--report",
            "json=gate.json",
        ],
    );
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(&format!("fail: {hits} finding(s) at CRITICAL or HIGH")),
        "{}",
        r.stdout
    );
    let junit = std::fs::read_to_string(dir.join("gate.xml")).unwrap();
    assert!(
        junit.contains(&format!("failures=\"{}\"", hits + 1)) && junit.contains("<failure message=\"HIGH: Synthetic advisory"),
        "{junit}"
    );
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("gate.sarif")).unwrap()).unwrap();
    assert_eq!(sarif["runs"][0]["results"][0]["ruleId"], "TEST-GATE-1");
    assert_eq!(sarif["runs"][0]["results"][0]["level"], "error");
    for (kind, file) in [("sarif", "gate.sarif"), ("junit", "gate.xml")] {
        if let Some((ok, text)) = validate(kind, &dir.join(file)) {
            assert!(ok, "{file} does not validate:\n{text}");
        }
    }
    let json: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("gate.json")).unwrap()).unwrap();
    assert_eq!(json["verdict"]["pass"], false);
    assert_eq!(json["findings"][0]["status"], "failing");

    // Showing only CRITICAL does not hide what fails; a custom exit code is honoured.
    let r = gate(dir, db, image, &["--severity", "CRITICAL", "--exit-code", "3"]);
    assert_eq!(r.code, Some(3));
    assert!(r.stdout.contains("TEST-GATE-1"));
    // Failing only on CRITICAL lets it pass.
    assert_eq!(gate(dir, db, image, &["--fail-on", "CRITICAL"]).code, Some(0));

    // The seed's exact format, unchanged: the exception suppresses the finding.
    std::fs::write(&ex, format!("[ {{ \"library_name\": \"{package}\", \"date\": \"2024-03-07\" }} ]")).unwrap();
    let r = gate(
        dir,
        db,
        image,
        &["--show-suppressed", "--report", "json=gate.json", "--report", "vex=vex.json"],
    );
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("suppressed by exceptions:") && r.stdout.contains("TEST-GATE-1"),
        "{}",
        r.stdout
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("gate.json")).unwrap()).unwrap();
    assert_eq!(json["findings"][0]["status"], "suppressed");
    assert_eq!(json["findings"][0]["exception"]["library_name"], package);
    let vex: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("vex.json")).unwrap()).unwrap();
    assert_eq!(vex["vulnerabilities"][0]["id"], "TEST-GATE-1");
    assert_eq!(vex["vulnerabilities"][0]["analysis"]["response"][0], "will_not_fix");
    assert!(
        vex["vulnerabilities"][0]["analysis"]["detail"]
            .as_str()
            .unwrap()
            .contains("granted 2024-03-07")
    );
    if let Some((ok, text)) = validate("cyclonedx", &dir.join("vex.json")) {
        assert!(ok, "VEX does not validate:\n{text}");
    }

    // The same exception, too old for a 30-day policy: it expires and the gate fails again.
    let r = gate(dir, db, image, &["--max-exception-age-days", "30"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stdout.contains("older than the policy's 30-day maximum"), "{}", r.stdout);

    // An explicit expiry in the past: fails again, and the reason names the exception.
    std::fs::write(
        &ex,
        format!("[{{\"library_name\": \"{package}\", \"expires\": \"2020-01-01\", \"reason\": \"accepted\"}}]"),
    )
    .unwrap();
    let r = gate(dir, db, image, &[]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stdout.contains("expired on 2020-01-01") && r.stdout.contains("is no longer excepted"),
        "{}",
        r.stdout
    );

    // A typo in a field name is a usage error naming the file, line and field.
    std::fs::write(
        &ex,
        format!("[\n  {{\"library_name\": \"{package}\",\n    \"expire\": \"2099-01-01\"}}\n]"),
    )
    .unwrap();
    let r = gate(dir, db, image, &[]);
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr.contains("exclusions.json:2") && r.stderr.contains("unknown field `expire`"),
        "{}",
        r.stderr
    );

    // Reasons can be made mandatory.
    std::fs::write(&ex, format!("[{{\"library_name\": \"{package}\"}}]")).unwrap();
    let r = gate(dir, db, image, &["--require-reason"]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("`reason` is required"), "{}", r.stderr);
    std::fs::remove_file(&ex).unwrap();
}

#[test]
fn gate_on_the_demo_image() {
    let tmp = tempfile::tempdir().unwrap();
    let db = db_with(tmp.path(), "PyPI", "requests", "2.31.0");
    let demo = demo_image();
    exercise(&demo, "requests", &db, tmp.path());

    // Usage errors are 2, distinct from a policy failure (1) and a crash (101).
    let r = gate(tmp.path(), &db, &demo, &["--report", "xml=out.xml"]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("unknown report format"), "{}", r.stderr);
    let r = gate(tmp.path(), &db, "/nonexistent/image.tar", &[]);
    assert_eq!(r.code, Some(2));
}

#[test]
fn gate_on_a_real_debian_image() {
    let Some(image) = customs_testkit::test_image("bookworm-app.docker.tar") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // Source package `curl` (binaries curl and libcurl4) older than a fictitious fix.
    let db = db_with(tmp.path(), "Debian:12", "curl", "7.88.1-10+deb12u99");
    let r = gate(tmp.path(), &db, image.to_str().unwrap(), &["--report", "json=g.json"]);
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("g.json")).unwrap()).unwrap();
    let mut hit: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["package"]["name"].as_str().unwrap())
        .collect();
    hit.sort();
    assert_eq!(hit, vec!["curl", "libcurl4"], "matched by source package");
    assert!(json["findings"].as_array().unwrap().iter().all(|f| f["package"]["layer"] == 2));
    // One seed-format exception for the source package covers both binaries.
    std::fs::write(
        tmp.path().join("exclusions.json"),
        r#"[{"library_name": "curl", "date": "2024-03-07"}]"#,
    )
    .unwrap();
    assert_eq!(gate(tmp.path(), &db, image.to_str().unwrap(), &[]).code, Some(0));
    // The whole exception life cycle, as on the demo image: two findings, curl and libcurl4.
    let dir = tmp.path().join("run");
    std::fs::create_dir_all(&dir).unwrap();
    exercise_with(image.to_str().unwrap(), "curl", &db, &dir, 2);
}

/// A webhook receiver on loopback: answers `status` and keeps the bodies it got.
fn webhook(status: u16) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/services/T000/B000/secret-token", l.local_addr().unwrap());
    let keep = seen.clone();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            keep.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
            let _ = write!(s, "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (url, seen)
}

#[test]
fn policy_file_notifications_and_markdown() {
    let tmp = tempfile::tempdir().unwrap();
    let db = db_with(tmp.path(), "PyPI", "requests", "2.31.0");
    let demo = demo_image();
    let (url, seen) = webhook(200);
    let policy = tmp.path().join("customs.toml");
    std::fs::write(
        &policy,
        "[gate]\nexit_code = 4\n\n[[notify]]\nurl_env = \"TEST_HOOK\"\nformat = \"slack\"\n",
    )
    .unwrap();

    // The policy's exit code; a Slack message on failure; the webhook's secret path never printed.
    let out = cargo_bin_cmd!("customs")
        .current_dir(tmp.path())
        .env("TEST_HOOK", &url)
        .args(["gate", &demo, "--no-secrets", "--report", "markdown=summary.md", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("notified http://127.0.0.1:") && !stderr.contains("secret-token"),
        "{stderr}"
    );
    let bodies = seen.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    let msg: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert!(
        msg["text"].as_str().unwrap().contains("customs gate FAILED")
            && msg["text"].as_str().unwrap().contains("HIGH TEST-GATE-1 in requests 2.25.0"),
        "{msg}"
    );
    let md = std::fs::read_to_string(tmp.path().join("summary.md")).unwrap();
    assert!(
        md.starts_with("### ❌ customs gate failed") && md.contains("| ❌ | HIGH | TEST-GATE-1 | requests | 2.25.0 | 2.31.0 | 1 |"),
        "{md}"
    );

    // Flags override the policy: failing only on CRITICAL passes, and a pass notifies nobody.
    let out = cargo_bin_cmd!("customs")
        .current_dir(tmp.path())
        .env("TEST_HOOK", &url)
        .args(["gate", &demo, "--no-secrets", "--fail-on", "CRITICAL", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(seen.lock().unwrap().len(), 1);

    // A broken webhook is a warning; the verdict and exit code stand.
    let (dead, _) = webhook(500);
    let out = cargo_bin_cmd!("customs")
        .current_dir(tmp.path())
        .env("TEST_HOOK", &dead)
        .args(["gate", &demo, "--no-secrets", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: notification failed") && stderr.contains("answered 500") && !stderr.contains("secret-token"),
        "{stderr}"
    );

    // The policy can point at the exclusions, relative to itself.
    std::fs::create_dir_all(tmp.path().join("sec")).unwrap();
    std::fs::write(
        tmp.path().join("sec/accepted.json"),
        r#"[{"id": "CVE-0000-0001", "reason": "test"}]"#,
    )
    .unwrap();
    std::fs::write(&policy, "[exceptions]\nfile = \"sec/accepted.json\"\nrequire_reason = true\n").unwrap();
    let out = cargo_bin_cmd!("customs")
        .current_dir(tmp.path())
        .args(["gate", &demo, "--no-secrets", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));

    // A broken policy file is a usage error naming it.
    std::fs::write(&policy, "[gate]\nfailon = [\"HIGH\"]\n").unwrap();
    let out = cargo_bin_cmd!("customs")
        .current_dir(tmp.path())
        .args(["gate", &demo, "--no-secrets", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("customs.toml"));
}

#[test]
fn exclusions_check_lists_what_needs_review() {
    let tmp = tempfile::tempdir().unwrap();
    let db = db_with(tmp.path(), "PyPI", "requests", "2.31.0");
    let demo = demo_image();
    std::fs::write(
        tmp.path().join("exclusions.json"),
        "[{\"library_name\": \"requests\", \"reason\": \"proxy not used\"},\n {\"id\": \"CVE-1999-0001\", \"expires\": \"2020-01-01\"},\n {\"library_name\": \"zlib\", \"reason\": \"x\"}]",
    )
    .unwrap();
    let out = cargo_bin_cmd!("customs")
        .current_dir(tmp.path())
        .args(["exclusions", "check", &demo, "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("expired   exclusions.json:2 CVE-1999-0001: expired on 2020-01-01"),
        "{text}"
    );
    assert!(text.contains("unused    exclusions.json:3 zlib"), "{text}");
    assert!(
        !text.contains("exclusions.json:1"),
        "the used, documented exception needs nothing: {text}"
    );
    assert!(text.contains("3 exceptions, 2 need action"), "{text}");
}

#[test]
fn gate_fails_on_a_secret_that_a_later_layer_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let db = db_with(tmp.path(), "PyPI", "requests", "2.31.0");
    let demo = demo_image();
    let run = |extra: &[&str]| {
        let out = cargo_bin_cmd!("customs")
            .current_dir(tmp.path())
            .args(["gate", &demo, "--fail-on", "CRITICAL", "--db"])
            .arg(&db)
            .args(extra)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    // The HIGH vulnerability does not fail at CRITICAL; the deleted AWS key does.
    let (code, text) = run(&["--report", "junit=g.xml", "--report", "sarif=g.sarif", "--report", "json=g.json"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("fail: 1 secret(s) in the image") && text.contains("deleted in layer 3 but still in the image"),
        "{text}"
    );
    assert!(!text.contains("AKIAIOSFODNN7EXAMPLE"));
    let junit = std::fs::read_to_string(tmp.path().join("g.xml")).unwrap();
    assert!(
        junit.contains("classname=\"secrets.AWS\"") && junit.contains("type=\"secret\""),
        "{junit}"
    );
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("g.sarif")).unwrap()).unwrap();
    assert!(
        sarif["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["ruleId"] == "aws-access-key-id"
                && r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "app/settings.env")
    );
    for (kind, file) in [("sarif", "g.sarif"), ("junit", "g.xml")] {
        if let Some((ok, out)) = validate(kind, &tmp.path().join(file)) {
            assert!(ok, "{file}: {out}");
        }
    }
    let json: Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("g.json")).unwrap()).unwrap();
    assert_eq!(json["secrets"][0]["status"], "failing");
    let fingerprint = json["secrets"][0]["fingerprint"].as_str().unwrap().to_string();

    // An exception by rule and path glob, or by fingerprint, lets it pass.
    std::fs::write(
        tmp.path().join("exclusions.json"),
        r#"[{"id": "aws-access-key-id", "path": "app/*.env", "reason": "documentation key, revoked"}]"#,
    )
    .unwrap();
    assert_eq!(run(&[]).0, Some(0));
    std::fs::write(tmp.path().join("exclusions.json"), format!("[{{\"id\": \"{fingerprint}\"}}]")).unwrap();
    assert_eq!(run(&[]).0, Some(0));
    // A package-style exception never covers a secret.
    std::fs::write(tmp.path().join("exclusions.json"), r#"[{"library_name": "requests"}]"#).unwrap();
    assert_eq!(run(&[]).0, Some(1));
    assert_eq!(run(&["--no-secrets"]).0, Some(0));
    // Per-scanner thresholds: the AWS key is CRITICAL, so a LOW,MEDIUM threshold or `none` only reports it.
    let severity = json["secrets"][0]["severity"].as_str().unwrap().to_string();
    assert_eq!(severity, "CRITICAL");
    assert_eq!(run(&["--fail-on-secret", "CRITICAL"]).0, Some(1));
    assert_eq!(run(&["--fail-on-secret", "low,medium"]).0, Some(0));
    let (code, text) = run(&["--fail-on-secret", "none", "--report", "json=shown.json"]);
    assert_eq!(code, Some(0), "{text}");
    let shown: Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("shown.json")).unwrap()).unwrap();
    assert_eq!(shown["secrets"][0]["status"], "shown");
    assert_eq!(run(&["--fail-on-secret", "urgent"]).0, Some(2));
    // The same settings from the policy file's [gate]; flags still win.
    let policy = tmp.path().join("customs.toml");
    std::fs::write(&policy, "[gate]\nfail_on_secret = [\"none\"]\n").unwrap();
    assert_eq!(run(&[]).0, Some(0));
    assert_eq!(run(&["--fail-on-secret", "CRITICAL"]).0, Some(1));
    std::fs::write(&policy, "[gate]\nsecrets = false\n").unwrap();
    assert_eq!(run(&[]).0, Some(0));
    std::fs::write(&policy, "[gate]\nfail_on_secret = [\"sometimes\"]\n").unwrap();
    let (code, _) = run(&[]);
    assert_eq!(code, Some(2), "a bad policy value is a usage error");
    std::fs::remove_file(&policy).unwrap();
}

#[test]
fn gate_junit_reports_lint_findings_as_customs_lint_does() {
    let tmp = tempfile::tempdir().unwrap();
    let db = db_with(tmp.path(), "PyPI", "requests", "2.31.0");
    let demo = demo_image();
    std::fs::write(tmp.path().join("Dockerfile"), "FROM debian:latest\nADD app.py /app/\n").unwrap();
    let run = gate(
        tmp.path(),
        &db,
        &demo,
        &[
            "--fail-on",
            "CRITICAL",
            "--dockerfile",
            "Dockerfile",
            "--fail-on-lint",
            "warning",
            "--report",
            "junit=gate.xml",
        ],
    );
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let lint = cargo_bin_cmd!("customs")
        .current_dir(tmp.path())
        .args([
            "lint",
            "Dockerfile",
            "--failure-threshold",
            "warning",
            "-f",
            "junit",
            "-o",
            "lint.xml",
        ])
        .output()
        .unwrap();
    assert_eq!(lint.status.code(), Some(1), "{}", String::from_utf8_lossy(&lint.stderr));
    let cases = |file: &str| -> Vec<String> {
        let xml = std::fs::read_to_string(tmp.path().join(file)).unwrap();
        let mut out = Vec::new();
        let mut rest = xml.as_str();
        while let Some(at) = rest.find("<testcase classname=\"lint.") {
            let end = rest[at..].find("</testcase>").map_or(rest.len(), |e| at + e);
            out.push(rest[at..end].to_string());
            rest = &rest[end..];
        }
        out
    };
    let (from_gate, from_lint) = (cases("gate.xml"), cases("lint.xml"));
    assert!(!from_gate.is_empty(), "no lint test cases in the gate's JUnit");
    assert_eq!(
        from_gate, from_lint,
        "the gate reports lint findings exactly as `customs lint` does"
    );
    assert!(
        from_gate.iter().any(|c| c.contains("<failure") && c.contains("ADD app.py /app/")),
        "{from_gate:?}"
    );
    if let Some((ok, out)) = validate("junit", &tmp.path().join("gate.xml")) {
        assert!(ok, "gate.xml: {out}");
    }
}

#[test]
fn fail_on_none_only_reports_vulnerabilities() {
    let tmp = tempfile::tempdir().unwrap();
    let db = db_with(tmp.path(), "PyPI", "requests", "2.31.0");
    let demo = demo_image();
    let high = gate(tmp.path(), &db, &demo, &["--fail-on", "HIGH"]);
    assert_eq!(high.code, Some(1), "the demo's HIGH vulnerability fails at HIGH: {}", high.stdout);
    let none = gate(tmp.path(), &db, &demo, &["--fail-on", "none"]);
    assert_eq!(none.code, Some(0), "{}", none.stdout);
    assert!(none.stdout.contains("HIGH"), "still reported: {}", none.stdout);
}

//! `customs lint`: exit codes, config, formats (SARIF and JUnit validated), and `gate --dockerfile`.

use std::path::Path;

use assert_cmd::cargo::cargo_bin_cmd;

mod support;
use support::{demo_image, validate};

const BAD: &str = "FROM debian\nRUN apt-get update && apt-get install -y curl\nADD app.py /app/\nENV API_TOKEN=s3cr3t-value-123\n";
const GOOD: &str =
    "FROM debian:12.8@sha256:0000000000000000000000000000000000000000000000000000000000000000\nCOPY app.py /app/\nUSER 1000\n";

/// Only info-level findings: a tag without a digest (CP002) and two RUNs in a row (DL3059).
const INFO_ONLY: &str = "FROM debian:12.8\nCOPY app.py /app/\nRUN echo a\nRUN echo b\nUSER 1000\n";

fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = cargo_bin_cmd!("customs").current_dir(dir).arg("lint").args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Asserts that a report validates, when the validator is installed.
fn assert_valid(kind: &str, path: &Path) {
    if let Some((ok, text)) = validate(kind, path) {
        assert!(ok, "{kind} report does not validate: {text}");
    }
}

#[test]
fn exit_codes_and_findings() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("Dockerfile"), BAD).unwrap();
    std::fs::write(tmp.path().join("Good.Dockerfile"), GOOD).unwrap();
    std::fs::write(tmp.path().join(".dockerignore"), ".git\n").unwrap();

    let (code, out, _) = run(tmp.path(), &["--no-color"]);
    assert_eq!(code, Some(1), "{out}");
    for rule in ["CP001", "CP004", "DL3006", "DL3008", "DL3020"] {
        assert!(out.contains(rule), "{rule} missing:\n{out}");
    }
    assert!(!out.contains("s3cr3t-value-123"), "a secret value is never printed:\n{out}");
    assert!(out.contains("   3 | ADD app.py /app/"), "source excerpt:\n{out}");

    let (code, out, _) = run(tmp.path(), &["Good.Dockerfile"]);
    assert_eq!(code, Some(0), "{out}");
    // A file whose findings are all info-level passes the default (warning) threshold and fails at info.
    std::fs::write(tmp.path().join("Info.Dockerfile"), INFO_ONLY).unwrap();
    let (code, out, _) = run(tmp.path(), &["--format", "json", "Info.Dockerfile"]);
    assert_eq!(code, Some(0), "{out}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let levels: Vec<&str> = doc["files"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["level"].as_str().unwrap())
        .collect();
    assert!(!levels.is_empty() && levels.iter().all(|l| *l == "info"), "{doc:#}");
    let (code, _, _) = run(tmp.path(), &["--failure-threshold", "info", "Info.Dockerfile"]);
    assert_eq!(code, Some(1));
    let (code, _, _) = run(tmp.path(), &["--failure-threshold", "none", "Dockerfile"]);
    assert_eq!(code, Some(0));

    // Usage and input errors are 2.
    assert_eq!(run(tmp.path(), &["missing/Dockerfile"]).0, Some(2));
    assert_eq!(run(tmp.path(), &["--ignore", "DL9999"]).0, Some(2));
    std::fs::write(
        tmp.path().join(".customs-lint.yaml"),
        "ignored: [DL3008]\nfailur-threshold: error\n",
    )
    .unwrap();
    let (code, _, err) = run(tmp.path(), &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains(".customs-lint.yaml") && err.contains("failur-threshold"), "{err}");

    // A .hadolint.yaml works unchanged.
    std::fs::remove_file(tmp.path().join(".customs-lint.yaml")).unwrap();
    std::fs::write(
        tmp.path().join(".hadolint.yaml"),
        "ignored: [DL3008, CP001, CP004, DL3006, DL3020, CP002]\nfailure-threshold: error\n",
    )
    .unwrap();
    let (code, out, _) = run(tmp.path(), &["--no-color"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("DL3008"), "{out}");
}

#[test]
fn report_formats() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("Dockerfile"), BAD).unwrap();
    for (format, file) in [
        ("sarif", "lint.sarif"),
        ("junit", "lint.xml"),
        ("json", "lint.json"),
        ("checkstyle", "checkstyle.xml"),
    ] {
        let (code, _, err) = run(tmp.path(), &["-f", format, "-o", file]);
        assert_eq!(code, Some(1), "{err}");
        let text = std::fs::read_to_string(tmp.path().join(file)).unwrap();
        assert!(text.contains("DL3020"), "{format}: {text}");
    }
    assert_valid("sarif", &tmp.path().join("lint.sarif"));
    assert_valid("junit", &tmp.path().join("lint.xml"));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("lint.json")).unwrap()).unwrap();
    let findings = json["files"][0]["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["rule"] == "DL3020" && f["line"] == 3 && f["level"] == "error")
    );
}

#[test]
fn gate_lints_the_dockerfile() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("Dockerfile"), BAD).unwrap();
    let db = tmp.path().join("v.db");
    let osv = tmp.path().join("osv");
    support::write_coverage_fillers(&osv);
    cargo_bin_cmd!("customs")
        .args(["db", "import", "--db"])
        .arg(&db)
        .arg(&osv)
        .assert()
        .success();
    let demo = demo_image();
    let gate = |args: &[&str]| {
        let out = cargo_bin_cmd!("customs")
            .current_dir(tmp.path())
            .arg("gate")
            .arg(&demo)
            .args(["--no-secrets", "--db"])
            .arg(&db)
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = gate(&[]);
    assert_eq!(code, Some(0), "no Dockerfile, no vulnerabilities: pass\n{out}");
    let (code, out) = gate(&[
        "--dockerfile",
        "Dockerfile",
        "--report",
        "sarif=gate.sarif",
        "--report",
        "junit=gate.xml",
        "--report",
        "json=gate.json",
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Dockerfile finding(s)"), "{out}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("gate.json")).unwrap()).unwrap();
    assert!(
        json["lint"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "CP004" && f["status"] == "failing")
    );
    assert!(
        std::fs::read_to_string(tmp.path().join("gate.sarif"))
            .unwrap()
            .contains("\"DL3020\"")
    );
    assert_valid("sarif", &tmp.path().join("gate.sarif"));
    assert_valid("junit", &tmp.path().join("gate.xml"));
    // exclusions.json excepts lint rules like secrets: `id` is the rule, `path` a glob on the Dockerfile path.
    let failing: std::collections::BTreeSet<String> = json["lint"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "failing")
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect();
    let exceptions = |expires: &str| {
        let entries: Vec<_> = failing
            .iter()
            .map(|rule| serde_json::json!({"id": rule, "path": "Dockerfile", "expires": expires, "reason": "accepted for the test"}))
            .collect();
        std::fs::write(tmp.path().join("exclusions.json"), serde_json::to_string(&entries).unwrap()).unwrap();
    };
    exceptions("2999-01-01");
    let (code, out) = gate(&["--dockerfile", "Dockerfile", "--report", "json=excepted.json"]);
    assert_eq!(code, Some(0), "every failing rule is excepted\n{out}");
    let excepted: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("excepted.json")).unwrap()).unwrap();
    let statuses: Vec<&str> = excepted["lint"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["status"].as_str().unwrap())
        .collect();
    assert!(statuses.contains(&"suppressed") && !statuses.contains(&"failing"), "{statuses:?}");
    exceptions("2020-01-01");
    let (code, out) = gate(&["--dockerfile", "Dockerfile"]);
    assert_eq!(code, Some(1), "expired exceptions stop excepting\n{out}");
    std::fs::remove_file(tmp.path().join("exclusions.json")).unwrap();

    let (code, out) = gate(&["--dockerfile", "Dockerfile", "--fail-on-lint", "none"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, _) = gate(&["--dockerfile", "Dockerfile", "--fail-on-lint", "fatal"]);
    assert_eq!(code, Some(2));
    // The policy file can name the Dockerfile and the lint threshold.
    std::fs::write(tmp.path().join("customs.toml"), "[gate]\ndockerfile = \"Dockerfile\"\n").unwrap();
    let (code, out) = gate(&[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Dockerfile finding(s)"), "{out}");
    std::fs::write(
        tmp.path().join("customs.toml"),
        "[gate]\ndockerfile = \"Dockerfile\"\nfail_on_lint = \"none\"\n",
    )
    .unwrap();
    assert_eq!(gate(&[]).0, Some(0));
}

/// The attack run's deep scripts (2,000 nested `if`, `$(` 10,000 deep, `${A:-` 20,000 deep) aborted `customs lint`
/// and `gate --dockerfile` with a stack overflow (exit 134, no report); they are linted, with a report.
#[test]
fn deeply_nested_run_scripts_get_a_report_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let scripts = [
        "if true; then ".repeat(2000) + "echo hi" + &"; fi".repeat(2000),
        "echo ".to_string() + &"$(".repeat(10_000) + "x" + &")".repeat(10_000),
        "echo ${A:-".to_string() + &"${A:-".repeat(20_000) + "x" + &"}".repeat(20_001),
    ];
    for (i, script) in scripts.iter().enumerate() {
        let name = format!("Deep{i}.Dockerfile");
        std::fs::write(tmp.path().join(&name), format!("FROM debian:12\nRUN {script}\nUSER 1000\n")).unwrap();
        let (code, out, err) = run(tmp.path(), &["--format", "json", &name]);
        assert!(matches!(code, Some(0) | Some(1)), "{name}: exit {code:?}: {err}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{name}: no report ({e}): {err}"));
        assert_eq!(doc["files"][0]["path"], name.as_str());
        let gate = cargo_bin_cmd!("customs")
            .current_dir(tmp.path())
            .args([
                "gate",
                &demo_image(),
                "--scanners",
                "lint",
                "--dockerfile",
                &name,
                "--report",
                "json=g.json",
            ])
            .output()
            .unwrap();
        assert!(
            matches!(gate.status.code(), Some(0) | Some(1)),
            "{name}: gate exit {:?}",
            gate.status.code()
        );
        assert!(tmp.path().join("g.json").is_file());
    }
}

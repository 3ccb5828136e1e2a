//! The gate's policy knobs that the README promises, each checked end to end on the demo image: package
//! exceptions narrowed by `version` and `path` (nested jars too), `require_reason` in the policy file, the
//! expiry boundary, `max_age_days`, `--ignore-unfixed`, `--trivyignore`, the database states (missing, stale,
//! empty) and notifications through `CUSTOMS_NOTIFY_URL` in every format, with retries.

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;

mod support;
use support::demo_image;

/// Advisories written from the demo image's facts: requests 2.25.0 (fixed in 2.31.0), log4j-core 2.14.1 in a
/// jar nested in app.jar (fixed in 2.15.0), and one for lodash with no fix at all.
fn demo_db(dir: &Path) -> PathBuf {
    let record = |id: &str, alias: &str, eco: &str, name: &str, severity: &str, events: Value| {
        serde_json::json!({
            "id": id, "aliases": [alias], "summary": format!("{id} summary"),
            "database_specific": {"severity": severity},
            "affected": [{"package": {"ecosystem": eco, "name": name}, "ranges": [{"type": "ECOSYSTEM", "events": events}]}]
        })
    };
    let records = [
        record(
            "TEST-REQ",
            "CVE-0000-0001",
            "PyPI",
            "requests",
            "HIGH",
            serde_json::json!([{"introduced": "0"}, {"fixed": "2.31.0"}]),
        ),
        record(
            "TEST-LOG4J",
            "CVE-0000-0002",
            "Maven",
            "org.apache.logging.log4j:log4j-core",
            "CRITICAL",
            serde_json::json!([{"introduced": "2.0"}, {"fixed": "2.15.0"}]),
        ),
        record(
            "TEST-UNFIXED",
            "CVE-0000-0003",
            "npm",
            "lodash",
            "HIGH",
            serde_json::json!([{"introduced": "0"}]),
        ),
    ];
    support::osv_database(dir, &records)
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    json: Option<Value>,
}

/// `customs gate DEMO --no-secrets --db DB ARGS` in `dir`, with the JSON report read back.
fn gate(dir: &Path, db: &Path, args: &[&str]) -> Run {
    gate_env(dir, db, args, &[])
}

fn gate_env(dir: &Path, db: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let report = dir.join("gate.json");
    let _ = std::fs::remove_file(&report);
    let mut cmd = cargo_bin_cmd!("customs");
    cmd.current_dir(dir)
        .env_remove("CUSTOMS_NOTIFY_URL")
        .env_remove("CUSTOMS_NOTIFY_FORMAT")
        .args(["gate", &demo_image(), "--no-secrets", "--report"])
        .arg(format!("json={}", report.display()))
        .arg("--db")
        .arg(db)
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
        json: std::fs::read(&report).ok().map(|b| serde_json::from_slice(&b).unwrap()),
    }
}

/// `(id, status)` of every finding in a gate report, sorted.
fn statuses(r: &Run) -> Vec<(String, String)> {
    let json = r.json.as_ref().unwrap_or_else(|| panic!("no report: {}{}", r.stdout, r.stderr));
    let mut v: Vec<(String, String)> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["id"].as_str().unwrap().to_string(), f["status"].as_str().unwrap().to_string()))
        .collect();
    v.sort();
    v
}

fn pair(id: &str, status: &str) -> (String, String) {
    (id.to_string(), status.to_string())
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// Today's date in UTC as YYYY-MM-DD, `offset` days away (the gate decides expiry on the UTC date).
fn utc_day(offset: i64) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = secs.div_euclid(86_400) + offset + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[test]
fn baseline_all_three_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let db = demo_db(tmp.path());
    let r = gate(tmp.path(), &db, &[]);
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    assert_eq!(
        statuses(&r),
        vec![
            pair("TEST-LOG4J", "failing"),
            pair("TEST-REQ", "failing"),
            pair("TEST-UNFIXED", "failing")
        ]
    );
}

#[test]
fn package_exceptions_are_narrowed_by_version_and_path() {
    let tmp = tempfile::tempdir().unwrap();
    let db = demo_db(tmp.path());
    let d = tmp.path();
    let only = |exclusions: &str, args: &[&str]| {
        write(d, "exclusions.json", exclusions);
        statuses(&gate(d, &db, args))
    };
    // `version` must equal the installed version.
    let got = only(r#"[{"library_name": "requests", "version": "2.25.0"}]"#, &[]);
    assert!(got.contains(&pair("TEST-REQ", "suppressed")), "{got:?}");
    let got = only(r#"[{"library_name": "requests", "version": "2.25.1"}]"#, &[]);
    assert!(got.contains(&pair("TEST-REQ", "failing")), "{got:?}");

    // `path` is a glob over the file that proved the package, or an archive holding it: log4j-core is proved by
    // `app/app.jar!BOOT-INF/lib/log4j-core-2.14.1.jar!META-INF/maven/…/pom.properties`.
    for covering in [
        "app/app.jar!BOOT-INF/lib/*.jar",
        "app/app.jar",
        "**/log4j-core-*.jar",
        "app/app.jar!BOOT-INF/**",
    ] {
        let got = only(
            &format!(r#"[{{"library_name": "org.apache.logging.log4j:log4j-core", "path": "{covering}"}}]"#),
            &[],
        );
        assert!(got.contains(&pair("TEST-LOG4J", "suppressed")), "{covering}: {got:?}");
    }
    for other in ["app/other.jar!**", "app/app.jar!BOOT-INF/lib/log4j-api-*.jar", "app/*.war"] {
        let got = only(&format!(r#"[{{"id": "CVE-0000-0002", "path": "{other}"}}]"#), &[]);
        assert!(got.contains(&pair("TEST-LOG4J", "failing")), "{other}: {got:?}");
    }
    let got = only(
        r#"[{"library_name": "requests", "path": "usr/lib/python3/dist-packages/requests-*.dist-info/METADATA"}]"#,
        &[],
    );
    assert!(got.contains(&pair("TEST-REQ", "suppressed")), "{got:?}");
    // Every field that is set must match: the right id with the wrong version covers nothing.
    let got = only(r#"[{"id": "CVE-0000-0001", "version": "9.9.9"}]"#, &[]);
    assert!(got.contains(&pair("TEST-REQ", "failing")), "{got:?}");
}

#[test]
fn policy_file_require_reason_refuses_an_entry_without_one() {
    let tmp = tempfile::tempdir().unwrap();
    let db = demo_db(tmp.path());
    let d = tmp.path();
    write(d, "customs.toml", "[exceptions]\nfile = \"accepted.json\"\nrequire_reason = true\n");
    write(
        d,
        "accepted.json",
        "[\n  {\"id\": \"CVE-0000-0001\", \"reason\": \"proxy not used\"},\n  {\"id\": \"CVE-0000-0002\"}\n]\n",
    );
    let r = gate(d, &db, &[]);
    assert_eq!(r.code, Some(2), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("accepted.json:3") && r.stderr.contains("`reason` is required"),
        "{}",
        r.stderr
    );
    // With the reason given, the same file is accepted.
    write(d, "accepted.json", "[{\"id\": \"CVE-0000-0002\", \"reason\": \"not reachable\"}]\n");
    assert_eq!(statuses(&gate(d, &db, &[]))[0], pair("TEST-LOG4J", "suppressed"));
}

#[test]
fn an_exception_is_valid_through_its_expires_day() {
    let tmp = tempfile::tempdir().unwrap();
    let db = demo_db(tmp.path());
    let d = tmp.path();
    let on = |day: &str| {
        write(
            d,
            "exclusions.json",
            &format!(r#"[{{"id": "CVE-0000-0001", "expires": "{day}", "reason": "r"}}]"#),
        );
        gate(d, &db, &[])
    };
    let today = on(&utc_day(0));
    assert!(
        statuses(&today).contains(&pair("TEST-REQ", "suppressed")),
        "expires today: still valid today"
    );
    let yesterday = on(&utc_day(-1));
    assert!(statuses(&yesterday).contains(&pair("TEST-REQ", "failing")));
    assert!(
        yesterday.stdout.contains(&format!("expired on {}", utc_day(-1))),
        "{}",
        yesterday.stdout
    );
}

#[test]
fn policy_max_age_days_expires_old_exceptions() {
    let tmp = tempfile::tempdir().unwrap();
    let db = demo_db(tmp.path());
    let d = tmp.path();
    write(
        d,
        "exclusions.json",
        &format!(r#"[{{"library_name": "requests", "date": "{}"}}]"#, utc_day(-31)),
    );
    write(d, "customs.toml", "[exceptions]\nmax_age_days = 30\n");
    let r = gate(d, &db, &[]);
    assert!(statuses(&r).contains(&pair("TEST-REQ", "failing")));
    assert!(r.stdout.contains("older than the policy's 30-day maximum"), "{}", r.stdout);
    write(d, "customs.toml", "[exceptions]\nmax_age_days = 31\n");
    assert!(
        statuses(&gate(d, &db, &[])).contains(&pair("TEST-REQ", "suppressed")),
        "31 days old is within 31"
    );
    // The flag overrides the file.
    assert!(statuses(&gate(d, &db, &["--max-exception-age-days", "5"])).contains(&pair("TEST-REQ", "failing")));
}

#[test]
fn ignore_unfixed_keeps_findings_without_a_fix_from_failing() {
    let tmp = tempfile::tempdir().unwrap();
    let db = demo_db(tmp.path());
    let d = tmp.path();
    let r = gate(d, &db, &["--ignore-unfixed", "--fail-on", "HIGH"]);
    assert_eq!(r.code, Some(1), "requests has a fix and still fails");
    let unfixed: Vec<(String, String)> = statuses(&r).into_iter().filter(|(id, _)| id == "TEST-UNFIXED").collect();
    assert_eq!(unfixed.len(), 1, "still reported");
    assert_ne!(unfixed[0].1, "failing", "{unfixed:?}");
    write(d, "exclusions.json", r#"[{"id": "CVE-0000-0001", "reason": "r"}]"#);
    assert_eq!(gate(d, &db, &["--ignore-unfixed", "--fail-on", "HIGH"]).code, Some(0));
    assert_eq!(
        gate(d, &db, &["--fail-on", "HIGH"]).code,
        Some(1),
        "without the flag the unfixed one fails"
    );
    write(d, "customs.toml", "[gate]\nfail_on = [\"HIGH\"]\nignore_unfixed = true\n");
    assert_eq!(gate(d, &db, &[]).code, Some(0), "and from the policy file");
}

#[test]
fn trivyignore_suppresses_and_expires() {
    let tmp = tempfile::tempdir().unwrap();
    let db = demo_db(tmp.path());
    let d = tmp.path();
    write(d, "ignores", "# accepted\nCVE-0000-0001\nTEST-LOG4J exp:2020-01-01\n");
    let r = gate(d, &db, &["--trivyignore", "ignores"]);
    let got = statuses(&r);
    assert!(got.contains(&pair("TEST-REQ", "suppressed")), "{got:?}");
    assert!(
        got.contains(&pair("TEST-LOG4J", "failing")),
        "an expired .trivyignore entry: {got:?}"
    );
    assert!(r.stdout.contains("expired on 2020-01-01"), "{}", r.stdout);
    let r = gate(d, &db, &["--trivyignore", "missing-file"]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("missing-file"), "{}", r.stderr);
}

#[test]
fn gate_refuses_a_missing_stale_or_empty_database() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let missing = gate(d, &d.join("none.db"), &[]);
    assert_eq!(missing.code, Some(2), "{}", missing.stderr);
    assert!(missing.stderr.contains("none.db"), "{}", missing.stderr);

    let db = demo_db(d);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE meta SET value = '2020-01-01T00:00:00Z' WHERE key = 'updated'", [])
        .unwrap();
    drop(conn);
    let stale = gate(d, &db, &[]);
    assert_eq!(stale.code, Some(1), "a stale database only warns by default");
    assert!(stale.stderr.contains("over the 7 days limit") || stale.stdout.contains("over the 7 days limit"));
    let refused = gate(d, &db, &["--fail-on-stale-db"]);
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(refused.stderr.contains("customs db import"), "{}", refused.stderr);

    // A database with nothing imported cannot see anything: the gate must not pass on it.
    let empty = d.join("empty.db");
    drop(customs_vulndb::Database::open(&empty).unwrap());
    let r = gate(d, &empty, &[]);
    assert_eq!(r.code, Some(2), "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("nothing imported"), "{}", r.stderr);
    // A gate that does not fail on vulnerabilities (secrets or lint only) still runs on it, with a warning.
    let r = gate(d, &empty, &["--fail-on", "none"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
}

/// A webhook receiver on loopback that answers the given statuses in turn (the last one from then on) and keeps
/// every body it got.
fn webhook(statuses: &'static [u16]) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook/secret-path", l.local_addr().unwrap());
    let keep = seen.clone();
    std::thread::spawn(move || {
        for (n, mut s) in l.incoming().flatten().enumerate() {
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
            let status = statuses[n.min(statuses.len() - 1)];
            let _ = write!(s, "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (url, seen)
}

#[test]
fn notify_url_delivers_every_format_after_retries() {
    let tmp = tempfile::tempdir().unwrap();
    let db = demo_db(tmp.path());
    for format in ["slack", "teams", "json"] {
        // Two failures, then success: the third try delivers.
        let (url, seen) = webhook(&[503, 500, 200]);
        let r = gate_env(
            tmp.path(),
            &db,
            &[],
            &[("CUSTOMS_NOTIFY_URL", &url), ("CUSTOMS_NOTIFY_FORMAT", format)],
        );
        assert_eq!(r.code, Some(1), "{format}: the verdict stands");
        assert!(
            r.stderr.contains("notified http://127.0.0.1:") && !r.stderr.contains("secret-path"),
            "{format}: {}",
            r.stderr
        );
        let bodies = seen.lock().unwrap().clone();
        assert_eq!(bodies.len(), 3, "{format}: three tries");
        assert!(bodies.iter().all(|b| b == &bodies[0]), "{format}: the same message each try");
        let msg: Value = serde_json::from_str(&bodies[2]).unwrap();
        let text = msg.to_string();
        assert!(text.contains("TEST-LOG4J") && text.contains("TEST-REQ"), "{format}: {msg:#}");
        match format {
            "slack" => assert!(msg["text"].as_str().unwrap().contains("customs gate FAILED"), "{msg:#}"),
            "teams" => assert_eq!(msg["@type"], "MessageCard", "{msg:#}"),
            _ => assert_eq!(msg["pass"], false, "{msg:#}"),
        }
    }
    // Three failures: a warning, never a changed exit code.
    let (url, seen) = webhook(&[500]);
    let r = gate_env(tmp.path(), &db, &[], &[("CUSTOMS_NOTIFY_URL", &url)]);
    assert_eq!(r.code, Some(1));
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert!(
        r.stderr.contains("warning: notification failed") && !r.stderr.contains("secret-path"),
        "{}",
        r.stderr
    );
    // A pass notifies nobody.
    let (url, seen) = webhook(&[200]);
    let r = gate_env(tmp.path(), &db, &["--fail-on", "none"], &[("CUSTOMS_NOTIFY_URL", &url)]);
    assert_eq!(r.code, Some(0));
    assert!(seen.lock().unwrap().is_empty());
}

/// A database that holds nothing for an ecosystem of the image cannot check those packages: every scan says so per
/// ecosystem, and the gate fails naming it unless `--allow-uncovered` (or the policy file) accepts it.
#[test]
fn ecosystems_the_database_cannot_check_are_named_and_fail_the_gate() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let osv = d.join("pypi-only");
    std::fs::create_dir_all(&osv).unwrap();
    std::fs::write(
        osv.join("a.json"),
        r#"{"id":"TEST-NONE","affected":[{"package":{"ecosystem":"PyPI","name":"customs-test-not-installed"},"versions":["1"]}]}"#,
    )
    .unwrap();
    let db = d.join("pypi.db");
    cargo_bin_cmd!("customs")
        .args(["db", "import", "--db"])
        .arg(&db)
        .arg(&osv)
        .assert()
        .success();

    // scan: one warning per uncovered ecosystem, with its package count; PyPI (covered) is not named.
    let out = cargo_bin_cmd!("customs")
        .args(["scan", &demo_image(), "-f", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings: Vec<&str> = doc["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    let uncovered: Vec<&str> = warnings
        .iter()
        .copied()
        .filter(|w| w.contains("0 advisories in the database"))
        .collect();
    assert_eq!(uncovered.len(), 3, "{warnings:#?}");
    assert!(
        uncovered
            .iter()
            .any(|w| w.starts_with("Debian:12: 0 advisories") && w.contains("package(s) not checked"))
    );
    assert!(uncovered.iter().any(|w| w.starts_with("npm: ")) && uncovered.iter().any(|w| w.starts_with("Maven: ")));
    assert!(!uncovered.iter().any(|w| w.starts_with("PyPI")));
    let table = cargo_bin_cmd!("customs")
        .args(["scan", &demo_image(), "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("Debian:12: 0 advisories in the database"));

    // gate: no finding at all, yet it fails, and every report says why.
    let r = gate_env(
        d,
        &db,
        &["--report", "junit=g.xml", "--report", "sarif=g.sarif", "--report", "markdown=g.md"],
        &[],
    );
    assert_eq!(r.code, Some(1), "{}{}", r.stdout, r.stderr);
    let reasons = r.json.as_ref().unwrap()["verdict"]["reasons"].to_string();
    for eco in ["Debian:12", "npm", "Maven"] {
        assert!(reasons.contains(&format!("of {eco} were not checked")), "{reasons}");
        assert!(r.stdout.contains(&format!("--allow-uncovered {eco}")), "{}", r.stdout);
    }
    let junit = std::fs::read_to_string(d.join("g.xml")).unwrap();
    assert!(
        junit.contains("<failure") && junit.contains("of Debian:12 were not checked"),
        "{junit}"
    );
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(d.join("g.sarif")).unwrap()).unwrap();
    let notes = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"].to_string();
    assert!(
        notes.contains("of npm were not checked") && notes.contains("npm: 0 advisories"),
        "{notes}"
    );
    let md = std::fs::read_to_string(d.join("g.md")).unwrap();
    assert!(md.starts_with("### ❌") && md.contains("of Maven were not checked"), "{md}");
    for (kind, file) in [("sarif", "g.sarif"), ("junit", "g.xml")] {
        if let Some((ok, text)) = support::validate(kind, &d.join(file)) {
            assert!(ok, "{file}: {text}");
        }
    }
    // Accepted ecosystems pass, by flag or policy file; one left out still fails.
    assert_eq!(gate(d, &db, &["--allow-uncovered", "Debian:12,npm,Maven"]).code, Some(0));
    assert_eq!(gate(d, &db, &["--allow-uncovered", "Debian:12,npm"]).code, Some(1));
    write(d, "customs.toml", "[gate]\nallow_uncovered = [\"Debian:12\", \"npm\", \"Maven\"]\n");
    assert_eq!(gate(d, &db, &[]).code, Some(0));
    // A gate that does not fail on vulnerabilities does not fail on coverage either.
    std::fs::remove_file(d.join("customs.toml")).unwrap();
    assert_eq!(gate(d, &db, &["--fail-on", "none"]).code, Some(0));
}

/// An exception that suppresses a secret or a lint finding is in use: neither the gate nor `exclusions check`
/// may advise removing it, and messages name the file of an entry (exclusions.json and a .trivyignore both have
/// a line 2).
#[test]
fn exceptions_for_secrets_and_lint_are_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let db = demo_db(tmp.path());
    let d = tmp.path();
    write(
        d,
        "exclusions.json",
        "[\n{\"id\": \"aws-access-key-id\", \"path\": \"app/**\", \"reason\": \"test key\"},\n{\"id\": \"CP004\", \"path\": \"Dockerfile\", \"reason\": \"build arg\"}\n]\n",
    );
    write(d, ".dockerignore", ".git\n");
    write(d, "ignores", "# header\nCVE-0000-0001\n");
    write(d, "Dockerfile", "FROM debian:12.8\nENV API_TOKEN=s3cr3t-value-123\nUSER 1000\n");
    let out = cargo_bin_cmd!("customs")
        .current_dir(d)
        .args([
            "gate",
            &demo_image(),
            "--fail-on",
            "CRITICAL",
            "--dockerfile",
            "Dockerfile",
            "--fail-on-lint",
            "warning",
        ])
        .args(["--trivyignore", "ignores", "--show-suppressed", "--report", "json=g.json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(d.join("g.json")).unwrap()).unwrap();
    // The secret and CP004 are suppressed by exclusions.json lines 2 and 3, and neither is "unused".
    assert!(text.contains("(exception exclusions.json:2)"), "{text}");
    assert!(!text.contains("matched nothing"), "{text}");
    assert_eq!(json["unused_exceptions"], serde_json::json!([]), "{json:#}");
    assert!(
        json["lint"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "CP004" && f["status"] == "suppressed"),
        "{json:#}"
    );
    // The .trivyignore entry is named by its own file.
    assert!(text.contains("exception ignores:2"), "{text}");
    // Log4j (CRITICAL) still fails the gate; nothing else does.
    assert_eq!(out.status.code(), Some(1), "{text}");

    let check = cargo_bin_cmd!("customs")
        .current_dir(d)
        .args(["exclusions", "check", &demo_image(), "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(!said.contains("unused    exclusions.json:2"), "{said}");
    assert!(
        said.contains("not checked exclusions.json:3"),
        "the lint exception needs a Dockerfile: {said}"
    );
    assert_eq!(check.status.code(), Some(0), "{said}");
}

/// Every report format carries every finding kind the JSON report has (vulnerabilities, secrets, lint findings)
/// and the verdict's reasons; Markdown used to leave secrets out even when a secret alone failed the gate.
#[test]
fn every_format_carries_every_finding_kind_of_the_json_report() {
    let tmp = tempfile::tempdir().unwrap();
    let db = demo_db(tmp.path());
    let d = tmp.path();
    write(d, "Dockerfile", "FROM debian:12.8\nENV API_TOKEN=s3cr3t-value-123\nUSER 1000\n");
    write(d, ".dockerignore", ".git\n");
    let out = cargo_bin_cmd!("customs")
        .current_dir(d)
        .args(["gate", &demo_image(), "--dockerfile", "Dockerfile", "--db"])
        .arg(&db)
        .args([
            "--report",
            "json=g.json",
            "--report",
            "sarif=g.sarif",
            "--report",
            "junit=g.xml",
            "--report",
            "markdown=g.md",
        ])
        .args(["--report", "table=g.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(d.join("g.json")).unwrap()).unwrap();
    let mut must: Vec<String> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    let secrets = json["secrets"]["findings"]
        .as_array()
        .or_else(|| json["secrets"].as_array())
        .expect("secrets in the JSON");
    assert!(!secrets.is_empty(), "the demo's AWS key: {json:#}");
    must.extend(secrets.iter().map(|s| s["rule_id"].as_str().unwrap().to_string()));
    must.extend(secrets.iter().map(|s| s["path"].as_str().unwrap().to_string()));
    must.extend(
        json["lint"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap().to_string()),
    );
    must.extend(json["verdict"]["reasons"].as_array().unwrap().iter().map(|r| {
        // Reasons are prose; their counts and subjects must be there (XML escapes quotes, Markdown pipes).
        r.as_str().unwrap().split('`').next().unwrap().trim().to_string()
    }));
    for file in ["g.sarif", "g.xml", "g.md", "g.txt"] {
        let text = std::fs::read_to_string(d.join(file)).unwrap();
        let missing: Vec<&String> = must.iter().filter(|m| !text.contains(m.as_str())).collect();
        assert!(missing.is_empty(), "{file} lacks {missing:?}:\n{text}");
    }
}

/// `--scanners` picks what runs in `scan` and `gate`; a scanner that does not run needs none of its inputs, so a
/// secrets-only or lint-only gate runs with no vulnerability database at all.
#[test]
fn scanners_that_do_not_run_need_none_of_their_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let no_db = d.join("no-such.db");
    let run = |args: &[&str]| {
        let out = cargo_bin_cmd!("customs")
            .current_dir(d)
            .args(args)
            .arg("--db")
            .arg(&no_db)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let demo = demo_image();
    // scan: secrets alone, no database.
    let (code, out, err) = run(&["scan", &demo, "--scanners", "secret", "-f", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["findings"], serde_json::json!([]));
    assert!(
        doc["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["rule_id"] == "aws-access-key-id"),
        "{doc:#}"
    );
    // With vuln, the missing database is still an error naming it.
    let (code, _, err) = run(&["scan", &demo, "-f", "json"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no-such.db"), "{err}");
    // gate: secrets only fails on the demo's AWS key; lint only on the Dockerfile; neither reads a database.
    let (code, out, err) = run(&["gate", &demo, "--scanners", "secret"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("secret(s) in the image"), "{out}");
    write(d, "Dockerfile", "FROM debian:12.8\nENV API_TOKEN=s3cr3t-value-123\nUSER 1000\n");
    let (code, out, err) = run(&["gate", &demo, "--scanners", "lint", "--dockerfile", "Dockerfile"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("Dockerfile finding(s)") && !out.contains("secret(s) in the image"),
        "{out}"
    );
    let (code, _, err) = run(&["gate", &demo, "--scanners", "lint"]);
    assert_eq!(code, Some(2), "lint without a Dockerfile is a usage error");
    assert!(err.contains("--dockerfile"), "{err}");
}

/// `--severity` trims secrets as it trims vulnerabilities, and the output says how much it hid.
#[test]
fn severity_filters_secrets_and_says_what_it_hid() {
    let tmp = tempfile::tempdir().unwrap();
    let db = demo_db(tmp.path());
    let scan = |args: &[&str]| {
        let out = cargo_bin_cmd!("customs")
            .args(["scan", &demo_image(), "-f", "json", "--db"])
            .arg(&db)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let all = scan(&[]);
    let secrets = all["secrets"].as_array().unwrap().len();
    assert!(secrets > 0);
    let secret_severity = all["secrets"][0]["severity"].as_str().unwrap().to_string();
    let other = if secret_severity == "LOW" { "CRITICAL" } else { "LOW" };
    let trimmed = scan(&["--severity", other]);
    assert!(
        trimmed["secrets"].as_array().unwrap().iter().all(|s| s["severity"] == other),
        "{trimmed:#}"
    );
    let hidden = trimmed["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w.as_str().unwrap().contains("not shown (--severity"));
    assert!(
        hidden.is_some_and(|w| w.as_str().unwrap().contains(" secrets not shown")),
        "{trimmed:#}"
    );
    let kept = scan(&["--severity", &secret_severity]);
    let of_that_severity = all["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["severity"] == secret_severity.as_str())
        .count();
    assert_eq!(kept["secrets"].as_array().unwrap().len(), of_that_severity, "{kept:#}");
}

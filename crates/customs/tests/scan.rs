//! `customs db` and `customs scan` end to end.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;

mod support;
use support::demo_image;

fn shared() -> Option<PathBuf> {
    customs_testkit::shared_data("osv/PyPI").map(|p| p.parent().unwrap().parent().unwrap().to_path_buf())
}

/// Imports `input` into a fresh database in `dir`.
fn imported_db(dir: &Path, input: &Path) -> PathBuf {
    let db = dir.join("v.db");
    cargo_bin_cmd!("customs")
        .args(["db", "import", "--db"])
        .arg(&db)
        .arg(input)
        .assert()
        .success();
    db
}

fn scan_json(db: &Path, image: &str, extra: &[&str]) -> Value {
    let out = cargo_bin_cmd!("customs")
        .args(["scan", image, "-f", "json", "--db"])
        .arg(db)
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ids_for(doc: &Value, package: &str) -> Vec<String> {
    let mut ids: Vec<String> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["package"]["name"] == package)
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// Installs real wheels with pip (metadata only matters) into a rootfs folder.
fn pip_rootfs(dir: &Path, pins: &[&str]) -> Option<PathBuf> {
    let site = dir.join("usr/local/lib/python3.11/site-packages");
    let out = Command::new("python3")
        .args(["-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check", "--target"])
        .arg(&site)
        .args(pins)
        .output();
    match out {
        Ok(o) if o.status.success() => Some(dir.to_path_buf()),
        Ok(o) => {
            customs_testkit::skip(format_args!(
                "pip could not install {pins:?}: {}",
                String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or_default()
            ));
            None
        }
        Err(e) => {
            customs_testkit::skip(format_args!("no python3/pip ({e})"));
            None
        }
    }
}

#[test]
fn pinned_vulnerable_python_packages_yield_pypa_ids_and_patched_ones_none() {
    let Some(data) = shared() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let db = imported_db(tmp.path(), &data.join("osv/PyPI"));

    let Some(old) = pip_rootfs(&tmp.path().join("old"), &["requests==2.25.0", "urllib3==1.26.4", "jinja2==2.10"]) else {
        return;
    };
    let Some(new) = pip_rootfs(&tmp.path().join("new"), &["requests==2.32.3", "urllib3==2.2.3", "jinja2==3.1.4"]) else {
        return;
    };
    let old = scan_json(&db, &format!("dir:{}", old.display()), &[]);
    // Well-known advisories: Proxy-Authorization leak, ReDoS in authority parsing, sandbox escape.
    assert!(
        ids_for(&old, "requests").contains(&"PYSEC-2023-74".to_string()),
        "{:?}",
        ids_for(&old, "requests")
    );
    assert!(
        ids_for(&old, "urllib3").contains(&"PYSEC-2021-108".to_string()),
        "{:?}",
        ids_for(&old, "urllib3")
    );
    assert!(
        ids_for(&old, "Jinja2").contains(&"PYSEC-2019-217".to_string()),
        "{:?}",
        ids_for(&old, "Jinja2")
    );
    let requests = old["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "PYSEC-2023-74")
        .unwrap();
    assert_eq!(
        (requests["fixed_version"].as_str(), requests["fix_state"].as_str()),
        (Some("2.31.0"), Some("fixed"))
    );

    let new = scan_json(&db, &format!("dir:{}", new.display()), &[]);
    assert_eq!(
        new["findings"].as_array().unwrap().len(),
        0,
        "patched versions: {:#}",
        new["findings"]
    );
}

#[test]
fn scan_filters_and_stale_database_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let osv = tmp.path().join("osv");
    std::fs::create_dir_all(&osv).unwrap();
    // Facts of CVE-2023-32681 (requests) and CVE-2021-44228 (log4j-core), written by hand.
    std::fs::write(osv.join("a.json"), r#"{"id": "TEST-REQUESTS", "aliases": ["CVE-2023-32681"], "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"}],
      "affected": [{"package": {"ecosystem": "PyPI", "name": "requests"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}]}]}]}"#).unwrap();
    std::fs::write(osv.join("b.json"), r#"{"id": "TEST-LOG4SHELL", "aliases": ["CVE-2021-44228"], "database_specific": {"severity": "CRITICAL"},
      "affected": [{"package": {"ecosystem": "Maven", "name": "org.apache.logging.log4j:log4j-core"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0-beta9"}, {"fixed": "2.15.0"}]}]}]}"#).unwrap();
    let db = imported_db(tmp.path(), &osv);
    let demo = demo_image();

    let all = scan_json(&db, &demo, &[]);
    let ids: Vec<&str> = all["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["TEST-LOG4SHELL", "TEST-REQUESTS"], "worst first");
    assert_eq!(all["findings"][0]["severity"], "CRITICAL");
    assert_eq!(all["findings"][0]["severity_source"], "vendor");
    assert_eq!(all["findings"][1]["severity"], "MEDIUM");
    assert_eq!(all["findings"][1]["severity_source"], "cvss_v3");
    assert_eq!(all["findings"][1]["package"]["layer"], 1);

    let critical = scan_json(&db, &demo, &["--severity", "CRITICAL"]);
    assert_eq!(critical["findings"].as_array().unwrap().len(), 1);
    let os_only = scan_json(&db, &demo, &["--pkg-types", "os"]);
    assert_eq!(os_only["findings"].as_array().unwrap().len(), 0);

    // A database older than the limit: a warning by default, an error when asked.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE meta SET value = '2020-01-01T00:00:00Z' WHERE key = 'updated'", [])
        .unwrap();
    drop(conn);
    let warned = scan_json(&db, &demo, &[]);
    assert!(
        warned["warnings"][0].as_str().unwrap().contains("over the 7 days limit"),
        "{warned:#}"
    );
    // Ages read in a unit that fits (this said "0 hours ago, over the 0-hour limit").
    let minute = scan_json(&db, &demo, &["--db-max-age", "1m"]);
    let w = minute["warnings"][0].as_str().unwrap();
    assert!(w.contains(" days ago, over the 60 seconds limit"), "{w}");
    let lenient = scan_json(&db, &demo, &["--db-max-age", "100000d"]);
    let stale_warnings = |doc: &Value| {
        doc.get("warnings")
            .and_then(Value::as_array)
            .map_or(0, |w| w.iter().filter(|w| w.as_str().unwrap().contains("--db-max-age")).count())
    };
    assert_eq!(
        stale_warnings(&lenient),
        0,
        "a generous --db-max-age silences the warning: {lenient:#}"
    );
    let out = cargo_bin_cmd!("customs")
        .args(["scan", &demo, "--fail-on-stale-db", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("customs db import"));

    // No database at all: a clear error naming the path.
    let out = cargo_bin_cmd!("customs")
        .args(["scan", &demo, "--db"])
        .arg(tmp.path().join("none.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("none.db"));
}

/// Serves one zip at `/osv/PyPI/all.zip` on loopback, like a mirror would.
fn mirror(zip: Vec<u8>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            r.read_line(&mut line).unwrap();
            while r.read_line(&mut String::new()).map(|n| n > 2).unwrap_or(false) {}
            let (status, body) = if line.contains(" /osv/PyPI/all.zip ") {
                ("200 OK", zip.clone())
            } else {
                ("404 Not Found", Vec::new())
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        }
    });
    base
}

#[test]
fn db_update_from_a_mirror_then_scan() {
    use std::io::Write;
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    z.start_file("TEST-REQUESTS.json", zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(br#"{"id": "TEST-REQUESTS", "affected": [{"package": {"ecosystem": "PyPI", "name": "requests"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.31.0"}]}]}]}"#).unwrap();
    let base = mirror(z.finish().unwrap().into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("v.db");
    let out = cargo_bin_cmd!("customs")
        .args(["db", "update", "--no-official", "--feed", "osv:PyPI", "--mirror", &base, "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("osv:PyPI: downloaded from"));
    let demo = demo_image();
    assert_eq!(ids_for(&scan_json(&db, &demo, &[]), "requests"), vec!["TEST-REQUESTS"]);

    // A feed no source has: the error names it and what each source said.
    let out = cargo_bin_cmd!("customs")
        .args([
            "db",
            "update",
            "--no-official",
            "--attempts",
            "1",
            "--feed",
            "osv:npm",
            "--mirror",
            &base,
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("osv:npm") && err.contains("HTTP 404"), "{err}");
}

/// Builds a tiny program with cargo-auditable, depending on `dep`, and returns its path.
fn auditable_binary(dir: &Path, dep: &str) -> Option<PathBuf> {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!("[package]\nname = \"pinned\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n{dep}\n\n[workspace]\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("src/main.rs"),
        "fn main() { let v: smallvec::SmallVec<[u8; 4]> = smallvec::smallvec![1, 2]; println!(\"{}\", v.len()); }\n",
    )
    .unwrap();
    let out = Command::new("cargo")
        .args(["auditable", "build", "--release", "-q"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .ok()?;
    if !out.status.success() {
        customs_testkit::skip(format_args!(
            "`cargo auditable build` failed ({}); cargo install cargo-auditable",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default()
        ));
        return None;
    }
    Some(dir.join("target/release/pinned"))
}

#[test]
fn rust_binary_with_a_vulnerable_pin_yields_rustsec_ids_and_the_patched_one_none() {
    let Some(data) = shared() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let db = imported_db(tmp.path(), &data.join("osv/crates.io"));
    let mut roots = Vec::new();
    for (name, dep) in [("old", "smallvec = \"=1.6.0\""), ("new", "smallvec = \"=1.6.1\"")] {
        let Some(bin) = auditable_binary(&tmp.path().join(format!("{name}-src")), dep) else {
            return;
        };
        let root = tmp.path().join(name);
        std::fs::create_dir_all(root.join("usr/local/bin")).unwrap();
        std::fs::copy(&bin, root.join("usr/local/bin/pinned")).unwrap();
        roots.push(root);
    }
    let old = scan_json(&db, &format!("dir:{}", roots[0].display()), &[]);
    // RUSTSEC-2021-0003: buffer overflow in SmallVec::insert_many, fixed in 1.6.1.
    assert_eq!(ids_for(&old, "smallvec"), vec!["RUSTSEC-2021-0003"]);
    let f = &old["findings"][0];
    assert_eq!(
        (f["fixed_version"].as_str(), f["package"]["location"].as_str()),
        (Some("1.6.1"), Some("usr/local/bin/pinned"))
    );
    let new = scan_json(&db, &format!("dir:{}", roots[1].display()), &[]);
    assert_eq!(new["findings"].as_array().unwrap().len(), 0, "{:#}", new["findings"]);
}

#[test]
fn scan_reports_secrets_from_the_same_pass_unless_told_not_to() {
    let tmp = tempfile::tempdir().unwrap();
    let osv = tmp.path().join("osv");
    std::fs::create_dir_all(&osv).unwrap();
    std::fs::write(
        osv.join("a.json"),
        r#"{"id":"TEST-NONE","affected":[{"package":{"ecosystem":"PyPI","name":"absent"},"versions":["1"]}]}"#,
    )
    .unwrap();
    let db = imported_db(tmp.path(), &osv);
    let demo = demo_image();

    let doc = scan_json(&db, &demo, &[]);
    let rules: Vec<&str> = doc["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rule_id"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"aws-access-key-id"), "{rules:?}");
    assert!(!doc.to_string().contains("IOSFODNN7"), "secrets are masked");
    let vuln_only = scan_json(&db, &demo, &["--scanners", "vuln"]);
    assert!(vuln_only.get("secrets").is_none());

    let sarif = tmp.path().join("scan.sarif");
    let out = cargo_bin_cmd!("customs")
        .args(["scan", &demo, "-f", "sarif", "-o"])
        .arg(&sarif)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert!(
        log["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["ruleId"] == "aws-access-key-id")
    );
    if let Some((ok, text)) = support::validate("sarif", &sarif) {
        assert!(ok, "{text}");
    }

    let out = cargo_bin_cmd!("customs")
        .args(["scan", &demo, "--scanners", "secret", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    // Secrets alone need no vulnerability scan (issue 14: this used to be refused).
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("aws-access-key-id"));
}

/// `db update` without a reachable source fails fast and says what to do: a host that refused the first feed is
/// not waited on again for the others, every failed try is shown as it happens, and the error points to
/// `--mirror` and `db import` (it used to be half a minute of silence, then "11 of 11 feeds failed").
#[test]
fn db_update_with_no_reachable_source_fails_fast_with_the_way_out() {
    let tmp = tempfile::tempdir().unwrap();
    // A loopback port nothing listens on: connections are refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let start = std::time::Instant::now();
    let out = cargo_bin_cmd!("customs")
        .args([
            "db",
            "update",
            "--no-official",
            "--feed",
            "osv:PyPI",
            "--feed",
            "osv:npm",
            "--feed",
            "osv:Go",
        ])
        .args(["--mirror", &format!("http://127.0.0.1:{port}"), "--db"])
        .arg(tmp.path().join("v.db"))
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("osv:PyPI: downloading") && err.contains("osv:Go: downloading"),
        "progress per feed: {err}"
    );
    assert!(
        err.contains(&format!("skipped: 127.0.0.1:{port} could not be reached earlier")),
        "{err}"
    );
    assert!(
        err.contains("no feed could be downloaded (3 tried)") && err.contains("--mirror") && err.contains("customs db import"),
        "{err}"
    );
    // Not a timing threshold: just printed, for the record.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "db update with an unreachable mirror: failed in {elapsed:.2?}");
}

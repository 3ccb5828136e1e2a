//! Issue 14's "conventions a Trivy user reaches for": flags from the environment and the project file, skip
//! globs, the base image apart, end of security support, the SBOM formats of `scan`, timeouts and the cache
//! folder, the progress display, end to end on the demo image.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;

mod support;
use support::{customs, demo_image, validate, write_curl_glibc_rootfs};

/// A database with the demo's advisories, in `dir`.
fn demo_db(dir: &Path) -> PathBuf {
    let db = dir.join("demo.sqlite");
    let advisories = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/advisories");
    cargo_bin_cmd!("customs")
        .args(["db", "import", "--db"])
        .arg(&db)
        .arg(advisories)
        .assert()
        .success();
    db
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn severities(doc: &Value) -> Vec<String> {
    let mut s: Vec<String> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["severity"].as_str().unwrap().to_string())
        .collect();
    s.sort();
    s
}

#[test]
fn flags_come_from_the_command_line_then_the_environment_then_the_project_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let db = db.to_str().unwrap();
    let image = demo_image();
    let scan = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["scan", image.as_str(), "--db", db, "--format", "json"];
        all.extend_from_slice(args);
        json(&customs(dir.path(), &all, env))
    };
    let everything = severities(&scan(&[], &[]));
    assert_eq!(everything, ["CRITICAL", "HIGH", "HIGH", "HIGH", "MEDIUM"]);

    // The project file's [flags] is the default; a table for one command beats the top level.
    std::fs::write(
        dir.path().join("customs.toml"),
        "[flags]\nseverity = [\"MEDIUM\"]\n[flags.scan]\nseverity = [\"HIGH\"]\nscanners = \"vuln\"\n",
    )
    .unwrap();
    let from_file = scan(&[], &[]);
    assert_eq!(severities(&from_file), ["HIGH", "HIGH", "HIGH"]);
    assert!(from_file.get("secrets").is_none(), "scanners = vuln from the file");
    // The environment beats the file; the command line beats both.
    assert_eq!(severities(&scan(&[], &[("CUSTOMS_SEVERITY", "CRITICAL")])), ["CRITICAL"]);
    assert_eq!(
        severities(&scan(&["--severity", "MEDIUM"], &[("CUSTOMS_SEVERITY", "CRITICAL")])),
        ["MEDIUM"]
    );
    // Switches read 1/true/yes from the environment; the file gives them as booleans.
    std::fs::write(dir.path().join("customs.toml"), "[flags.scan]\nlist-all-pkgs = true\n").unwrap();
    assert_eq!(scan(&[], &[])["packages"].as_array().map(Vec::len), Some(8));
    std::fs::remove_file(dir.path().join("customs.toml")).unwrap();
    assert!(scan(&[], &[])["packages"].is_null());
    assert_eq!(
        scan(&[], &[("CUSTOMS_LIST_ALL_PKGS", "1")])["packages"].as_array().map(Vec::len),
        Some(8)
    );
    // --policy names the file for any command.
    let elsewhere = dir.path().join("elsewhere.yaml");
    std::fs::write(&elsewhere, "flags:\n  scan:\n    severity: [CRITICAL]\n").unwrap();
    assert_eq!(severities(&scan(&["--policy", elsewhere.to_str().unwrap()], &[])), ["CRITICAL"]);
}

#[test]
fn a_project_file_flag_that_does_not_exist_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[flags.scan]\nseverty = [\"HIGH\"]\n",
            "[flags.scan] severty: `customs scan` has no flag --severty",
        ),
        (
            "[flags]\nbogus = 1\n",
            "[flags] bogus: none of scan, gate, secrets, lint, sbom has --bogus",
        ),
        ("[flags.deploy]\nx = 1\n", "[flags.deploy]: no such command"),
        (
            "[flags.scan]\nignore-unfixed = \"yes\"\n",
            "--ignore-unfixed is a switch: use true or false",
        ),
        ("[flags.scan]\noutput = [\"a\", \"b\"]\n", "--output takes one value, not a list"),
        (
            "[gate]\nfail_on = [\"HIGH\"]\n[flags.gate]\nfail-on = [\"LOW\"]\n",
            "[flags.gate] fail-on: [gate] fail_on sets it too; keep one of them",
        ),
    ];
    for (file, message) in cases {
        std::fs::write(dir.path().join("customs.toml"), file).unwrap();
        let out = customs(dir.path(), &["scan", "whatever"], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert!(stderr.contains("customs.toml") && stderr.contains(message), "{file}: {stderr}");
    }
}

#[test]
fn skip_dirs_and_skip_files_leave_out_packages_and_secrets_and_say_how_many() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let db = db.to_str().unwrap();
    let image = demo_image();
    let doc = json(&customs(
        dir.path(),
        &[
            "scan",
            &image,
            "--db",
            db,
            "-f",
            "json",
            "--skip-dirs",
            "app/node_modules",
            "--skip-files",
            "app/*.env",
        ],
        &[],
    ));
    let names: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["package"]["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"lodash"), "{names:?}");
    assert!(names.contains(&"org.apache.logging.log4j:log4j-core"));
    assert_eq!(
        doc["secrets"].as_array().map(Vec::len),
        Some(0),
        "the deleted settings.env is skipped"
    );
    let warnings = doc["warnings"].to_string();
    assert!(
        warnings.contains("1 of 8 packages are under --skip-dirs/--skip-files"),
        "{warnings}"
    );

    // The gate skips the same: without the secret and lodash it still fails on log4j, not on them.
    let out = customs(
        dir.path(),
        &[
            "gate",
            &image,
            "--db",
            db,
            "--skip-dirs",
            "/app/node_modules/",
            "--skip-files",
            "app/settings.env",
            "--report",
            "json=-",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let gate: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(gate["secrets"].as_array().map(Vec::len), Some(0));
    assert!(!gate["findings"].to_string().contains("lodash"));
    let failing: Vec<&str> = gate["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "failing")
        .map(|f| f["package"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(failing, ["org.apache.logging.log4j:log4j-core", "libssl3", "openssl"]);
}

#[test]
fn exclude_base_lists_the_base_image_apart_and_the_gate_fails_only_on_what_the_image_adds() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let db = db.to_str().unwrap();
    let image = demo_image();
    // Layer 0 (the Debian rootfs) is the base: its two openssl findings move apart.
    let doc = json(&customs(
        dir.path(),
        &["scan", &image, "--db", db, "-f", "json", "--exclude-base", "--base-layers", "1"],
        &[],
    ));
    let base: Vec<&str> = doc["base_image"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["package"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(base, ["libssl3", "openssl"]);
    assert_eq!(doc["findings"].as_array().unwrap().len(), 3);
    assert_eq!(doc["base_image"]["layers"], 1);

    // A gate that fails on HIGH: with only the base's HIGH findings and the secret left out, it passes.
    let gate = |extra: &[&str]| {
        let mut args = vec!["gate", image.as_str(), "--db", db, "--scanners", "vuln", "--fail-on", "HIGH"];
        args.extend_from_slice(extra);
        customs(dir.path(), &args, &[])
    };
    let own = ["--skip-dirs", "app/node_modules", "--skip-files", "app/app.jar"];
    assert_eq!(
        gate(&own).status.code(),
        Some(1),
        "the base's openssl fails it without --exclude-base"
    );
    let out = gate(&[own.as_slice(), &["--exclude-base", "--base-layers", "1"]].concat());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("from the base image (does not fail the gate)") && stdout.contains("DSA-5764-1"),
        "{stdout}"
    );
    assert!(stdout.contains("2 vulnerabilities come from the base image"), "{stdout}");

    // The demo's history has no CMD to tell where the base ends: --exclude-base alone does not guess.
    let out = customs(dir.path(), &["scan", &image, "--db", db, "--exclude-base"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--base-layers N or --base-image REF"), "{stderr}");
}

#[test]
fn base_image_counts_the_layers_of_the_image_it_names() {
    let (Some(app), Some(base)) = (
        customs_testkit::test_image("bookworm-app.docker.tar"),
        customs_testkit::test_image("bookworm-base.docker.tar"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (app, base) = (app.to_str().unwrap(), base.to_str().unwrap());
    let out = customs(
        dir.path(),
        &[
            "scan",
            app,
            "--scanners",
            "secret",
            "-f",
            "json",
            "--exclude-base",
            "--base-image",
            base,
        ],
        &[],
    );
    let doc = json(&out);
    let layers = doc["base_image"]["layers"].as_u64().unwrap();
    assert!(
        layers >= 1 && (layers as usize) < doc["subject"]["layers"].as_array().unwrap().len(),
        "{layers}"
    );
    // An image that is not the base: an error naming it.
    let out = customs(
        dir.path(),
        &["scan", app, "--scanners", "secret", "--exclude-base", "--base-image", &demo_image()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is it the image's base?"));
}

/// A rootfs folder that says it is Debian 11 (its LTS ended 2026-08-31) with one installed package.
fn bullseye_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("bullseye");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"11\"\nVERSION_CODENAME=bullseye\n",
    )
    .unwrap();
    std::fs::write(
        root.join("var/lib/dpkg/status"),
        "Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.11.dfsg-2+deb11u2\nArchitecture: amd64\n\n",
    )
    .unwrap();
    root
}

#[test]
fn a_release_past_its_security_support_is_said_and_can_fail_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let db = db.to_str().unwrap();
    let root = bullseye_rootfs(dir.path());
    let root = format!("dir:{}", root.display());
    let out = customs(dir.path(), &["scan", &root, "--db", db, "-f", "json"], &[]);
    let doc = json(&out);
    assert_eq!(doc["distro"]["eol"], true);
    assert_eq!(doc["distro"]["security_support_ends"], "2026-08-31");
    assert!(
        doc["warnings"][0]
            .as_str()
            .unwrap()
            .contains("debian 11: security support ended on 2026-08-31")
    );
    let out = customs(dir.path(), &["scan", &root, "--db", db, "--exit-on-eol", "3"], &[]);
    assert_eq!(out.status.code(), Some(3));
    // The gate fails on it when asked, with the reason.
    let gate = |extra: &[&str]| {
        let mut args = vec!["gate", root.as_str(), "--db", db, "--allow-uncovered", "Debian:11"];
        args.extend_from_slice(extra);
        customs(dir.path(), &args, &[])
    };
    assert_eq!(gate(&[]).status.code(), Some(0));
    let out = gate(&["--fail-on-eol"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("debian 11 is past its security support, which ended on 2026-08-31 (--fail-on-eol)")
    );
    // A supported release says nothing of the kind.
    let doc = json(&customs(dir.path(), &["scan", &demo_image(), "--db", db, "-f", "json"], &[]));
    assert_eq!(doc["distro"]["eol"], false);
    assert!(!doc["warnings"].to_string().contains("security support ended"));
}

#[test]
fn scan_writes_sboms_with_vulnerabilities_and_github_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let db = db.to_str().unwrap();
    let image = demo_image();
    for (format, kind) in [("cyclonedx", "cyclonedx"), ("spdx-json", "spdx")] {
        let path = dir.path().join(format!("scan.{format}.json"));
        let out = customs(
            dir.path(),
            &["scan", &image, "--db", db, "-f", format, "-o", path.to_str().unwrap()],
            &[],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        if let Some((ok, text)) = validate(kind, &path) {
            assert!(ok, "{format}: {text}");
        }
    }
    let bom: Value = serde_json::from_slice(&std::fs::read(dir.path().join("scan.cyclonedx.json")).unwrap()).unwrap();
    let vulns = bom["vulnerabilities"].as_array().unwrap();
    assert_eq!(vulns.len(), 5);
    let refs: Vec<&str> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["bom-ref"].as_str())
        .collect();
    for v in vulns {
        let r = v["affects"][0]["ref"].as_str().unwrap();
        assert!(refs.contains(&r), "{r} names a component");
    }

    let sha = "0123456789abcdef0123456789abcdef01234567";
    let env = [("GITHUB_SHA", sha), ("GITHUB_REF", "refs/heads/main"), ("GITHUB_RUN_ID", "7")];
    let snapshot = json(&customs(dir.path(), &["scan", &image, "--db", db, "-f", "github"], &env));
    assert_eq!(snapshot["sha"], sha);
    let resolved = snapshot["manifests"].as_object().unwrap().values().next().unwrap()["resolved"].clone();
    assert_eq!(resolved.as_object().unwrap().len(), 8);
    assert!(resolved.as_object().unwrap().contains_key("pkg:npm/lodash@4.17.20"));
    let out = customs(dir.path(), &["scan", &image, "--db", db, "-f", "github"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs GITHUB_SHA and GITHUB_REF"));
}

#[test]
fn the_table_ends_with_a_report_summary() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let out = customs(dir.path(), &["scan", &demo_image(), "--db", db.to_str().unwrap()], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = &text[text.find("Report summary").expect("a summary block")..];
    let rows: Vec<Vec<&str>> = summary.lines().skip(2).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0][..3], ["Debian:12", "5", "2"], "{summary}");
    assert_eq!(rows[1][..3], ["Maven", "1", "1"], "{summary}");
    assert!(summary.contains("secrets") && summary.contains("1 (CRITICAL 1)"), "{summary}");
}

#[test]
fn timeout_stops_a_run_that_hangs_with_exit_2_and_no_report() {
    let dir = tempfile::tempdir().unwrap();
    // A FIFO nobody writes to: opening it as an image blocks forever.
    let fifo = dir.path().join("stuck.tar");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let report = dir.path().join("report.json");
    let started = std::time::Instant::now();
    let out = customs(
        dir.path(),
        &["sbom", fifo.to_str().unwrap(), "--timeout", "1s", "-o", report.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out after 1 second (--timeout)"));
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert!(!report.exists(), "no report is written");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, [std::ffi::OsString::from("stuck.tar")]);
}

#[test]
fn cache_dir_holds_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let advisories = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/advisories");
    let out = customs(
        dir.path(),
        &["db", "import", "--cache-dir", cache.to_str().unwrap(), advisories.to_str().unwrap()],
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(cache.join("vulndb.sqlite").is_file());
    let doc = json(&customs(
        dir.path(),
        &["scan", &demo_image(), "-f", "json", "--cache-dir", cache.to_str().unwrap()],
        &[],
    ));
    assert_eq!(doc["findings"].as_array().unwrap().len(), 5);
    // Also from the environment, like every flag.
    let doc = json(&customs(
        dir.path(),
        &["scan", &demo_image(), "-f", "json"],
        &[("CUSTOMS_CACHE_DIR", cache.to_str().unwrap())],
    ));
    assert_eq!(doc["findings"].as_array().unwrap().len(), 5);
}

#[test]
fn progress_shows_on_a_terminal_only_and_never_with_quiet_or_no_progress() {
    let Some(script) = customs_testkit::tool("script", "apt-get install bsdutils") else {
        return;
    };
    let bin = assert_cmd::cargo::cargo_bin!("customs");
    let run_on_tty = |flags: &str| {
        let line = format!("{} sbom {} -o /dev/null {flags}", bin.display(), demo_image());
        let out = std::process::Command::new(&script)
            .args(["-qec", &line, "/dev/null"])
            .env("CUSTOMS_PROGRESS_DELAY_MS", "0")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(run_on_tty("").contains("reading layers"));
    assert!(!run_on_tty("--no-progress").contains("reading layers"));
    assert!(!run_on_tty("--quiet").contains("reading layers"));
    // Not a terminal (a CI log): nothing, even with no delay.
    let out = customs(
        Path::new("."),
        &["sbom", &demo_image(), "-o", "/dev/null"],
        &[("CUSTOMS_PROGRESS_DELAY_MS", "0")],
    );
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("reading layers"));
}

#[test]
fn a_debian_image_scans_without_a_warning_per_apt_index() {
    let Some(base) = customs_testkit::test_image("bookworm-base.docker.tar") else {
        return;
    };
    let out = customs(Path::new("."), &["secrets", base.to_str().unwrap(), "-f", "json"], &[]);
    let doc = json(&out);
    // apt's package indexes (50 MB, over the secret scanner's size limit) were a warning on every Debian image.
    assert!(!doc["warnings"].to_string().contains("var/lib/apt/lists"), "{}", doc["warnings"]);
}

#[test]
fn ignore_status_and_a_trivyignore_in_the_folder_work_as_in_trivy() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let db = db.to_str().unwrap();
    let image = demo_image();
    // Every demo finding has a fix: `--ignore-status fixed` hides them all and says so.
    let doc = json(&customs(
        dir.path(),
        &["scan", &image, "--db", db, "-f", "json", "--ignore-status", "fixed"],
        &[],
    ));
    assert_eq!(doc["findings"].as_array().unwrap().len(), 0);
    assert_eq!(doc["warnings"][0], "5 vulnerabilities and 0 secrets not shown (--ignore-status)");
    let doc = json(&customs(
        dir.path(),
        &["scan", &image, "--db", db, "-f", "json", "--ignore-status", "will_not_fix"],
        &[],
    ));
    assert_eq!(doc["findings"].as_array().unwrap().len(), 5);
    let out = customs(dir.path(), &["scan", &image, "--db", db, "--ignore-status", "wontfix"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown status \"wontfix\""));

    // A .trivyignore in the folder is read by the gate, as Trivy reads it; the suppression is shown.
    std::fs::write(dir.path().join(".trivyignore"), "CVE-2021-44228\n").unwrap();
    let out = customs(dir.path(), &["gate", &image, "--db", db, "--report", "json=-"], &[]);
    let gate: Value = serde_json::from_slice(&out.stdout).unwrap();
    let log4j = gate["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "GHSA-jfh8-c2jp-5v3q")
        .unwrap();
    assert_eq!(log4j["status"], "suppressed");
    assert_eq!(log4j["exception"]["file"], ".trivyignore");
}

#[test]
fn the_table_cuts_long_titles_and_json_keeps_them_whole() {
    let dir = tempfile::tempdir().unwrap();
    let title = "Apache Log4j2 JNDI features used in configuration, log messages and parameters do not protect against attacker controlled LDAP and other JNDI related endpoints";
    let record = serde_json::json!({
        "id": "GHSA-jfh8-c2jp-5v3q", "aliases": ["CVE-2021-44228"], "summary": title,
        "affected": [{"package": {"ecosystem": "Maven", "name": "org.apache.logging.log4j:log4j-core"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0-beta9"}, {"fixed": "2.15.0"}]}]}]
    });
    std::fs::create_dir(dir.path().join("osv")).unwrap();
    std::fs::write(dir.path().join("osv/long.json"), record.to_string()).unwrap();
    let db = dir.path().join("long.sqlite");
    let import = customs(dir.path(), &["db", "import", "--db", db.to_str().unwrap(), "osv"], &[]);
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    let scan = |format: &str| {
        customs(
            dir.path(),
            &["scan", &demo_image(), "--db", db.to_str().unwrap(), "-f", format],
            &[],
        )
    };
    let doc = json(&scan("json"));
    assert_eq!(doc["findings"][0]["title"], title);
    let table = String::from_utf8_lossy(&scan("table").stdout).into_owned();
    let cut: String = title.chars().take(60).collect();
    assert!(table.contains(&cut) && !table.contains(title), "{table}");
}

/// Issue 16 item 4: a finding no source rated is never read as "low".
#[test]
fn an_unrated_finding_fails_the_gate_by_default_and_warn_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    // lodash's advisory without any severity: UNKNOWN.
    let record = serde_json::json!({
        "id": "GHSA-35jh-r3h4-6jhm", "aliases": ["CVE-2021-23337"], "summary": "Command injection in lodash template",
        "affected": [{"package": {"ecosystem": "npm", "name": "lodash"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}]}]
    });
    let osv = dir.path().join("osv");
    support::write_coverage_fillers(&osv);
    std::fs::write(osv.join("lodash.json"), record.to_string()).unwrap();
    let db = dir.path().join("unrated.sqlite");
    let import = customs(dir.path(), &["db", "import", "--db", db.to_str().unwrap(), "osv"], &[]);
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    let gate = |extra: &[&str]| {
        let mut args = vec!["gate", "--db", db.to_str().unwrap(), "--scanners", "vuln"];
        let image = demo_image();
        args.push(&image);
        args.extend_from_slice(extra);
        let out = customs(dir.path(), &args, &[]);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, text) = gate(&[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("1 finding(s) have no severity rating and count as failing"), "{text}");
    let (code, text) = gate(&["--unknown", "warn"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("1 finding(s) have no severity rating and were not counted"), "{text}");
    std::fs::write(dir.path().join("customs.toml"), "[gate]\nunknown = \"warn\"\n").unwrap();
    assert_eq!(gate(&[]).0, Some(0), "the policy file's [gate] unknown");
}

/// Issue 16 item 3 (part): a known exploited vulnerability fails the gate whatever its severity, and says so.
#[test]
fn a_known_exploited_vulnerability_fails_the_gate_and_names_kev() {
    let dir = tempfile::tempdir().unwrap();
    // Debian 12 with curl before DSA-5523-1 and glibc before DSA-5514-1 (public facts: CVE-2023-38545 is
    // NVD's 9.8 CRITICAL; CVE-2023-4911 is 7.8 HIGH and in CISA's KEV since 2023-11-21, due 2023-12-12).
    let root = dir.path().join("rootfs");
    write_curl_glibc_rootfs(&root);
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let osv = |id: &str, cve: &str, vector: &str, package: &str, fixed: &str| {
        serde_json::json!({"id": id, "aliases": [cve], "summary": format!("{package}: {cve}"),
            "severity": [{"type": "CVSS_V3", "score": vector}],
            "affected": [{"package": {"ecosystem": "Debian:12", "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]})
        .to_string()
    };
    std::fs::write(
        data.join("dsa-5523-1.json"),
        osv(
            "DSA-5523-1",
            "CVE-2023-38545",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "curl",
            "7.88.1-10+deb12u4",
        ),
    )
    .unwrap();
    std::fs::write(
        data.join("dsa-5514-1.json"),
        osv(
            "DSA-5514-1",
            "CVE-2023-4911",
            "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
            "glibc",
            "2.36-9+deb12u3",
        ),
    )
    .unwrap();
    std::fs::write(
        data.join("kev.json"),
        r#"{"title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "test", "count": 1, "vulnerabilities": [
            {"cveID": "CVE-2023-4911", "vendorProject": "GNU", "product": "GNU C Library", "vulnerabilityName": "GNU C Library Buffer Overflow Vulnerability",
             "dateAdded": "2023-11-21", "dueDate": "2023-12-12", "knownRansomwareCampaignUse": "Unknown"}]}"#,
    )
    .unwrap();
    // A made-up EPSS score for the test (not FIRST's figure).
    std::fs::write(data.join("epss.csv"), "#test data\ncve,epss,percentile\nCVE-2023-4911,0.5,0.995\n").unwrap();
    let db = dir.path().join("kev.sqlite");
    let import = customs(dir.path(), &["db", "import", "--db", db.to_str().unwrap(), "data"], &[]);
    let said = String::from_utf8_lossy(&import.stdout);
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    assert!(said.contains("cisa-kev: 1") && said.contains("first-epss: 1"), "{said}");
    let target = format!("dir:{}", root.display());
    let gate = |extra: &[&str]| {
        let (code, doc) = support::gate_vuln_json(dir.path(), &target, &db, extra);
        let failing: Vec<String> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["status"] == "failing")
            .map(|f| format!("{} {}", f["aliases"][0].as_str().unwrap(), f["package"]["name"].as_str().unwrap()))
            .collect();
        (code, failing, doc["verdict"]["reasons"].to_string(), doc)
    };
    let (code, failing, reasons, doc) = gate(&["--fail-on", "CRITICAL"]);
    assert_eq!(code, Some(1));
    // In risk order: the known exploited one first.
    assert_eq!(
        failing,
        ["CVE-2023-4911 libc6", "CVE-2023-38545 curl", "CVE-2023-38545 libcurl4"],
        "{reasons}"
    );
    assert!(
        reasons.contains(
            "CVE-2023-4911 in libc6 2.36-9+deb12u2 is known to be exploited (CISA KEV since 2023-11-21, remediation due 2023-12-12)"
        ),
        "{reasons}"
    );
    let glibc = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "DSA-5514-1")
        .unwrap();
    assert_eq!(glibc["kev"]["due_date"], "2023-12-12");
    assert_eq!(glibc["epss"]["percentile"], 0.995);
    let (code, failing, _, _) = gate(&["--fail-on", "CRITICAL", "--fail-on-kev=false"]);
    assert_eq!(
        (code, failing),
        (
            Some(1),
            vec!["CVE-2023-38545 curl".to_string(), "CVE-2023-38545 libcurl4".to_string()]
        )
    );
    let (_, failing, reasons, _) = gate(&["--fail-on", "CRITICAL", "--fail-on-kev=false", "--fail-on-epss", "p99"]);
    assert!(
        failing.contains(&"CVE-2023-4911 libc6".to_string()) && reasons.contains("has EPSS 0.500 (percentile 99.5)"),
        "{reasons}"
    );
    // The table marks it beside the id.
    let table = customs(
        dir.path(),
        &["scan", &target, "--db", db.to_str().unwrap(), "--scanners", "vuln"],
        &[],
    );
    assert!(String::from_utf8_lossy(&table.stdout).contains("DSA-5514-1 CVE-2023-4911 KEV"));
}

#[test]
fn the_shared_kev_catalog_and_epss_scores_import() {
    let (Some(kev), Some(epss)) = (
        customs_testkit::shared_data("severity/kev"),
        customs_testkit::shared_data("severity/epss"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.sqlite");
    let started = std::time::Instant::now();
    let out = customs(
        dir.path(),
        &[
            "db",
            "import",
            "--db",
            db.to_str().unwrap(),
            kev.to_str().unwrap(),
            epss.to_str().unwrap(),
        ],
        &[],
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("KEV and EPSS imported in {:.1} s:\n{said}", started.elapsed().as_secs_f64());
    // The shared README: 1,674 KEV entries (catalog 2026.08.21) and 360,142 EPSS scores.
    assert!(said.contains("cisa-kev: 1674") && said.contains("first-epss: 360142"), "{said}");
}

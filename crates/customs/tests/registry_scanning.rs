//! Issue 17's acceptance with real clients: `customs registry serve` with scan on push and a protection rule,
//! the shared bookworm image pushed with skopeo, pulls refused to skopeo and podman naming CVEs, an exception
//! letting them through, the gate's JSON equal to the registry's stored result, and a `kill -9` with queued
//! scans after which every job completes exactly once; a base pushed as `base/debian:12`, an app built on it
//! with buildah, a new base pushed: `base.updated` reaches a receiver for the app's repository and
//! `customs registry dependents` lists it. Skipped (a failure under CUSTOMS_REQUIRE_ALL=1) without the shared
//! data, the test images, skopeo, podman or buildah.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

mod support;

fn customs() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("customs"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CUSTOMS_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn ok(out: Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A registry folder: dev certificate, vulnerability database from the shared Debian lists, `registry.toml`
/// with scanning, a `prod/**` protection rule and principal `ci` (pull, push on prod/**, dev/**).
struct Setup {
    dir: tempfile::TempDir,
    port: u16,
    secret: String,
    agent: ureq::Agent,
}

impl Setup {
    fn new(debian: &Path, workers: usize) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        ok(
            run(customs().current_dir(dir.path()).args(["registry", "dev-cert", "--out", "tls"])),
            "dev-cert",
        );
        let mut import = customs();
        import.current_dir(dir.path()).args(["db", "import", "--db", "vuln.db"]);
        for list in [
            "DSA.list.to-2025-02-13",
            "DSA.list.2025-02-to-2026-08",
            "DLA.list.to-2025-02-13",
            "DLA.list.2025-02-to-2026-08",
            "bookworm-changelogs.tracker.json",
        ] {
            import.arg(debian.join(list));
        }
        ok(run(&mut import), "db import");
        std::fs::write(
            dir.path().join("registry.toml"),
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\n[tls]\ncert = \"tls/server-cert.pem\"\nkey = \"tls/server-key.pem\"\n\
                 [scanning]\nvulnerability_db = \"vuln.db\"\nworkers = {workers}\n\
                 [[protect]]\nrepositories = [\"prod/**\"]\n\
                 [[grant]]\nto = \"ci\"\nrepositories = [\"prod/**\", \"dev/**\"]\nactions = [\"pull\", \"push\"]\n"
            ),
        )
        .unwrap();
        let secret = ok(
            run(customs().current_dir(dir.path()).args(["registry", "principal", "create", "ci"])),
            "principal create",
        )
        .trim()
        .to_string();
        let agent = support::tls_agent(&dir.path().join("tls/ca.crt"));
        Setup { dir, port, secret, agent }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn serve(&self) -> Server {
        let child = customs()
            .current_dir(self.dir.path())
            .args(["registry", "serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self
                .agent
                .get(format!("https://{}/readyz", self.host()))
                .call()
                .is_ok_and(|r| r.status() == 200)
            {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the registry did not become ready");
    }

    fn creds(&self) -> String {
        format!("ci:{}", self.secret)
    }

    fn skopeo_push(&self, skopeo: &Path, image: &str, to: &str) -> Output {
        run(Command::new(skopeo).args([
            "copy",
            "--dest-cert-dir",
            self.dir.path().join("tls").to_str().unwrap(),
            "--dest-creds",
            &self.creds(),
            image,
            &format!("docker://{}/{to}", self.host()),
        ]))
    }

    fn skopeo_pull(&self, skopeo: &Path, from: &str) -> Output {
        let out = self.dir.path().join(format!("pulled-{}", from.replace(['/', ':', '@'], "-")));
        let _ = std::fs::remove_dir_all(&out);
        run(Command::new(skopeo).args([
            "copy",
            "--src-cert-dir",
            self.dir.path().join("tls").to_str().unwrap(),
            "--src-creds",
            &self.creds(),
            &format!("docker://{}/{from}", self.host()),
            &format!("oci:{}", out.display()),
        ]))
    }

    fn api(&self, path: &str) -> (u16, Value) {
        let auth = base64::engine::general_purpose::STANDARD.encode(self.creds());
        let mut reply = self
            .agent
            .get(format!("https://{}{path}", self.host()))
            .header("Authorization", format!("Basic {auth}"))
            .call()
            .unwrap();
        let status = reply.status().as_u16();
        let body = reply.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    fn wait_for_scan(&self, repo: &str, reference: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let (status, doc) = self.api(&format!("/api/v1/repositories/{repo}/manifests/{reference}/scan"));
            if status == 200 {
                return doc;
            }
            assert_eq!(status, 202, "{doc:#}");
            assert!(Instant::now() < deadline, "the scan of {repo}:{reference} did not finish in 300 s");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn inputs() -> Option<(PathBuf, PathBuf, PathBuf, PathBuf)> {
    let debian = customs_testkit::shared_data("debian-security")?;
    let app = customs_testkit::test_image("bookworm-app.oci")?;
    let base = customs_testkit::test_image("bookworm-base.docker.tar")?;
    let tools = customs_testkit::tools(&["skopeo", "podman"], "apt-get install skopeo podman")?;
    let _ = base;
    Some((debian, app, tools[0].clone(), tools[1].clone()))
}

fn cves(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("CVE-"))
        .map(String::from)
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn protected_repository_refuses_skopeo_and_podman_until_an_exception_and_the_gate_agrees() {
    let Some((debian, app, skopeo, podman)) = inputs() else { return };
    let setup = Setup::new(&debian, 2);
    let _server = setup.serve();
    let image = format!("oci:{}", app.display());
    for to in ["prod/app:1", "dev/app:1"] {
        let out = setup.skopeo_push(&skopeo, &image, to);
        assert!(
            out.status.success(),
            "skopeo copy to {to}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pushed = Instant::now();
    let doc = setup.wait_for_scan("prod/app", "1");
    println!(
        "scan of prod/app:1 stored {:.2} s after the push returned",
        pushed.elapsed().as_secs_f64()
    );
    assert_eq!(doc["scan"]["status"], "scanned", "{:#}", doc["scan"]);
    assert_eq!(doc["verdict"]["pass"], false, "{:#}", doc["verdict"]);
    let failing: Vec<&Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "failing")
        .collect();
    assert!(!failing.is_empty(), "the shared Debian data fails the bookworm image");
    let digest = doc["scan"]["digest"].as_str().unwrap().to_string();

    // skopeo and podman, by tag and by digest: refused, and what they print names CVEs.
    for from in ["prod/app:1".to_string(), format!("prod/app@{digest}")] {
        let out = setup.skopeo_pull(&skopeo, &from);
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("skopeo copy {from}: {}", stderr.trim());
        assert!(!out.status.success(), "skopeo pulled a blocked image");
        assert!(!cves(&stderr).is_empty(), "skopeo's message names no CVE: {stderr}");
    }
    let storage = setup.dir.path().join("podman");
    let podman_pull = |reference: &str| {
        run(Command::new(&podman).args([
            "--root",
            storage.join("root").to_str().unwrap(),
            "--runroot",
            storage.join("run").to_str().unwrap(),
            "--storage-driver",
            "vfs",
            "pull",
            "--cert-dir",
            setup.dir.path().join("tls").to_str().unwrap(),
            "--creds",
            &setup.creds(),
            &format!("{}/{reference}", setup.host()),
        ]))
    };
    let out = podman_pull("prod/app:1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("podman pull prod/app:1: {}", stderr.trim());
    assert!(!out.status.success(), "podman pulled a blocked image");
    assert!(!cves(&stderr).is_empty(), "podman's message names no CVE: {stderr}");
    // The pipeline can still push over a blocked tag (clients HEAD the manifest before pushing; Harbor's blocked
    // HEAD broke that, goharbor/harbor#19408).
    let out = setup.skopeo_push(&skopeo, &image, "prod/app:1");
    assert!(
        out.status.success(),
        "re-push over a blocked tag: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The unprotected repository serves the same image.
    let out = setup.skopeo_pull(&skopeo, "dev/app:1");
    assert!(out.status.success(), "dev/app: {}", String::from_utf8_lossy(&out.stderr));
    // The refusals are in the audit log.
    let denied = ok(
        run(customs()
            .current_dir(setup.dir.path())
            .args(["registry", "audit", "query", "--result", "denied", "--format", "json"])),
        "audit query",
    );
    assert!(
        denied
            .lines()
            .any(|l| l.contains("prod/app") && l.contains("blocked") && l.contains("CVE-")),
        "{denied}"
    );

    // The gate on the same image with the same database gives the registry's verdict and findings.
    let work = tempfile::tempdir().unwrap();
    let report = work.path().join("gate.json");
    let gate = run(customs().current_dir(work.path()).args([
        "gate",
        &image,
        "--db",
        setup.dir.path().join("vuln.db").to_str().unwrap(),
        "--report",
        &format!("json={}", report.display()),
    ]));
    assert_eq!(gate.status.code(), Some(1), "{}", String::from_utf8_lossy(&gate.stderr));
    let gate: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    for key in [
        "schema",
        "verdict",
        "findings",
        "secrets",
        "warnings",
        "expired_exceptions",
        "unused_exceptions",
    ] {
        assert_eq!(
            gate[key], doc[key],
            "`{key}` differs between customs gate and the registry's stored result"
        );
    }
    assert_eq!(gate["subject"]["manifest_digest"], doc["subject"]["manifest_digest"]);
    assert_eq!(gate["subject"]["layers"], doc["subject"]["layers"]);

    // An exception for every failing finding and secret, expiring tomorrow, lets skopeo and podman through.
    let tomorrow = (time::OffsetDateTime::now_utc() + time::Duration::days(1)).date();
    let mut exceptions: Vec<Value> = failing
        .iter()
        .map(|f| {
            serde_json::json!({"id": f["id"], "library_name": f["package"]["name"], "expires": tomorrow.to_string(),
                "reason": "accepted for the test", "approved_by": "security"})
        })
        .collect();
    // The image also ships planted secrets (in files and in its history): excepted by rule.
    let mut rules: Vec<&str> = doc["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "failing")
        .filter_map(|s| s["rule_id"].as_str())
        .collect();
    rules.sort();
    rules.dedup();
    for rule in rules {
        exceptions.push(serde_json::json!({"id": rule, "expires": tomorrow.to_string(),
            "reason": "test credentials, revoked", "approved_by": "security"}));
    }
    let file = setup.dir.path().join("exclusions.json");
    std::fs::write(&file, serde_json::to_string(&exceptions).unwrap()).unwrap();
    ok(
        run(customs()
            .current_dir(setup.dir.path())
            .args(["registry", "exceptions", "set", "prod/app", file.to_str().unwrap()])),
        "exceptions set",
    );
    let out = setup.skopeo_pull(&skopeo, "prod/app:1");
    assert!(out.status.success(), "excepted: {}", String::from_utf8_lossy(&out.stderr));
    let out = podman_pull("prod/app:1");
    assert!(out.status.success(), "excepted: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn kill_9_with_queued_scans_completes_every_job_exactly_once() {
    let Some((debian, app, skopeo, _)) = inputs() else { return };
    let Some(base) = customs_testkit::test_image("bookworm-base.docker.tar") else {
        return;
    };
    let setup = Setup::new(&debian, 1);
    let mut server = setup.serve();
    let images = [
        (format!("oci:{}", app.display()), "prod/app:1"),
        (format!("docker-archive:{}", base.display()), "prod/base:1"),
        (
            format!("oci:{}", customs_testkit::repo_root().join("examples/demo-image").display()),
            "prod/demo:1",
        ),
    ];
    for (image, to) in &images {
        let out = setup.skopeo_push(&skopeo, image, to);
        assert!(
            out.status.success(),
            "skopeo copy to {to}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // One worker and three images: the kill finds at least one job queued or running.
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    let db = rusqlite::Connection::open(setup.dir.path().join("data/registry.db")).unwrap();
    let unfinished: i64 = db
        .query_row("SELECT COUNT(*) FROM scan_jobs WHERE state IN ('queued', 'running')", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(unfinished > 0, "every scan finished before the kill; nothing was left to recover");
    drop(db);
    let _server = setup.serve();
    for (_, to) in &images {
        let (repo, tag) = to.split_once(':').unwrap();
        let doc = setup.wait_for_scan(repo, tag);
        assert_eq!(doc["scan"]["status"], "scanned", "{to}: {:#}", doc["scan"]);
    }
    let db = rusqlite::Connection::open(setup.dir.path().join("data/registry.db")).unwrap();
    let jobs: Vec<(String, String)> = db
        .prepare("SELECT digest, state FROM scan_jobs")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    assert!(jobs.iter().all(|(_, s)| s == "done"), "{jobs:?}");
    let per_digest: Vec<i64> = db
        .prepare("SELECT COUNT(*) FROM scan_results GROUP BY digest")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(per_digest, vec![1, 1, 1], "one result row per image");
    println!("{unfinished} of 3 jobs were unfinished at the kill; all 3 done once after the restart");
}

/// A webhook receiver on 127.0.0.1 that answers 200 and keeps each body (HMAC checks are in the registry's own
/// webhook tests).
struct Receiver {
    url: String,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Receiver {
    fn start() -> Receiver {
        use std::io::{BufRead, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_ok()
                    && let Ok(value) = serde_json::from_slice(&body)
                {
                    log.lock().unwrap().push(value);
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        Receiver { url, bodies }
    }

    /// Waits (120 s at most) for an event of CloudEvents `type` whose data names `repository`.
    fn wait_for(&self, kind: &str, repository: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(event) = self
                .bodies
                .lock()
                .unwrap()
                .iter()
                .find(|e| e["type"] == kind && e["data"]["repository"] == repository)
            {
                return event.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} for {repository} in 120 s: {:?}",
                self.bodies.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn a_new_base_tells_the_repository_of_an_app_built_on_it_with_buildah() {
    let Some((debian, _, skopeo, _)) = inputs() else { return };
    let Some(base) = customs_testkit::test_image("bookworm-base.docker.tar") else {
        return;
    };
    let Some(buildah) = customs_testkit::tool("buildah", "apt-get install buildah") else {
        return;
    };
    let setup = Setup::new(&debian, 2);
    let receiver = Receiver::start();
    let config = setup.dir.path().join("registry.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[[webhook]]\nname = \"rebuilds\"\nurl = \"{}\"\nevents = [\"base.updated\"]\nretry_after = \"1s\"\n\
         [[grant]]\nto = \"ci\"\nrepositories = [\"base/**\"]\nactions = [\"pull\", \"push\"]\n",
        receiver.url
    ));
    std::fs::write(&config, text).unwrap();
    let _server = setup.serve();
    let out = setup.skopeo_push(&skopeo, &format!("docker-archive:{}", base.display()), "base/debian:12");
    assert!(out.status.success(), "skopeo copy: {}", String::from_utf8_lossy(&out.stderr));

    // buildah, with its own storage: FROM the registry's base, one file added, committed and pushed.
    let storage = setup.dir.path().join("buildah");
    let tls = setup.dir.path().join("tls");
    let buildah_run = |args: &[&str]| -> String {
        let out = run(Command::new(&buildah)
            .args([
                "--root",
                storage.join("root").to_str().unwrap(),
                "--runroot",
                storage.join("run").to_str().unwrap(),
                "--storage-driver",
                "vfs",
            ])
            .args(args));
        ok(out, &format!("buildah {}", args.join(" ")))
    };
    let build_on_base = |file: &str, to: &str| {
        let container = buildah_run(&[
            "from",
            "--pull-always",
            "--cert-dir",
            tls.to_str().unwrap(),
            "--creds",
            &setup.creds(),
            &format!("docker://{}/base/debian:12", setup.host()),
        ]);
        let container = container.trim().to_string();
        let source = setup.dir.path().join(file);
        std::fs::write(&source, format!("{file}\n")).unwrap();
        buildah_run(&["copy", &container, source.to_str().unwrap(), &format!("/{file}")]);
        let image = buildah_run(&["commit", &container, &format!("localhost/{file}")])
            .trim()
            .to_string();
        buildah_run(&[
            "push",
            "--cert-dir",
            tls.to_str().unwrap(),
            "--creds",
            &setup.creds(),
            &image,
            &format!("docker://{}/{to}", setup.host()),
        ]);
        buildah_run(&["rm", &container]);
    };
    build_on_base("app.txt", "dev/app:1");
    let listed = ok(
        run(customs()
            .current_dir(setup.dir.path())
            .args(["registry", "dependents", "base/debian:12", "--format", "json"])),
        "registry dependents",
    );
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let dependents = listed["dependents"].as_array().unwrap();
    assert_eq!(dependents.len(), 1, "{listed:#}");
    assert_eq!(dependents[0]["repository"], "dev/app");
    assert_eq!(dependents[0]["tags"], serde_json::json!(["1"]));
    assert_eq!(dependents[0]["base_current"], true);
    println!(
        "buildah's app: base found by {} ({} layer(s) from the base)",
        dependents[0]["base_source"], dependents[0]["base_layers"]
    );
    let old_base = listed["base"]["digest"].as_str().unwrap().to_string();

    // A new base/debian:12 (built on the old one with buildah, as a security rebuild would be).
    build_on_base("security-update.txt", "base/debian:12");
    let event = receiver.wait_for("customs.registry.base.updated", "dev/app");
    let data = &event["data"];
    assert_eq!(data["base"]["repository"], "base/debian");
    assert_eq!(data["base"]["tag"], "12");
    assert_eq!(data["base"]["old_digest"], old_base.as_str());
    assert_ne!(data["base"]["new_digest"], old_base.as_str());
    assert_eq!(data["images"][0]["digest"], dependents[0]["digest"]);
    let table = ok(
        run(customs()
            .current_dir(setup.dir.path())
            .args(["registry", "dependents", "base/debian:12"])),
        "registry dependents",
    );
    println!("customs registry dependents base/debian:12 after the new base:\n{table}");
    assert!(table.lines().any(|l| l.starts_with("dev/app ") && l.contains(" no ")), "{table}");
}

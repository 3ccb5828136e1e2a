//! `customs registry` as an operator runs it: dev certificates, principals, `serve`, and a `kill -9` in the middle
//! of a chunked upload. After the restart the upload resumes from the last committed chunk, the blob is never
//! served before its digest is verified, and the audit chain is intact.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::{Digest as _, Sha256};

mod support;

fn customs() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("customs"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent(ca: &Path) -> ureq::Agent {
    support::tls_agent(ca)
}

fn serve(dir: &Path, base: &str, agent: &ureq::Agent) -> Server {
    serve_with(dir, base, agent, &[])
}

/// [`serve`] with more arguments (`--listen` for a second replica on the same config).
fn serve_with(dir: &Path, base: &str, agent: &ureq::Agent, args: &[&str]) -> Server {
    let child = customs()
        .current_dir(dir)
        .args(["registry", "serve"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server { child };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if agent.get(format!("{base}/readyz")).call().is_ok_and(|r| r.status() == 200) {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the registry did not become ready");
}

/// What an operator does first: a dev certificate, a config granting principal `ci` pull and push on
/// `repositories`, and the principal itself. Returns the folder, the port and `ci`'s secret.
fn operator_setup(repositories: &str) -> (tempfile::TempDir, u16, String) {
    operator_setup_with(repositories, "")
}

/// [`operator_setup`] with `extra` config (a `[database]` section) in `registry.toml`.
fn operator_setup_with(repositories: &str, extra: &str) -> (tempfile::TempDir, u16, String) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let certs = customs()
        .current_dir(dir.path())
        .args(["registry", "dev-cert", "--out", "tls"])
        .output()
        .unwrap();
    assert!(certs.status.success(), "{}", String::from_utf8_lossy(&certs.stderr));
    std::fs::write(
        dir.path().join("registry.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[tls]\ncert = \"tls/server-cert.pem\"\nkey = \"tls/server-key.pem\"\n\
             {extra}[[grant]]\nto = \"ci\"\nrepositories = [\"{repositories}\"]\nactions = [\"pull\", \"push\"]\n"
        ),
    )
    .unwrap();
    let created = customs()
        .current_dir(dir.path())
        .args(["registry", "principal", "create", "ci"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let secret = String::from_utf8(created.stdout).unwrap().trim().to_string();
    assert!(secret.starts_with("cst_"));
    (dir, port, secret)
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A request body that sends `head`, says so on `sent`, waits for `release` (the test kills the server in
/// between), then sends `tail`. Were the server alive, the request would complete; so an error proves the kill.
struct Stalling {
    head: Vec<u8>,
    tail: Vec<u8>,
    at: usize,
    sent: Option<std::sync::mpsc::Sender<()>>,
    release: std::sync::mpsc::Receiver<()>,
}

impl Read for Stalling {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let total = self.head.len() + self.tail.len();
        if self.at == self.head.len()
            && let Some(sent) = self.sent.take()
        {
            let _ = sent.send(());
            // Bounded: a test that never releases still ends.
            let _ = self.release.recv_timeout(Duration::from_secs(60));
        }
        if self.at >= total {
            return Ok(0);
        }
        let (src, from) = if self.at < self.head.len() {
            (&self.head, self.at)
        } else {
            (&self.tail, self.at - self.head.len())
        };
        let n = buf.len().min(src.len() - from);
        buf[..n].copy_from_slice(&src[from..from + n]);
        self.at += n;
        Ok(n)
    }
}

/// The staged part objects of upload `id` that start at `offset`, with their sizes (local object store: a part
/// being written is a file `uploads/<id>/<offset>-<uuid>#<n>` until it completes).
fn staged_parts(dir: &Path, id: &str, offset: u64) -> Vec<(std::path::PathBuf, u64)> {
    let uploads = dir.join("data/blobs/uploads").join(id);
    let prefix = format!("{offset:020}-");
    std::fs::read_dir(&uploads)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| (e.path(), e.metadata().map_or(0, |m| m.len())))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kill_9_during_a_chunked_upload_then_resume() {
    kill_9_then_resume("");
}

/// The same with the metadata in PostgreSQL (a database of its own, made with `psql`, dropped afterwards).
#[test]
fn kill_9_during_a_chunked_upload_then_resume_on_postgres() {
    let Some(db) = PostgresDatabase::create("resume") else { return };
    kill_9_then_resume(&format!("[database]\nurl = \"{}\"\n", db.url));
}

/// A PostgreSQL database of one test's own on the server `CUSTOMS_TEST_POSTGRES` names, made and dropped with
/// `psql`; `None` (a printed skip, a failure in CI) without a server.
struct PostgresDatabase {
    url: String,
    admin: String,
    psql: std::path::PathBuf,
    name: String,
}

impl PostgresDatabase {
    fn create(test: &str) -> Option<PostgresDatabase> {
        let admin = customs_testkit::postgres()?;
        let psql = customs_testkit::tool("psql", "apt-get install postgresql-client")?;
        let name = format!("customs_cli_{test}_{}", std::process::id());
        let url = match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("CUSTOMS_TEST_POSTGRES has no database part: {admin}"),
        };
        let db = PostgresDatabase { url, admin, psql, name };
        db.run(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name));
        db.run(&format!("CREATE DATABASE {}", db.name));
        Some(db)
    }

    fn run(&self, sql: &str) {
        let out = Command::new(&self.psql)
            .args([self.admin.as_str(), "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let _ = Command::new(&self.psql)
            .args([
                self.admin.as_str(),
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// Sends chunk `range` of `blob` from `from` to `location`, and `kill -9`s `server` once the server has written
/// more than a part chunk of it to the staged part object: the PATCH must then fail.
fn kill_9_mid_chunk(server: Server, upload: &Upload, from: usize, head: usize, range: &str) {
    const PART_CHUNK: u64 = 8 << 20;
    let (sent_tx, sent_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    let (agent, auth, location, range) = (
        upload.agent.clone(),
        upload.auth.clone(),
        upload.location.clone(),
        range.to_string(),
    );
    let body = Stalling {
        head: upload.blob[from..from + head].to_vec(),
        tail: upload.blob[from + head..].to_vec(),
        at: 0,
        sent: Some(sent_tx),
        release: release_rx,
    };
    let sender = std::thread::spawn(move || {
        agent
            .patch(&location)
            .header("Authorization", &auth)
            .header("Content-Range", &range)
            .send(ureq::SendBody::from_owned_reader(body))
    });
    sent_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the client sent the head of the chunk");
    // Not a sleep: wait until the server has written part of the chunk into its staged part object.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !staged_parts(&upload.dir, &upload.id, from as u64)
        .iter()
        .any(|(_, size)| *size >= PART_CHUNK)
    {
        assert!(Instant::now() < deadline, "the server never staged part of the chunk");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    release_tx.send(()).unwrap();
    let interrupted = sender.join().unwrap();
    assert!(
        interrupted.is_err(),
        "the rest of the body went to a killed server, so the PATCH cannot have succeeded: {interrupted:?}"
    );
}

/// A chunked upload in progress, as its client knows it.
struct Upload {
    agent: ureq::Agent,
    auth: String,
    /// The upload's URL on the replica it was started on.
    location: String,
    /// Its path (the same on every replica).
    path: String,
    id: String,
    blob: Vec<u8>,
    dir: std::path::PathBuf,
}

/// 20 MB that do not compress.
fn test_blob() -> Vec<u8> {
    (0..20_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

/// Starts an upload of `blob` to `project1` at `base` and sends its first `first` bytes.
fn begin_upload(dir: &Path, base: &str, agent: &ureq::Agent, auth: &str, blob: Vec<u8>, first: usize) -> Upload {
    let start = agent
        .post(format!("{base}/v2/project1/blobs/uploads/"))
        .header("Authorization", auth)
        .send_empty()
        .unwrap();
    assert_eq!(start.status(), 202);
    let path = start.headers()["location"].to_str().unwrap().to_string();
    let id = path.rsplit('/').next().unwrap().to_string();
    let location = format!("{base}{path}");
    let chunk = agent
        .patch(&location)
        .header("Authorization", auth)
        .header("Content-Range", &format!("0-{}", first - 1))
        .send(&blob[..first])
        .unwrap();
    assert_eq!(chunk.status(), 202);
    Upload {
        agent: agent.clone(),
        auth: auth.to_string(),
        location,
        path,
        id,
        blob,
        dir: dir.to_path_buf(),
    }
}

/// Pushes a one-layer image `project1:TAG` through `base`; returns the manifest and its blobs' bytes.
fn push_image(base: &str, agent: &ureq::Agent, auth: &str, tag: &str) -> (Vec<u8>, Vec<Vec<u8>>) {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","tag":"{tag}"}}"#).into_bytes();
    let layer = format!("layer of {tag}").into_bytes();
    for blob in [&config, &layer] {
        let start = agent
            .post(format!("{base}/v2/project1/blobs/uploads/"))
            .header("Authorization", auth)
            .send_empty()
            .unwrap();
        let location = format!("{base}{}", start.headers()["location"].to_str().unwrap());
        let put = agent
            .put(format!("{location}?digest={}", digest(blob)))
            .header("Authorization", auth)
            .send(&blob[..])
            .unwrap();
        assert_eq!(put.status(), 201);
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(&layer), "size": layer.len()}],
    }))
    .unwrap();
    let put = agent
        .put(format!("{base}/v2/project1/manifests/{tag}"))
        .header("Authorization", auth)
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .send(&manifest[..])
        .unwrap();
    assert_eq!(put.status(), 201);
    (manifest, vec![config, layer])
}

/// Two replicas (two `serve` processes on one config: one PostgreSQL database, one blob folder, one token key)
/// behind a client that fails over: replica A is killed with `kill -9` halfway through a chunk, and the client
/// retries through B, which knows the upload, resumes it from the last committed chunk and finishes it. What A
/// acknowledged before it died is served by B, the half-sent chunk never becomes a blob, and the one audit chain
/// both replicas wrote verifies.
#[test]
fn kill_9_of_replica_a_during_a_push_then_the_retry_through_b_succeeds_on_postgres() {
    let Some(db) = PostgresDatabase::create("failover") else { return };
    let (dir, port_a, secret) = operator_setup_with("project1", &format!("[database]\nurl = \"{}\"\n", db.url));
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("ci:{secret}")));
    let agent = agent(&dir.path().join("tls/ca.crt"));
    let port_b = free_port();
    let (a, b) = (format!("https://localhost:{port_a}"), format!("https://localhost:{port_b}"));
    let replica_a = serve(dir.path(), &a, &agent);
    let _replica_b = serve_with(dir.path(), &b, &agent, &["--listen", &format!("127.0.0.1:{port_b}")]);

    let (manifest, blobs) = push_image(&a, &agent, &auth, "before-the-kill");
    const FIRST: usize = 2_000_000;
    const HEAD: usize = 10_000_000;
    let upload = begin_upload(dir.path(), &a, &agent, &auth, test_blob(), FIRST);
    let rest = format!("{FIRST}-{}", upload.blob.len() - 1);
    kill_9_mid_chunk(replica_a, &upload, FIRST, HEAD, &rest);
    let d = digest(&upload.blob);

    // The retry through B: the upload stands at the last committed chunk; no blob exists yet.
    let at_b = format!("{b}{}", upload.path);
    let status = agent.get(&at_b).header("Authorization", &auth).call().unwrap();
    assert_eq!(status.status(), 204);
    assert_eq!(status.headers()["range"], format!("0-{}", FIRST - 1).as_str());
    let blob_url = format!("{b}/v2/project1/blobs/{d}");
    assert_eq!(agent.head(&blob_url).header("Authorization", &auth).call().unwrap().status(), 404);
    let patched = agent
        .patch(&at_b)
        .header("Authorization", &auth)
        .header("Content-Range", &rest)
        .send(&upload.blob[FIRST..])
        .unwrap();
    assert_eq!(patched.status(), 202);
    let done = agent
        .put(format!("{at_b}?digest={d}"))
        .header("Authorization", &auth)
        .send_empty()
        .unwrap();
    assert_eq!(done.status(), 201);
    let mut got = agent.get(&blob_url).header("Authorization", &auth).call().unwrap();
    assert_eq!(got.body_mut().with_config().limit(30_000_000).read_to_vec().unwrap(), upload.blob);

    // What A acknowledged before it died, through B, byte for byte.
    let mut pulled = agent
        .get(format!("{b}/v2/project1/manifests/before-the-kill"))
        .header("Authorization", &auth)
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .call()
        .unwrap();
    assert_eq!(pulled.body_mut().read_to_vec().unwrap(), manifest);
    for blob in &blobs {
        let mut got = agent
            .get(format!("{b}/v2/project1/blobs/{}", digest(blob)))
            .header("Authorization", &auth)
            .call()
            .unwrap();
        assert_eq!(&got.body_mut().read_to_vec().unwrap(), blob);
    }

    // One chain, written by both replicas and the CLI, in the database.
    let verify = customs()
        .current_dir(dir.path())
        .args(["registry", "audit", "verify"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success() && said.contains("in the registry database"), "{said}");
    let export = customs()
        .current_dir(dir.path())
        .args(["registry", "audit", "export"])
        .output()
        .unwrap();
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let pushes = |reference: &str| {
        records
            .iter()
            .filter(|r| r["action"] == "push" && r["result"] == "allowed" && r["reference"] == reference)
            .count()
    };
    assert_eq!(pushes("before-the-kill"), 1, "the manifest push A acknowledged");
    assert_eq!(pushes(&d), 1, "the upload B finished");
    assert!(!dir.path().join("data/audit").exists() || std::fs::read_dir(dir.path().join("data/audit")).unwrap().count() == 0);
}

/// The chain in the database (here SQLite) is exported by the server as segments; `audit verify --exported`
/// checks them where they went, `--dir` a copy, and a tampered segment is named.
#[test]
fn the_server_exports_the_database_chain_and_verify_checks_the_export() {
    let export = tempfile::tempdir().unwrap();
    let url = format!("file://{}", export.path().display());
    let (dir, port, secret) = operator_setup_with(
        "project1",
        &format!("[audit]\nstore = \"database\"\nexport = \"{url}\"\nexport_interval = \"1s\"\n"),
    );
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("ci:{secret}")));
    let agent = agent(&dir.path().join("tls/ca.crt"));
    let base = format!("https://localhost:{port}");
    let server = serve(dir.path(), &base, &agent);
    push_image(&base, &agent, &auth, "exported");
    let verify = |args: &[&str]| {
        let out = customs()
            .current_dir(dir.path())
            .args(["registry", "audit", "verify"])
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, said) = verify(&[]);
    assert!(code == Some(0) && said.contains("in the registry database"), "{said}");
    let records = |said: &str| -> u64 {
        said.split("intact: ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    // Everything up to the push reaches the export within a few intervals.
    let in_database = records(&said);
    let deadline = Instant::now() + Duration::from_secs(20);
    let exported = loop {
        let (code, said) = verify(&["--exported"]);
        if code == Some(0) && records(&said) >= in_database {
            break said;
        }
        assert!(
            Instant::now() < deadline,
            "the export did not catch up with {in_database} records: {said}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(exported.contains(&format!("segments at {url}")), "{exported}");
    drop(server);
    let (code, said) = verify(&["--dir", export.path().to_str().unwrap()]);
    assert!(
        code == Some(0) && said.contains("segments;"),
        "a copy of the export is a directory log: {said}"
    );

    let first = export.path().join("audit-000000000001.jsonl");
    let text = std::fs::read_to_string(&first).unwrap();
    let edited = text.replacen("\"time\":\"20", "\"time\":\"19", 1);
    assert_ne!(edited, text);
    std::fs::write(&first, edited).unwrap();
    let (code, said) = verify(&["--exported"]);
    assert!(
        code == Some(1) && said.contains("BROKEN") && said.contains("audit-000000000001.jsonl"),
        "{said}"
    );
}

fn kill_9_then_resume(database: &str) {
    let (dir, port, secret) = operator_setup_with("project1", database);
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("ci:{secret}")));

    let base = format!("https://localhost:{port}");
    let agent = agent(&dir.path().join("tls/ca.crt"));
    // 2 MB first chunk, then 18 MB of which 10 MB are sent before the kill: more than the store's 8 MiB
    // multipart chunk, so the half-received part is on disk, not only in the server's memory.
    const FIRST: usize = 2_000_000;
    const HEAD: usize = 10_000_000;
    const PART_CHUNK: u64 = 8 << 20;
    let blob = test_blob();
    let d = digest(&blob);
    let blob_url = format!("{base}/v2/project1/blobs/{d}");
    let second_range = format!("{FIRST}-{}", blob.len() - 1);

    let server = serve(dir.path(), &base, &agent);
    let upload = begin_upload(dir.path(), &base, &agent, &auth, blob, FIRST);
    let (id, location) = (upload.id.clone(), upload.location.clone());
    // The second chunk is half sent when the server dies.
    kill_9_mid_chunk(server, &upload, FIRST, HEAD, &second_range);
    let blob = upload.blob;

    // After the restart: the half-written part is still on disk but ignored; the upload stands at the last
    // committed chunk and the blob does not exist.
    let _server = serve(dir.path(), &base, &agent);
    let leftover = staged_parts(dir.path(), &id, FIRST as u64);
    assert!(
        leftover.iter().any(|(_, size)| *size >= PART_CHUNK),
        "the interrupted part's staged object: {leftover:?}"
    );
    let status = agent.get(&location).header("Authorization", &auth).call().unwrap();
    assert_eq!(status.status(), 204);
    assert_eq!(status.headers()["range"], format!("0-{}", FIRST - 1).as_str());
    assert_eq!(agent.head(&blob_url).header("Authorization", &auth).call().unwrap().status(), 404);
    let blobs_dir = dir.path().join("data/blobs/blobs");
    assert!(
        !blobs_dir.exists() || walk(&blobs_dir).is_empty(),
        "no blob may be stored before the upload completes"
    );

    // Resume from there and finish.
    let rest = agent
        .patch(&location)
        .header("Authorization", &auth)
        .header("Content-Range", &second_range)
        .send(&blob[FIRST..])
        .unwrap();
    assert_eq!(rest.status(), 202);
    let done = agent
        .put(format!("{location}?digest={d}"))
        .header("Authorization", &auth)
        .send_empty()
        .unwrap();
    assert_eq!(done.status(), 201);
    let mut got = agent.get(&blob_url).header("Authorization", &auth).call().unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.body_mut().with_config().limit(30_000_000).read_to_vec().unwrap(), blob);
    drop(_server);

    // The interrupted write is still on disk; garbage collection finds and removes it. With a grace of 1 s the
    // blob, which no manifest uses, goes too, so afterwards storage holds nothing.
    let leftover = staged_parts(dir.path(), &id, FIRST as u64);
    assert!(!leftover.is_empty(), "the killed write's staging file");
    let mut config = std::fs::read_to_string(dir.path().join("registry.toml")).unwrap();
    config.push_str("[gc]\ngrace = \"1s\"\n");
    std::fs::write(dir.path().join("registry.toml"), config).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let gc = |args: &[&str]| {
        let out = customs()
            .current_dir(dir.path())
            .args(["registry", "gc", "--format", "json"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let dry = gc(&["--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!((dry["links"].as_u64(), dry["blobs"].as_u64()), (Some(1), Some(1)), "{dry}");
    assert_eq!(dry["blob_bytes"].as_u64(), Some(blob.len() as u64));
    assert!(dry["staging_objects"].as_u64().unwrap() >= 1, "{dry}");
    assert!(staged_parts(dir.path(), &id, FIRST as u64) == leftover, "a dry run deletes nothing");
    let done = gc(&[]);
    assert_eq!(done["dry_run"], false);
    assert_eq!(done["staging_objects"], dry["staging_objects"], "{done}");
    assert_eq!(done["staging_bytes"], dry["staging_bytes"], "{done}");
    assert!(
        staged_parts(dir.path(), &id, FIRST as u64).is_empty(),
        "the killed write is reclaimed"
    );
    let left = walk(&dir.path().join("data/blobs"));
    assert!(left.is_empty(), "storage holds nothing after the collection: {left:?}");

    let verify = customs()
        .current_dir(dir.path())
        .args(["registry", "audit", "verify"])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    let query = customs()
        .current_dir(dir.path())
        .args(["registry", "audit", "query", "--action", "principal.create"])
        .output()
        .unwrap();
    let line: serde_json::Value = serde_json::from_slice(query.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["detail"], "ci (service-principal)");
    let query = customs()
        .current_dir(dir.path())
        .args(["registry", "audit", "query", "--action", "gc"])
        .output()
        .unwrap();
    let runs: Vec<serde_json::Value> = query
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(runs.len(), 1, "the collection is audited once (a dry run not at all)");
    assert!(
        runs[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("deleted 0 untagged manifests, 1 blob links, 1 blobs")
    );
    assert_eq!(
        dir.path().join("data/registry.db").exists(),
        database.is_empty(),
        "the metadata went where [database] says"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn serve_refuses_plain_http_without_the_dev_flag_and_bad_configs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("registry.toml"), "[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let out = customs().current_dir(dir.path()).args(["registry", "serve"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TLS is required") && stderr.contains("--insecure-dev"), "{stderr}");
    assert!(
        !stderr.contains("listening"),
        "nothing claims to listen on a server that does not start: {stderr}"
    );
    assert!(!dir.path().join("data").exists(), "nor is anything created");

    std::fs::write(
        dir.path().join("registry.toml"),
        "[[grant]]\nto = \"x\"\nrepositories = [\"a\"]\nactions = [\"pull\", \"write\"]\n",
    )
    .unwrap();
    let out = customs()
        .current_dir(dir.path())
        .args(["registry", "access", "matrix"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("registry.toml") && stderr.contains("grant #1") && stderr.contains("write"),
        "{stderr}"
    );
}

#[test]
fn principals_groups_and_access_commands() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("registry.toml"),
        "[[grant]]\nto = \"group:release\"\nrepositories = [\"apps/*\"]\nactions = [\"pull\", \"sign\"]\n",
    )
    .unwrap();
    let run = |args: &[&str]| customs().current_dir(dir.path()).arg("registry").args(args).output().unwrap();
    assert!(
        run(&["principal", "create", "signer", "--description", "release pipeline"])
            .status
            .success()
    );
    let dup = run(&["principal", "create", "signer"]);
    assert_eq!(dup.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    assert_eq!(run(&["principal", "create", "Bad Name"]).status.code(), Some(2));

    let denied = run(&["access", "check", "signer", "apps/web", "sign"]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&denied.stdout).starts_with("denied"));
    assert!(run(&["group", "add", "release", "signer"]).status.success());
    let allowed = run(&["access", "check", "signer", "apps/web", "sign"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", String::from_utf8_lossy(&allowed.stdout));
    assert!(String::from_utf8_lossy(&allowed.stdout).contains("grant #1: group:release"));
    assert_eq!(run(&["access", "check", "signer", "apps/web/deep", "sign"]).status.code(), Some(1));
    assert_eq!(run(&["access", "check", "signer", "apps/web", "push"]).status.code(), Some(1));

    let matrix = run(&["access", "matrix", "--repo", "apps/web"]);
    let text = String::from_utf8_lossy(&matrix.stdout);
    let row = text.lines().find(|l| l.trim_start().starts_with("signer")).unwrap();
    assert!(row.contains("pull,sign"), "{text}");

    let rotated = run(&["principal", "rotate", "signer"]);
    assert!(rotated.status.success());
    assert!(String::from_utf8_lossy(&rotated.stdout).trim().starts_with("cst_"));
    assert!(run(&["principal", "disable", "signer"]).status.success());
    let list = String::from_utf8_lossy(&run(&["principal", "list"]).stdout).to_string();
    assert!(
        list.contains("signer") && list.contains("disabled") && list.contains("release pipeline"),
        "{list}"
    );
    assert_eq!(run(&["principal", "disable", "nobody"]).status.code(), Some(2));

    let actions: Vec<String> = String::from_utf8_lossy(&run(&["audit", "export"]).stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(actions, ["principal.create", "group.add", "principal.rotate", "principal.disable"]);
}

#[test]
fn customs_scans_an_image_pushed_to_the_customs_registry() {
    if customs_testkit::tool("skopeo", "apt-get install skopeo").is_none() {
        return;
    }
    let (dir, port, secret) = operator_setup("project1/*");
    let agent = agent(&dir.path().join("tls/ca.crt"));
    let _server = serve(dir.path(), &format!("https://localhost:{port}"), &agent);

    let demo = std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo-image")).unwrap();
    let pushed = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-cert-dir"])
        .arg(dir.path().join("tls"))
        .args(["--dest-creds", &format!("ci:{secret}")])
        .arg(format!("oci:{}:demo", demo.display()))
        .arg(format!("docker://localhost:{port}/project1/demo:1.0"))
        .output()
        .unwrap();
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));

    let packages = |out: std::process::Output| {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| format!("{} {}", p["name"], p["version"]))
            .collect::<Vec<_>>()
    };
    let from_registry = packages(
        customs()
            .args(["sbom", "-f", "json", "--username", "ci", "--ca-file"])
            .arg(dir.path().join("tls/ca.crt"))
            .arg(format!("localhost:{port}/project1/demo:1.0"))
            .env("CUSTOMS_REGISTRY_PASSWORD", &secret)
            .output()
            .unwrap(),
    );
    let from_layout = packages(customs().args(["sbom", "-f", "json"]).arg(&demo).output().unwrap());
    assert!(!from_layout.is_empty());
    assert_eq!(from_registry, from_layout);

    // The gate reads the image once: packages and secrets come from the same pass, so each layer blob is
    // fetched once (the registry's own metrics count the GETs).
    let blob_gets = || {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("ci:{secret}"));
        let mut reply = agent
            .get(format!("https://localhost:{port}/metrics"))
            .header("Authorization", format!("Basic {basic}"))
            .call()
            .unwrap();
        let text = reply.body_mut().read_to_string().unwrap();
        text.lines()
            .find(|l| l.starts_with("customs_registry_requests_total{route=\"blob\",method=\"GET\",status=\"200\"}"))
            .map_or(0, |l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
    };
    let osv = dir.path().join("osv");
    std::fs::create_dir_all(&osv).unwrap();
    std::fs::write(
        osv.join("none.json"),
        r#"{"id":"TEST-NONE","affected":[{"package":{"ecosystem":"PyPI","name":"not-installed"},"versions":["1"]}]}"#,
    )
    .unwrap();
    let db = dir.path().join("v.db");
    assert!(
        customs()
            .args(["db", "import", "--db"])
            .arg(&db)
            .arg(&osv)
            .output()
            .unwrap()
            .status
            .success()
    );
    let before = blob_gets();
    let gate = customs()
        .args(["gate", "--db"])
        .arg(&db)
        .args(["--username", "ci", "--ca-file"])
        .arg(dir.path().join("tls/ca.crt"))
        .arg(format!("localhost:{port}/project1/demo:1.0"))
        .env("CUSTOMS_REGISTRY_PASSWORD", &secret)
        .output()
        .unwrap();
    // Exit 1, not "0 or 1": the demo image holds a deleted AWS key, which fails the gate.
    let gate_out = String::from_utf8_lossy(&gate.stdout);
    assert_eq!(gate.status.code(), Some(1), "{gate_out}{}", String::from_utf8_lossy(&gate.stderr));
    assert!(gate_out.contains("aws-access-key-id"), "{gate_out}");
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(demo.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(demo.join("blobs/sha256").join(manifest_digest)).unwrap()).unwrap();
    let layers = manifest["layers"].as_array().unwrap().len() as u64;
    assert_eq!(blob_gets() - before, layers + 1, "config plus each layer, once");
}

/// A person's second factor from the CLI: `principal create --kind user`, `principal totp enroll` (the
/// otpauth:// URI once), `principal list` showing it, then `customs registry login --totp CODE` against the
/// running server: the personal token it prints logs in where the password alone is refused.
#[test]
fn a_user_enrols_totp_and_logs_in_with_a_personal_token() {
    let (dir, port, _) = operator_setup("app/**");
    let d = dir.path();
    let run = |args: &[&str]| customs().current_dir(d).args(args).output().unwrap();
    let created = run(&["registry", "principal", "create", "alice", "--kind", "user"]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let password = String::from_utf8_lossy(&created.stdout).trim().to_string();
    // A service principal has no second factor to enrol.
    let refused = run(&["registry", "principal", "totp", "enroll", "ci"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("a second factor is for people"));

    let enrolled = run(&["registry", "principal", "totp", "enroll", "alice"]);
    assert!(enrolled.status.success(), "{}", String::from_utf8_lossy(&enrolled.stderr));
    let uri = String::from_utf8_lossy(&enrolled.stdout).trim().to_string();
    assert!(uri.starts_with("otpauth://totp/customs-registry:alice?secret="), "{uri}");
    let secret = uri.split("secret=").nth(1).unwrap().split('&').next().unwrap();
    let seed = customs_registry::second_factor::TotpSeed::from_base32(secret).expect("a 160-bit base32 seed");
    let again = run(&["registry", "principal", "totp", "enroll", "alice"]);
    assert_eq!(again.status.code(), Some(2), "a second enrolment needs --replace");
    let list = String::from_utf8_lossy(&run(&["registry", "principal", "list"]).stdout).into_owned();
    let alice_line = list.lines().find(|l| l.trim_start().starts_with("alice")).unwrap();
    assert!(alice_line.contains("totp"), "{list}");
    // The seed is sealed in the database, not stored as the URI shows it.
    let db = std::fs::read(d.join("data/registry.db")).unwrap();
    assert!(!db.windows(secret.len()).any(|w| w == secret.as_bytes()));

    let base = format!("https://localhost:{port}");
    let agent = agent(&d.join("tls/ca.crt"));
    let _server = serve(d, &base, &agent);
    let ping = |user: &str, secret: &str| {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
        agent
            .get(format!("{base}/v2/"))
            .header("Authorization", format!("Basic {auth}"))
            .call()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(ping("alice", &password), 401, "the password alone is refused");

    let code = format!("{:06}", seed.code(time::OffsetDateTime::now_utc().unix_timestamp().div_euclid(30)));
    let login = |code: &str| {
        customs()
            .current_dir(d)
            .env("CUSTOMS_REGISTRY_PASSWORD", &password)
            .args(["registry", "login", &format!("localhost:{port}"), "--username", "alice"])
            .args(["--totp", code, "--ca-file", "tls/ca.crt"])
            .output()
            .unwrap()
    };
    let out = login(&code);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(token.starts_with("cpt_"), "{token}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("podman login -u alice --password-stdin"));
    assert_eq!(ping("alice", &token), 200);
    // The same code twice: refused, exit 1, and the reason is in the audit log, not in the answer.
    let reused = login(&code);
    assert_eq!(reused.status.code(), Some(1), "{}", String::from_utf8_lossy(&reused.stderr));
    let audit = run(&[
        "registry",
        "audit",
        "query",
        "--principal",
        "alice",
        "--action",
        "login",
        "--format",
        "json",
    ]);
    let details: Vec<String> = String::from_utf8_lossy(&audit.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["detail"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(
        details.iter().any(|d| d.contains("right password but no second factor")),
        "{details:?}"
    );
    assert!(details.iter().any(|d| d.starts_with("second factor accepted")), "{details:?}");
    assert_eq!(
        details.last().map(String::as_str),
        Some("second-factor code already used"),
        "{details:?}"
    );

    // Removing the factor revokes the token at once, and with users_require_second_factor alice is locked out.
    let removed = run(&["registry", "principal", "totp", "remove", "alice"]);
    assert!(removed.status.success(), "{}", String::from_utf8_lossy(&removed.stderr));
    assert!(String::from_utf8_lossy(&removed.stderr).contains("cannot log in until a new one is enrolled"));
    assert_eq!(ping("alice", &token), 401);
    assert_eq!(ping("alice", &password), 401);
}

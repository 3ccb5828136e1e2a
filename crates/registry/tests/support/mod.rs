//! An in-process registry with TLS on a loopback port, and a small blocking HTTP client for the tests.
#![allow(dead_code)]

pub mod debian;
pub mod receiver;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;

use base64::Engine;
use customs_registry::identity::{generate_secret, hash_secret};
use customs_registry::{Registry, RegistryConfig};
use sha2::{Digest as _, Sha256};

pub struct TestRegistry {
    pub host: String,
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database of a `*_on_postgres` test, dropped with the registry.
    pub database: Option<TestDatabase>,
    /// Its `[storage]` section (a replica uses the same store).
    pub storage: String,
    /// The server's runtime: tests run the registry's own stores on it (a PostgreSQL pool's connections belong
    /// to the runtime that opened them, so a runtime of the test's own would leave dead ones in the pool).
    pub runtime: tokio::runtime::Handle,
    pub secrets: BTreeMap<String, String>,
    pub agent: ureq::Agent,
    /// The running registry (its clock, stores and scanner), shared with the server thread.
    pub registry: std::sync::Arc<Registry>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestRegistry {
    /// Opens the registry's database the way a CLI command beside the server does (from its `registry.toml`).
    pub async fn open_meta(&self) -> customs_registry::meta::MetaStore {
        let config = RegistryConfig::load(&self.dir.path().join("registry.toml")).unwrap();
        customs_registry::meta::MetaStore::from_config(&config.database).await.unwrap()
    }

    /// Stops the server and waits for it; the data directory stays until the value is dropped.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether this test binary runs on PostgreSQL: the `*_on_postgres` twins of the test files `include!` their
/// SQLite original, so the same tests run against both engines in one `cargo test`.
pub fn on_postgres() -> bool {
    env!("CARGO_CRATE_NAME").contains("_on_postgres")
}

/// The server `CUSTOMS_TEST_POSTGRES` names. Without it a PostgreSQL test binary stops here, successfully, with
/// the skip printed (every test of it needs the server), except under `CUSTOMS_REQUIRE_ALL=1`, where it fails.
pub fn postgres_admin_url() -> String {
    customs_testkit::postgres().unwrap_or_else(|| std::process::exit(0))
}

/// Well-known credentials of the Azurite emulator (published in its documentation; not a secret).
const AZURITE_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// `[storage]` for an object store under test: `kind` is `s3` (`CUSTOMS_TEST_S3`, moto) or `azure`
/// (`CUSTOMS_TEST_AZURITE`), each `http://127.0.0.1:PORT/…/BUCKET` with the bucket made; a prefix of its own
/// per call. `None` (a skip, or a failure under `CUSTOMS_REQUIRE_ALL=1`) when the variable is not set.
pub fn object_storage(kind: &str) -> Option<customs_registry::config::StorageConfig> {
    let var = if kind == "s3" { "CUSTOMS_TEST_S3" } else { "CUSTOMS_TEST_AZURITE" };
    let Some(url) = std::env::var(var).ok().filter(|v| !v.is_empty()) else {
        customs_testkit::skip(format!(
            "{var} is not set (.ci/run starts {})",
            if kind == "s3" { "moto" } else { "Azurite" }
        ));
        return None;
    };
    let (endpoint, bucket) = url.trim_end_matches('/').rsplit_once('/').expect("…/BUCKET");
    let mut text = format!(
        "backend = \"{kind}\"\nbucket = \"{bucket}\"\nprefix = \"test-{}\"\n[options]\nendpoint = \"{endpoint}\"\nallow_http = \"true\"\n",
        uuid::Uuid::new_v4().simple()
    );
    if kind == "s3" {
        text.push_str("region = \"us-east-1\"\naws_access_key_id = \"testing\"\naws_secret_access_key = \"testing\"\n");
    } else {
        let account = endpoint.rsplit('/').next().unwrap();
        text.push_str(&format!(
            "azure_storage_account_name = \"{account}\"\nazure_storage_account_key = \"{AZURITE_KEY}\"\n"
        ));
    }
    Some(toml::from_str(&text).unwrap())
}

/// The `[storage]` section of this test binary: an object store for `*_on_postgres_s3` and
/// `*_on_postgres_azurite` twins, else a local directory.
fn storage_section() -> String {
    let name = env!("CARGO_CRATE_NAME");
    let kind = if name.ends_with("_s3") {
        "s3"
    } else if name.ends_with("_azurite") {
        "azure"
    } else {
        return "[storage]\nfsync = false\n".into();
    };
    let config = object_storage(kind).unwrap_or_else(|| std::process::exit(0));
    let mut text = format!(
        "[storage]\nbackend = \"{kind}\"\nbucket = \"{}\"\nprefix = \"{}\"\n[storage.options]\n",
        config.bucket.unwrap(),
        config.prefix.unwrap()
    );
    for (k, v) in &config.options {
        text.push_str(&format!("{k} = \"{v}\"\n"));
    }
    text
}

/// A database of its own for one test on the PostgreSQL server, dropped afterwards.
pub struct TestDatabase {
    admin: String,
    name: String,
    /// Its URL, for `[database] url`.
    pub url: String,
}

fn admin_execute(admin: &str, sql: String) {
    use sqlx::Connection;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut conn = sqlx::PgConnection::connect(admin).await.expect("connect to CUSTOMS_TEST_POSTGRES");
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
    });
}

impl TestDatabase {
    pub fn create() -> TestDatabase {
        let admin = postgres_admin_url();
        let name = format!("customs_test_{}", uuid::Uuid::new_v4().simple());
        admin_execute(&admin, format!("CREATE DATABASE {name}"));
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&name);
        TestDatabase {
            admin,
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        admin_execute(&self.admin, format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Starts a registry whose config is `grants` (TOML) plus TLS, with the named principals created.
pub fn start(grants: &str, principals: &[&str]) -> TestRegistry {
    let database = on_postgres().then(TestDatabase::create);
    let database_section = match &database {
        Some(db) => format!("[database]\nurl = \"{}\"\n", db.url),
        None => String::new(),
    };
    // `scraper` reads /metrics (authenticated by default) for the tests that look at metrics.
    let secrets: BTreeMap<String, String> = principals
        .iter()
        .chain(&["scraper"])
        .map(|p| (p.to_string(), generate_secret()))
        .collect();
    let storage = storage_section();
    let mut reg = serve_in_thread(&format!("{storage}{database_section}{grants}"), secrets.clone());
    reg.database = database;
    reg.secrets = secrets;
    reg.storage = storage;
    reg
}

impl TestRegistry {
    /// A second replica of this registry, as a load balancer would have beside it: its own address and TLS
    /// certificate; the same PostgreSQL database (metadata and the audit chain), blob store, token key and seal
    /// key. Only for `*_on_postgres` tests (two processes cannot share a SQLite registry).
    pub fn replica(&self, grants: &str) -> TestRegistry {
        let db = self.database.as_ref().expect("replicas share a PostgreSQL database");
        let data = self.dir.path().join("data");
        // A local store is shared as a directory; an object store's section names the same bucket and prefix.
        let storage = if self.storage.contains("backend") {
            self.storage.clone()
        } else {
            format!("[storage]\nfsync = false\nroot = \"{}\"\n", data.join("blobs").display())
        };
        let shared = format!(
            "{storage}[database]\nurl = \"{url}\"\n\
             [auth]\ntoken_key_file = \"{token}\"\nsecond_factor_key_file = \"{totp}\"\n{grants}",
            url = db.url,
            token = data.join("token.key").display(),
            totp = data.join("second-factor.key").display(),
        );
        let mut reg = serve_in_thread(&shared, BTreeMap::new());
        reg.secrets = self.secrets.clone();
        reg
    }
}

/// Writes `registry.toml` (TLS plus `config`) in a new directory and serves it on a loopback port from a thread
/// of its own, with the principals in `to_create` created first.
fn serve_in_thread(config: &str, to_create: BTreeMap<String, String>) -> TestRegistry {
    let dir = tempfile::tempdir().unwrap();
    customs_registry::tls::write_dev_certificates(&dir.path().join("tls"), &["localhost".into(), "127.0.0.1".into()]).unwrap();
    let path = dir.path().join("registry.toml");
    std::fs::write(
        &path,
        format!("[tls]\ncert = \"tls/server-cert.pem\"\nkey = \"tls/server-key.pem\"\n{config}"),
    )
    .unwrap();
    let config = RegistryConfig::load(&path).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let registry = Registry::open(config, false).await.unwrap();
            for (name, secret) in &to_create {
                assert!(
                    registry
                        .meta
                        .create_principal(name, "service-principal", &hash_secret(secret), "")
                        .await
                        .unwrap()
                );
            }
            ready_tx.send((registry.clone(), tokio::runtime::Handle::current())).unwrap();
            customs_registry::serve(registry, listener, async {
                let _ = shutdown_rx.await;
            })
            .await
            .unwrap();
        });
    });
    let (registry, runtime) = ready_rx.recv().unwrap();
    let pem = std::fs::read(dir.path().join("tls/ca.crt")).unwrap();
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|i| match i {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .build()
        .into();
    TestRegistry {
        host: format!("localhost:{port}"),
        dir,
        database: None,
        storage: String::new(),
        runtime,
        secrets: BTreeMap::new(),
        agent,
        registry,
        shutdown: Some(shutdown_tx),
        thread: Some(thread),
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn error_code(&self) -> String {
        self.json()["errors"][0]["code"].as_str().unwrap_or_default().to_string()
    }
}

/// How a request authenticates.
#[derive(Clone, Debug)]
pub enum Cred {
    None,
    Basic(String, String),
    Bearer(String),
}

impl TestRegistry {
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.host)
    }

    pub fn ca_dir(&self) -> PathBuf {
        self.dir.path().join("tls")
    }

    pub fn audit_dir(&self) -> PathBuf {
        self.dir.path().join("data/audit")
    }

    pub fn basic(&self, name: &str) -> Cred {
        Cred::Basic(name.into(), self.secrets[name].clone())
    }

    pub fn request(&self, method: &str, path: &str, cred: &Cred, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
        let url = self.url(path);
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        match cred {
            Cred::None => {}
            Cred::Basic(u, p) => {
                let value = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")));
                builder = builder.header("Authorization", value);
            }
            Cred::Bearer(t) => builder = builder.header("Authorization", format!("Bearer {t}")),
        }
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(body.map(|b| b.to_vec()).unwrap_or_default()).unwrap();
        let mut response = self.agent.run(request).unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let body = response.body_mut().read_to_vec().unwrap_or_default();
        Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body,
        }
    }

    /// The metrics text, read as the `scraper` principal.
    pub fn metrics(&self) -> String {
        let reply = self.request("GET", "/metrics", &self.basic("scraper"), &[], None);
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
        String::from_utf8(reply.body).unwrap()
    }

    /// A bearer token for `scope` (GET /token with basic credentials of `name`, or anonymous).
    pub fn token(&self, name: Option<&str>, scope: &str) -> String {
        let cred = name.map_or(Cred::None, |n| self.basic(n));
        let reply = self.request("GET", &format!("/token?service=customs-registry&scope={scope}"), &cred, &[], None);
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
        reply.json()["token"].as_str().unwrap().to_string()
    }

    /// Uploads `bytes` as one blob (POST + PUT) and returns its digest.
    pub fn push_blob(&self, repo: &str, cred: &Cred, bytes: &[u8]) -> Reply {
        let start = self.request("POST", &format!("/v2/{repo}/blobs/uploads/"), cred, &[], None);
        if start.status != 202 {
            return start;
        }
        let location = start.header("location").unwrap().to_string();
        self.request(
            "PUT",
            &format!("{location}?digest={}", digest(bytes)),
            cred,
            &[("Content-Type", "application/octet-stream")],
            Some(bytes),
        )
    }

    /// Pushes a tiny image (config + one layer + manifest) under `tag`; returns the manifest reply.
    pub fn push_image(&self, repo: &str, tag: &str, cred: &Cred, seed: &str) -> Reply {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
        let layer = format!("layer of {seed}").into_bytes();
        for blob in [config.as_bytes(), &layer] {
            let reply = self.push_blob(repo, cred, blob);
            if reply.status != 201 {
                return reply;
            }
        }
        let manifest = image_manifest(config.as_bytes(), &layer, None);
        self.request(
            "PUT",
            &format!("/v2/{repo}/manifests/{tag}"),
            cred,
            &[("Content-Type", OCI_MANIFEST)],
            Some(manifest.as_bytes()),
        )
    }
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

pub fn image_manifest(config: &[u8], layer: &[u8], subject: Option<(&str, usize)>) -> String {
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer), "size": layer.len()}],
    });
    if let Some((d, size)) = subject {
        m["subject"] = serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d, "size": size});
    }
    m.to_string()
}

/// Audit records as JSON values.
impl TestRegistry {
    /// Every audit record, from the store the registry's config names (its directory, or the database).
    pub fn audit_records(&self) -> Vec<customs_registry::audit::AuditRecord> {
        use customs_registry::audit::AuditStore;
        let config = RegistryConfig::load(&self.dir.path().join("registry.toml")).unwrap();
        let mut out = Vec::new();
        match config.audit_store().unwrap() {
            AuditStore::Directory => {
                customs_registry::audit::query(&self.audit_dir(), &Default::default(), |r| out.push(r.clone())).unwrap()
            }
            AuditStore::Database => self.runtime.block_on(async {
                let meta = self.open_meta().await;
                customs_registry::audit::query_database(&meta, &Default::default(), |r| out.push(r.clone()))
                    .await
                    .unwrap()
            }),
        }
        out
    }

    /// Checks the audit chain where the registry keeps it; panics with the first break.
    pub fn verify_audit(&self) -> customs_registry::audit::VerifySummary {
        use customs_registry::audit::AuditStore;
        let config = RegistryConfig::load(&self.dir.path().join("registry.toml")).unwrap();
        match config.audit_store().unwrap() {
            AuditStore::Directory => customs_registry::audit::verify(&self.audit_dir()).unwrap(),
            AuditStore::Database => self.runtime.block_on(async {
                let meta = self.open_meta().await;
                customs_registry::audit::verify_database(&meta, &[]).await.unwrap()
            }),
        }
    }
}

impl TestRegistry {
    /// Sends `head` (request line and headers, without the final blank line) and `body` over TLS from the local
    /// address `source` (any 127.x.y.z reaches the loopback listener), byte for byte: no client normalizes the
    /// path (`/../`), and the source address is what the registry sees as the client IP. Returns the status and
    /// the body, or `None` when the connection broke before a status line arrived.
    pub fn raw(&self, source: &str, head: &str, body: &[u8]) -> Option<(u16, String)> {
        use std::io::{Read, Write};
        let port: u16 = self.host.rsplit(':').next().unwrap().parse().unwrap();
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let from: std::net::SocketAddr = format!("{source}:0").parse().unwrap();
        socket.bind(&from.into()).unwrap();
        let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        socket.connect(&to.into()).unwrap();
        let mut tcp: std::net::TcpStream = socket.into();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        let pem = std::fs::read(self.dir.path().join("tls/ca.crt")).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile_certs(&pem) {
            roots.add(cert).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), "localhost".try_into().unwrap()).unwrap();
        let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
        let request = format!("{head}\r\nHost: {}\r\nConnection: close\r\n\r\n", self.host);
        let mut sent = tls.write_all(request.as_bytes()).is_ok();
        for chunk in body.chunks(64 << 10) {
            sent = sent && tls.write_all(chunk).is_ok();
        }
        let _ = tls.flush();
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer).to_string();
        let status = text.split(' ').nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        let _ = sent;
        Some((status, body))
    }
}

/// The certificates in a PEM file.
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem).map(|c| c.unwrap()).collect()
}

/// `Authorization: Basic …` for `name`/`secret`.
pub fn basic_header(name: &str, secret: &str) -> String {
    format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{name}:{secret}"))
    )
}

/// This process's resident memory in MiB (`VmRSS` of `/proc/self/status`).
pub fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

//! Pulling from a registry: a small fake registry on loopback speaks the distribution
//! API with a bearer-token challenge and serves the bundled demo image.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use customs_oci::{EntryMeta, Image, Interest, OpenOptions, Platform, RegistryOptions};

struct All;
impl Interest for All {
    fn wants(&self, _: &EntryMeta) -> Option<u64> {
        Some(1 << 20)
    }
}

#[derive(Default)]
struct Behaviour {
    tamper_blobs: AtomicBool,
    token_requests: AtomicUsize,
    scopes: Mutex<Vec<String>>,
}

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo-image")
}

fn respond(mut s: TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
}

fn handle(stream: TcpStream, port: u16, layout: &Path, b: &Behaviour) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
    if let Some(query) = target.strip_prefix("/token?") {
        b.token_requests.fetch_add(1, Ordering::SeqCst);
        b.scopes.lock().unwrap().push(query.to_string());
        // "user:pass" in base64
        if headers.get("authorization").map(String::as_str) != Some("Basic dXNlcjpwYXNz") {
            return respond(stream, "401 Unauthorized", &[], b"{}");
        }
        return respond(
            stream,
            "200 OK",
            &[("Content-Type", "application/json".into())],
            br#"{"token":"good-token"}"#,
        );
    }
    if headers.get("authorization").map(String::as_str) != Some("Bearer good-token") {
        let challenge = format!(r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake",scope="repository:team/demo:pull""#);
        return respond(
            stream,
            "401 Unauthorized",
            &[("WWW-Authenticate", challenge)],
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        );
    }
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().to_string();
    let blob = |d: &str| std::fs::read(layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"))).ok();
    if let Some(reference) = target.strip_prefix("/v2/team/demo/manifests/") {
        let d = if reference == "1.0" {
            manifest_digest.clone()
        } else {
            reference.to_string()
        };
        return match blob(&d) {
            Some(bytes) => respond(
                stream,
                "200 OK",
                &[
                    ("Content-Type", "application/vnd.oci.image.manifest.v1+json".into()),
                    ("Docker-Content-Digest", d),
                ],
                &bytes,
            ),
            None => respond(
                stream,
                "404 Not Found",
                &[],
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
            ),
        };
    }
    if let Some(d) = target.strip_prefix("/v2/team/demo/blobs/") {
        return match blob(d) {
            Some(mut bytes) => {
                let is_layer = bytes.starts_with(&[0x1f, 0x8b]);
                if is_layer && b.tamper_blobs.load(Ordering::SeqCst) {
                    let n = bytes.len();
                    bytes[n - 9] ^= 0xff; // inside the gzip trailer's CRC
                }
                respond(stream, "200 OK", &[], &bytes)
            }
            None => respond(stream, "404 Not Found", &[], b""),
        };
    }
    let _ = reader.read_to_end(&mut Vec::new());
    respond(stream, "404 Not Found", &[], b"")
}

fn serve(b: Arc<Behaviour>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let b = b.clone();
            std::thread::spawn(move || handle(stream, port, &demo(), &b));
        }
    });
    port
}

fn options(user: Option<&str>) -> OpenOptions {
    OpenOptions {
        platform: Platform::default(),
        registry: RegistryOptions {
            username: user.map(String::from),
            password: user.map(|_| "pass".to_string()),
            ca_file: None,
            plain_http: true,
        },
    }
}

#[test]
fn pulls_with_a_bearer_token_and_reads_layers() {
    let b = Arc::new(Behaviour::default());
    let port = serve(b.clone());
    let img = Image::open_with(&format!("docker://127.0.0.1:{port}/team/demo:1.0"), &options(Some("user"))).unwrap();
    assert_eq!(img.layers.len(), 4);
    assert_eq!(img.tags, vec![format!("127.0.0.1:{port}/team/demo:1.0")]);
    let view = img.filesystem(&All).unwrap();
    assert!(view.read("var/lib/dpkg/status").unwrap().starts_with(b"Package: base-files"));
    assert!(view.get("app/settings.env").is_none());
    assert!(b.token_requests.load(Ordering::SeqCst) >= 1);
    assert!(
        b.scopes.lock().unwrap()[0].contains("repository%3Ateam%2Fdemo%3Apull")
            || b.scopes.lock().unwrap()[0].contains("repository:team/demo:pull")
    );

    // Pinned by digest: the same image, verified against the digest asked for.
    let d = img.manifest_digest.clone().unwrap();
    let pinned = Image::open_with(&format!("127.0.0.1:{port}/team/demo@{d}"), &options(Some("user"))).unwrap();
    assert_eq!(pinned.config_digest, img.config_digest);
}

#[test]
fn wrong_credentials_and_missing_tags_are_explained() {
    let b = Arc::new(Behaviour::default());
    let port = serve(b);
    let err = Image::open_with(&format!("docker://127.0.0.1:{port}/team/demo:1.0"), &options(None))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("token service") && err.contains("401") && err.contains("check the credentials"),
        "{err}"
    );
    let err = Image::open_with(&format!("docker://127.0.0.1:{port}/team/demo:nope"), &options(Some("user")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("404") && err.contains("MANIFEST_UNKNOWN"), "{err}");
}

#[test]
fn tampered_blobs_from_the_registry_are_refused() {
    let b = Arc::new(Behaviour::default());
    let port = serve(b.clone());
    let img = Image::open_with(&format!("docker://127.0.0.1:{port}/team/demo:1.0"), &options(Some("user"))).unwrap();
    b.tamper_blobs.store(true, Ordering::SeqCst);
    let err = img.filesystem(&All).unwrap_err().to_string();
    assert!(err.contains("digest mismatch"), "{err}");
}

#[test]
fn plain_http_is_refused_off_loopback() {
    let err = Image::open_with("docker://registry.example.com/team/demo:1.0", &options(None))
        .unwrap_err()
        .to_string();
    assert!(err.contains("requires TLS"), "{err}");
}

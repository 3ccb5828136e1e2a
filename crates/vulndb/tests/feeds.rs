//! Feed downloads against a local HTTP server that fails, truncates, resumes and checksums.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use customs_vulndb::{DownloadOptions, Feed, Fetched, download};

#[derive(Default)]
struct Server {
    /// Answer 503 to this many requests first.
    fail_first: AtomicUsize,
    /// Cut the body of this many full (200) responses in half.
    truncate_first: AtomicUsize,
    /// Publish a wrong checksum.
    wrong_checksum: AtomicUsize,
    /// Every request line and Range header seen.
    log: Mutex<Vec<String>>,
}

fn body() -> Vec<u8> {
    (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect()
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn handle(mut s: TcpStream, st: &Server) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (mut range, mut inm) = (None, None);
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("range: bytes=") {
            range = v.trim().trim_end_matches('-').parse::<usize>().ok();
        }
        if lower.starts_with("if-none-match:") {
            inm = Some(h[14..].trim().to_string());
        }
    }
    st.log.lock().unwrap().push(format!("{path} range={range:?} inm={inm:?}"));
    let send = |s: &mut TcpStream, status: &str, headers: &str, b: &[u8]| {
        let _ = write!(s, "HTTP/1.1 {status}\r\nConnection: close\r\n{headers}\r\n");
        let _ = s.write_all(b);
    };
    if path.starts_with("/dead/") {
        return send(&mut s, "500 Internal Server Error", "Content-Length: 0\r\n", b"");
    }
    let data = body();
    if path.ends_with(".sha256") {
        let sum = if st.wrong_checksum.load(Ordering::SeqCst) > 0 {
            "0".repeat(64)
        } else {
            sha256_hex(&data)
        };
        return send(
            &mut s,
            "200 OK",
            &format!("Content-Length: {}\r\n", sum.len() + 8),
            format!("{sum}  all.zip").as_bytes(),
        );
    }
    if st.fail_first.load(Ordering::SeqCst) > 0 {
        st.fail_first.fetch_sub(1, Ordering::SeqCst);
        return send(&mut s, "503 Service Unavailable", "Content-Length: 0\r\n", b"");
    }
    if inm.as_deref() == Some("\"v1\"") {
        return send(&mut s, "304 Not Modified", "ETag: \"v1\"\r\n", b"");
    }
    match range {
        Some(from) => {
            let rest = &data[from..];
            send(
                &mut s,
                "206 Partial Content",
                &format!(
                    "Content-Length: {}\r\nETag: \"v1\"\r\nContent-Range: bytes {from}-{}/{}\r\n",
                    rest.len(),
                    data.len() - 1,
                    data.len()
                ),
                rest,
            );
        }
        None => {
            let cut = st.truncate_first.load(Ordering::SeqCst) > 0;
            if cut {
                st.truncate_first.fetch_sub(1, Ordering::SeqCst);
            }
            let sent = if cut { &data[..data.len() / 2] } else { &data[..] };
            send(
                &mut s,
                "200 OK",
                &format!("Content-Length: {}\r\nETag: \"v1\"\r\n", data.len()),
                sent,
            );
        }
    }
}

fn serve(st: Arc<Server>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let st = st.clone();
            std::thread::spawn(move || handle(s, &st));
        }
    });
    base
}

fn options(mirrors: Vec<String>, cache: &std::path::Path) -> DownloadOptions {
    DownloadOptions {
        mirrors,
        official: false,
        attempts: 3,
        backoff: Duration::from_millis(10),
        cache_dir: cache.to_path_buf(),
        on_retry: None,
        unreachable: Default::default(),
    }
}

#[test]
fn falls_back_across_mirrors_retries_resumes_and_verifies() {
    let st = Arc::new(Server {
        fail_first: AtomicUsize::new(1),
        truncate_first: AtomicUsize::new(1),
        ..Server::default()
    });
    let base = serve(st.clone());
    let cache = tempfile::tempdir().unwrap();
    let feed = Feed::osv("PyPI");
    let got = download(&feed, &options(vec![format!("{base}/dead"), base.clone()], cache.path())).unwrap();
    assert!(matches!(&got, Fetched::New { url, .. } if url == &format!("{base}/osv/PyPI/all.zip")));
    assert_eq!(std::fs::read(got.path()).unwrap(), body(), "resumed download is whole");
    let log = st.log.lock().unwrap().clone();
    assert!(
        log.iter().any(|l| l.contains("range=Some(400000)")),
        "resumed with a Range request: {log:?}"
    );
    assert!(!cache.path().join("osv-PyPI.zip.partial").exists());

    // Unchanged upstream: a conditional request, no new bytes.
    let again = download(&feed, &options(vec![base.clone()], cache.path())).unwrap();
    assert!(matches!(again, Fetched::Unchanged { .. }));
}

#[test]
fn a_bad_checksum_is_an_error_naming_every_source() {
    let st = Arc::new(Server {
        wrong_checksum: AtomicUsize::new(1),
        ..Server::default()
    });
    let base = serve(st);
    let cache = tempfile::tempdir().unwrap();
    let err = download(&Feed::osv("Go"), &options(vec![format!("{base}/dead"), base.clone()], cache.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("osv:Go: every source failed"), "{err}");
    assert!(err.contains("/dead/osv/Go/all.zip: HTTP 500"), "{err}");
    assert!(err.contains("sha256 mismatch"), "{err}");
    assert!(!cache.path().join("osv-Go.zip").exists(), "nothing unverified is kept");
}

#[test]
fn feed_names() {
    assert_eq!(Feed::by_name("osv:crates.io").unwrap().mirror_path, "osv/crates.io/all.zip");
    assert_eq!(Feed::by_name("debian-tracker").unwrap().file, "debian-tracker.json");
    assert!(Feed::by_name("osv:../../etc").is_none());
    assert!(Feed::by_name("nvd").is_none());
}

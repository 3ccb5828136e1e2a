//! Downloading the upstream feeds: mirrors, retries with backoff, resumable
//! downloads, checksums, and conditional requests so unchanged feeds are skipped.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// One downloadable feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Feed {
    /// Short name (`osv:PyPI`, `debian-tracker`).
    pub name: String,
    /// The official URL.
    pub url: String,
    /// Path of the same file below a mirror's base URL (`osv/PyPI/all.zip`).
    pub mirror_path: String,
    /// File name in the download cache.
    pub file: String,
}

/// The OSV ecosystems downloaded by default.
pub const DEFAULT_OSV_ECOSYSTEMS: &[&str] = &[
    "Alpine",
    "Debian",
    "Ubuntu",
    "PyPI",
    "npm",
    "Go",
    "crates.io",
    "Maven",
    "RubyGems",
    "NuGet",
    "Packagist",
];

impl Feed {
    /// osv.dev's `all.zip` for one ecosystem.
    pub fn osv(ecosystem: &str) -> Feed {
        Feed {
            name: format!("osv:{ecosystem}"),
            url: format!("https://osv-vulnerabilities.storage.googleapis.com/{ecosystem}/all.zip"),
            mirror_path: format!("osv/{ecosystem}/all.zip"),
            file: format!("osv-{}.zip", ecosystem.replace(['/', ':', ' '], "_")),
        }
    }

    /// The Debian security tracker's JSON export.
    pub fn debian_tracker() -> Feed {
        Feed {
            name: "debian-tracker".into(),
            url: "https://security-tracker.debian.org/tracker/data/json".into(),
            mirror_path: "debian/tracker.json".into(),
            file: "debian-tracker.json".into(),
        }
    }

    /// A feed that is one file at a fixed URL; its mirror path is `<group>/<file>`.
    fn file(name: &str, url: &str, group: &str, file: &str) -> Feed {
        Feed {
            name: name.into(),
            url: url.into(),
            mirror_path: format!("{group}/{file}"),
            file: file.into(),
        }
    }

    /// The feeds besides OSV's, by name: Debian's DSA and DLA lists, Alpine's secdb per release
    /// (`alpine-secdb:v3.21`), NVD's modified and yearly 2.0 feeds (`nvd:modified`, `nvd:2024`), CISA KEV and
    /// FIRST EPSS.
    fn named(name: &str) -> Option<Feed> {
        const TRACKER: &str = "https://salsa.debian.org/security-tracker-team/security-tracker/-/raw/master/data";
        Some(match name {
            "debian-tracker" => Feed::debian_tracker(),
            "debian-dsa" => Feed::file(name, &format!("{TRACKER}/DSA/list"), "debian", "DSA.list"),
            "debian-dla" => Feed::file(name, &format!("{TRACKER}/DLA/list"), "debian", "DLA.list"),
            "cisa-kev" => Feed::file(
                name,
                "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json",
                "kev",
                "known_exploited_vulnerabilities.json",
            ),
            "first-epss" => Feed::file(
                name,
                "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz",
                "epss",
                "epss_scores-current.csv.gz",
            ),
            n => {
                if let Some(release) = n.strip_prefix("alpine-secdb:") {
                    let ok =
                        release == "edge" || (release.starts_with('v') && release[1..].chars().all(|c| c.is_ascii_digit() || c == '.'));
                    if !ok {
                        return None;
                    }
                    return Some(Feed::file(
                        n,
                        &format!("https://secdb.alpinelinux.org/{release}/main.json"),
                        "alpine",
                        &format!("secdb-{release}-main.json"),
                    ));
                }
                let which = n.strip_prefix("nvd:")?;
                if !(which == "modified" || (which.len() == 4 && which.chars().all(|c| c.is_ascii_digit()))) {
                    return None;
                }
                let file = format!("nvdcve-2.0-{which}.json.gz");
                Feed::file(n, &format!("https://nvd.nist.gov/feeds/json/cve/2.0/{file}"), "nvd", &file)
            }
        })
    }

    /// A feed by name: `osv:<Ecosystem>`, `debian-tracker`, `debian-dsa`, `debian-dla`, `alpine-secdb:<release>`,
    /// `nvd:modified` or `nvd:<year>`, `cisa-kev`, `first-epss`.
    pub fn by_name(name: &str) -> Option<Feed> {
        if let Some(feed) = Feed::named(name) {
            return Some(feed);
        }
        let eco = name.strip_prefix("osv:")?;
        let plain = !eco.is_empty() && eco.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
        (plain || eco == "crates.io").then(|| Feed::osv(eco))
    }
}

/// How to download.
#[derive(Clone, Debug)]
pub struct DownloadOptions {
    /// Mirror base URLs tried before the official URL, in order.
    pub mirrors: Vec<String>,
    /// Whether to fall back to the official URL when every mirror failed.
    pub official: bool,
    /// Attempts per URL before moving to the next.
    pub attempts: u32,
    /// First backoff pause; doubles after each failed attempt.
    pub backoff: Duration,
    /// Where downloads (and partial downloads) are kept.
    pub cache_dir: PathBuf,
    /// Told about each failed attempt (`osv:PyPI: try 1 of 3 at URL failed: …`), for a progress display.
    pub on_retry: Option<fn(&str)>,
    /// Hosts that could not be reached (no DNS answer, no connection) in this run: later feeds skip them at once
    /// instead of waiting out their retries, so an air-gapped `db update` fails in seconds, not minutes.
    pub unreachable: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
}

fn host_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// What happened to one feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// Downloaded (or resumed) into a file.
    New {
        /// Where from.
        url: String,
        /// The local file.
        path: PathBuf,
    },
    /// The server said it has not changed since the last download.
    Unchanged {
        /// Who said so.
        url: String,
        /// The local file from before.
        path: PathBuf,
    },
}

impl Fetched {
    /// The local file.
    pub fn path(&self) -> &Path {
        match self {
            Fetched::New { path, .. } | Fetched::Unchanged { path, .. } => path,
        }
    }
}

/// A download failure, naming every URL tried and why each failed.
#[derive(Debug, thiserror::Error)]
#[error("{feed}: every source failed:\n{}", .tried.iter().map(|(u, e)| format!("  {u}: {e}")).collect::<Vec<_>>().join("\n"))]
pub struct DownloadError {
    /// The feed.
    pub feed: String,
    /// Each URL tried with its last error.
    pub tried: Vec<(String, String)>,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
        )
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("customs/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Downloads `feed`, trying mirrors first, each URL `attempts` times with backoff.
pub fn download(feed: &Feed, options: &DownloadOptions) -> Result<Fetched, DownloadError> {
    let agent = agent();
    let mut urls: Vec<String> = options
        .mirrors
        .iter()
        .map(|m| format!("{}/{}", m.trim_end_matches('/'), feed.mirror_path))
        .collect();
    if options.official || urls.is_empty() {
        urls.push(feed.url.clone());
    }
    let mut tried = Vec::new();
    for url in urls {
        let host = host_of(&url);
        if options.unreachable.lock().unwrap_or_else(|e| e.into_inner()).contains(&host) {
            tried.push((url, format!("skipped: {host} could not be reached earlier in this run")));
            continue;
        }
        let mut pause = options.backoff;
        let mut last = String::new();
        for attempt in 1..=options.attempts.max(1) {
            let failure = match fetch_once(&agent, feed, &url, &options.cache_dir) {
                Ok(f) => return Ok(f),
                Err(Failure::Permanent(e)) => {
                    last = e;
                    break;
                }
                Err(Failure::Unreachable(e)) => {
                    options.unreachable.lock().unwrap_or_else(|e| e.into_inner()).insert(host.clone());
                    last = e;
                    break;
                }
                Err(Failure::Retry(e)) => e,
            };
            if let Some(tell) = options.on_retry {
                tell(&format!(
                    "{}: try {attempt} of {} at {url} failed: {failure}",
                    feed.name,
                    options.attempts.max(1)
                ));
            }
            last = failure;
            if attempt < options.attempts {
                std::thread::sleep(pause);
                pause = pause.saturating_mul(2);
            }
        }
        tried.push((url, last));
    }
    Err(DownloadError {
        feed: feed.name.clone(),
        tried,
    })
}

enum Failure {
    /// Worth another attempt (network errors, 5xx, 429, truncated bodies).
    Retry(String),
    /// The host has no DNS answer or refuses connections: retrying it now, or for another feed, is no use.
    Unreachable(String),
    /// Not worth retrying this URL (404, checksum mismatch from the same server twice is still a mismatch).
    Permanent(String),
}

fn io_retry(e: std::io::Error) -> Failure {
    Failure::Retry(e.to_string())
}

/// One attempt: resumes a partial download, verifies, then moves it into place.
fn fetch_once(agent: &ureq::Agent, feed: &Feed, url: &str, cache: &Path) -> Result<Fetched, Failure> {
    std::fs::create_dir_all(cache).map_err(|e| Failure::Permanent(format!("{}: {e}", cache.display())))?;
    let final_path = cache.join(&feed.file);
    let partial = cache.join(format!("{}.partial", feed.file));
    let etag_path = cache.join(format!("{}.etag", feed.file));
    let have = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);

    let mut req = agent.get(url);
    if have > 0 {
        req = req.header("Range", format!("bytes={have}-"));
    } else if final_path.is_file()
        && let Ok(etag) = std::fs::read_to_string(&etag_path)
    {
        req = req.header("If-None-Match", etag.trim());
    }
    let resp = req.call().map_err(|e| match e {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => Failure::Unreachable(e.to_string()),
        // getaddrinfo's "failed to lookup address information" arrives as a plain I/O error.
        ureq::Error::Io(ref io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NetworkUnreachable | std::io::ErrorKind::HostUnreachable
            ) || io.to_string().contains("lookup address") =>
        {
            Failure::Unreachable(e.to_string())
        }
        e => Failure::Retry(e.to_string()),
    })?;
    let status = resp.status().as_u16();
    if status == 304 {
        return Ok(Fetched::Unchanged {
            url: url.to_string(),
            path: final_path,
        });
    }
    let resumed = status == 206;
    match status {
        200 | 206 => {}
        404 | 403 | 401 | 410 => return Err(Failure::Permanent(format!("HTTP {status}"))),
        // A Range the server cannot satisfy: the partial file is stale; start over next time.
        416 => {
            let _ = std::fs::remove_file(&partial);
            return Err(Failure::Retry("HTTP 416; restarting the download".into()));
        }
        s => return Err(Failure::Retry(format!("HTTP {s}"))),
    }
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let etag = header("etag");
    let expected_len = header("content-length").and_then(|l| l.parse::<u64>().ok());
    let mut file = if resumed {
        OpenOptions::new().append(true).open(&partial).map_err(io_retry)?
    } else {
        File::create(&partial).map_err(io_retry)?
    };
    let mut body = resp.into_body().into_reader();
    let mut buf = vec![0u8; 256 << 10];
    let mut got = 0u64;
    loop {
        let n = body.read(&mut buf).map_err(io_retry)?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n]).map_err(io_retry)?;
        got += n as u64;
    }
    file.sync_all().map_err(io_retry)?;
    if let Some(len) = expected_len
        && got != len
    {
        // Keep the partial file: the next attempt resumes from here.
        return Err(Failure::Retry(format!("body ended after {got} of {len} bytes")));
    }
    verify_checksum(agent, url, &partial)?;
    std::fs::rename(&partial, &final_path).map_err(io_retry)?;
    match etag {
        Some(e) => std::fs::write(&etag_path, e).map_err(io_retry)?,
        None => {
            let _ = std::fs::remove_file(&etag_path);
        }
    }
    Ok(Fetched::New {
        url: url.to_string(),
        path: final_path,
    })
}

/// Checks `<url>.sha256` when the server publishes one (mirrors should).
fn verify_checksum(agent: &ureq::Agent, url: &str, file: &Path) -> Result<(), Failure> {
    let resp = agent
        .get(&format!("{url}.sha256"))
        .call()
        .map_err(|e| Failure::Retry(e.to_string()))?;
    if resp.status().as_u16() != 200 {
        return Ok(());
    }
    let text = resp
        .into_body()
        .with_config()
        .limit(4096)
        .read_to_string()
        .map_err(|e| Failure::Retry(e.to_string()))?;
    let expected = text.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
    let mut hasher = Sha256::new();
    let mut f = File::open(file).map_err(io_retry)?;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = f.read(&mut buf).map_err(io_retry)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let actual = hex::encode(hasher.finalize());
    if actual != expected {
        let _ = std::fs::remove_file(file);
        return Err(Failure::Permanent(format!(
            "sha256 mismatch: published {expected}, downloaded {actual}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Feed;

    #[test]
    fn every_source_has_a_feed_with_a_mirror_path() {
        for (name, path) in [
            ("debian-dsa", "debian/DSA.list"),
            ("debian-dla", "debian/DLA.list"),
            ("alpine-secdb:v3.21", "alpine/secdb-v3.21-main.json"),
            ("nvd:modified", "nvd/nvdcve-2.0-modified.json.gz"),
            ("nvd:2024", "nvd/nvdcve-2.0-2024.json.gz"),
            ("cisa-kev", "kev/known_exploited_vulnerabilities.json"),
            ("first-epss", "epss/epss_scores-current.csv.gz"),
            ("osv:crates.io", "osv/crates.io/all.zip"),
        ] {
            assert_eq!(Feed::by_name(name).map(|f| f.mirror_path), Some(path.to_string()), "{name}");
        }
        for bad in ["nvd:20245", "alpine-secdb:../x", "osv:", "nvd:"] {
            assert!(Feed::by_name(bad).is_none(), "{bad}");
        }
    }
}

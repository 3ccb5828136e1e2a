//! Scan on push and protected pulls, in process: a small Debian image with one vulnerable package is pushed, the
//! scan completes off the request path, pulls from a protected repository are refused naming the CVE, an
//! exception lets them through until it expires (by the registry's clock, without a rescan), and the stored
//! result is the gate's JSON.

mod support;

use std::time::{Duration, Instant};

use support::debian::{pull_40_and_3_days_ago_then_add_advisory, push_debian, push_marked, wait_for_scan, write_database};
use support::{Cred, OCI_MANIFEST, TestRegistry};

const GRANTS: &str = r#"
[scanning]
vulnerability_db = "vuln.db"
workers = 2

[[protect]]
repositories = ["prod/**"]
fail_on = ["CRITICAL", "HIGH"]

[[grant]]
to = "ci"
repositories = ["prod/**", "dev/**"]
actions = ["pull", "push"]

[[grant]]
to = "security"
repositories = ["prod/**"]
actions = ["admin"]
"#;

/// The registry and the folder of its vulnerability database.
fn start_with_database() -> (TestRegistry, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    write_database(dir.path());
    let reg = support::start(
        &GRANTS.replace("vuln.db", &dir.path().join("vuln.db").display().to_string()),
        &["ci", "security"],
    );
    (reg, dir)
}

#[test]
fn pushed_images_are_scanned_and_failing_ones_cannot_be_pulled_from_protected_repositories() {
    let (reg, _database) = start_with_database();
    let ci = reg.basic("ci");
    let prod = push_debian(&reg, "prod/app", "1.0", &ci, "1.0-1");
    let dev = push_debian(&reg, "dev/app", "1.0", &ci, "1.0-1");
    assert_eq!(prod, dev, "the same image in two repositories");

    let result = wait_for_scan(&reg, "prod/app", &prod, &ci);
    assert_eq!(result["schema"], "customs.gate/v1", "{result:#}");
    assert_eq!(result["verdict"]["pass"], false, "{result:#}");
    let finding = &result["findings"][0];
    assert_eq!(finding["id"], "DEMO-2099-0001");
    assert_eq!(finding["fixed_version"], "1.0-2");
    assert_eq!(finding["status"], "failing");
    assert_eq!(result["scan"]["status"], "scanned");
    assert!(result["scan"]["db_version"].as_str().unwrap().starts_with("20"), "{result:#}");

    // By tag, by digest, GET and HEAD: refused with the CVE, the fixed version and the way to an exception.
    for reference in ["1.0", prod.as_str()] {
        for method in ["GET", "HEAD"] {
            let reply = reg.request(
                method,
                &format!("/v2/prod/app/manifests/{reference}"),
                &ci,
                &[("Accept", OCI_MANIFEST)],
                None,
            );
            assert_eq!(reply.status, 403, "{method} {reference}");
            if method == "GET" {
                assert_eq!(reply.error_code(), "DENIED");
                let message = reply.json()["errors"][0]["message"].as_str().unwrap().to_string();
                assert!(message.contains("CVE-2099-0001") && message.contains("fixed in 1.0-2"), "{message}");
                assert!(message.contains("customs registry exceptions set prod/app"), "{message}");
            }
        }
    }
    // Through an index that lists it: refused as well.
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": prod, "size": 1, "platform": {"os": "linux", "architecture": "amd64"}}]})
    .to_string();
    let put = reg.request(
        "PUT",
        "/v2/prod/app/manifests/multi",
        &ci,
        &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
        Some(index.as_bytes()),
    );
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    let via_index = reg.request("GET", "/v2/prod/app/manifests/multi", &ci, &[], None);
    assert_eq!(via_index.status, 403);
    assert!(via_index.json()["errors"][0]["message"].as_str().unwrap().contains("CVE-2099-0001"));
    // The same image in an unprotected repository pulls; an admin of the protected one pulls too.
    let ok = |cred: &Cred, repo: &str| {
        reg.request("GET", &format!("/v2/{repo}/manifests/1.0"), cred, &[("Accept", OCI_MANIFEST)], None)
            .status
    };
    assert_eq!(ok(&ci, "dev/app"), 200);
    assert_eq!(ok(&reg.basic("security"), "prod/app"), 200);
    // The jobs API lists the one job; the metrics count the refusals and the scan.
    let jobs = reg.request("GET", "/api/v1/jobs", &ci, &[], None).json();
    assert_eq!(jobs["jobs"][0]["digest"], prod.as_str(), "{jobs:#}");
    assert_eq!(jobs["jobs"][0]["state"], "done");
    let metrics = reg.metrics();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    assert!(value("customs_registry_blocked_pulls_total") >= 5.0);
    assert_eq!(value("customs_registry_scans_total{outcome=\"scanned\"}"), 1.0);
    // The refusal is audited, and the scan itself.
    let records = reg.audit_records();
    assert!(
        records
            .iter()
            .any(|r| r.event.result == "denied" && r.event.repository == "prod/app" && r.event.detail.contains("CVE-2099-0001")),
        "no audited refusal"
    );
    assert!(records.iter().any(|r| r.event.action == "scan" && r.event.reference == prod));

    // An exception expiring tomorrow lets the pull through; only an admin may set it.
    let tomorrow = reg.registry.clock.today().next_day().unwrap();
    let exceptions = serde_json::json!([{"id": "CVE-2099-0001", "library_name": "demo-pkg", "expires": tomorrow.to_string(),
        "reason": "not reachable in this service", "approved_by": "security"}])
    .to_string();
    let path = "/api/v1/repositories/prod/app/exceptions";
    assert_eq!(reg.request("PUT", path, &ci, &[], Some(exceptions.as_bytes())).status, 403);
    let set = reg.request("PUT", path, &reg.basic("security"), &[], Some(exceptions.as_bytes()));
    assert_eq!(set.status, 200, "{}", String::from_utf8_lossy(&set.body));
    assert_eq!(ok(&ci, "prod/app"), 200);
    let excepted = wait_for_scan(&reg, "prod/app", &prod, &ci);
    assert_eq!(excepted["verdict"]["pass"], true, "{excepted:#}");
    assert_eq!(excepted["findings"][0]["status"], "suppressed");

    // Two days on, the exception has expired: blocked again at once, with no new scan.
    let scans_before = reg.registry.scanning.as_ref().unwrap().store.results(&prod);
    reg.registry.clock.advance(time::Duration::days(2));
    assert_eq!(ok(&ci, "prod/app"), 403);
    let runtime = reg.runtime.clone();
    let store = &reg.registry.scanning.as_ref().unwrap().store;
    let before = runtime.block_on(scans_before).unwrap();
    assert_eq!(before.len(), 1, "one scan result for the digest");
    let jobs = runtime.block_on(store.jobs(None, 100)).unwrap();
    assert_eq!(jobs.len(), 1, "one job for one digest pushed to two repositories: {jobs:?}");
    assert_eq!(jobs[0].state, "done");
    let audit = reg.audit_records();
    assert!(
        audit
            .iter()
            .any(|r| r.event.action == "exceptions.set" && r.event.detail.contains("approved by security"))
    );
}

#[test]
fn unscanned_images_wait_and_fixed_images_pull() {
    let (reg, _database) = start_with_database();
    let ci = reg.basic("ci");
    // The fixed version passes once scanned.
    let fixed = push_debian(&reg, "prod/fixed", "1", &ci, "1.0-2");
    let result = wait_for_scan(&reg, "prod/fixed", &fixed, &ci);
    assert_eq!(result["verdict"]["pass"], true, "{result:#}");
    let reply = reg.request("GET", "/v2/prod/fixed/manifests/1", &ci, &[("Accept", OCI_MANIFEST)], None);
    assert_eq!(reply.status, 200);
    // A manifest whose scan cannot succeed (its layer is no tar) is refused with the reason, not served.
    let broken = reg.push_image("prod/broken", "1", &ci, "not a tar");
    assert_eq!(broken.status, 201);
    let digest = broken.header("docker-content-digest").unwrap().to_string();
    let result = wait_for_scan(&reg, "prod/broken", &digest, &ci);
    assert_eq!(result["status"], "failed", "{result:#}");
    let reply = reg.request("GET", "/v2/prod/broken/manifests/1", &ci, &[("Accept", OCI_MANIFEST)], None);
    assert_eq!(reply.status, 403);
    let message = reply.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("scan failed"), "{message}");
}

/// Defender's rule made better: after a database change, images pushed or pulled within 30 days are rescanned
/// (and their verdict follows), older ones are not and the API says since when. Pull times are written in
/// batches, by the registry's clock.
#[test]
fn a_database_change_rescans_images_used_in_the_window_only() {
    let (reg, db_dir) = start_with_database();
    let ci = reg.basic("ci");
    let scanning = reg.registry.scanning.as_ref().unwrap();
    let runtime = reg.runtime.clone();
    let recent = push_marked(&reg, "prod/recent", "1", &ci, "1.0-2", "recent");
    let old = push_marked(&reg, "prod/old", "1", &ci, "1.0-2", "old");
    assert_ne!(recent, old);
    let first_version = wait_for_scan(&reg, "prod/recent", &recent, &ci)["scan"]["db_version"].clone();
    assert_eq!(wait_for_scan(&reg, "prod/old", &old, &ci)["verdict"]["pass"], true);
    let pull = |repo: &str| {
        reg.request("GET", &format!("/v2/{repo}/manifests/1"), &ci, &[("Accept", OCI_MANIFEST)], None)
            .status
    };
    // `old` is pulled 40 days before a new advisory that affects both images, `recent` 3 days before.
    pull_40_and_3_days_ago_then_add_advisory(&reg, &ci, "prod/old", "prod/recent", db_dir.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    let rescanned = loop {
        let doc = wait_for_scan(&reg, "prod/recent", &recent, &ci);
        if doc["scan"]["db_version"] != first_version {
            break doc;
        }
        assert!(Instant::now() < deadline, "prod/recent was not rescanned: {doc:#}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(rescanned["verdict"]["pass"], false, "{rescanned:#}");
    assert!(
        rescanned["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "DEMO-2099-0002")
    );
    assert_eq!(pull("prod/recent"), 403, "the flipped verdict blocks the next pull");
    // The image last used 40 days ago keeps its result, and says why.
    let stale = wait_for_scan(&reg, "prod/old", &old, &ci);
    assert_eq!(stale["scan"]["db_version"], first_version);
    assert_eq!(stale["verdict"]["pass"], true);
    let why = stale["scan"]["rescan"].as_str().unwrap();
    assert!(
        why.contains("not rescanned since") && why.contains("outside the 30-day rescan window"),
        "{why}"
    );
    let jobs = runtime.block_on(scanning.store.jobs(None, 100)).unwrap();
    assert_eq!(jobs.iter().filter(|j| j.digest == old).count(), 1, "{jobs:?}");
    assert_eq!(
        jobs.iter().filter(|j| j.digest == recent && j.reason == "rescan").count(),
        1,
        "{jobs:?}"
    );
}

/// Fail closed: with no vulnerability database the scan fails with what to do, and a protected image stays
/// blocked; it is never stored as a clean scan.
#[test]
fn without_a_vulnerability_database_scans_fail_and_protected_pulls_stay_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let reg = support::start(&GRANTS.replace("vuln.db", &missing.display().to_string()), &["ci", "security"]);
    let ci = reg.basic("ci");
    let digest = push_debian(&reg, "prod/app", "1", &ci, "1.0-2");
    let doc = wait_for_scan(&reg, "prod/app", &digest, &ci);
    assert_eq!(doc["status"], "failed", "{doc:#}");
    let error = doc["scan"]["error"].as_str().unwrap();
    assert!(
        error.contains("does not exist") && error.contains("customs db import --db"),
        "{error}"
    );
    let reply = reg.request("GET", "/v2/prod/app/manifests/1", &ci, &[("Accept", OCI_MANIFEST)], None);
    assert_eq!(reply.status, 403);
    assert!(reply.json()["errors"][0]["message"].as_str().unwrap().contains("scan failed"));
}

/// Serves `zip` at `/osv/Debian/all.zip` on loopback, as an internal mirror would; counts the downloads.
fn mirror(zip: Vec<u8>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            reader.read_line(&mut line).unwrap();
            while reader.read_line(&mut String::new()).map(|n| n > 2).unwrap_or(false) {}
            let (status, body) = if line.starts_with("GET /osv/Debian/all.zip ") {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                ("200 OK", zip.clone())
            } else {
                ("404 Not Found", Vec::new())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    (base, served)
}

#[test]
fn a_scheduled_update_from_a_mirror_fills_the_database_and_the_image_is_rescanned() {
    use std::io::Write;
    let record = serde_json::json!({
        "id": "DEMO-2099-0001", "aliases": ["CVE-2099-0001"], "summary": "demo-pkg runs arbitrary code",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "demo-pkg"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-2"}]}]}]
    });
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("DEMO-2099-0001.json", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(record.to_string().as_bytes()).unwrap();
    let (base, served) = mirror(zip.finish().unwrap().into_inner());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vuln.db");
    // No database yet: the schedule's first update runs at start, from the mirror only.
    let config = GRANTS.replace(
        "workers = 2\n",
        &format!("workers = 2\ndb_update = \"6h\"\ndb_feeds = [\"osv:Debian\"]\ndb_mirrors = [\"{base}\"]\ndb_official = false\n"),
    );
    let reg = support::start(&config.replace("vuln.db", &db.display().to_string()), &["ci", "security"]);
    let ci = reg.basic("ci");
    let digest = push_debian(&reg, "dev/app", "1.0", &ci, "1.0-1");
    let deadline = Instant::now() + Duration::from_secs(60);
    let doc = loop {
        let doc = wait_for_scan(&reg, "dev/app", &digest, &ci);
        if doc["scan"]["status"] == "scanned" {
            break doc;
        }
        assert!(Instant::now() < deadline, "not scanned with the updated database in 60 s: {doc:#}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(doc["findings"][0]["id"], "DEMO-2099-0001", "{doc:#}");
    assert_eq!(
        served.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one download; the next is due in 6 h"
    );
    let updates: Vec<_> = reg
        .audit_records()
        .into_iter()
        .map(|r| r.event)
        .filter(|r| r.action == "db.update")
        .collect();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(
        (updates[0].principal.as_str(), updates[0].result.as_str()),
        ("scheduler", "allowed")
    );
    assert!(
        updates[0].detail.contains("imported 1 advisories from 1 feed"),
        "{}",
        updates[0].detail
    );
    let metrics = reg.metrics();
    assert!(
        metrics.contains("customs_registry_db_updates_total{outcome=\"updated\"} 1"),
        "{metrics}"
    );

    // A mirror that cannot be reached: the update fails, audited and counted; the database stays as it was.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config = GRANTS.replace(
        "workers = 2\n",
        &format!("workers = 2\ndb_update = \"6h\"\ndb_feeds = [\"osv:Debian\"]\ndb_mirrors = [\"http://{closed}\"]\ndb_official = false\n"),
    );
    let other = tempfile::tempdir().unwrap();
    let reg = support::start(
        &config.replace("vuln.db", &other.path().join("vuln.db").display().to_string()),
        &["ci"],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let failure = loop {
        if let Some(r) = reg.audit_records().into_iter().map(|r| r.event).find(|r| r.action == "db.update") {
            break r;
        }
        assert!(Instant::now() < deadline, "no db.update record in 60 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(failure.result, "error");
    assert!(failure.detail.contains("no feed could be downloaded"), "{}", failure.detail);
    let metrics = reg.metrics();
    assert!(
        metrics.contains("customs_registry_db_updates_total{outcome=\"failed\"} 1"),
        "{metrics}"
    );
}

#[test]
fn images_in_the_window_are_rescanned_daily_against_an_unchanged_database() {
    let (reg, _database) = start_with_database();
    let ci = reg.basic("ci");
    let scanning = reg.registry.scanning.as_ref().unwrap();
    let runtime = reg.runtime.clone();
    let digest = push_debian(&reg, "dev/app", "1", &ci, "1.0-2");
    let first = wait_for_scan(&reg, "dev/app", &digest, &ci)["scan"].clone();
    // A day and an hour on, with the same database, the image used within the window is scanned again.
    reg.registry.clock.advance(time::Duration::hours(25));
    runtime.block_on(scanning.rescan_daily(reg.registry.clock.now())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let again = loop {
        let scan = wait_for_scan(&reg, "dev/app", &digest, &ci)["scan"].clone();
        if scan["finished_at"] != first["finished_at"] {
            break scan;
        }
        assert!(Instant::now() < deadline, "no daily rescan in 60 s: {scan:#}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(again["db_version"], first["db_version"]);
    let jobs = runtime.block_on(scanning.store.jobs(None, 10)).unwrap();
    assert_eq!(jobs.len(), 1, "the same job, queued again: {jobs:?}");
    assert_eq!(jobs[0].reason, "daily");
    // Within the hour nothing more is queued; an image outside the window is left alone.
    assert_eq!(runtime.block_on(scanning.rescan_daily(reg.registry.clock.now())).unwrap(), 0);
    reg.registry.clock.advance(time::Duration::days(40));
    assert_eq!(runtime.block_on(scanning.rescan_daily(reg.registry.clock.now())).unwrap(), 0);
}

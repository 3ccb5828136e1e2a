//! Webhooks, in process with a receiver on 127.0.0.1: a database change flips a recently pulled image's verdict
//! and `verdict.changed` reaches the receiver signed (Standard Webhooks HMAC with a timestamp); the receiver
//! fails twice and gets it on the third try; a tampered, replayed or stale delivery fails the receiver's check;
//! the delivery log says what happened; blocked pulls and pushes are events too, filtered by repository.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use support::OCI_MANIFEST;
use support::debian::{pull_40_and_3_days_ago_then_add_advisory, push_marked, wait_for_scan, write_database};
use support::receiver::{Receiver, verify};

const CONFIG: &str = r#"
[scanning]
vulnerability_db = "VULN_DB"
workers = 2

[[protect]]
repositories = ["prod/**"]

[[webhook]]
name = "security"
url = "RECEIVER"
repositories = ["prod/**"]
events = ["push", "scan.completed", "verdict.changed", "pull.blocked"]
retry_after = "0s"
max_attempts = 4

[[grant]]
to = "ci"
repositories = ["prod/**", "dev/**"]
actions = ["pull", "push"]

[[grant]]
to = "security"
repositories = ["prod/**"]
actions = ["admin"]
"#;

#[test]
fn a_verdict_flip_reaches_the_receiver_signed_after_two_failures_and_forgeries_fail() {
    let receiver = Receiver::start("customs.registry.verdict.changed", 2);
    let db_dir = tempfile::tempdir().unwrap();
    write_database(db_dir.path());
    let config = CONFIG
        .replace("VULN_DB", &db_dir.path().join("vuln.db").display().to_string())
        .replace("RECEIVER", &receiver.url);
    let reg = support::start(&config, &["ci", "security"]);
    let (ci, security) = (reg.basic("ci"), reg.basic("security"));
    let secret = std::fs::read_to_string(reg.dir.path().join("data/webhooks/security.secret")).unwrap();

    // Two clean images; `old` is pulled 40 days before a new advisory that affects both, `recent` 3 days before:
    // only the image used within 30 days is rescanned, and its verdict flips.
    let recent = push_marked(&reg, "prod/recent", "1", &ci, "1.0-2", "recent");
    let old = push_marked(&reg, "prod/old", "1", &ci, "1.0-2", "old");
    push_marked(&reg, "dev/other", "1", &ci, "1.0-2", "dev");
    assert_eq!(wait_for_scan(&reg, "prod/recent", &recent, &ci)["verdict"]["pass"], true);
    assert_eq!(wait_for_scan(&reg, "prod/old", &old, &ci)["verdict"]["pass"], true);
    let pull = |repo: &str| {
        reg.request("GET", &format!("/v2/{repo}/manifests/1"), &ci, &[("Accept", OCI_MANIFEST)], None)
            .status
    };
    pull_40_and_3_days_ago_then_add_advisory(&reg, &ci, "prod/old", "prod/recent", db_dir.path());
    let subject = format!("prod/recent@{recent}");
    let delivered = receiver.wait_for("customs.registry.verdict.changed", &subject);

    // Three attempts of one event (same id), the first two answered 500, every one signed.
    let now = reg.registry.clock.now().unix_timestamp();
    let attempts: Vec<_> = receiver
        .deliveries()
        .into_iter()
        .filter(|d| d.kind() == "customs.registry.verdict.changed")
        .collect();
    assert_eq!(attempts.iter().map(|d| d.answered).collect::<Vec<_>>(), [500, 500, 200]);
    for attempt in &attempts {
        assert_eq!(attempt.headers["webhook-id"], delivered.headers["webhook-id"]);
        verify(&secret, attempt, now, &mut HashSet::new()).unwrap();
        assert!(attempt.headers["content-type"].starts_with("application/cloudevents+json"));
    }
    let event = delivered.json();
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["id"].as_str(), Some(delivered.headers["webhook-id"].as_str()));
    assert_eq!(event["data"]["repository"], "prod/recent");
    assert_eq!(event["data"]["digest"], recent.as_str());
    assert_eq!(event["data"]["previous"]["pass"], true);
    assert_eq!(event["data"]["verdict"]["pass"], false, "{event:#}");
    assert_eq!(event["data"]["reason"], "rescan");
    assert!(
        event["data"]["verdict"]["failing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "DEMO-2099-0002" && f["fixed_version"] == "1.0-3"),
        "{event:#}"
    );
    // The image outside the window was not rescanned, so no flip is announced for it.
    assert!(
        !receiver
            .deliveries()
            .iter()
            .any(|d| d.kind() == "customs.registry.verdict.changed" && d.json()["data"]["repository"] == "prod/old")
    );

    // The receiver's check: the genuine delivery passes once; a replay, a changed body, a foreign secret and a
    // stale timestamp fail.
    let mut seen = HashSet::new();
    verify(&secret, &delivered, now, &mut seen).unwrap();
    assert!(verify(&secret, &delivered, now, &mut seen).unwrap_err().contains("replayed"));
    let mut tampered = delivered.clone();
    tampered.body = String::from_utf8(tampered.body)
        .unwrap()
        .replace("\"pass\":false", "\"pass\":true")
        .into_bytes();
    assert_ne!(tampered.body, delivered.body);
    assert!(
        verify(&secret, &tampered, now, &mut HashSet::new())
            .unwrap_err()
            .contains("mismatch")
    );
    let (_, foreign) = customs_registry::webhooks::WebhookSecret::generate();
    assert!(
        verify(&foreign, &delivered, now, &mut HashSet::new())
            .unwrap_err()
            .contains("mismatch")
    );
    assert!(
        verify(&secret, &delivered, now + 301, &mut HashSet::new())
            .unwrap_err()
            .contains("from now")
    );
    // The registry's own verifier (for receivers written in Rust) agrees.
    let library = customs_registry::webhooks::WebhookSecret::parse(&secret).unwrap();
    let h = &delivered.headers;
    library
        .verify(
            &h["webhook-id"],
            &h["webhook-timestamp"],
            &h["webhook-signature"],
            &delivered.body,
            now,
        )
        .unwrap();
    assert!(
        library
            .verify(
                &h["webhook-id"],
                &h["webhook-timestamp"],
                &h["webhook-signature"],
                &tampered.body,
                now
            )
            .is_err()
    );

    // The delivery log: one delivery of the event, delivered on the third attempt; visible to the repository's
    // admin, not to the pipeline.
    let log = reg
        .request("GET", "/api/v1/webhooks/deliveries?event=verdict.changed", &security, &[], None)
        .json();
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{log:#}");
    assert_eq!(deliveries[0]["state"], "delivered");
    assert_eq!(deliveries[0]["attempts"], 3);
    assert_eq!(deliveries[0]["last_status"], 200);
    assert_eq!(deliveries[0]["event_id"].as_str(), Some(h["webhook-id"].as_str()));
    let hidden = reg.request("GET", "/api/v1/webhooks/deliveries", &ci, &[], None).json();
    assert_eq!(hidden["deliveries"], serde_json::json!([]), "{hidden:#}");
    let hooks = reg.request("GET", "/api/v1/webhooks", &ci, &[], None).json();
    assert_eq!(hooks["webhooks"][0]["name"], "security");
    assert!(
        !hooks["webhooks"][0]["url"].as_str().unwrap().contains("/hook"),
        "URLs are masked: {hooks:#}"
    );
    // An admin can ask for it again.
    let id = deliveries[0]["id"].as_str().unwrap();
    let again = reg.request("POST", &format!("/api/v1/webhooks/deliveries/{id}/redeliver"), &security, &[], None);
    assert_eq!(again.status, 202, "{}", String::from_utf8_lossy(&again.body));
    let forbidden = reg.request("POST", &format!("/api/v1/webhooks/deliveries/{id}/redeliver"), &ci, &[], None);
    assert_eq!(forbidden.status, 404);

    // The blocked pull is an event (once, however often the client retries).
    assert_eq!(pull("prod/recent"), 403);
    assert_eq!(pull("prod/recent"), 403);
    let blocked = receiver.wait_for("customs.registry.pull.blocked", &subject);
    assert_eq!(blocked.json()["data"]["principal"], "ci");
    assert!(blocked.json()["data"]["reason"].as_str().unwrap().contains("CVE-2099-0002"));
    std::thread::sleep(Duration::from_millis(500));
    let blocked_count = receiver
        .deliveries()
        .iter()
        .filter(|d| d.kind() == "customs.registry.pull.blocked")
        .count();
    assert_eq!(blocked_count, 1);

    // Pushes and scans of prod/** were announced; dev/** is outside the webhook's repositories.
    let kinds: Vec<(String, String)> = receiver
        .deliveries()
        .iter()
        .map(|d| (d.kind(), d.json()["data"]["repository"].as_str().unwrap_or_default().to_string()))
        .collect();
    assert!(kinds.contains(&("customs.registry.push".into(), "prod/old".into())), "{kinds:?}");
    assert!(
        kinds.contains(&("customs.registry.scan.completed".into(), "prod/recent".into())),
        "{kinds:?}"
    );
    assert!(!kinds.iter().any(|(_, repo)| repo == "dev/other"), "{kinds:?}");
    let metrics = reg.metrics();
    assert!(
        metrics.contains("customs_registry_webhook_deliveries_total{outcome=\"retried\"} 2"),
        "{metrics}"
    );
}

/// Bad webhook settings stop the registry at start with the webhook's name and what to fix.
#[test]
fn bad_webhooks_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.toml");
    for (hook, expected) in [
        ("url = \"http://hooks.example.com/x\"", "loopback"),
        ("url = \"https://h/x\"\nevents = [\"pushed\"]", "unknown event `pushed`"),
        (
            "url_env = \"CUSTOMS_TEST_UNSET_HOOK_URL\"",
            "CUSTOMS_TEST_UNSET_HOOK_URL is not set",
        ),
        ("", "give one of url and url_env"),
        ("url = \"https://h/x\"\nretry_after = \"soon\"", "retry_after"),
    ] {
        std::fs::write(&path, format!("[[webhook]]\nname = \"siem\"\n{hook}\n")).unwrap();
        let config = customs_registry::RegistryConfig::load(&path).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let err = match runtime.block_on(customs_registry::Registry::open(config, true)) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{hook} was accepted"),
        };
        assert!(err.contains("webhook `siem`") && err.contains(expected), "{hook}: {err}");
    }
}

#[test]
fn exceptions_set_and_expired_flip_verdicts_without_a_rescan_and_say_so() {
    let receiver = Receiver::start("none", 0);
    let db_dir = tempfile::tempdir().unwrap();
    write_database(db_dir.path());
    let config = CONFIG
        .replace("VULN_DB", &db_dir.path().join("vuln.db").display().to_string())
        .replace("RECEIVER", &receiver.url);
    let reg = support::start(&config, &["ci", "security"]);
    let ci = reg.basic("ci");
    let scanning = reg.registry.scanning.as_ref().unwrap();
    let runtime = reg.runtime.clone();
    let check = || runtime.block_on(scanning.exception_watch.check(&reg.registry)).unwrap();
    let digest = push_marked(&reg, "prod/app", "1", &ci, "1.0-1", "app");
    assert_eq!(wait_for_scan(&reg, "prod/app", &digest, &ci)["verdict"]["pass"], false);
    check();

    // An exception for the finding, expiring the day after tomorrow: the verdict passes, with no rescan.
    let expires = reg.registry.clock.today() + time::Duration::days(2);
    let exceptions = serde_json::json!([{"id": "CVE-2099-0001", "library_name": "demo-pkg", "expires": expires.to_string(),
        "reason": "no fix deployable this week", "approved_by": "security"}])
    .to_string();
    let set = reg.request(
        "PUT",
        "/api/v1/repositories/prod/app/exceptions",
        &reg.basic("security"),
        &[],
        Some(exceptions.as_bytes()),
    );
    assert_eq!(set.status, 200, "{}", String::from_utf8_lossy(&set.body));
    // The registry's own watch looks every 10 s too; whichever looks first announces, once.
    check();
    check();
    let subject = format!("prod/app@{digest}");
    let changes = |n: usize| -> Vec<serde_json::Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let got: Vec<_> = receiver
                .deliveries()
                .into_iter()
                .filter(|d| d.answered == 200 && d.kind() == "customs.registry.verdict.changed" && d.json()["subject"] == subject)
                .map(|d| d.json()["data"].clone())
                .collect();
            if got.len() >= n {
                return got;
            }
            assert!(std::time::Instant::now() < deadline, "{} of {n} verdict.changed in 60 s", got.len());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let first = &changes(1)[0];
    assert_eq!(first["reason"], "exceptions");
    assert_eq!(
        (first["previous"]["pass"].as_bool(), first["verdict"]["pass"].as_bool()),
        (Some(false), Some(true))
    );

    // A day on, nothing expired; three days on, the exception has: the verdict fails again.
    reg.registry.clock.advance(time::Duration::days(1));
    check();
    assert_eq!(changes(1).len(), 1, "nothing expired yet");
    reg.registry.clock.advance(time::Duration::days(2));
    check();
    let second = &changes(2)[1];
    assert_eq!(second["reason"], "exception-expired");
    assert_eq!(
        (second["previous"]["pass"].as_bool(), second["verdict"]["pass"].as_bool()),
        (Some(true), Some(false))
    );
    check();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(changes(2).len(), 2, "each flip announced once");
    let jobs = reg.request("GET", "/api/v1/jobs", &ci, &[], None);
    assert_eq!(jobs.status, 200, "{}", String::from_utf8_lossy(&jobs.body));
    let jobs = jobs.json();
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1, "no rescan: {jobs:#}");
}

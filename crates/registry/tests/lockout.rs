//! Issue 19, defect 3 and the burst acceptance test: 50 failed logins in 10 s lock the principal after
//! `principal_failures` for the attacker's address only; an alert reaches a webhook; the audit shows every
//! attempt as `login`; the pipeline keeps working from the address it is known at and another principal from
//! another address is untouched; after the cooldown the locked principal logs in from anywhere. Source addresses
//! are real: the raw client binds 127.0.0.x before connecting.

mod support;

use std::time::{Duration, Instant};

use support::basic_header;
use support::receiver::Receiver;

fn config(receiver: &Receiver) -> String {
    format!(
        r#"
[auth]
login_cache_seconds = 0

[lockout]
principal_failures = 5
ip_failures = 40
window = "1m"
cooldown = "5s"

[[webhook]]
name = "soc"
url = "{}"
events = ["alert.*"]
repositories = ["team/**"]
retry_after = "1s"

[[grant]]
to = "ci"
repositories = ["team/**"]
actions = ["pull", "push"]

[[grant]]
to = "other"
repositories = ["other/**"]
actions = ["pull"]
"#,
        receiver.url
    )
}

fn ping(reg: &support::TestRegistry, from: &str, name: &str, secret: &str) -> (u16, String) {
    reg.raw(from, &format!("GET /v2/ HTTP/1.1\r\n{}", basic_header(name, secret)), b"")
        .expect("an answer")
}

#[test]
fn a_burst_of_failed_logins_locks_the_principal_for_new_addresses_alerts_and_ends() {
    let receiver = Receiver::start("none", 0);
    let reg = support::start(&config(&receiver), &["ci", "other"]);
    let (ci, other) = (reg.secrets["ci"].clone(), reg.secrets["other"].clone());
    // The pipeline's usual address, and another principal elsewhere.
    assert_eq!(ping(&reg, "127.0.0.1", "ci", &ci).0, 200);
    assert_eq!(ping(&reg, "127.0.0.3", "other", &other).0, 200);

    let started = Instant::now();
    let statuses: Vec<(u16, String)> = (0..50).map(|i| ping(&reg, "127.0.0.2", "ci", &format!("guess-{i}"))).collect();
    let took = started.elapsed();
    println!("50 failed logins from 127.0.0.2 in {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(statuses[..5].iter().all(|(s, _)| *s == 401), "{:?}", &statuses[..5]);
    assert!(
        statuses[5..].iter().all(|(s, b)| *s == 429 && b.contains("too many failed logins")),
        "locked after 5: {:?}",
        &statuses[5..8]
    );
    // The right secret from the attacker's address is refused too; the pipeline at home and the other
    // principal go on.
    assert_eq!(ping(&reg, "127.0.0.2", "ci", &ci).0, 429);
    assert_eq!(ping(&reg, "127.0.0.1", "ci", &ci).0, 200, "known address");
    assert_eq!(
        ping(&reg, "127.0.0.3", "other", &other).0,
        200,
        "another principal, another address"
    );

    let alert = receiver.wait_for("customs.registry.alert.lockout", "principal:ci");
    let data = &alert.json()["data"];
    assert_eq!(data["client_ip"], "127.0.0.2");
    assert_eq!(data["failures"], 5);

    let records = reg.audit_records();
    let attempts = records
        .iter()
        .filter(|r| r.event.client_ip == "127.0.0.2" && r.event.principal == "ci" && !r.event.action.starts_with("alert."))
        .collect::<Vec<_>>();
    assert_eq!(attempts.len(), 51, "every attempt is audited");
    assert!(attempts.iter().all(|r| r.event.action == "login" && r.event.result == "denied"));
    assert_eq!(attempts.iter().filter(|r| r.event.status == 429).count(), 46);
    assert!(
        records
            .iter()
            .any(|r| r.event.action == "alert.lockout" && r.event.detail.contains("principal ci")),
        "the alert is an audit record too"
    );

    // After the cooldown the principal logs in from anywhere again.
    let lock_ends = started + Duration::from_secs(5);
    std::thread::sleep(lock_ends.saturating_duration_since(Instant::now()) + Duration::from_millis(1200));
    assert_eq!(ping(&reg, "127.0.0.2", "ci", &ci).0, 200, "after the cooldown");
}

#[test]
fn unlock_from_another_process_lifts_a_lock() {
    let receiver = Receiver::start("none", 0);
    let reg = support::start(&config(&receiver), &["ci"]);
    let ci = reg.secrets["ci"].clone();
    for i in 0..5 {
        assert_eq!(ping(&reg, "127.0.0.4", "ci", &format!("x{i}")).0, 401);
    }
    assert_eq!(ping(&reg, "127.0.0.4", "ci", &ci).0, 429, "locked");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let meta = customs_registry::meta::MetaStore::open(&reg.dir.path().join("data/registry.db"))
            .await
            .unwrap();
        let locks = customs_registry::lockout::locks(&meta, time::OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert_eq!(locks.iter().map(|l| l.subject.as_str()).collect::<Vec<_>>(), ["principal:ci"]);
        assert!(customs_registry::lockout::unlock(&meta, "principal:ci").await.unwrap());
    });
    assert_eq!(ping(&reg, "127.0.0.4", "ci", &ci).0, 200, "unlocked from another process");
}

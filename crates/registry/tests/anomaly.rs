//! Issue 19's spike acceptance, with short windows (1 s buckets): a steady pull rate raises no alert; twenty
//! times that rate raises one, which reaches a webhook, the audit log and `customs registry alerts`' table; a
//! burst of refused requests from one address alerts too.

mod support;

use std::time::{Duration, Instant};

use support::Cred;
use support::receiver::Receiver;

fn config(receiver: &Receiver) -> String {
    format!(
        r#"
[anomaly]
bucket = "1s"
pull_spike_factor = 10
pull_spike_floor = 10
auth_failure_burst = 15

[[webhook]]
name = "soc"
url = "{}"
events = ["alert.*"]
retry_after = "1s"

[[grant]]
to = "ci"
repositories = ["team/**"]
actions = ["pull", "push"]
"#,
        receiver.url
    )
}

/// Pulls `team/app:1` `per_second` times a second for `seconds`.
fn pull_at(reg: &support::TestRegistry, cred: &Cred, per_second: u32, seconds: u32) {
    let spacing = Duration::from_secs(1) / per_second;
    let start = Instant::now();
    for i in 0..per_second * seconds {
        let due = start + spacing * i;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let reply = reg.request("GET", "/v2/team/app/manifests/1", cred, &[("Accept", support::OCI_MANIFEST)], None);
        assert_eq!(reply.status, 200);
    }
}

fn spikes(reg: &support::TestRegistry) -> Vec<customs_registry::audit::AuditRecord> {
    reg.audit_records()
        .into_iter()
        .filter(|r| r.event.action == "alert.pull_spike")
        .collect()
}

#[test]
fn a_steady_pull_rate_is_quiet_and_twenty_times_it_raises_an_alert() {
    let receiver = Receiver::start("none", 0);
    let reg = support::start(&config(&receiver), &["ci"]);
    let ci = reg.basic("ci");
    assert_eq!(reg.push_image("team/app", "1", &ci, "spike").status, 201);

    pull_at(&reg, &ci, 2, 12);
    assert!(spikes(&reg).is_empty(), "2 pulls/s for 12 buckets: {:?}", spikes(&reg));

    let burst = Instant::now();
    pull_at(&reg, &ci, 40, 2);
    println!("80 pulls in {:?}", burst.elapsed());
    let delivery = receiver.wait_for("customs.registry.alert.pull_spike", "principal:ci");
    let data = &delivery.json()["data"];
    println!("pull spike alert: {data}");
    assert!(data["count"].as_u64().unwrap() > 10, "{data}");
    receiver.wait_for("customs.registry.alert.pull_spike", "repository:team/app");
    let recorded = spikes(&reg);
    assert_eq!(recorded.len(), 2, "one per principal and per repository: {recorded:?}");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let stored = runtime.block_on(async {
        let meta = customs_registry::meta::MetaStore::open(&reg.dir.path().join("data/registry.db"))
            .await
            .unwrap();
        customs_registry::alerts::recent(&meta, "2000-01-01T00:00:00Z", 10).await.unwrap()
    });
    assert_eq!(stored.iter().filter(|a| a.kind == "pull_spike").count(), 2, "{stored:?}");
}

#[test]
fn a_burst_of_refused_requests_from_one_address_alerts() {
    let receiver = Receiver::start("none", 0);
    let reg = support::start(&config(&receiver), &["ci"]);
    let forged = Cred::Bearer("not-a-token".into());
    for _ in 0..16 {
        assert_eq!(reg.request("GET", "/v2/team/app/tags/list", &forged, &[], None).status, 401);
    }
    let delivery = receiver.wait_for("customs.registry.alert.auth_failures", "ip:127.0.0.1");
    assert_eq!(delivery.json()["data"]["client_ip"], "127.0.0.1");
}

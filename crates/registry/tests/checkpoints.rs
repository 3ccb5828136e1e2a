//! Signed audit checkpoints from a running registry: with `[audit.checkpoints]` the server signs the chain head
//! every interval, copies it create-only to the export store and sends it as a signed `audit.checkpoint`
//! webhook. A rewrite of the log after the server stopped (one record edited, every later hash recomputed)
//! passes the chain check alone and fails against the exported checkpoints.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use customs_registry::audit::{Anchor, AuditRecord, segments, verify, verify_anchored};
use customs_registry::checkpoint::{self, Checkpoint, SigningKey};
use support::receiver::{Receiver, verify as verify_delivery};

#[test]
fn the_server_exports_signed_checkpoints_that_catch_a_rewritten_log() {
    let keys = tempfile::tempdir().unwrap();
    let key_path = keys.path().join("audit-checkpoint.key");
    let key = SigningKey::generate("registry.test-audit").unwrap();
    customs_registry::keyfile::create_private(&key_path, key.encode().as_bytes()).unwrap();
    let worm = tempfile::tempdir().unwrap();
    let receiver = Receiver::start("none", 0);
    let config = format!(
        r#"
[audit.checkpoints]
key = "{}"
interval = "1s"
export = "file://{}"

[[webhook]]
name = "siem"
url = "{}"
events = ["audit.checkpoint"]
retry_after = "0s"

[[grant]]
to = "ci"
repositories = ["app/**"]
actions = ["pull", "push"]
"#,
        key_path.display(),
        worm.path().display(),
        receiver.url
    );
    let mut reg = support::start(&config, &["ci"]);
    let ci = reg.basic("ci");
    assert_eq!(reg.push_image("app/one", "1", &ci, "one").status, 201);

    // Wait until a checkpoint covers the push's records.
    let pushed = reg.registry.audit.head().unwrap().0;
    let deadline = Instant::now() + Duration::from_secs(30);
    let origin = checkpoint::origin("customs-registry");
    let verifier = key.verifier();
    let covering = loop {
        let found = checkpoint::anchors(worm.path(), &verifier, &origin).unwrap_or_default();
        if let Some((_, c)) = found.into_iter().find(|(_, c)| c.seq >= pushed) {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "no exported checkpoint covers record {pushed} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let delivery = receiver.wait_for("customs.registry.audit.checkpoint", &format!("audit@{}", covering.seq));
    let secret = std::fs::read_to_string(reg.dir.path().join("data/webhooks/siem.secret")).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    verify_delivery(secret.trim(), &delivery, now, &mut HashSet::new()).unwrap();
    let data = &delivery.json()["data"];
    assert_eq!(data["key"], verifier.encode());
    let sent = Checkpoint::open(data["note"].as_str().unwrap(), &verifier, "webhook note").unwrap();
    assert_eq!(sent, covering);
    assert!(
        reg.metrics()
            .contains("customs_registry_audit_checkpoints_total{outcome=\"written\"}"),
        "the metric counts written checkpoints"
    );

    let audit_dir = reg.audit_dir();
    reg.stop();
    let anchors: Vec<Anchor> = checkpoint::anchors(worm.path(), &verifier, &origin)
        .unwrap()
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    let summary = verify_anchored(&audit_dir, &anchors).unwrap();
    assert_eq!(summary.anchored.len(), anchors.len());

    // Rewrite: the push is attributed to someone else and every later hash recomputed.
    let segment = segments(&audit_dir).unwrap().remove(0);
    let text = std::fs::read_to_string(&segment).unwrap();
    let mut records: Vec<AuditRecord> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let edited = records.iter().position(|r| r.event.action == "push").expect("a push record");
    records[edited].event.principal = "someone-else".into();
    for i in edited..records.len() {
        if i > 0 {
            records[i].prev = records[i - 1].hash.clone();
        }
        records[i].hash = records[i].compute_hash();
    }
    let lines: Vec<String> = records.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
    std::fs::write(&segment, lines.join("\n") + "\n").unwrap();
    assert!(verify(&audit_dir).is_ok(), "the rewrite is invisible to the chain alone");
    let err = verify_anchored(&audit_dir, &anchors).unwrap_err().to_string();
    assert!(err.contains("rewritten after that checkpoint"), "{err}");
}

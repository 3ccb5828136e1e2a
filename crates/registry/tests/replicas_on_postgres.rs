//! Two replicas on one PostgreSQL database and one blob store, as behind a load balancer: what one stores the
//! other serves, an upload begun on one is finished on the other, and pushes racing through both to one tag
//! leave a consistent registry with every push audited once.
//!
//! Blobs on one local directory both replicas use (a shared volume); the `_s3` and `_azurite` twins of this
//! file run the same with blobs in moto and Azurite.

mod support;

use std::sync::Arc;

use support::{OCI_MANIFEST, TestRegistry, digest, image_manifest, start};

const GRANTS: &str = r#"
[[grant]]
to = "writer"
repositories = ["team/**"]
actions = ["pull", "push", "delete"]
"#;

fn pair() -> (TestRegistry, TestRegistry) {
    let a = start(GRANTS, &["writer"]);
    let b = a.replica(GRANTS);
    (a, b)
}

#[test]
fn what_one_replica_stores_the_other_serves_and_an_upload_moves_between_them() {
    let (a, b) = pair();
    let cred = a.basic("writer");

    assert_eq!(a.push_image("team/app", "v1", &cred, "one").status, 201);
    let through_a = a.request("GET", "/v2/team/app/manifests/v1", &cred, &[("Accept", OCI_MANIFEST)], None);
    let through_b = b.request("GET", "/v2/team/app/manifests/v1", &cred, &[("Accept", OCI_MANIFEST)], None);
    assert_eq!((through_a.status, through_b.status), (200, 200));
    assert_eq!(through_a.body, through_b.body, "the same manifest bytes through both replicas");
    let layer = b"layer of one";
    let blob = b.request("GET", &format!("/v2/team/app/blobs/{}", digest(layer)), &cred, &[], None);
    assert_eq!((blob.status, blob.body.as_slice()), (200, &layer[..]));

    // A chunked upload: started and first chunk on A, second chunk and commit on B.
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (first, second) = bytes.split_at(123_457);
    let started = a.request("POST", "/v2/team/app/blobs/uploads/", &cred, &[], None);
    assert_eq!(started.status, 202);
    let location = started.header("location").unwrap().to_string();
    let range = format!("0-{}", first.len() - 1);
    let patched = a.request(
        "PATCH",
        &location,
        &cred,
        &[("Content-Type", "application/octet-stream"), ("Content-Range", &range)],
        Some(first),
    );
    assert_eq!(patched.status, 202, "{}", String::from_utf8_lossy(&patched.body));
    let status = b.request("GET", &location, &cred, &[], None);
    assert_eq!(status.status, 204, "B sees the upload A started");
    assert_eq!(status.header("range"), Some(format!("0-{}", first.len() - 1).as_str()));
    let range = format!("{}-{}", first.len(), bytes.len() - 1);
    let patched = b.request(
        "PATCH",
        &location,
        &cred,
        &[("Content-Type", "application/octet-stream"), ("Content-Range", &range)],
        Some(second),
    );
    assert_eq!(patched.status, 202, "{}", String::from_utf8_lossy(&patched.body));
    let committed = b.request("PUT", &format!("{location}?digest={}", digest(&bytes)), &cred, &[], None);
    assert_eq!(committed.status, 201, "{}", String::from_utf8_lossy(&committed.body));
    for replica in [&a, &b] {
        let got = replica.request("GET", &format!("/v2/team/app/blobs/{}", digest(&bytes)), &cred, &[], None);
        assert_eq!(got.status, 200);
        assert!(got.body == bytes, "byte-identical through {}", replica.host);
    }

    // Disabling a principal in the shared database (as `customs registry principal disable` does) is seen by
    // both replicas at the next login: each reads the principal's row, and caches only the hash check.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async { assert!(a.open_meta().await.set_disabled("writer", true).await.unwrap()) });
    for replica in [&a, &b] {
        assert_eq!(replica.request("GET", "/v2/team/app/tags/list", &cred, &[], None).status, 401);
    }
}

#[test]
fn twenty_pushes_to_one_tag_through_both_replicas_leave_one_winner_and_every_push_audited_once() {
    let (a, b) = pair();
    let (a, b) = (Arc::new(a), Arc::new(b));
    let cred = a.basic("writer");
    let pushes: Vec<_> = (0..20)
        .map(|i| {
            let replica = if i % 2 == 0 { a.clone() } else { b.clone() };
            let cred = cred.clone();
            std::thread::spawn(move || {
                let seed = format!("racer {i}");
                let reply = replica.push_image("team/race", "latest", &cred, &seed);
                assert_eq!(reply.status, 201, "push {i}: {}", String::from_utf8_lossy(&reply.body));
                reply.header("docker-content-digest").unwrap().to_string()
            })
        })
        .collect();
    let digests: Vec<String> = pushes.into_iter().map(|t| t.join().unwrap()).collect();

    let winner_a = a.request("GET", "/v2/team/race/manifests/latest", &cred, &[("Accept", OCI_MANIFEST)], None);
    let winner_b = b.request("GET", "/v2/team/race/manifests/latest", &cred, &[("Accept", OCI_MANIFEST)], None);
    let winner = winner_a.header("docker-content-digest").unwrap().to_string();
    assert_eq!(winner_b.header("docker-content-digest"), Some(winner.as_str()));
    assert!(digests.contains(&winner), "the tag ends on one of the pushed manifests");

    // Every stored manifest's blobs exist, through either replica.
    for (i, d) in digests.iter().enumerate() {
        let manifest = b.request(
            "GET",
            &format!("/v2/team/race/manifests/{d}"),
            &cred,
            &[("Accept", OCI_MANIFEST)],
            None,
        );
        assert_eq!(manifest.status, 200);
        let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"racer {i}"}}"#);
        let layer = format!("layer of racer {i}");
        assert_eq!(
            manifest.body,
            image_manifest(config.as_bytes(), layer.as_bytes(), None).into_bytes()
        );
        for blob in [config.as_bytes(), layer.as_bytes()] {
            for replica in [&a, &b] {
                let head = replica.request("HEAD", &format!("/v2/team/race/blobs/{}", digest(blob)), &cred, &[], None);
                assert_eq!(head.status, 200);
            }
        }
    }

    // Both replicas append to one chain in the database: it verifies, both read the same records, and the 20
    // manifest pushes appear in it exactly once each.
    let summary = a.verify_audit();
    let records = a.audit_records();
    assert_eq!(records, b.audit_records());
    assert_eq!(summary.records as usize, records.len());
    let manifest_pushes = records
        .iter()
        .filter(|r| {
            let e = &r.event;
            (e.action.as_str(), e.result.as_str(), e.repository.as_str(), e.reference.as_str())
                == ("push", "allowed", "team/race", "latest")
        })
        .count();
    assert_eq!(manifest_pushes, 20);
}

/// Workers of two replicas claiming from one queue at once: every scan job and every webhook delivery is taken
/// by exactly one of them. Under READ COMMITTED, a claim that picks the oldest row in a subquery and updates it
/// by id let a second claimer, blocked on the first's row lock, take the same row again once it committed.
#[test]
fn queued_scans_and_deliveries_are_claimed_once_across_replicas() {
    use customs_registry::scanning::store::ScanStore;
    use customs_registry::webhooks::store::DeliveryStore;

    let (a, _b) = pair();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (meta_a, meta_b) = (a.open_meta().await, a.open_meta().await);
        let now = "2026-12-04T00:00:00Z";
        let (scans, deliveries) = (ScanStore::new(meta_a.clone()), DeliveryStore::new(meta_a.clone()));
        for i in 0..40 {
            assert!(
                scans
                    .enqueue(&format!("sha256:{i:064}"), "team/app", "v1", "push", now, false)
                    .await
                    .unwrap()
            );
            deliveries
                .enqueue("hook", &format!("event-{i}"), "image.pushed", "team/app", "{}", now)
                .await
                .unwrap();
        }
        let mut claimers = Vec::new();
        for k in 0..8 {
            let meta = if k % 2 == 0 { meta_a.clone() } else { meta_b.clone() };
            claimers.push(tokio::spawn(async move {
                let (scans, deliveries) = (ScanStore::new(meta.clone()), DeliveryStore::new(meta));
                let (mut jobs, mut sent) = (Vec::new(), Vec::new());
                loop {
                    let job = scans.claim(now, "2026-12-04T01:00:00Z").await.unwrap();
                    let delivery = deliveries.claim(now, "2026-12-04T01:00:00Z").await.unwrap();
                    if job.is_none() && delivery.is_none() {
                        break;
                    }
                    jobs.extend(job.map(|j| j.digest));
                    sent.extend(delivery.map(|d| d.event_id));
                }
                (jobs, sent)
            }));
        }
        let (mut jobs, mut sent) = (Vec::new(), Vec::new());
        for claimer in claimers {
            let (j, s) = claimer.await.unwrap();
            jobs.extend(j);
            sent.extend(s);
        }
        let (claimed_jobs, claimed_deliveries) = (jobs.len(), sent.len());
        jobs.sort();
        jobs.dedup();
        sent.sort();
        sent.dedup();
        assert_eq!((claimed_jobs, claimed_deliveries), (40, 40), "each claimed exactly once");
        assert_eq!((jobs.len(), sent.len()), (40, 40));
    });
}

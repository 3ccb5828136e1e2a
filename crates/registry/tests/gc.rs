//! Garbage collection against a running registry: what goes, what stays, and pushes that interleave with a
//! run at the points where a careless collector loses data (forced with a plan made before the push, and with a
//! hook that holds the collector between marking a blob and deleting it).

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use customs_registry::gc::{Collector, GcReport, GcSettings};
use support::{Cred, OCI_MANIFEST, TestRegistry, digest, image_manifest, start};

const GRANTS: &str = r#"
[[grant]]
to = "writer"
repositories = ["team/**"]
actions = ["pull", "push", "delete"]
"#;

/// Short enough for a test, far longer than a push's claim-to-link step.
const GRACE: Duration = Duration::from_millis(300);

fn collector(reg: &TestRegistry, upload_ttl: Duration, untagged: Option<Duration>) -> Collector {
    let settings = GcSettings {
        grace: GRACE,
        upload_ttl,
        untagged: untagged.map(|after| (after, customs_registry::access::repository_matchers(&["**".into()]).unwrap())),
        interval: None,
    };
    Collector::new(reg.registry.meta.clone(), reg.registry.blobs.clone(), settings)
}

fn age() {
    std::thread::sleep(GRACE + Duration::from_millis(150));
}

fn blob_file(reg: &TestRegistry, d: &str) -> PathBuf {
    let hex = d.strip_prefix("sha256:").unwrap();
    reg.dir.path().join("data/blobs/blobs/sha256").join(&hex[..2]).join(hex)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    out
}

fn blob_status(reg: &TestRegistry, repo: &str, d: &str, cred: &Cred) -> u16 {
    let reply = reg.request("GET", &format!("/v2/{repo}/blobs/{d}"), cred, &[], None);
    assert!(reply.status != 500, "GET {repo} {d}: {}", String::from_utf8_lossy(&reply.body));
    reply.status
}

/// PUTs an OCI image manifest at `path` (`/v2/REPO/manifests/REFERENCE`).
fn put_manifest(reg: &TestRegistry, path: &str, cred: &Cred, manifest: &str) -> support::Reply {
    reg.request("PUT", path, cred, &[("Content-Type", OCI_MANIFEST)], Some(manifest.as_bytes()))
}

fn image_parts(seed: &str) -> (String, Vec<u8>, String) {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
    let layer = format!("layer of {seed}").into_bytes();
    let manifest = image_manifest(config.as_bytes(), &layer, None);
    (config, layer, manifest)
}

#[test]
fn unused_blobs_and_links_go_used_ones_stay_and_a_dry_run_deletes_nothing() {
    let reg = start(GRANTS, &["writer"]);
    let w = reg.basic("writer");
    assert_eq!(reg.push_image("team/app", "v1", &w, "a").status, 201);
    let (config, layer, manifest) = image_parts("a");
    // The same image in a second repository, then deleted there: its links go, the blobs stay for team/app.
    let other = reg.push_image("team/other", "v1", &w, "a");
    assert_eq!(other.status, 201);
    let other_digest = other.header("docker-content-digest").unwrap().to_string();
    assert_eq!(
        reg.request("DELETE", &format!("/v2/team/other/manifests/{other_digest}"), &w, &[], None)
            .status,
        202
    );
    // A blob nothing will ever use.
    let stray = b"a layer whose manifest never came";
    assert_eq!(reg.push_blob("team/app", &w, stray).status, 201);
    let stray_digest = digest(stray);
    assert!(blob_file(&reg, &stray_digest).exists());
    // Just pushed: inside the grace period nothing is garbage.
    let fresh = reg
        .runtime
        .block_on(collector(&reg, Duration::from_secs(3600), None).run(true))
        .unwrap();
    assert_eq!((fresh.links, fresh.blobs), (0, 0), "{fresh:?}");

    age();
    let gc = collector(&reg, Duration::from_secs(3600), None);
    let dry = reg.runtime.block_on(gc.run(true)).unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.links, 3, "the stray link and team/other's two: {dry:?}");
    assert_eq!((dry.blobs, dry.blob_bytes), (1, stray.len() as u64), "{dry:?}");
    assert_eq!(blob_status(&reg, "team/app", &stray_digest, &w), 200, "a dry run deletes nothing");
    assert!(blob_file(&reg, &stray_digest).exists());

    let done = reg.runtime.block_on(gc.run(false)).unwrap();
    assert_eq!(
        (done.links, done.blobs, done.blob_bytes, done.kept_by_pushes),
        (3, 1, stray.len() as u64, 0),
        "{done:?}"
    );
    assert_eq!(blob_status(&reg, "team/app", &stray_digest, &w), 404);
    assert!(!blob_file(&reg, &stray_digest).exists(), "the stray blob's bytes are deleted");
    // The image in team/app is whole; team/other no longer links its blobs.
    let pulled = reg.request("GET", "/v2/team/app/manifests/v1", &w, &[("Accept", OCI_MANIFEST)], None);
    assert_eq!(pulled.status, 200);
    assert_eq!(pulled.body, manifest.as_bytes());
    for blob in [config.as_bytes(), &layer[..]] {
        assert_eq!(blob_status(&reg, "team/app", &digest(blob), &w), 200);
        assert_eq!(blob_status(&reg, "team/other", &digest(blob), &w), 404);
        assert!(blob_file(&reg, &digest(blob)).exists());
    }
    // Nothing left to do.
    let again = reg.runtime.block_on(gc.run(false)).unwrap();
    assert_eq!(again, GcReport::default(), "a second run finds nothing");
}

#[test]
fn a_manifest_pushed_between_plan_and_sweep_keeps_its_blobs() {
    let reg = start(GRANTS, &["writer"]);
    let w = reg.basic("writer");
    let (config, layer, manifest) = image_parts("late");
    for blob in [config.as_bytes(), &layer[..]] {
        assert_eq!(reg.push_blob("team/app", &w, blob).status, 201);
    }
    age();
    let gc = collector(&reg, Duration::from_secs(3600), None);
    let plan = reg.runtime.block_on(gc.plan()).unwrap();
    assert_eq!(
        (plan.report().links, plan.report().blobs),
        (2, 2),
        "both blobs look unused at the plan"
    );
    // The client pushes the manifest that uses them after the plan, before the sweep.
    let put = put_manifest(&reg, "/v2/team/app/manifests/v1", &w, &manifest);
    assert_eq!(put.status, 201);
    let swept = reg.runtime.block_on(gc.sweep(&plan)).unwrap();
    assert_eq!((swept.links, swept.blobs), (0, 0), "{swept:?}");
    assert_eq!(swept.kept_by_pushes, 4, "two links and two blobs left alone: {swept:?}");
    for blob in [config.as_bytes(), &layer[..]] {
        assert_eq!(blob_status(&reg, "team/app", &digest(blob), &w), 200);
    }
}

#[test]
fn a_blob_checked_before_its_manifest_is_refreshed_and_kept() {
    // The registry's grace is 1 s: a HEAD refreshes a link older than half of it.
    let reg = start(&format!("{GRANTS}\n[gc]\nenabled = false\ngrace = \"1s\"\n"), &["writer"]);
    let w = reg.basic("writer");
    let (config, layer, manifest) = image_parts("checked");
    for blob in [config.as_bytes(), &layer[..]] {
        assert_eq!(reg.push_blob("team/app", &w, blob).status, 201);
    }
    std::thread::sleep(Duration::from_millis(700));
    let gc = collector(&reg, Duration::from_secs(3600), None);
    assert_eq!(
        reg.runtime.block_on(gc.plan()).unwrap().report().links,
        2,
        "old links no manifest uses"
    );
    // The client checks the blobs before pushing the manifest (as docker and podman do): the links are
    // relied on again, so a collection now leaves them alone.
    for blob in [config.as_bytes(), &layer[..]] {
        let head = reg.request("HEAD", &format!("/v2/team/app/blobs/{}", digest(blob)), &w, &[], None);
        assert_eq!(head.status, 200);
    }
    assert_eq!(reg.runtime.block_on(gc.run(false)).unwrap(), GcReport::default());
    let put = put_manifest(&reg, "/v2/team/app/manifests/v1", &w, &manifest);
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
}

#[test]
fn a_blob_pushed_again_while_it_is_being_deleted_waits_and_is_stored() {
    let reg = start(GRANTS, &["writer"]);
    let w = reg.basic("writer");
    let bytes = b"pushed, unlinked, collected and pushed again".to_vec();
    let d = digest(&bytes);
    assert_eq!(reg.push_blob("team/app", &w, &bytes).status, 201);
    assert_eq!(reg.request("DELETE", &format!("/v2/team/app/blobs/{d}"), &w, &[], None).status, 202);
    age();

    // Hold the collector right after it marked the blob for deletion, before the bytes go.
    let (marked_tx, marked_rx) = mpsc::channel::<String>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let hold = Mutex::new((marked_tx, release_rx));
    let gc = collector(&reg, Duration::from_secs(3600), None).after_marking(Arc::new(move |digest: &str| {
        let hold = hold.lock().unwrap();
        hold.0.send(digest.to_string()).unwrap();
        hold.1.recv_timeout(Duration::from_secs(60)).unwrap();
    }));
    let runtime = reg.runtime.clone();
    let sweeping = std::thread::spawn(move || runtime.block_on(gc.run(false)).unwrap());
    assert_eq!(marked_rx.recv_timeout(Duration::from_secs(30)).unwrap(), d);

    // The same blob is pushed now: the push must not be acknowledged before the collector is done with it.
    let reg = Arc::new(reg);
    let pusher = {
        let (reg, w, bytes) = (reg.clone(), w.clone(), bytes.clone());
        std::thread::spawn(move || reg.push_blob("team/app", &w, &bytes).status)
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(!pusher.is_finished(), "the push waits while the blob is being deleted");
    release_tx.send(()).unwrap();
    let report = sweeping.join().unwrap();
    assert_eq!((report.blobs, report.links), (1, 0), "{report:?}");
    assert_eq!(pusher.join().unwrap(), 201);
    let mut got = reg.request("GET", &format!("/v2/team/app/blobs/{d}"), &w, &[], None);
    assert_eq!(got.status, 200);
    assert_eq!(std::mem::take(&mut got.body), bytes, "the acknowledged blob is stored");
    assert!(blob_file(&reg, &d).exists());
}

#[test]
fn untagged_manifests_go_parents_first_and_one_tagged_meanwhile_keeps_what_it_needs() {
    let reg = start(GRANTS, &["writer"]);
    let w = reg.basic("writer");
    let first = reg.push_image("team/app", "v1", &w, "a");
    assert_eq!(first.status, 201);
    let (_, _, first_manifest) = image_parts("a");
    let first_digest = first.header("docker-content-digest").unwrap().to_string();
    // A signature-like referrer of the first image, with blobs of its own.
    let (sig_config, sig_layer) = (b"{\"sig\":1}".to_vec(), b"signature payload".to_vec());
    for blob in [&sig_config, &sig_layer] {
        assert_eq!(reg.push_blob("team/app", &w, blob).status, 201);
    }
    let referrer = image_manifest(&sig_config, &sig_layer, Some((&first_digest, first_manifest.len())));
    let referrer_digest = digest(referrer.as_bytes());
    let put = put_manifest(&reg, &format!("/v2/team/app/manifests/{referrer_digest}"), &w, &referrer);
    assert_eq!(put.status, 201);
    // v1 moves on: the first image and its referrer are untagged now.
    assert_eq!(reg.push_image("team/app", "v1", &w, "b").status, 201);
    age();

    let gc = collector(&reg, Duration::from_secs(3600), Some(Duration::ZERO));
    let dry = reg.runtime.block_on(gc.run(true)).unwrap();
    assert_eq!(
        dry.manifests,
        [format!("team/app@{first_digest}"), format!("team/app@{referrer_digest}")],
        "the subject before its referrer"
    );
    assert_eq!((dry.links, dry.blobs), (4, 4), "{dry:?}");

    // Forced interleaving: the first image is tagged again after the plan.
    let plan = reg.runtime.block_on(gc.plan()).unwrap();
    let retag = put_manifest(&reg, "/v2/team/app/manifests/v0", &w, &first_manifest);
    assert_eq!(retag.status, 201);
    let swept = reg.runtime.block_on(gc.sweep(&plan)).unwrap();
    assert!(swept.manifests.is_empty(), "{swept:?}");
    assert_eq!((swept.links, swept.blobs), (0, 0), "{swept:?}");
    assert!(swept.kept_by_pushes >= 1);
    let v0 = reg.request("GET", "/v2/team/app/manifests/v0", &w, &[("Accept", OCI_MANIFEST)], None);
    assert_eq!(v0.status, 200);
    let (config, layer, _) = image_parts("a");
    for blob in [config.as_bytes(), &layer[..], &sig_config, &sig_layer] {
        assert_eq!(blob_status(&reg, "team/app", &digest(blob), &w), 200);
    }
    let referrers = reg.request("GET", &format!("/v2/team/app/referrers/{first_digest}"), &w, &[], None);
    assert_eq!(
        referrers.json()["manifests"].as_array().unwrap().len(),
        1,
        "the referrer of a kept image stays"
    );

    // Untagged again and aged: both go, with their blobs; v1 stays whole.
    assert_eq!(reg.request("DELETE", "/v2/team/app/manifests/v0", &w, &[], None).status, 202);
    age();
    let done = reg.runtime.block_on(gc.run(false)).unwrap();
    assert_eq!(done.manifests.len(), 2, "{done:?}");
    assert_eq!((done.links, done.blobs), (4, 4), "{done:?}");
    assert_eq!(
        reg.request("GET", &format!("/v2/team/app/manifests/{first_digest}"), &w, &[], None)
            .status,
        404
    );
    for blob in [config.as_bytes(), &layer[..], &sig_config, &sig_layer] {
        assert!(!blob_file(&reg, &digest(blob)).exists());
    }
    let (config_b, layer_b, _) = image_parts("b");
    assert_eq!(
        reg.request("GET", "/v2/team/app/manifests/v1", &w, &[("Accept", OCI_MANIFEST)], None)
            .status,
        200
    );
    for blob in [config_b.as_bytes(), &layer_b[..]] {
        assert_eq!(blob_status(&reg, "team/app", &digest(blob), &w), 200);
    }
}

#[test]
fn abandoned_uploads_and_crash_leftovers_go_live_uploads_stay() {
    let reg = start(GRANTS, &["writer"]);
    let w = reg.basic("writer");
    let uploads = reg.dir.path().join("data/blobs/uploads");
    let patch = |location: &str, bytes: &[u8]| {
        let range = format!("0-{}", bytes.len() - 1);
        let reply = reg.request("PATCH", location, &w, &[("Content-Range", range.as_str())], Some(bytes));
        assert_eq!(reply.status, 202);
    };
    let begin = || {
        let reply = reg.request("POST", "/v2/team/app/blobs/uploads/", &w, &[], None);
        assert_eq!(reply.status, 202);
        reply.header("location").unwrap().to_string()
    };
    let abandoned = begin();
    patch(&abandoned, &[7u8; 1000]);
    // What a process killed mid-write leaves: a staging file of an upload whose session is gone.
    let orphan_dir = uploads.join("00000000-0000-4000-8000-000000000000");
    std::fs::create_dir_all(&orphan_dir).unwrap();
    std::fs::write(orphan_dir.join("00000000000000000000-deadbeef#1"), [1u8; 500]).unwrap();
    age();
    let live = begin();
    patch(&live, &[9u8; 200]);
    let live_id = live.rsplit('/').next().unwrap();
    std::fs::write(uploads.join(live_id).join("00000000000000000200-cafe#3"), [2u8; 50]).unwrap();

    let gc = collector(&reg, GRACE, None);
    let dry = reg.runtime.block_on(gc.run(true)).unwrap();
    assert_eq!(dry.uploads, 1, "{dry:?}");
    assert_eq!((dry.staging_objects, dry.staging_bytes), (2, 1500), "{dry:?}");
    assert_eq!(
        reg.request("GET", &abandoned, &w, &[], None).status,
        204,
        "a dry run deletes nothing"
    );

    let done = reg.runtime.block_on(gc.run(false)).unwrap();
    assert_eq!(done.uploads, 1, "{done:?}");
    assert_eq!((done.staging_objects, done.staging_bytes), (2, 1500), "{done:?}");
    assert_eq!(reg.request("GET", &abandoned, &w, &[], None).status, 404);
    assert_eq!(reg.request("GET", &live, &w, &[], None).status, 204, "the live upload stays");
    let abandoned_id = abandoned.rsplit('/').next().unwrap();
    assert!(files_under(&uploads.join(abandoned_id)).is_empty());
    assert!(!orphan_dir.join("00000000000000000000-deadbeef#1").exists());
    assert_eq!(
        files_under(&uploads.join(live_id)).len(),
        2,
        "the live upload's part and write in progress"
    );
}

#[test]
fn scheduled_collection_is_audited_and_counted() {
    let reg = start(&format!("{GRANTS}\n[gc]\ninterval = \"1s\"\ngrace = \"1s\"\n"), &["writer"]);
    let w = reg.basic("writer");
    let stray = b"collected on schedule";
    assert_eq!(reg.push_blob("team/app", &w, stray).status, 201);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = reg.metrics();
        if metrics.contains("customs_registry_gc_deleted_total{kind=\"blob\"} 1") {
            assert!(
                metrics.contains(&format!("customs_registry_gc_reclaimed_bytes_total {}", stray.len())),
                "{metrics}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no scheduled run deleted the blob:\n{metrics}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(blob_status(&reg, "team/app", &digest(stray), &w), 404);
    let records = reg.audit_records();
    let run = records
        .iter()
        .find(|r| r.event.action == "gc" && r.event.detail.contains("1 blobs"))
        .expect("an audit record of the run");
    assert_eq!(run.event.principal, "registry");
    assert!(
        run.event.detail.contains(&format!("({} bytes)", stray.len())),
        "{}",
        run.event.detail
    );
}

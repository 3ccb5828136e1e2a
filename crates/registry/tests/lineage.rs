//! Base images and rebuild triggers, in process: images record the base they are built on (by their layers, or
//! by the `org.opencontainers.image.base.*` annotations), a moved base tag sends `base.updated` to each
//! repository with tagged images on the old base (one event per repository, signed), the images' scans say how
//! many findings come from the base and recommend a newer base with fewer, and long layer lists match across the
//! store's query chunks. The buildah acceptance test is in `crates/customs/tests/registry_scanning.rs`.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::debian::{debian_layer, wait_for_scan, write_database};
use support::receiver::{Receiver, verify};
use support::{Cred, OCI_MANIFEST, TestRegistry, digest};

const CONFIG: &str = r#"
[scanning]
vulnerability_db = "VULN_DB"
workers = 2

[[webhook]]
name = "rebuilds"
url = "RECEIVER"
events = ["base.updated"]
retry_after = "0s"

[[grant]]
to = "ci"
repositories = ["**"]
actions = ["pull", "push"]

[[grant]]
to = "viewer"
repositories = ["base/**", "prod/**"]
actions = ["pull"]
"#;

fn file_layer(path: &str, body: &str) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(body.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, path, body.as_bytes()).unwrap();
    tar.into_inner().unwrap()
}

/// Pushes an image of `layers` (uncompressed tars) with `annotations` under `tag` (or by digest when `None`);
/// `diff_ids` overrides the config's list (to test lineage apart from the layers' content).
fn push(
    reg: &TestRegistry,
    cred: &Cred,
    (repo, tag): (&str, Option<&str>),
    layers: &[Vec<u8>],
    annotations: Value,
    diff_ids: Option<Vec<String>>,
) -> String {
    let diff_ids = diff_ids.unwrap_or_else(|| layers.iter().map(|l| digest(l)).collect());
    let config =
        json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {}}).to_string();
    for blob in std::iter::once(config.as_bytes()).chain(layers.iter().map(Vec::as_slice)) {
        assert_eq!(reg.push_blob(repo, cred, blob).status, 201);
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config.as_bytes()), "size": config.len()},
        "layers": layers.iter().map(|l| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(l), "size": l.len()})).collect::<Vec<_>>(),
        "annotations": annotations,
    })
    .to_string();
    let reference = tag.map_or_else(|| digest(manifest.as_bytes()), str::to_string);
    let reply = reg.request(
        "PUT",
        &format!("/v2/{repo}/manifests/{reference}"),
        cred,
        &[("Content-Type", OCI_MANIFEST)],
        Some(manifest.as_bytes()),
    );
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    reply.header("docker-content-digest").unwrap().to_string()
}

/// (repository, tags, found by, on the current base) of each dependent.
fn dependents(reg: &TestRegistry, repo: &str, digest: &str, tag: Option<&str>) -> Vec<(String, Vec<String>, String, bool)> {
    let found = reg
        .runtime
        .block_on(customs_registry::lineage::dependents(&reg.registry.meta, repo, digest, tag))
        .unwrap();
    found
        .into_iter()
        .map(|d| {
            (
                d.lineage.repository,
                d.tags,
                d.lineage.base_source.unwrap_or_default(),
                d.base_current,
            )
        })
        .collect()
}

fn row(repo: &str, tag: &str, found_by: &str, current: bool) -> (String, Vec<String>, String, bool) {
    (repo.to_string(), vec![tag.to_string()], found_by.to_string(), current)
}

/// Deliveries of `base.updated`, by the dependent repository they are about, once `n` arrived.
fn base_updates(receiver: &Receiver, n: usize) -> Vec<support::receiver::Delivery> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: Vec<_> = receiver
            .deliveries()
            .into_iter()
            .filter(|d| d.answered == 200 && d.kind() == "customs.registry.base.updated")
            .collect();
        if got.len() >= n {
            return got;
        }
        assert!(Instant::now() < deadline, "{} of {n} base.updated deliveries in 60 s", got.len());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_moved_base_tag_tells_each_dependent_repository_and_scans_recommend_the_newer_base() {
    let receiver = Receiver::start("none", 0);
    let db_dir = tempfile::tempdir().unwrap();
    write_database(db_dir.path());
    let config = CONFIG
        .replace("VULN_DB", &db_dir.path().join("vuln.db").display().to_string())
        .replace("RECEIVER", &receiver.url);
    let reg = support::start(&config, &["ci", "viewer"]);
    let ci = reg.basic("ci");
    let secret = std::fs::read_to_string(reg.dir.path().join("data/webhooks/rebuilds.secret")).unwrap();

    // The base ships demo-pkg 1.0-1 (one critical advisory); apps add a layer on it.
    let old_base_layer = debian_layer("1.0-1", "base 1");
    let old_base = push(
        &reg,
        &ci,
        ("base/debian", Some("12")),
        std::slice::from_ref(&old_base_layer),
        json!({}),
        None,
    );
    let by_layers = push(
        &reg,
        &ci,
        ("prod/app", Some("1")),
        &[old_base_layer.clone(), file_layer("app/run", "app")],
        json!({}),
        None,
    );
    let annotated = push(
        &reg,
        &ci,
        ("team/svc", Some("2")),
        &[old_base_layer.clone(), file_layer("svc/run", "svc")],
        json!({"org.opencontainers.image.base.name": format!("{}/base/debian:12", reg.host),
               "org.opencontainers.image.base.digest": old_base}),
        None,
    );
    // Untagged images are history, not something to rebuild.
    push(
        &reg,
        &ci,
        ("prod/app", None),
        &[old_base_layer.clone(), file_layer("app/run", "old build")],
        json!({}),
        None,
    );

    let listed = dependents(&reg, "base/debian", &old_base, Some("12"));
    assert_eq!(
        listed,
        vec![row("prod/app", "1", "layers", true), row("team/svc", "2", "annotation", true)]
    );
    let doc = wait_for_scan(&reg, "prod/app", &by_layers, &ci);
    let base = &doc["base"];
    assert_eq!(base["found_by"], "layers", "{base:#}");
    assert_eq!(base["repository"], "base/debian");
    assert_eq!(base["digest"], old_base.as_str());
    assert_eq!(base["tags"], json!(["12"]));
    assert_eq!(base["layers"], 1);
    assert_eq!(base["findings"], 1);
    assert_eq!(base["findings_from_base"], 1, "demo-pkg is in the base layer");
    assert_eq!(base["newer"], Value::Null, "no newer base yet");
    wait_for_scan(&reg, "team/svc", &annotated, &ci);

    // The API: dependents, only in repositories the caller may pull; a repository's verdicts per tag.
    let api = reg.request(
        "GET",
        "/api/v1/repositories/base/debian/manifests/12/dependents",
        &reg.basic("viewer"),
        &[],
        None,
    );
    assert_eq!(api.status, 200, "{}", String::from_utf8_lossy(&api.body));
    let api = api.json();
    assert_eq!(api["dependents"].as_array().unwrap().len(), 1, "{api:#}");
    assert_eq!(api["dependents"][0]["repository"], "prod/app");
    assert_eq!(api["dependents"][0]["base_current"], true);
    assert_eq!(api["not_shown"], 1, "team/svc is not the viewer's");
    let verdicts = reg.request("GET", "/api/v1/repositories/prod/app/verdicts", &ci, &[], None).json();
    let tags = verdicts["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 1, "{verdicts:#}");
    assert_eq!(
        (tags[0]["tag"].as_str(), tags[0]["digest"].as_str()),
        (Some("1"), Some(by_layers.as_str()))
    );
    assert_eq!(tags[0]["images"][0]["status"], "scanned");
    assert_eq!(tags[0]["images"][0]["verdict"]["pass"], false);
    assert_eq!(
        tags[0]["images"][0]["verdict"]["failing_by_severity"]["CRITICAL"], 1,
        "{verdicts:#}"
    );
    let denied = reg.request("GET", "/api/v1/repositories/team/svc/verdicts", &reg.basic("viewer"), &[], None);
    assert_eq!(denied.status, 403);
    // A wrong secret: 401 with the challenge `/v2/` gives, so a client knows where to get a token.
    let wrong = Cred::Basic("viewer".into(), "cst_wrong".into());
    let unauthorized = reg.request("GET", "/api/v1/repositories/prod/app/verdicts", &wrong, &[], None);
    assert_eq!(unauthorized.status, 401);
    let challenge = unauthorized.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer realm=\"https://"), "{challenge:?}");

    // The base is rebuilt with the fix and its tag moves: one base.updated per dependent repository.
    let new_base = push(
        &reg,
        &ci,
        ("base/debian", Some("12")),
        &[debian_layer("1.0-2", "base 2")],
        json!({}),
        None,
    );
    let updates = base_updates(&receiver, 2);
    let now = reg.registry.clock.now().unix_timestamp();
    let mut seen = HashSet::new();
    let mut about: Vec<String> = Vec::new();
    for update in &updates {
        verify(&secret, update, now, &mut seen).unwrap();
        let event = update.json();
        let data = &event["data"];
        assert_eq!(event["subject"], data["repository"]);
        assert_eq!(
            data["base"],
            json!({"repository": "base/debian", "tag": "12", "old_digest": old_base, "new_digest": new_base})
        );
        let images = data["images"].as_array().unwrap();
        assert_eq!(images.len(), 1, "{data:#}");
        assert_eq!(
            images[0]["verdict"]["pass"], false,
            "the image still has the base's critical finding"
        );
        about.push(data["repository"].as_str().unwrap().to_string());
    }
    about.sort();
    assert_eq!(about, ["prod/app", "team/svc"]);
    assert_eq!(
        updates
            .iter()
            .find(|u| u.json()["data"]["repository"] == "team/svc")
            .unwrap()
            .json()["data"]["images"][0]["digest"],
        annotated.as_str()
    );

    // The newer base scans clean, so the app's scan recommends it.
    assert_eq!(wait_for_scan(&reg, "base/debian", &new_base, &ci)["verdict"]["pass"], true);
    let doc = wait_for_scan(&reg, "prod/app", &by_layers, &ci);
    let newer = &doc["base"]["newer"];
    assert_eq!(newer["digest"], new_base.as_str(), "{:#}", doc["base"]);
    assert_eq!(newer["tags"], json!(["12"]));
    assert_eq!(newer["findings"], 0);
    assert!(
        newer["recommendation"].as_str().unwrap().contains("rebuild on base/debian:12"),
        "{newer:#}"
    );

    // Both are still built on the tag's earlier image; pushing the same base again moves nothing, tells no one.
    let stale = vec![row("prod/app", "1", "layers", false), row("team/svc", "2", "annotation", false)];
    assert_eq!(dependents(&reg, "base/debian", &new_base, Some("12")), stale);
    push(
        &reg,
        &ci,
        ("base/debian", Some("12")),
        &[debian_layer("1.0-2", "base 2")],
        json!({}),
        None,
    );
    // The app rebuilt on the new base is on the current base; the service is not.
    let rebuilt = push(
        &reg,
        &ci,
        ("prod/app", Some("1")),
        &[debian_layer("1.0-2", "base 2"), file_layer("app/run", "app")],
        json!({}),
        None,
    );
    let listed = dependents(&reg, "base/debian", &new_base, Some("12"));
    assert_eq!(
        listed,
        vec![row("prod/app", "1", "layers", true), row("team/svc", "2", "annotation", false)]
    );
    let on_old: Vec<String> = dependents(&reg, "base/debian", &old_base, None).into_iter().map(|d| d.0).collect();
    assert_eq!(on_old, ["team/svc"], "prod/app:1 now points at {rebuilt}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(base_updates(&receiver, 2).len(), 2, "a push that moves no base tag tells no one");
    // A third base: the rebuilt app is told, and so is the service still on the first one.
    let third = push(
        &reg,
        &ci,
        ("base/debian", Some("12")),
        &[debian_layer("1.0-3", "base 3")],
        json!({}),
        None,
    );
    let updates = base_updates(&receiver, 4);
    let latest: std::collections::BTreeSet<(String, String)> = updates[2..]
        .iter()
        .map(|u| {
            let data = u.json()["data"].clone();
            assert_eq!(data["base"]["new_digest"], third.as_str());
            (
                data["repository"].as_str().unwrap().to_string(),
                data["images"][0]["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: std::collections::BTreeSet<(String, String)> = [
        ("prod/app".to_string(), rebuilt.clone()),
        ("team/svc".to_string(), annotated.clone()),
    ]
    .into();
    assert_eq!(latest, expected);

    // Lineage of images stored before it was kept is recorded at start-up (an upgrade): forget one, backfill.
    let runtime = reg.runtime.clone();
    runtime.block_on(reg.registry.lineage.delete("team/svc", &annotated)).unwrap();
    runtime.block_on(customs_registry::lineage::backfill(&reg.registry));
    let row = runtime.block_on(reg.registry.lineage.get("team/svc", &annotated)).unwrap().unwrap();
    assert_eq!(row.base_digest.as_deref(), Some(old_base.as_str()));
    assert_eq!(row.base_layers, Some(1));
}

#[test]
fn long_layer_lists_match_across_query_chunks_and_oversized_ones_get_no_lineage() {
    let reg = support::start(
        "[[grant]]\nto = \"ci\"\nrepositories = [\"**\"]\nactions = [\"pull\", \"push\"]\n",
        &["ci"],
    );
    let ci = reg.basic("ci");
    let layer = file_layer("x", "x");
    let ids = |n: usize, salt: &str| -> Vec<String> { (0..n).map(|i| digest(format!("{salt} {i}").as_bytes())).collect() };
    // A base of 300 layers, a longer image on it with 450 (the prefix queries go in chunks of 200), and a decoy
    // sharing only the first 250.
    let base_ids = ids(300, "base");
    let base = push(
        &reg,
        &ci,
        ("base/tall", Some("1")),
        std::slice::from_ref(&layer),
        json!({}),
        Some(base_ids.clone()),
    );
    let mut decoy_ids = base_ids[..250].to_vec();
    decoy_ids.extend(ids(10, "decoy"));
    push(
        &reg,
        &ci,
        ("base/decoy", Some("1")),
        std::slice::from_ref(&layer),
        json!({}),
        Some(decoy_ids),
    );
    let mut app_ids = base_ids.clone();
    app_ids.extend(ids(150, "app"));
    let app = push(
        &reg,
        &ci,
        ("prod/tall", Some("1")),
        std::slice::from_ref(&layer),
        json!({}),
        Some(app_ids),
    );
    let row = reg.runtime.block_on(reg.registry.lineage.get("prod/tall", &app)).unwrap().unwrap();
    assert_eq!(
        (row.base_digest.as_deref(), row.base_layers, row.layer_count),
        (Some(base.as_str()), Some(300), 450)
    );
    // More layers than lineage is kept for: the push is stored all the same, with no lineage.
    let huge = push(
        &reg,
        &ci,
        ("prod/huge", Some("1")),
        std::slice::from_ref(&layer),
        json!({}),
        Some(ids(10_001, "huge")),
    );
    assert!(
        reg.runtime
            .block_on(reg.registry.lineage.get("prod/huge", &huge))
            .unwrap()
            .is_none()
    );
    let reply = reg.request("GET", "/v2/prod/huge/manifests/1", &ci, &[("Accept", OCI_MANIFEST)], None);
    assert_eq!(reply.status, 200);
}

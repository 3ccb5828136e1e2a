//! The OCI distribution API over TLS with raw HTTP: uploads (monolithic, chunked, resumable), ranges, manifests,
//! tags and catalog pagination, mounts, referrers, deletes, spec error codes, and both auth protocols.

mod support;

use support::{Cred, OCI_MANIFEST, digest, image_manifest, start};

const GRANTS: &str = r#"
[[grant]]
to = "writer"
repositories = ["team/**"]
actions = ["pull", "push", "delete"]
[[grant]]
to = "reader"
repositories = ["team/app"]
actions = ["pull"]
[[grant]]
to = "signer"
repositories = ["team/app"]
actions = ["pull", "sign"]
"#;

#[test]
fn challenge_and_token_flow() {
    let reg = start(GRANTS, &["writer", "reader", "disabled"]);
    let ping = reg.request("GET", "/v2/", &Cred::None, &[], None);
    assert_eq!(ping.status, 401);
    let challenge = ping.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with(&format!("Bearer realm=\"https://{}/token\",service=\"customs-registry\"", reg.host)),
        "{challenge}"
    );
    assert_eq!(ping.header("docker-distribution-api-version"), Some("registry/2.0"));

    // Token for what the matrix allows only: reader asks pull+push and gets pull.
    let token = reg.token(Some("reader"), "repository:team/app:pull,push");
    let pull = reg.request("GET", "/v2/team/app/tags/list", &Cred::Bearer(token.clone()), &[], None);
    assert_eq!(pull.status, 404, "repository does not exist yet, but the pull is authorized");
    assert_eq!(pull.error_code(), "NAME_UNKNOWN");
    let push = reg.request("POST", "/v2/team/app/blobs/uploads/", &Cred::Bearer(token), &[], None);
    assert_eq!(push.status, 401);
    assert!(push.header("www-authenticate").unwrap().contains("error=\"insufficient_scope\""));

    // Wrong secret: 401 at the token endpoint, audited as a denied login.
    let bad = reg.request(
        "GET",
        "/token?scope=repository:team/app:pull",
        &Cred::Basic("reader".into(), "nope".into()),
        &[],
        None,
    );
    assert_eq!(bad.status, 401);

    // OAuth2 form POST with a refresh token, then the refresh grant.
    let form = format!(
        "grant_type=password&service=customs-registry&client_id=test&access_type=offline&username=writer&password={}&scope=repository:team/app:push",
        reg.secrets["writer"]
    );
    let reply = reg.request(
        "POST",
        "/token",
        &Cred::None,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(form.as_bytes()),
    );
    assert_eq!(reply.status, 200);
    let refresh = reply.json()["refresh_token"].as_str().unwrap().to_string();
    let form = format!("grant_type=refresh_token&service=customs-registry&refresh_token={refresh}&scope=repository:team/app:pull");
    let reply = reg.request(
        "POST",
        "/token",
        &Cred::None,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(form.as_bytes()),
    );
    assert_eq!(reply.status, 200);
    let token = reply.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(reg.request("GET", "/v2/", &Cred::Bearer(token), &[], None).status, 200);

    // A disabled principal cannot log in, and unknown names are refused the same way.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let meta = reg.open_meta().await;
        assert!(meta.set_disabled("disabled", true).await.unwrap());
    });
    for cred in [reg.basic("disabled"), Cred::Basic("nobody".into(), "x".into())] {
        assert_eq!(
            reg.request("GET", "/token?scope=repository:team/app:pull", &cred, &[], None).status,
            401
        );
    }

    let logins: Vec<_> = reg
        .audit_records()
        .into_iter()
        .filter(|r| r.event.action == "login" && r.event.result == "denied")
        .map(|r| (r.event.principal, r.event.detail))
        .collect();
    assert_eq!(
        logins,
        [
            ("reader".to_string(), "wrong secret".to_string()),
            ("disabled".to_string(), "principal disabled".to_string()),
            ("nobody".to_string(), "unknown principal".to_string())
        ]
    );
}

#[test]
fn chunked_upload_resume_range_and_digest_checks() {
    let reg = start(GRANTS, &["writer"]);
    let w = reg.basic("writer");
    let blob: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let d = digest(&blob);

    let start = reg.request("POST", "/v2/team/app/blobs/uploads/", &w, &[], None);
    assert_eq!(start.status, 202);
    assert_eq!(start.header("range"), Some("0-0"));
    let location = start.header("location").unwrap().to_string();
    let id = start.header("docker-upload-uuid").unwrap().to_string();
    assert!(location.ends_with(&id));

    let first = reg.request("PATCH", &location, &w, &[("Content-Range", "0-99999")], Some(&blob[..100_000]));
    assert_eq!(first.status, 202);
    assert_eq!(first.header("range"), Some("0-99999"));

    // A chunk that does not continue where the upload stands is refused with the current range.
    let gap = reg.request(
        "PATCH",
        &location,
        &w,
        &[("Content-Range", "150000-199999")],
        Some(&blob[150_000..200_000]),
    );
    assert_eq!(gap.status, 416);
    assert_eq!(gap.header("range"), Some("0-99999"));

    // The client asks where it stands, then resumes.
    let status = reg.request("GET", &location, &w, &[], None);
    assert_eq!(status.status, 204);
    assert_eq!(status.header("range"), Some("0-99999"));
    let second = reg.request(
        "PATCH",
        &location,
        &w,
        &[("Content-Range", "100000-249999")],
        Some(&blob[100_000..250_000]),
    );
    assert_eq!(second.status, 202);

    // Not visible before the final PUT.
    assert_eq!(reg.request("HEAD", &format!("/v2/team/app/blobs/{d}"), &w, &[], None).status, 404);

    // A wrong digest discards the upload and stores nothing.
    let wrong = digest(b"something else");
    let put = reg.request("PUT", &format!("{location}?digest={wrong}"), &w, &[], Some(&blob[250_000..]));
    assert_eq!(put.status, 400);
    assert_eq!(put.error_code(), "DIGEST_INVALID");
    assert_eq!(reg.request("GET", &location, &w, &[], None).status, 404);
    assert_eq!(
        reg.request("HEAD", &format!("/v2/team/app/blobs/{wrong}"), &w, &[], None).status,
        404
    );

    // Again, properly: chunks then the last one in the PUT.
    let start = reg.request("POST", "/v2/team/app/blobs/uploads/", &w, &[], None);
    let location = start.header("location").unwrap().to_string();
    assert_eq!(reg.request("PATCH", &location, &w, &[], Some(&blob[..123_456])).status, 202);
    let put = reg.request(
        "PUT",
        &format!("{location}?digest={d}"),
        &w,
        &[("Content-Range", "123456-299999")],
        Some(&blob[123_456..]),
    );
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    assert_eq!(put.header("docker-content-digest"), Some(d.as_str()));
    assert_eq!(put.header("location"), Some(format!("/v2/team/app/blobs/{d}").as_str()));

    let head = reg.request("HEAD", &format!("/v2/team/app/blobs/{d}"), &w, &[], None);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("300000"));
    let whole = reg.request("GET", &format!("/v2/team/app/blobs/{d}"), &w, &[], None);
    assert_eq!(whole.body, blob);
    let part = reg.request("GET", &format!("/v2/team/app/blobs/{d}"), &w, &[("Range", "bytes=1000-1999")], None);
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 1000-1999/300000"));
    assert_eq!(part.body, &blob[1000..2000]);
    let outside = reg.request("GET", &format!("/v2/team/app/blobs/{d}"), &w, &[("Range", "bytes=300000-")], None);
    assert_eq!(outside.status, 416);

    // Monolithic POST with the digest, and the empty blob.
    let small = b"monolithic".to_vec();
    let mono = reg.request(
        "POST",
        &format!("/v2/team/app/blobs/uploads/?digest={}", digest(&small)),
        &w,
        &[],
        Some(&small),
    );
    assert_eq!(mono.status, 201);
    let empty = reg.request(
        "POST",
        &format!("/v2/team/app/blobs/uploads/?digest={}", digest(b"")),
        &w,
        &[],
        None,
    );
    assert_eq!(empty.status, 201, "{}", String::from_utf8_lossy(&empty.body));
    assert_eq!(
        reg.request("GET", &format!("/v2/team/app/blobs/{}", digest(b"")), &w, &[], None)
            .body,
        b""
    );

    // Bad digests and unknown uploads.
    let bad = reg.request("HEAD", "/v2/team/app/blobs/sha256:1234", &w, &[], None);
    assert_eq!(bad.status, 400);
    let unsupported = reg.request("GET", "/v2/team/app/blobs/sha384:abcd", &w, &[], None);
    assert_eq!(unsupported.error_code(), "UNSUPPORTED");
    let short = reg.request("GET", "/v2/team/app/blobs/sha512:abcd", &w, &[], None);
    assert_eq!(short.error_code(), "DIGEST_INVALID", "sha512 is supported, with 128 hex characters");
    let unknown = reg.request("PATCH", "/v2/team/app/blobs/uploads/no-such-upload", &w, &[], Some(b"x"));
    assert_eq!(unknown.error_code(), "BLOB_UPLOAD_UNKNOWN");
    // An upload belongs to its repository.
    let start = reg.request("POST", "/v2/team/app/blobs/uploads/", &w, &[], None);
    let id = start.header("docker-upload-uuid").unwrap();
    assert_eq!(
        reg.request("GET", &format!("/v2/team/other/blobs/uploads/{id}"), &w, &[], None)
            .status,
        404
    );
    assert_eq!(
        reg.request("DELETE", &format!("/v2/team/app/blobs/uploads/{id}"), &w, &[], None)
            .status,
        204
    );
}

#[test]
fn manifests_tags_catalog_mounts_referrers_and_deletes() {
    let reg = start(GRANTS, &["writer", "reader", "signer"]);
    let w = reg.basic("writer");
    assert_eq!(reg.push_image("team/app", "v1", &w, "one").status, 201);
    for tag in ["v2", "v3", "latest"] {
        let reply = reg.push_image("team/app", tag, &w, tag);
        assert_eq!(reply.status, 201);
    }
    let v1 = reg.request("GET", "/v2/team/app/manifests/v1", &w, &[("Accept", OCI_MANIFEST)], None);
    assert_eq!(v1.status, 200);
    assert_eq!(v1.header("content-type"), Some(OCI_MANIFEST));
    let v1_digest = v1.header("docker-content-digest").unwrap().to_string();
    assert_eq!(v1_digest, digest(&v1.body));
    assert_eq!(
        reg.request("HEAD", &format!("/v2/team/app/manifests/{v1_digest}"), &w, &[], None)
            .status,
        200
    );

    // A manifest whose blobs are missing, a digest that does not match, a bad tag.
    let orphan = image_manifest(b"no such config", b"no such layer", None);
    let reply = reg.request(
        "PUT",
        "/v2/team/app/manifests/orphan",
        &w,
        &[("Content-Type", OCI_MANIFEST)],
        Some(orphan.as_bytes()),
    );
    assert_eq!(reply.error_code(), "MANIFEST_BLOB_UNKNOWN");
    let reply = reg.request(
        "PUT",
        &format!("/v2/team/app/manifests/{}", digest(b"x")),
        &w,
        &[("Content-Type", OCI_MANIFEST)],
        Some(&v1.body),
    );
    assert_eq!(reply.error_code(), "DIGEST_INVALID");
    let reply = reg.request(
        "PUT",
        "/v2/team/app/manifests/-bad",
        &w,
        &[("Content-Type", OCI_MANIFEST)],
        Some(&v1.body),
    );
    assert_eq!(reply.error_code(), "TAG_INVALID");
    let reply = reg.request(
        "PUT",
        "/v2/team/app/manifests/x",
        &w,
        &[("Content-Type", OCI_MANIFEST)],
        Some(b"{not json"),
    );
    assert_eq!(reply.error_code(), "MANIFEST_INVALID");
    assert_eq!(
        reg.request("GET", "/v2/team/app/manifests/nope", &w, &[], None).error_code(),
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(
        reg.request("GET", "/v2/Team/manifests/x", &w, &[], None).error_code(),
        "NAME_INVALID"
    );

    // An index may only list manifests already in the repository.
    let v2 = reg.request("GET", "/v2/team/app/manifests/v2", &w, &[], None);
    let index = |child: &str| {
        serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": 1}]})
        .to_string()
    };
    let idx_type = [("Content-Type", "application/vnd.oci.image.index.v1+json")];
    let missing = index(&digest(b"no such manifest"));
    let reply = reg.request("PUT", "/v2/team/app/manifests/multi", &w, &idx_type, Some(missing.as_bytes()));
    assert_eq!(reply.error_code(), "MANIFEST_BLOB_UNKNOWN");
    let present = index(v2.header("docker-content-digest").unwrap());
    let reply = reg.request("PUT", "/v2/team/app/manifests/multi", &w, &idx_type, Some(present.as_bytes()));
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reg.request("DELETE", "/v2/team/app/manifests/multi", &w, &[], None).status, 202);

    // Tags, paginated with a Link header.
    let page = reg.request("GET", "/v2/team/app/tags/list?n=2", &w, &[], None);
    assert_eq!(page.json()["tags"], serde_json::json!(["latest", "v1"]));
    let link = page.header("link").unwrap();
    assert_eq!(link, "</v2/team/app/tags/list?n=2&last=v1>; rel=\"next\"");
    let next = reg.request("GET", "/v2/team/app/tags/list?n=2&last=v1", &w, &[], None);
    assert_eq!(next.json()["tags"], serde_json::json!(["v2", "v3"]));
    assert!(next.header("link").is_none());

    // Cross-repository mount: allowed where the caller may pull the source, else a normal upload starts.
    let layer = b"layer of one";
    let mount = reg.request(
        "POST",
        &format!("/v2/team/copy/blobs/uploads/?mount={}&from=team/app", digest(layer)),
        &w,
        &[],
        None,
    );
    assert_eq!(mount.status, 201);
    assert_eq!(
        reg.request("GET", &format!("/v2/team/copy/blobs/{}", digest(layer)), &w, &[], None)
            .body,
        layer
    );
    let not_there = reg.request(
        "POST",
        &format!("/v2/team/copy/blobs/uploads/?mount={}&from=team/app", digest(b"?")),
        &w,
        &[],
        None,
    );
    assert_eq!(not_there.status, 202);

    // Catalog: filtered to what the caller may pull, paginated.
    let all = reg.request("GET", "/v2/_catalog", &w, &[], None);
    assert_eq!(all.json()["repositories"], serde_json::json!(["team/app", "team/copy"]));
    let reader = reg.request("GET", "/v2/_catalog?n=5", &reg.basic("reader"), &[], None);
    assert_eq!(reader.json()["repositories"], serde_json::json!(["team/app"]));
    assert_eq!(
        reg.request("GET", "/v2/_catalog?n=1", &w, &[], None).header("link"),
        Some("</v2/_catalog?n=1&last=team%2Fapp>; rel=\"next\"")
    );

    // Referrers: a signature pushed by a principal with `sign` but not `push`, filtered by artifactType.
    let s = reg.basic("signer");
    let empty = b"{}";
    assert_eq!(reg.push_blob("team/app", &s, empty).status, 201);
    let sig_payload = b"signature bytes";
    assert_eq!(reg.push_blob("team/app", &s, sig_payload).status, 201);
    let signature = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.cncf.notary.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(empty), "size": 2},
        "layers": [{"mediaType": "application/jose+json", "digest": digest(sig_payload), "size": sig_payload.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": v1_digest, "size": v1.body.len()},
        "annotations": {"io.cncf.notary.x509chain.thumbprint#S256": "[\"abc\"]"},
    })
    .to_string();
    let sig_digest = digest(signature.as_bytes());
    let reply = reg.request(
        "PUT",
        &format!("/v2/team/app/manifests/{sig_digest}"),
        &s,
        &[("Content-Type", OCI_MANIFEST)],
        Some(signature.as_bytes()),
    );
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.header("oci-subject"), Some(v1_digest.as_str()));
    // Nor may the signer move an ordinary tag, even to a signature.
    let retag = reg.request(
        "PUT",
        "/v2/team/app/manifests/v1",
        &s,
        &[("Content-Type", OCI_MANIFEST)],
        Some(signature.as_bytes()),
    );
    assert_eq!(retag.status, 403, "{}", String::from_utf8_lossy(&retag.body));
    // The signer may not push an ordinary image.
    let denied = reg.push_image("team/app", "sneaky", &s, "sneaky");
    assert_eq!(denied.status, 403, "{}", String::from_utf8_lossy(&denied.body));
    assert_eq!(denied.error_code(), "DENIED");

    let refs = reg.request("GET", &format!("/v2/team/app/referrers/{v1_digest}"), &w, &[], None);
    assert_eq!(refs.status, 200);
    assert_eq!(refs.header("content-type"), Some("application/vnd.oci.image.index.v1+json"));
    let manifests = refs.json()["manifests"].clone();
    assert_eq!(manifests.as_array().unwrap().len(), 1);
    assert_eq!(manifests[0]["digest"], sig_digest);
    assert_eq!(manifests[0]["artifactType"], "application/vnd.cncf.notary.signature");
    assert_eq!(manifests[0]["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"], "[\"abc\"]");
    let filtered = reg.request(
        "GET",
        &format!("/v2/team/app/referrers/{v1_digest}?artifactType=application/spdx+json"),
        &w,
        &[],
        None,
    );
    assert_eq!(filtered.json()["manifests"], serde_json::json!([]));
    assert_eq!(filtered.header("oci-filters-applied"), Some("artifactType"));

    // Deletes: a tag, then a manifest by digest (its tags go too), then a blob link; the reader may not delete.
    assert_eq!(
        reg.request("DELETE", "/v2/team/app/manifests/v1", &reg.basic("reader"), &[], None)
            .status,
        403
    );
    assert_eq!(reg.request("DELETE", "/v2/team/app/manifests/latest", &w, &[], None).status, 202);
    assert_eq!(reg.request("GET", "/v2/team/app/manifests/latest", &w, &[], None).status, 404);
    assert_eq!(
        reg.request("DELETE", &format!("/v2/team/app/manifests/{v1_digest}"), &w, &[], None)
            .status,
        202
    );
    assert_eq!(reg.request("GET", "/v2/team/app/manifests/v1", &w, &[], None).status, 404);
    assert_eq!(
        reg.request("DELETE", &format!("/v2/team/copy/blobs/{}", digest(layer)), &w, &[], None)
            .status,
        202
    );
    assert_eq!(
        reg.request("GET", &format!("/v2/team/copy/blobs/{}", digest(layer)), &w, &[], None)
            .status,
        404
    );

    // Health, readiness and metrics.
    assert_eq!(reg.request("GET", "/healthz", &Cred::None, &[], None).status, 200);
    assert_eq!(reg.request("GET", "/readyz", &Cred::None, &[], None).status, 200);
    let metrics = reg.metrics();
    assert!(
        metrics.contains("customs_registry_requests_total{route=\"manifest\",method=\"PUT\",status=\"201\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("customs_registry_denials_total{action=\"push\"}"), "{metrics}");

    let summary = reg.verify_audit();
    assert!(summary.records > 20);
}

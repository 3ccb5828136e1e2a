//! Issue 19, defects 4 and 6: every request under `/v2/` and `/token` is audited (malformed names, unknown
//! endpoints, failed logins as `login`), stored fields are bounded, what an anonymous client can make the log
//! grow by is limited; `Content-Range` must agree with the body; an oversized chunked manifest gets its 413;
//! `/metrics` needs credentials unless made public.

mod support;

use support::{Cred, basic_header};

const CONFIG: &str = r#"
[audit]
unauthenticated_bytes_per_minute = 20000

[[grant]]
to = "ci"
repositories = ["project1/**", "project1"]
actions = ["pull", "push"]
"#;

#[test]
fn refused_before_authorization_is_audited_and_failed_logins_are_logins() {
    let reg = support::start(CONFIG, &["ci"]);
    // Sent byte for byte: clients would normalize the `..` away.
    let (status, body) = reg
        .raw("127.0.0.1", "GET /v2/project1/../project3/tags/list HTTP/1.1", b"")
        .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("NAME_INVALID"), "{body}");
    assert_eq!(
        reg.request("GET", "/v2/project1/nonsense/endpoint", &Cred::None, &[], None).status,
        404
    );
    let wrong = Cred::Basic("ci".into(), "wrong".into());
    assert_eq!(reg.request("GET", "/v2/project1/app/tags/list", &wrong, &[], None).status, 401);
    assert_eq!(reg.request("GET", "/v2/", &Cred::None, &[], None).status, 401);

    let records = reg.audit_records();
    let find = |f: &dyn Fn(&customs_registry::audit::AuditRecord) -> bool| records.iter().find(|r| f(r)).cloned();
    let traversal = find(&|r| r.event.status == 400).expect("the NAME_INVALID request is audited");
    assert!(
        traversal.event.reference.contains("/v2/project1/../project3/tags/list"),
        "{traversal:?}"
    );
    assert_eq!(traversal.event.result, "error");
    let unknown = find(&|r| r.event.status == 404).expect("the unknown endpoint is audited");
    assert!(unknown.event.reference.contains("nonsense/endpoint"));
    let login = find(&|r| r.event.status == 401 && r.event.principal == "ci").expect("the failed login");
    assert_eq!(login.event.action, "login", "a failed login on a pull is a login: {login:?}");
    assert_eq!(login.event.result, "denied");
    let ping = find(&|r| r.event.action == "ping").expect("the anonymous ping");
    assert_eq!(ping.event.result, "challenge");
}

#[test]
fn a_huge_reference_makes_a_small_record_and_anonymous_growth_is_bounded() {
    let reg = support::start(CONFIG, &["ci"]);
    let reference = format!("sha256:{}", "a".repeat(60_000));
    let path = format!("/v2/project1/app/manifests/{reference}");
    let before = dir_size(&reg.audit_dir());
    let mut statuses = Vec::new();
    for _ in 0..100 {
        statuses.push(reg.raw("127.0.0.9", &format!("GET {path} HTTP/1.1"), b"").map(|(s, _)| s));
    }
    let grown = dir_size(&reg.audit_dir()) - before;
    let served = statuses.iter().filter(|s| **s == Some(401)).count();
    let throttled = statuses.iter().filter(|s| **s == Some(429)).count();
    println!(
        "100 anonymous requests with a 60,000-character reference: {served} answered 401, {throttled} 429; the log grew {grown} bytes"
    );
    assert_eq!(served + throttled, 100, "{statuses:?}");
    assert!(throttled > 0, "20,000 bytes a minute cannot hold 100 records");
    // The budget plus one record of overshoot and the throttling record.
    assert!(grown < 20_000 + 4_000, "the log grew {grown} bytes");
    let records = reg.audit_records();
    let long = records.iter().find(|r| r.event.reference.starts_with("sha256:aaaa")).unwrap();
    assert!(
        long.event.reference.len() < 400 && long.event.reference.contains("60007 bytes"),
        "{}",
        long.event.reference
    );
    assert!(
        records
            .iter()
            .any(|r| r.event.result == "throttled" && r.event.client_ip == "127.0.0.9")
    );
    // Another address, and authenticated callers, are not held back.
    assert_eq!(reg.raw("127.0.0.8", &format!("GET {path} HTTP/1.1"), b"").unwrap().0, 401);
    let secret = reg.secrets["ci"].clone();
    let (status, _) = reg
        .raw(
            "127.0.0.9",
            &format!("GET /v2/project1/app/tags/list HTTP/1.1\r\n{}", basic_header("ci", &secret)),
            b"",
        )
        .unwrap();
    assert_eq!(status, 404, "an authenticated request from the throttled address is served");
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

#[test]
fn a_chunk_must_carry_what_its_content_range_says() {
    let reg = support::start(CONFIG, &["ci"]);
    let ci = reg.basic("ci");
    let start = reg.request("POST", "/v2/project1/app/blobs/uploads/", &ci, &[], None);
    assert_eq!(start.status, 202);
    let location = start.header("location").unwrap().to_string();
    let body = vec![7u8; 1000];
    // `0-9` says ten bytes; a thousand are sent.
    let lied = reg.request(
        "PATCH",
        &location,
        &ci,
        &[("Content-Range", "0-9"), ("Content-Type", "application/octet-stream")],
        Some(&body),
    );
    assert_eq!(lied.status, 416, "{}", String::from_utf8_lossy(&lied.body));
    assert!(String::from_utf8_lossy(&lied.body).contains("Content-Length is 1000"));
    let status = reg.request("GET", &location, &ci, &[], None);
    assert_eq!(status.header("range"), Some("0-0"), "nothing was appended");
    // Chunked (no Content-Length): the body itself is measured.
    let secret = reg.secrets["ci"].clone();
    let (status, text) = reg
        .raw(
            "127.0.0.1",
            &format!(
                "PATCH {location} HTTP/1.1\r\n{}\r\nContent-Range: 0-9\r\nTransfer-Encoding: chunked",
                basic_header("ci", &secret)
            ),
            format!("{:x}\r\n{}\r\n0\r\n\r\n", 1000, "x".repeat(1000)).as_bytes(),
        )
        .unwrap();
    assert_eq!(status, 416, "{text}");
    assert!(text.contains("longer than the 10 bytes"), "{text}");
    let good = reg.request("PATCH", &location, &ci, &[("Content-Range", "0-999")], Some(&body));
    assert_eq!(good.status, 202, "{}", String::from_utf8_lossy(&good.body));
    assert_eq!(good.header("range"), Some("0-999"));
}

#[test]
fn an_oversized_chunked_manifest_is_answered_413_not_cut_off() {
    let reg = support::start(&format!("[server]\nmax_manifest_bytes = 65536\n{CONFIG}"), &["ci"]);
    let secret = reg.secrets["ci"].clone();
    let manifest = format!("{{\"schemaVersion\":2,\"pad\":\"{}\"}}", "x".repeat(1 << 20));
    let mut chunked = Vec::new();
    for piece in manifest.as_bytes().chunks(16 << 10) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let answer = reg.raw(
        "127.0.0.1",
        &format!(
            "PUT /v2/project1/app/manifests/big HTTP/1.1\r\n{}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nTransfer-Encoding: chunked",
            basic_header("ci", &secret)
        ),
        &chunked,
    );
    let (status, body) = answer.expect("the client gets an answer, not a TLS EOF");
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("SIZE_INVALID"), "{body}");
}

#[test]
fn metrics_need_credentials_unless_public() {
    let reg = support::start(CONFIG, &["ci"]);
    let anonymous = reg.request("GET", "/metrics", &Cred::None, &[], None);
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.header("www-authenticate").is_some_and(|c| c.starts_with("Basic")));
    assert!(reg.metrics().contains("customs_registry_requests_total"));
    let listed = support::start(&format!("[server]\nmetrics = [\"scraper\"]\n{CONFIG}"), &["ci"]);
    assert_eq!(listed.request("GET", "/metrics", &listed.basic("ci"), &[], None).status, 403);
    assert_eq!(listed.request("GET", "/metrics", &listed.basic("scraper"), &[], None).status, 200);
    let public = support::start(&format!("[server]\nmetrics = \"public\"\n{CONFIG}"), &["ci"]);
    assert_eq!(public.request("GET", "/metrics", &Cred::None, &[], None).status, 200);
}

#[test]
fn blob_ranges_follow_rfc_9110_over_http() {
    let reg = support::start(CONFIG, &["ci"]);
    let ci = reg.basic("ci");
    let blob: Vec<u8> = (0..2048u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(reg.push_blob("project1/app", &ci, &blob).status, 201);
    let path = format!("/v2/project1/app/blobs/{}", support::digest(&blob));
    let get = |range: &str| reg.request("GET", &path, &ci, &[("Range", range)], None);
    let suffix = get("bytes=-500");
    assert_eq!(suffix.status, 206);
    assert_eq!(suffix.header("content-range"), Some("bytes 1548-2047/2048"));
    assert_eq!(suffix.body, blob[1548..]);
    let past_end = get("bytes=2000-5000");
    assert_eq!(past_end.status, 206);
    assert_eq!(past_end.header("content-range"), Some("bytes 2000-2047/2048"));
    assert_eq!(past_end.body, blob[2000..]);
    let unsatisfiable = get("bytes=2048-");
    assert_eq!(unsatisfiable.status, 416);
    assert_eq!(unsatisfiable.header("content-range"), Some("bytes */2048"));
    let several = get("bytes=0-1,4-5");
    assert_eq!((several.status, several.body.len()), (200, 2048), "several ranges: the whole blob");
}

fn sha512(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha512:{}", hex::encode(sha2::Sha512::digest(bytes)))
}

#[test]
fn sha512_blobs_and_manifests_are_stored_and_served_under_their_digest() {
    let reg = support::start(CONFIG, &["ci"]);
    let ci = reg.basic("ci");
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = vec![42u8; 3000];
    for blob in [&config, &layer] {
        // Monolithic (POST with the digest) and chunked-then-PUT, both by a sha512 digest.
        let reply = reg.request(
            "POST",
            &format!("/v2/project1/app/blobs/uploads/?digest={}", sha512(blob)),
            &ci,
            &[("Content-Type", "application/octet-stream")],
            Some(blob),
        );
        assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
        assert_eq!(reply.header("docker-content-digest"), Some(sha512(blob).as_str()));
    }
    let wrong = reg.request(
        "POST",
        &format!("/v2/project1/app/blobs/uploads/?digest={}", sha512(b"other")),
        &ci,
        &[("Content-Type", "application/octet-stream")],
        Some(&layer),
    );
    assert_eq!(wrong.status, 400, "a sha512 that does not match is refused");
    let got = reg.request("GET", &format!("/v2/project1/app/blobs/{}", sha512(&layer)), &ci, &[], None);
    assert_eq!((got.status, got.body.len()), (200, 3000));

    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": support::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha512(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha512(&layer), "size": layer.len()}],
    })
    .to_string();
    let digest = sha512(manifest.as_bytes());
    let put = reg.request(
        "PUT",
        &format!("/v2/project1/app/manifests/{digest}"),
        &ci,
        &[("Content-Type", support::OCI_MANIFEST)],
        Some(manifest.as_bytes()),
    );
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    assert_eq!(put.header("docker-content-digest"), Some(digest.as_str()));
    let pulled = reg.request("GET", &format!("/v2/project1/app/manifests/{digest}"), &ci, &[], None);
    assert_eq!(pulled.status, 200);
    assert_eq!(pulled.body, manifest.as_bytes());
    assert_eq!(pulled.header("docker-content-digest"), Some(digest.as_str()));
}

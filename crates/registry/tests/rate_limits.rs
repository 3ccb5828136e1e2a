//! Rate limits on a running registry: past a principal's burst its requests are answered 429 with
//! `Retry-After` before they are served; one audit record stands for a run of refusals, the metric counts each,
//! and the next allowed request's record says how many were refused. Other principals are not held back.

mod support;

use std::time::Duration;

#[test]
fn a_principal_over_its_limit_is_refused_429_and_audited_once_per_run() {
    let reg = support::start(
        r#"
[rate_limits]
principal = { rate = 1, burst = 3 }

[[rate_limits.repository]]
repositories = ["mirror/**"]
ip = { rate = 1, burst = 1 }

[[grant]]
to = "ci"
repositories = ["app/**", "mirror/**"]
actions = ["pull", "push"]

[[grant]]
to = "other"
repositories = ["app/**"]
actions = ["pull"]
"#,
        &["ci", "other"],
    );
    let ci = reg.basic("ci");
    assert_eq!(reg.push_blob("app/one", &ci, b"layer").status, 201);
    std::thread::sleep(Duration::from_millis(2100));
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let reply = reg.request("GET", "/v2/app/one/tags/list", &ci, &[], None);
        if reply.status == 429 {
            retry_after = reply.header("retry-after").map(str::to_string);
            assert_eq!(reply.error_code(), "TOOMANYREQUESTS");
        }
        statuses.push(reply.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429], "burst of 3, then refused");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(
        reg.request("GET", "/v2/app/one/tags/list", &reg.basic("other"), &[], None).status,
        200
    );

    let records = reg.audit_records();
    let throttled: Vec<_> = records
        .iter()
        .filter(|r| r.event.result == "throttled" && r.event.principal == "ci")
        .collect();
    assert_eq!(throttled.len(), 1, "one record for the run of three refusals");
    assert!(
        throttled[0].event.detail.contains("rate limit (principal)"),
        "{}",
        throttled[0].event.detail
    );
    assert_eq!(throttled[0].event.repository, "app/one");
    assert!(reg.metrics().contains("customs_registry_rate_limited_requests_total 3"));

    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(reg.request("GET", "/v2/app/one/tags/list", &ci, &[], None).status, 200);
    let last = reg.audit_records().into_iter().rev().find(|r| r.event.principal == "ci").unwrap();
    assert!(
        last.event.detail.contains("3 requests were refused (429) by a rate limit"),
        "{}",
        last.event.detail
    );

    // A repository pattern's own limit: one request per second per address on mirror/**.
    std::thread::sleep(Duration::from_millis(3100));
    assert_eq!(reg.request("GET", "/v2/mirror/debian/tags/list", &ci, &[], None).status, 404);
    let refused = reg.request("GET", "/v2/mirror/debian/tags/list", &ci, &[], None);
    assert_eq!(refused.status, 429);
    assert!(String::from_utf8_lossy(&refused.body).contains("ip on mirror/**"));
}

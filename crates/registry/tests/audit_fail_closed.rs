//! Issue 19's first defect: the audit log fails closed. With its live segment made immutable (`chattr +i`, as in
//! the attack run), the request whose record cannot be written is answered 503 `UNAVAILABLE`, every later audited
//! request is refused before it does anything, `/readyz` is 503 and a metric counts the failures; once the file
//! is writable again the registry serves by itself, records that it recovered, and the chain verifies.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::{Cred, OCI_MANIFEST};

const GRANTS: &str = "[[grant]]\nto = \"ci\"\nrepositories = [\"project1/**\"]\nactions = [\"pull\", \"push\"]\n";

fn chattr(tool: &PathBuf, flag: &str, files: &[PathBuf]) -> bool {
    files
        .iter()
        .all(|f| Command::new(tool).arg(flag).arg(f).status().is_ok_and(|s| s.success()))
}

#[test]
fn an_unwritable_audit_log_refuses_requests_and_recovers_by_itself() {
    let Some(tool) = customs_testkit::tool("chattr", "apt-get install e2fsprogs; the test runs as root on ext4") else {
        return;
    };
    let reg = support::start(GRANTS, &["ci"]);
    let ci = reg.basic("ci");
    assert_eq!(reg.push_image("project1/app", "1", &ci, "first").status, 201);
    let segments: Vec<PathBuf> = std::fs::read_dir(reg.audit_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert!(!segments.is_empty());
    if !chattr(&tool, "+i", &segments) {
        customs_testkit::skip("chattr +i was refused (not root, or a file system without immutable files)");
        return;
    }
    // The push whose first record cannot be written is refused, and so is everything after it.
    let refused = reg.push_image("project1/app", "2", &ci, "second");
    assert_eq!(refused.status, 503, "{}", String::from_utf8_lossy(&refused.body));
    assert_eq!(refused.error_code(), "UNAVAILABLE");
    let pull = || reg.request("GET", "/v2/project1/app/manifests/1", &ci, &[("Accept", OCI_MANIFEST)], None);
    assert_eq!(pull().status, 503);
    assert_eq!(reg.request("GET", "/readyz", &Cred::None, &[], None).status, 503);
    let metrics = reg.metrics();
    let failures: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("customs_registry_audit_write_failures_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(failures >= 2, "{metrics}");

    // Writable again: the next request is served, with no operator action.
    assert!(chattr(&tool, "-i", &segments));
    assert_eq!(pull().status, 200);
    assert_eq!(reg.request("GET", "/readyz", &Cred::None, &[], None).status, 200);
    let tag_2 = reg.request("GET", "/v2/project1/app/manifests/2", &ci, &[("Accept", OCI_MANIFEST)], None);
    assert_eq!(tag_2.status, 404, "nothing of the refused push was stored but its first upload");
    let records = reg.audit_records();
    assert!(records.iter().any(|r| r.event.action == "audit.recovered"), "{records:?}");
    reg.verify_audit();
}

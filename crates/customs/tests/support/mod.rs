//! What several integration tests share: the demo image, and validating reports with `tests/validate_report.py`.

use std::path::{Path, PathBuf};

/// The committed demo image (`examples/demo-image`, an OCI layout), as a command-line argument.
pub fn demo_image() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/demo-image")
        .display()
        .to_string()
}

/// Validates a report (`cyclonedx`, `spdx`, `sarif`, `junit`) with the reference validators:
/// `Some((valid, output))`, or `None` after a skip (a failure under CUSTOMS_REQUIRE_ALL=1) when python or the
/// validator is missing.
#[allow(dead_code)]
pub fn validate(kind: &str, path: &Path) -> Option<(bool, String)> {
    customs_testkit::validate_report(kind, path)
}

/// Writes into `osv_dir` one advisory per ecosystem of the demo and test images (Debian:12, PyPI, npm, Maven)
/// for a package no image has, so a database built from it covers those ecosystems without matching anything:
/// a gate fails on an ecosystem the database holds nothing for.
#[allow(dead_code)]
pub fn write_coverage_fillers(osv_dir: &Path) {
    std::fs::create_dir_all(osv_dir).unwrap();
    for eco in ["Debian:12", "PyPI", "npm", "Maven"] {
        let record = serde_json::json!({
            "id": format!("FILLER-{}", eco.replace(':', "-")),
            "summary": "covers the ecosystem; matches no installed package",
            "affected": [{"package": {"ecosystem": eco, "name": "customs-test-not-installed"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]
        });
        std::fs::write(osv_dir.join(format!("filler-{}.json", eco.replace(':', "-"))), record.to_string()).unwrap();
    }
}

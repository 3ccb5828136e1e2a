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

//! What several integration tests share: the demo image, and validating reports with `tests/validate_report.py`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The committed demo image (`examples/demo-image`, an OCI layout), as a command-line argument.
pub fn demo_image() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/demo-image")
        .display()
        .to_string()
}

fn python() -> Option<String> {
    ["python3", "python"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success()))
        .map(String::from)
}

/// Validates a report (`cyclonedx`, `spdx`, `sarif`, `junit`) with the reference validators:
/// `Some((valid, output))`, or `None` (and a printed reason) when python or the validator is missing.
pub fn validate(kind: &str, path: &Path) -> Option<(bool, String)> {
    let Some(py) = python() else {
        eprintln!("skipped: no python3 to run the {kind} validator");
        return None;
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/validate_report.py");
    let out = Command::new(py).arg(script).arg(kind).arg(path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        eprintln!("skipped: {kind} validator not installed ({}); .ci/run installs it", text.trim());
        return None;
    }
    Some((out.status.success(), text))
}

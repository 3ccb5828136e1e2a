//! Real package databases from `../shared/data/fixtures/syft-os-fixtures` (Syft's test data).
//! Skipped (a failure under CUSTOMS_REQUIRE_ALL=1) when that folder is absent.

use std::path::PathBuf;

use customs_catalog::{CatalogInterest, PackageKind, catalog};
use customs_oci::{Image, Platform};

fn fixtures() -> Option<PathBuf> {
    customs_testkit::shared_data("fixtures/syft-os-fixtures")
}

fn inventory(root: PathBuf) -> customs_catalog::Inventory {
    let img = Image::open(&format!("dir:{}", root.display()), &Platform::default()).unwrap();
    catalog(&img.filesystem(&CatalogInterest).unwrap())
}

#[test]
fn apk_multi_package_database() {
    let Some(dir) = fixtures() else { return };
    let root = dir.join("alpine/testdata/multiple-2");
    let text = std::fs::read_to_string(root.join("lib/apk/db/installed")).unwrap();
    let expected = text.lines().filter(|l| l.starts_with("P:")).count();
    let inv = inventory(root);
    assert!(expected > 1);
    assert_eq!(inv.packages.len(), expected);
    assert!(inv.packages.iter().all(|p| p.kind == PackageKind::Apk && !p.version.is_empty()));
    let base = inv.packages.iter().find(|p| p.name == "alpine-baselayout-data").unwrap();
    assert_eq!(
        (base.version.as_str(), base.source_name.as_deref()),
        ("3.2.0-r22", Some("alpine-baselayout"))
    );
    assert_eq!(
        base.purl,
        "pkg:apk/alpine/alpine-baselayout-data@3.2.0-r22?arch=x86_64&upstream=alpine-baselayout"
    );
}

/// Syft's `very-large-entries` fixture is an empty file in the shared copy, so the case it names is built here:
/// packages whose file lists, dependency lines and description run to megabytes, between ordinary ones.
#[test]
fn apk_very_large_entries() {
    let files: String = (0..100_000).map(|i| format!("R:file{i}.so\na:0:0:755\nZ:Q1{i:027}=\n")).collect();
    let huge_line = "x".repeat(4 << 20);
    let text = format!(
        "P:small\nV:1.0-r0\nA:x86_64\no:small\n\n\
         P:big\nV:2.3.4-r5\nA:x86_64\no:bigsrc\nT:{huge_line}\nD:{huge_line}\nF:usr/lib\n{files}\n\
         P:after\nV:0.1-r1\nA:aarch64\n"
    );
    let got: Vec<(String, String, Option<String>)> = customs_catalog::parse_apk_installed(&text, "lib/apk/db/installed")
        .into_iter()
        .map(|p| (p.name, p.version, p.source_name))
        .collect();
    assert_eq!(
        got,
        vec![
            ("small".into(), "1.0-r0".into(), Some("small".into())),
            ("big".into(), "2.3.4-r5".into(), Some("bigsrc".into())),
            ("after".into(), "0.1-r1".into(), None),
        ]
    );
}

#[test]
fn distroless_status_d() {
    let Some(dir) = fixtures() else { return };
    let inv = inventory(dir.join("debian/testdata/image-distroless-deb"));
    let p = inv
        .packages
        .iter()
        .find(|p| p.name == "libsqlite3-0")
        .expect("libsqlite3-0 from status.d");
    assert_eq!(
        (p.version.as_str(), p.source_name.as_deref(), p.arch.as_deref()),
        ("3.34.1-3", Some("sqlite3"), Some("arm64"))
    );
    assert_eq!(p.location, "var/lib/dpkg/status.d/libsqlite3-0");
}

#[test]
fn dpkg_status_with_empty_leading_stanza() {
    let Some(dir) = fixtures() else { return };
    let inv = inventory(dir.join("debian/testdata/image-dpkg"));
    let names: Vec<&str> = inv.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["libpam-runtime"]);
    assert_eq!(inv.packages[0].source_name.as_deref(), Some("pam"));
}

/// A dpkg status of 200,000 packages in an image whose status file two layers rewrote: every package is listed
/// with its layer. Layer attribution compared each package against a list of every package of every version of
/// the file (236k packages took 134 s); the time and peak memory are printed, not asserted.
#[test]
fn a_two_hundred_thousand_package_status_is_cataloged_whole() {
    const N: usize = 200_000;
    let stanza = |i: usize, v: &str| {
        format!("Package: pkg{i}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.{v}-1\nDescription: generated\n\n")
    };
    let old: String = (0..N).map(|i| stanza(i, "0")).collect();
    // The second version upgrades every tenth package.
    let new: String = (0..N).map(|i| stanza(i, if i % 10 == 0 { "1" } else { "0" })).collect();
    let root = tempfile::tempdir().unwrap();
    let status = root.path().join("var/lib/dpkg/status");
    std::fs::create_dir_all(status.parent().unwrap()).unwrap();
    std::fs::write(&status, &new).unwrap();
    let start = std::time::Instant::now();
    let inv = inventory(root.path().to_path_buf());
    let elapsed = start.elapsed();
    assert_eq!(inv.packages.len(), N);
    assert_eq!(customs_catalog::parse_dpkg_status(&old, "x").len(), N);
    let peak_kb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        })
        .unwrap_or_default();
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "dpkg status of {N} packages ({} MB): cataloged in {elapsed:.2?}, peak memory of the test process {peak_kb} kB",
        new.len() >> 20
    );
}

//! Real package databases from `../shared/data/fixtures/syft-os-fixtures` (Syft's test data).
//! Skipped, with the reason printed, when that folder is absent.

use std::path::PathBuf;

use customs_catalog::{CatalogInterest, PackageKind, catalog};
use customs_oci::{Image, Platform};

fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("CUSTOMS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
        .join("fixtures/syft-os-fixtures");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: {} is absent (set CUSTOMS_SHARED_DATA to the shared data folder)",
            dir.display()
        );
        None
    }
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

#[test]
fn apk_empty_database_is_no_packages() {
    let Some(dir) = fixtures() else { return };
    let text = std::fs::read_to_string(dir.join("alpine/testdata/very-large-entries")).unwrap_or_default();
    assert!(customs_catalog::parse_apk_installed(&text, "x").len() == text.lines().filter(|l| l.starts_with("P:")).count());
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

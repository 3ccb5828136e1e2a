//! What several of this crate's integration tests share.

use std::collections::BTreeSet;

use customs_catalog::{Distro, Inventory, parse_dpkg_status};
use customs_vulndb::{Database, Scheme, evaluate, normalize_package};

/// The ids of the advisories that affect `version` of `pkg` in `eco`, as the matcher evaluates them.
#[allow(dead_code)]
pub fn affected(db: &Database, eco: &str, pkg: &str, version: &str) -> BTreeSet<String> {
    let scheme = Scheme::for_ecosystem(eco);
    db.lookup(eco, &normalize_package(eco, pkg))
        .unwrap()
        .into_iter()
        .filter(|(a, e)| a.withdrawn.is_none() && evaluate(scheme, version, e).is_some())
        .map(|(a, _)| a.id)
        .collect()
}

/// A Debian inventory of `(binary, source, version)` packages, read from the dpkg status they make.
#[allow(dead_code)]
pub fn debian(release: &str, codename: &str, packages: &[(&str, &str, &str)]) -> Inventory {
    let status: String = packages
        .iter()
        .map(|(name, source, version)| {
            format!("Package: {name}\nStatus: install ok installed\nSource: {source}\nVersion: {version}\nArchitecture: amd64\n\n")
        })
        .collect();
    Inventory {
        distro: Some(Distro {
            id: "debian".into(),
            version_id: Some(release.into()),
            codename: Some(codename.into()),
            ..Distro::default()
        }),
        packages: parse_dpkg_status(&status, "var/lib/dpkg/status"),
        warnings: Vec::new(),
        unreadable: Vec::new(),
    }
}

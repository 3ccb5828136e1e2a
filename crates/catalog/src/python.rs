//! Python distributions: `*.dist-info/METADATA` and `*.egg-info/PKG-INFO` (or an `.egg-info` file).

use crate::control::{field, headers};
use crate::package::{Package, PackageKind, purl};

/// True for paths this cataloger reads.
pub(crate) fn wants(path: &str) -> bool {
    path.ends_with(".dist-info/METADATA")
        || path.ends_with(".egg-info/PKG-INFO")
        || (path.ends_with(".egg-info") && path.contains("-packages/"))
}

/// PEP 503 normalization: lowercase, runs of `-_.` become `-`.
pub(crate) fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// One distribution from its metadata.
pub(crate) fn parse(text: &str, location: &str) -> Option<Package> {
    let h = headers(text);
    let name = field(&h, "Name")?;
    let version = field(&h, "Version")?;
    let licenses = field(&h, "License-Expression")
        .or_else(|| field(&h, "License"))
        .filter(|l| l.len() < 200 && *l != "UNKNOWN")
        .map(|l| vec![l.to_string()])
        .unwrap_or_default();
    Some(Package {
        name: name.to_string(),
        version: version.to_string(),
        kind: PackageKind::Python,
        source_name: None,
        source_version: None,
        arch: None,
        licenses,
        purl: purl(PackageKind::Python, None, &normalize(name), version, &[]),
        location: location.to_string(),
        layer: None,
        line: None,
        direct: None,
        dev: false,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_metadata_headers_only() {
        let p = super::parse(
            "Metadata-Version: 2.1\nName: Requests_OAuth\nVersion: 2.31.0\nLicense: Apache 2.0\n\nName: not-this\n",
            "x",
        )
        .unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("Requests_OAuth", "2.31.0"));
        assert_eq!(p.purl, "pkg:pypi/requests-oauth@2.31.0");
    }
}

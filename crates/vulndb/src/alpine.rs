//! Alpine secdb (`secfixes` per package and release), YAML or JSON.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::model::{Advisory, Affected, Event};

#[derive(Deserialize)]
struct SecDb {
    distroversion: String,
    /// `packages:` is left empty (null) in releases with no fixes.
    #[serde(default)]
    packages: Option<Vec<PackageEntry>>,
}

#[derive(Deserialize)]
struct PackageEntry {
    pkg: Pkg,
}

#[derive(Deserialize)]
struct Pkg {
    name: String,
    #[serde(default)]
    secfixes: Option<BTreeMap<String, Option<Vec<String>>>>,
}

/// True when `text` looks like a secdb document (so folders can mix formats).
pub fn looks_like(text: &str) -> bool {
    text.lines()
        .any(|l| l.starts_with("distroversion:") || l.trim_start().starts_with("\"distroversion\""))
}

/// Adds the fixes of one secdb document to `by_id`, advisories named `ALPINE-<CVE>`.
pub fn merge(text: &str, json: bool, by_id: &mut BTreeMap<String, Advisory>) -> Result<(), String> {
    let db: SecDb = if json {
        serde_json::from_str(text).map_err(|e| format!("not an Alpine secdb document: {e}"))?
    } else {
        serde_saphyr::from_str(text).map_err(|e| format!("not an Alpine secdb document: {e}"))?
    };
    let release = db.distroversion.trim().to_string();
    let ecosystem = format!(
        "Alpine:{}",
        if release.starts_with('v') {
            release.clone()
        } else {
            format!("v{release}")
        }
    );
    for entry in db.packages.unwrap_or_default() {
        for (version, ids) in entry.pkg.secfixes.unwrap_or_default() {
            // Version "0" lists issues that never affected Alpine's package.
            if version.trim() == "0" {
                continue;
            }
            for id in ids.unwrap_or_default().iter().flat_map(|s| s.split_whitespace()) {
                if !is_advisory_id(id) {
                    continue;
                }
                let key = if id.starts_with("ALPINE-") {
                    id.to_string()
                } else {
                    format!("ALPINE-{id}")
                };
                let adv = by_id.entry(key.clone()).or_insert_with(|| Advisory {
                    id: key,
                    aliases: vec![id.to_string()],
                    references: vec![format!("https://security.alpinelinux.org/vuln/{id}")],
                    ..Advisory::default()
                });
                adv.affected.push(Affected {
                    ecosystem: ecosystem.clone(),
                    package: entry.pkg.name.clone(),
                    ranges: vec![vec![Event::Introduced("0".into()), Event::Fixed(version.trim().to_string())]],
                    ..Affected::default()
                });
            }
        }
    }
    Ok(())
}

/// Whether a secfixes word is an advisory id of any kind (`CVE-2024-1`, `XSA-443`, `GHSA-…`, `TALOS-2023-1`,
/// `GNUTLS-SA-2020-1`, `ALPINE-13661`), not commentary.
fn is_advisory_id(word: &str) -> bool {
    let Some((prefix, rest)) = word.split_once('-') else { return false };
    !prefix.is_empty()
        && prefix.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && prefix.as_bytes()[0].is_ascii_uppercase()
        && !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_' || b == b':')
        && rest.bytes().any(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_secfixes_and_skips_version_zero() {
        let yaml = "distroversion: v3.11\npackages:\n  - pkg:\n      name: openssl\n      secfixes:\n        1.1.1d-r0:\n          - CVE-2019-1547\n          - CVE-2019-1549 CVE-2019-1563\n        0:\n          - CVE-2000-0001\n";
        let mut by_id = BTreeMap::new();
        merge(yaml, false, &mut by_id).unwrap();
        assert_eq!(by_id.len(), 3);
        let a = &by_id["ALPINE-CVE-2019-1563"];
        assert_eq!(
            (a.affected[0].ecosystem.as_str(), a.affected[0].package.as_str()),
            ("Alpine:v3.11", "openssl")
        );
        assert_eq!(a.affected[0].ranges[0][1], Event::Fixed("1.1.1d-r0".into()));
        for id in [
            "XSA-443",
            "GHSA-abcd-1234-wxyz",
            "TALOS-2023-1",
            "GNUTLS-SA-2020-09-14",
            "ALPINE-13661",
        ] {
            assert!(is_advisory_id(id), "{id}");
        }
        for word in ["(fixed", "upstream", "CVE-", "cve-2021-1", "-1"] {
            assert!(!is_advisory_id(word), "{word}");
        }
    }
}

//! `Pipfile.lock`: `default` (what the project runs with) and `develop` (dev), each package's `version` pinned
//! as `==X`. Packages from git or a path have no version and name no release to match.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::json_keys::KeyIndex;
use super::{Lines, Parsed, Pin};
use crate::package::PackageKind;
use crate::python::normalize;

#[derive(Deserialize)]
struct Lock {
    #[serde(default)]
    default: BTreeMap<String, Entry>,
    #[serde(default)]
    develop: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    version: Option<String>,
}

pub(super) fn parse(text: &str, location: &str) -> Result<Parsed, String> {
    let lock: Lock = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let keys = KeyIndex::new(text);
    let lines = Lines::new(text);
    let mut out = Parsed::default();
    for (section, dev, entries) in [("default", false, &lock.default), ("develop", true, &lock.develop)] {
        let start = keys.first_after(section, 0, 1).unwrap_or(0);
        for (name, entry) in entries {
            // A package in both sections is installed for running: its `default` entry stands.
            if dev && lock.default.contains_key(name) {
                continue;
            }
            let Some(version) = entry.version.as_deref().and_then(|v| v.strip_prefix("==")) else {
                continue;
            };
            let normalized = normalize(name);
            let pin = Pin {
                kind: PackageKind::Python,
                namespace: None,
                short: &normalized,
                name,
                version,
                line: lines.of(keys.first_after(name, start, 2).unwrap_or(start)),
                // Pipfile.lock lists the whole graph flat, not who asked for what.
                direct: None,
                dev,
            };
            out.packages.push(pin.package(location));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_develop_sections() {
        let text = r#"{
    "_meta": {"hash": {"sha256": "x"}},
    "default": {
        "requests": {"hashes": [], "version": "==2.31.0"},
        "mylib": {"git": "https://example.com/mylib.git"}
    },
    "develop": {
        "pytest": {"version": "==8.0.0"},
        "requests": {"version": "==2.31.0"}
    }
}"#;
        let found = parse(text, "Pipfile.lock").unwrap().packages;
        let got: Vec<_> = found
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.line.unwrap(), p.dev))
            .collect();
        assert_eq!(got, [("requests", "2.31.0", 4, false), ("pytest", "8.0.0", 8, true)]);
    }
}

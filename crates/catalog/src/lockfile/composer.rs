//! PHP `composer.lock`: `packages` (what the project runs with) and `packages-dev` (dev), each `vendor/name` at a
//! version. The lockfile does not say which packages `composer.json` requires itself.

use serde::Deserialize;

use super::{Lines, Parsed, Pin};
use crate::package::PackageKind;

#[derive(Deserialize)]
struct Lock {
    #[serde(default)]
    packages: Vec<Entry>,
    #[serde(rename = "packages-dev", default)]
    packages_dev: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    version: Option<String>,
}

pub(super) fn parse(text: &str, location: &str) -> Result<Parsed, String> {
    let lock: Lock = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let lines = Lines::new(text);
    let mut out = Parsed::default();
    // Packages appear in file order, so each one's `"name"` is found after the previous one's.
    let mut cursor = 0;
    for (dev, entries) in [(false, &lock.packages), (true, &lock.packages_dev)] {
        for entry in entries {
            let quoted = serde_json::to_string(&entry.name).expect("a string serializes");
            let at = find_name(text, &quoted, cursor).unwrap_or(cursor);
            cursor = at;
            let Some(version) = entry.version.as_deref() else { continue };
            let (namespace, short) = match entry.name.split_once('/') {
                Some((vendor, name)) => (Some(vendor), name),
                None => (None, entry.name.as_str()),
            };
            let pin = Pin {
                kind: PackageKind::Composer,
                namespace,
                short,
                name: &entry.name,
                version,
                line: lines.of(at),
                direct: None,
                dev,
            };
            out.packages.push(pin.package(location));
        }
    }
    Ok(out)
}

/// The next `"name": <quoted>` at or after `from`.
fn find_name(text: &str, quoted: &str, from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = text.get(at..)?.find("\"name\"") {
        let key = at + i;
        let rest = text[key + 6..].trim_start();
        if let Some(value) = rest.strip_prefix(':')
            && value.trim_start().starts_with(quoted)
        {
            return Some(key);
        }
        at = key + 6;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_and_dev_packages_with_lines() {
        let text = r#"{
    "packages": [
        {
            "name": "guzzlehttp/guzzle",
            "version": "7.4.5",
            "require": {"php": "^7.2.5"}
        },
        {
            "name": "symfony/polyfill-mbstring",
            "version": "v1.26.0"
        }
    ],
    "packages-dev": [
        {
            "name": "phpunit/phpunit",
            "version": "9.5.21"
        }
    ]
}"#;
        let found = parse(text, "composer.lock").unwrap().packages;
        let got: Vec<_> = found
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.line.unwrap(), p.dev))
            .collect();
        assert_eq!(
            got,
            [
                ("guzzlehttp/guzzle", "7.4.5", 4, false),
                ("symfony/polyfill-mbstring", "v1.26.0", 9, false),
                ("phpunit/phpunit", "9.5.21", 15, true)
            ]
        );
        assert_eq!(found[0].purl, "pkg:composer/guzzlehttp/guzzle@7.4.5");
    }
}

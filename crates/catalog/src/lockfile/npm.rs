//! npm `package-lock.json`: v2 and v3 list every installed path under `packages` (`node_modules/a`,
//! `node_modules/a/node_modules/b`); v1 nests `dependencies` instead. `dev: true` marks what only
//! `devDependencies` need; a direct dependency is one the root package names and that sits at the top of
//! `node_modules`. Links (workspaces) and the project itself are not packages.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::json_keys::KeyIndex;
use super::{Lines, Parsed, Pin};
use crate::package::PackageKind;

#[derive(Deserialize)]
struct Lock {
    #[serde(rename = "lockfileVersion", default)]
    version: u32,
    #[serde(default)]
    packages: BTreeMap<String, Entry>,
    #[serde(default)]
    dependencies: BTreeMap<String, V1Entry>,
}

#[derive(Deserialize)]
struct Entry {
    name: Option<String>,
    version: Option<String>,
    #[serde(default)]
    dev: bool,
    #[serde(default)]
    link: bool,
    #[serde(default)]
    dependencies: BTreeMap<String, serde_json::Value>,
    #[serde(rename = "devDependencies", default)]
    dev_dependencies: BTreeMap<String, serde_json::Value>,
    #[serde(rename = "optionalDependencies", default)]
    optional_dependencies: BTreeMap<String, serde_json::Value>,
    #[serde(rename = "peerDependencies", default)]
    peer_dependencies: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct V1Entry {
    version: Option<String>,
    #[serde(default)]
    dev: bool,
    #[serde(default)]
    dependencies: BTreeMap<String, V1Entry>,
}

/// Nesting bound for v1 `dependencies` (npm flattens; a deeper tree is hostile).
const MAX_DEPTH: usize = 256;

pub(super) fn parse(text: &str, location: &str) -> Result<Parsed, String> {
    let lock: Lock = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let keys = KeyIndex::new(text);
    let lines = Lines::new(text);
    let mut out = Parsed::default();
    if lock.version >= 2 || !lock.packages.is_empty() {
        let root = lock.packages.get("");
        let named_by_root = |name: &str| {
            root.is_some_and(|r| {
                [&r.dependencies, &r.dev_dependencies, &r.optional_dependencies, &r.peer_dependencies]
                    .iter()
                    .any(|deps| deps.contains_key(name))
            })
        };
        let start = keys.first_after("packages", 0, 1).unwrap_or(0);
        for (path, entry) in &lock.packages {
            // "" is the project; a path outside node_modules is a workspace package, a link points at one.
            let Some((_, tail)) = path.rsplit_once("node_modules/") else {
                continue;
            };
            if entry.link {
                continue;
            }
            let (Some(version), name) = (entry.version.as_deref(), entry.name.as_deref().unwrap_or(tail)) else {
                continue;
            };
            let offset = keys.first_after(path, start, 2).unwrap_or(start);
            out.packages.push(
                pin(
                    name,
                    version,
                    lines.of(offset),
                    Some(*path == format!("node_modules/{name}") && named_by_root(name)),
                    entry.dev,
                )
                .package(location),
            );
        }
    } else {
        let start = keys.first_after("dependencies", 0, 1).unwrap_or(0);
        walk_v1(&lock.dependencies, start, 0, &keys, &lines, location, &mut out)?;
    }
    Ok(out)
}

/// An npm package: a scope (`@types/node`) is the PURL namespace.
pub(super) fn pin<'a>(name: &'a str, version: &'a str, line: u32, direct: Option<bool>, dev: bool) -> Pin<'a> {
    let (namespace, short) = match name.split_once('/') {
        Some((scope, short)) if scope.starts_with('@') => (Some(scope), short),
        _ => (None, name),
    };
    Pin {
        kind: PackageKind::Npm,
        namespace,
        short,
        name,
        version,
        line,
        direct,
        dev,
    }
}

fn walk_v1(
    deps: &BTreeMap<String, V1Entry>,
    parent: usize,
    depth: usize,
    keys: &KeyIndex<'_>,
    lines: &Lines,
    location: &str,
    out: &mut Parsed,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("dependencies nest deeper than {MAX_DEPTH} levels"));
    }
    for (name, entry) in deps {
        // Depth 2 for the top level (the lock, its `dependencies`), two more per level down.
        let offset = keys.first_after(name, parent, 2 + 2 * depth as u32).unwrap_or(parent);
        if let Some(version) = entry.version.as_deref()
            // `file:` and `git+` versions name no registry release to match.
            && !version.contains(':')
        {
            // v1 does not say which dependencies the project names itself.
            out.packages
                .push(pin(name, version, lines.of(offset), None, entry.dev).package(location));
        }
        walk_v1(&entry.dependencies, offset, depth + 1, keys, lines, location, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V3: &str = r#"{
  "name": "app",
  "lockfileVersion": 3,
  "packages": {
    "": {
      "name": "app",
      "dependencies": { "lodash": "^4.17.0" },
      "devDependencies": { "minimist": "^1.2.0" }
    },
    "node_modules/@types/node": {
      "version": "20.1.0",
      "dev": true
    },
    "node_modules/lodash": {
      "version": "4.17.20"
    },
    "node_modules/lodash/node_modules/minimist": {
      "version": "0.0.8"
    },
    "node_modules/minimist": {
      "version": "1.2.5",
      "dev": true
    },
    "packages/lib": { "version": "1.0.0" },
    "node_modules/lib": { "resolved": "packages/lib", "link": true }
  }
}"#;

    #[test]
    fn v3_paths_lines_dev_and_direct() {
        let found = parse(V3, "package-lock.json").unwrap().packages;
        let got: Vec<_> = found
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.line.unwrap(), p.direct, p.dev))
            .collect();
        assert_eq!(
            got,
            [
                ("@types/node", "20.1.0", 10, Some(false), true),
                ("lodash", "4.17.20", 14, Some(true), false),
                ("minimist", "0.0.8", 17, Some(false), false),
                ("minimist", "1.2.5", 20, Some(true), true),
            ]
        );
        assert_eq!(found[0].purl, "pkg:npm/%40types/node@20.1.0");
    }

    #[test]
    fn v1_nested_dependencies() {
        let text = r#"{
  "lockfileVersion": 1,
  "dependencies": {
    "a": {
      "version": "1.0.0",
      "dependencies": {
        "b": { "version": "2.0.0", "dev": true }
      }
    },
    "b": { "version": "3.0.0" },
    "local": { "version": "file:../local" }
  }
}"#;
        let found = parse(text, "x").unwrap().packages;
        let got: Vec<_> = found
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.line.unwrap(), p.dev))
            .collect();
        assert_eq!(got, [("a", "1.0.0", 4, false), ("b", "2.0.0", 7, true), ("b", "3.0.0", 10, false)]);
    }

    #[test]
    fn hostile_nesting_is_an_error_not_a_stack_overflow() {
        let mut text = String::from(r#"{"lockfileVersion":1,"dependencies":"#);
        for _ in 0..300 {
            text.push_str(r#"{"a":{"version":"1","dependencies":"#);
        }
        text.push_str("{}");
        for _ in 0..300 {
            text.push_str("}}");
        }
        text.push('}');
        // serde_json's own recursion limit (128) or ours: an error either way.
        assert!(parse(&text, "x").is_err());
    }
}

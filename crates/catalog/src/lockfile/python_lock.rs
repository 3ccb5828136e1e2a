//! `poetry.lock` and `uv.lock`: `[[package]]` tables with `name` and `version`.
//!
//! Poetry before 1.2 marks development packages `category = "dev"`; later lockfiles leave groups to
//! `pyproject.toml`, so their packages are not marked. uv's own project (source `editable`, `virtual` or
//! `directory`) is not a dependency; the packages it lists under `dev-dependencies` and not under
//! `dependencies` are marked dev, and what it lists at all is direct.

use std::collections::HashSet;

use serde::Deserialize;

use super::{Parsed, Pin, header_lines};
use crate::package::PackageKind;
use crate::python::normalize;

/// Which lockfile.
#[derive(Clone, Copy)]
pub(super) enum Flavor {
    Poetry,
    Uv,
}

#[derive(Deserialize)]
struct Lock {
    #[serde(default)]
    package: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    version: Option<String>,
    category: Option<String>,
    #[serde(default)]
    source: Option<toml::Table>,
    /// uv: `[{ name = "requests" }, …]`.
    #[serde(default)]
    dependencies: Vec<toml::Value>,
    #[serde(rename = "dev-dependencies", default)]
    dev_dependencies: toml::Table,
}

fn is_project(entry: &Entry) -> bool {
    entry
        .source
        .as_ref()
        .is_some_and(|s| s.contains_key("editable") || s.contains_key("virtual") || s.contains_key("directory"))
}

pub(super) fn parse(text: &str, location: &str, flavor: Flavor) -> Result<Parsed, String> {
    // Poetry's `[package.dependencies]` is a table, uv's `dependencies` an array: read it only for uv.
    let lock: Lock = match flavor {
        Flavor::Uv => toml::from_str(text).map_err(|e| e.message().to_string())?,
        Flavor::Poetry => {
            let mut table: toml::Table = toml::from_str(text).map_err(|e| e.message().to_string())?;
            if let Some(toml::Value::Array(packages)) = table.get_mut("package") {
                for p in packages.iter_mut().filter_map(toml::Value::as_table_mut) {
                    p.remove("dependencies");
                    p.remove("dev-dependencies");
                }
            }
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| e.message().to_string())?
        }
    };
    let lines = header_lines(text, "[[package]]");
    let (mut runtime, mut dev_only) = (HashSet::new(), HashSet::new());
    for project in lock.package.iter().filter(|p| is_project(p)) {
        runtime.extend(project.dependencies.iter().filter_map(name).map(normalize));
        for group in project.dev_dependencies.values() {
            if let Some(names) = group.as_array() {
                dev_only.extend(names.iter().filter_map(name).map(normalize));
            }
        }
    }
    let mut out = Parsed::default();
    for (i, entry) in lock.package.iter().enumerate() {
        let Some(version) = entry.version.as_deref() else { continue };
        if is_project(entry) {
            continue;
        }
        let normalized = normalize(&entry.name);
        let (direct, dev) = match flavor {
            Flavor::Poetry => (None, entry.category.as_deref() == Some("dev")),
            Flavor::Uv => (
                Some(runtime.contains(&normalized) || dev_only.contains(&normalized)),
                dev_only.contains(&normalized) && !runtime.contains(&normalized),
            ),
        };
        let pin = Pin {
            kind: PackageKind::Python,
            namespace: None,
            short: &normalized,
            name: &entry.name,
            version,
            line: lines.get(i).copied().unwrap_or(1),
            direct,
            dev,
        };
        out.packages.push(pin.package(location));
    }
    Ok(out)
}

/// The `name` of a uv dependency (`{ name = "requests", … }`).
fn name(dependency: &toml::Value) -> Option<&str> {
    dependency.get("name")?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poetry_packages_with_the_old_dev_category() {
        let text = r#"[[package]]
name = "Flask"
version = "2.0.1"
category = "main"
optional = false

[package.dependencies]
Werkzeug = ">=2.0"

[[package]]
name = "pytest"
version = "7.0.0"
category = "dev"

[metadata]
lock-version = "1.1"
"#;
        let found = parse(text, "poetry.lock", Flavor::Poetry).unwrap().packages;
        let got: Vec<_> = found.iter().map(|p| (p.name.as_str(), p.line.unwrap(), p.dev)).collect();
        assert_eq!(got, [("Flask", 1, false), ("pytest", 10, true)]);
        assert_eq!(found[0].purl, "pkg:pypi/flask@2.0.1");
    }

    #[test]
    fn uv_skips_the_project_and_marks_its_dev_group() {
        let text = r#"version = 1
requires-python = ">=3.11"

[[package]]
name = "app"
version = "0.1.0"
source = { virtual = "." }
dependencies = [{ name = "requests" }]

[package.dev-dependencies]
dev = [{ name = "pytest" }]

[[package]]
name = "pytest"
version = "8.3.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "requests"
version = "2.32.3"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "urllib3" }]

[[package]]
name = "urllib3"
version = "2.2.2"
source = { registry = "https://pypi.org/simple" }
"#;
        let found = parse(text, "uv.lock", Flavor::Uv).unwrap().packages;
        let got: Vec<_> = found
            .iter()
            .map(|p| (p.name.as_str(), p.line.unwrap(), p.direct.unwrap(), p.dev))
            .collect();
        assert_eq!(
            got,
            [
                ("pytest", 13, true, true),
                ("requests", 18, true, false),
                ("urllib3", 24, false, false)
            ]
        );
    }
}

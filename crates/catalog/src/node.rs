//! Node packages: `node_modules/**/package.json`.

use serde::Deserialize;

use crate::package::{Package, PackageKind, purl};

/// True for a package's own manifest directly inside a `node_modules` folder.
pub(crate) fn wants(path: &str) -> bool {
    let Some(dir) = path.strip_suffix("/package.json") else {
        return false;
    };
    let Some((_, inside)) = dir.rsplit_once("node_modules/") else {
        return false;
    };
    match inside.split('/').collect::<Vec<_>>().as_slice() {
        [name] => !name.is_empty() && !name.starts_with('.'),
        [scope, name] => scope.starts_with('@') && !name.is_empty(),
        _ => false,
    }
}

#[derive(Deserialize)]
struct Manifest {
    name: Option<String>,
    version: Option<String>,
    #[serde(default)]
    license: Option<serde_json::Value>,
}

/// One package from its `package.json`; `None` if it is malformed or has no name or version.
pub(crate) fn parse(bytes: &[u8], location: &str) -> Option<Package> {
    let m: Manifest = serde_json::from_slice(bytes).ok()?;
    let (name, version) = (m.name?, m.version?);
    if name.is_empty() || version.is_empty() {
        return None;
    }
    let (namespace, short) = match name.split_once('/') {
        Some((scope, n)) if scope.starts_with('@') => (Some(scope.to_string()), n.to_string()),
        _ => (None, name.clone()),
    };
    let licenses = match m.license {
        Some(serde_json::Value::String(s)) => vec![s],
        Some(serde_json::Value::Object(o)) => o
            .get("type")
            .and_then(|t| t.as_str())
            .map(|s| vec![s.to_string()])
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    Some(Package {
        purl: purl(PackageKind::Npm, namespace.as_deref(), &short, &version, &[]),
        name,
        version,
        kind: PackageKind::Npm,
        source_name: None,
        source_version: None,
        arch: None,
        licenses,
        location: location.to_string(),
        layer: None,
        line: None,
        direct: None,
        dev: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_package_manifests_only() {
        assert!(wants("app/node_modules/lodash/package.json"));
        assert!(wants("app/node_modules/@types/node/package.json"));
        assert!(wants("app/node_modules/a/node_modules/b/package.json"));
        assert!(!wants("app/package.json"));
        assert!(!wants("app/node_modules/lodash/fp/package.json"));
    }

    #[test]
    fn scoped_names_become_purl_namespaces() {
        let p = parse(br#"{"name":"@types/node","version":"20.1.0","license":"MIT"}"#, "x").unwrap();
        assert_eq!(p.purl, "pkg:npm/%40types/node@20.1.0");
        assert!(parse(b"{not json", "x").is_none());
    }
}

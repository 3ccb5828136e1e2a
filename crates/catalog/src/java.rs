//! Java archives: Maven `pom.properties` inside jar/war/ear files, nested archives included.

use std::io::{Cursor, Read};

use serde::{Deserialize, Serialize};

use crate::package::{Package, PackageKind, purl};

/// Archive extensions that hold Java classes.
const EXTENSIONS: &[&str] = &[".jar", ".war", ".ear", ".jpi", ".hpi", ".par", ".sar", ".nar"];
/// Nesting depth for jars inside jars (Spring Boot `BOOT-INF/lib`, `WEB-INF/lib`).
const MAX_DEPTH: usize = 4;
/// Largest nested archive unpacked into memory.
const MAX_NESTED_BYTES: u64 = 128 << 20;

/// True for paths this cataloger reads.
pub(crate) fn wants(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    EXTENSIONS.iter().any(|e| lower.ends_with(e))
}

/// Maven coordinates found in an archive.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Coordinates {
    group: String,
    artifact: String,
    version: String,
    /// Path inside the archive (`BOOT-INF/lib/x.jar!META-INF/maven/…`).
    inner: String,
}

/// Reduces an archive to the coordinates it holds; a damaged archive yields none.
pub(crate) fn extract(bytes: &[u8]) -> Vec<Coordinates> {
    let mut out = Vec::new();
    walk(bytes, "", 0, &mut out);
    out
}

fn walk(bytes: &[u8], prefix: &str, depth: usize, out: &mut Vec<Coordinates>) {
    let Ok(mut zip) = zip::ZipArchive::new(Cursor::new(bytes)) else {
        return;
    };
    for i in 0..zip.len() {
        let Ok(mut file) = zip.by_index(i) else { continue };
        let Ok(name) = file.name().map(|n| n.to_string()) else { continue };
        let size = file.size();
        if name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties") && size < 1 << 20 {
            let mut text = String::new();
            if file.read_to_string(&mut text).is_ok()
                && let Some(c) = parse_properties(&text, &format!("{prefix}{name}"))
            {
                out.push(c);
            }
        } else if depth < MAX_DEPTH && wants(&name) && size <= MAX_NESTED_BYTES {
            let mut inner = Vec::with_capacity(size.min(1 << 20) as usize);
            if (&mut file).take(MAX_NESTED_BYTES).read_to_end(&mut inner).is_ok() {
                walk(&inner, &format!("{prefix}{name}!"), depth + 1, out);
            }
        }
    }
}

fn parse_properties(text: &str, inner: &str) -> Option<Coordinates> {
    let mut group = None;
    let mut artifact = None;
    let mut version = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((k, v)) = line.split_once(['=', ':']) else { continue };
        let v = v.trim().to_string();
        match k.trim() {
            "groupId" => group = Some(v),
            "artifactId" => artifact = Some(v),
            "version" => version = Some(v),
            _ => {}
        }
    }
    Some(Coordinates {
        group: group?,
        artifact: artifact?,
        version: version?,
        inner: inner.to_string(),
    })
}

/// Packages from the coordinates kept for the archive at `location`.
pub(crate) fn packages(kept: &[u8], location: &str) -> Vec<Package> {
    let coords: Vec<Coordinates> = serde_json::from_slice(kept).unwrap_or_default();
    coords
        .into_iter()
        .map(|c| Package {
            purl: purl(PackageKind::Maven, Some(&c.group), &c.artifact, &c.version, &[]),
            name: format!("{}:{}", c.group, c.artifact),
            version: c.version,
            kind: PackageKind::Maven,
            source_name: None,
            source_version: None,
            arch: None,
            licenses: Vec::new(),
            location: format!("{location}!{}", c.inner),
            layer: None,
            line: None,
            direct: None,
            dev: false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn jar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, body) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            w.write_all(body).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn finds_nested_pom_properties() {
        let inner = jar(&[(
            "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties",
            b"groupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n",
        )]);
        let outer = jar(&[
            ("BOOT-INF/lib/log4j-core-2.14.1.jar", &inner),
            ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"),
        ]);
        let found = extract(&outer);
        assert_eq!(found.len(), 1);
        let p = packages(&serde_json::to_vec(&found).unwrap(), "app.jar");
        assert_eq!(p[0].purl, "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1");
        assert!(
            p[0].location
                .starts_with("app.jar!BOOT-INF/lib/log4j-core-2.14.1.jar!META-INF/maven/")
        );
    }

    #[test]
    fn damaged_archives_yield_nothing() {
        assert!(extract(b"PK\x03\x04garbage").is_empty());
        assert!(extract(b"").is_empty());
    }
}

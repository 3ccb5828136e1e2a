//! RPM packages from the SQLite database (`rpmdb.sqlite`, Fedora 33+, RHEL 9+).
//!
//! Berkeley DB (`Packages`) and NDB (`Packages.db`) databases are not read yet;
//! finding one gives a warning instead of a silent empty inventory.

use std::io::Write;

use customs_oci::FsView;

use crate::package::{Distro, Package, PackageKind, purl};

/// Where the SQLite database lives.
pub(crate) const SQLITE_PATHS: &[&str] = &["var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite"];
/// Databases in formats we do not read.
pub(crate) const OTHER_PATHS: &[&str] = &[
    "var/lib/rpm/Packages",
    "var/lib/rpm/Packages.db",
    "usr/lib/sysimage/rpm/Packages.db",
];

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_LICENSE: u32 = 1014;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;
const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

/// Fields of one RPM header blob.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Header {
    name: String,
    version: String,
    release: String,
    epoch: Option<u32>,
    arch: Option<String>,
    license: Option<String>,
    source_rpm: Option<String>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses an RPM header blob as stored in the database (index count, data length, index, data).
pub(crate) fn parse_header(blob: &[u8]) -> Option<Header> {
    let il = usize::try_from(be32(blob, 0)?).ok()?;
    let dl = usize::try_from(be32(blob, 4)?).ok()?;
    if il > 0xffff || dl > 256 << 20 {
        return None;
    }
    let data_start = 8 + il * 16;
    let data = blob.get(data_start..data_start.checked_add(dl)?)?;
    let mut h = Header::default();
    for i in 0..il {
        let e = 8 + i * 16;
        let (tag, ty, offset) = (be32(blob, e)?, be32(blob, e + 4)?, usize::try_from(be32(blob, e + 8)?).ok()?);
        let string = || {
            let s = data.get(offset..)?;
            let end = memchr::memchr(0, s)?;
            Some(String::from_utf8_lossy(&s[..end]).into_owned())
        };
        let is_string = ty == TYPE_STRING || ty == TYPE_I18NSTRING;
        match tag {
            TAG_NAME if is_string => h.name = string()?,
            TAG_VERSION if is_string => h.version = string()?,
            TAG_RELEASE if is_string => h.release = string()?,
            TAG_EPOCH if ty == TYPE_INT32 => h.epoch = be32(data, offset),
            TAG_ARCH if is_string => h.arch = string(),
            TAG_LICENSE if is_string => h.license = string(),
            TAG_SOURCERPM if is_string => h.source_rpm = string(),
            _ => {}
        }
    }
    (!h.name.is_empty() && !h.version.is_empty()).then_some(h)
}

/// `openssl-3.0.7-24.el9.src.rpm` -> (`openssl`, `3.0.7-24.el9`).
fn split_source_rpm(s: &str) -> Option<(String, String)> {
    let stem = s.strip_suffix(".rpm")?;
    let stem = stem.rsplit_once('.').map_or(stem, |(a, _)| a);
    let (rest, release) = stem.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    Some((name.to_string(), format!("{version}-{release}")))
}

fn package(h: Header, location: &str, distro: Option<&Distro>) -> Package {
    let evr = match h.epoch {
        Some(e) => format!("{e}:{}-{}", h.version, h.release),
        None => format!("{}-{}", h.version, h.release),
    };
    let plain = format!("{}-{}", h.version, h.release);
    let source = h.source_rpm.as_deref().and_then(split_source_rpm);
    let epoch = h.epoch.map(|e| e.to_string()).unwrap_or_default();
    let distro_q = distro.map(Distro::purl_qualifier).unwrap_or_default();
    let upstream = h.source_rpm.clone().unwrap_or_default();
    let q = [
        ("arch", h.arch.as_deref().unwrap_or_default()),
        ("epoch", epoch.as_str()),
        ("upstream", upstream.as_str()),
        ("distro", distro_q.as_str()),
    ];
    Package {
        purl: purl(
            PackageKind::Rpm,
            Some(distro.map_or("redhat", |d| d.id.as_str())),
            &h.name,
            &plain,
            &q,
        ),
        name: h.name,
        version: evr,
        kind: PackageKind::Rpm,
        source_name: source.as_ref().map(|s| s.0.clone()),
        source_version: source.map(|s| s.1),
        arch: h.arch,
        licenses: h.license.into_iter().collect(),
        location: location.to_string(),
        layer: None,
        line: None,
        direct: None,
        dev: false,
    }
}

/// All RPM packages in the view. Errors reading the database become warnings.
pub(crate) fn catalog(view: &FsView, distro: Option<&Distro>, warnings: &mut Vec<String>) -> Vec<Package> {
    for path in OTHER_PATHS {
        if view.resolve(path).is_some() && !SQLITE_PATHS.iter().any(|p| view.resolve(p).is_some()) {
            warnings.push(format!(
                "{path}: RPM databases in Berkeley DB or NDB format are not read yet; RPM packages are missing from this inventory"
            ));
        }
    }
    let mut out = Vec::new();
    for path in SQLITE_PATHS {
        let Some(entry) = view.resolve(path) else { continue };
        let Some(bytes) = &entry.content else { continue };
        match read_sqlite(bytes) {
            Ok(headers) => out.extend(headers.into_iter().map(|h| {
                let mut p = package(h, path, distro);
                p.layer = Some(entry.layer);
                p
            })),
            Err(e) => warnings.push(format!("{path}: cannot read the RPM database: {e}")),
        }
    }
    out
}

fn read_sqlite(bytes: &[u8]) -> Result<Vec<Header>, Box<dyn std::error::Error>> {
    // SQLite reads from a file; a private temp file is removed when dropped.
    let mut tmp = tempfile::NamedTempFile::new()?;
    tmp.write_all(bytes)?;
    tmp.flush()?;
    let conn = rusqlite::Connection::open_with_flags(
        tmp.path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut stmt = conn.prepare("SELECT blob FROM Packages")?;
    let blobs = stmt.query_map([], |row| row.get::<_, Vec<u8>>(0))?;
    let mut out = Vec::new();
    for blob in blobs {
        if let Some(h) = parse_header(&blob?) {
            out.push(h);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a header blob the way rpm stores one.
    pub(crate) fn header_blob(fields: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, ty, value) in fields {
            index.extend_from_slice(&tag.to_be_bytes());
            index.extend_from_slice(&ty.to_be_bytes());
            index.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
            index.extend_from_slice(&1u32.to_be_bytes());
            data.extend_from_slice(value);
        }
        let mut blob = u32::try_from(fields.len()).unwrap().to_be_bytes().to_vec();
        blob.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        blob.extend(index);
        blob.extend(data);
        blob
    }

    #[test]
    fn parses_header_and_sqlite_database() {
        let blob = header_blob(&[
            (TAG_NAME, TYPE_STRING, b"openssl-libs\0"),
            (TAG_VERSION, TYPE_STRING, b"3.0.7\0"),
            (TAG_RELEASE, TYPE_STRING, b"24.el9\0"),
            (TAG_EPOCH, TYPE_INT32, &1u32.to_be_bytes()),
            (TAG_ARCH, TYPE_STRING, b"x86_64\0"),
            (TAG_SOURCERPM, TYPE_STRING, b"openssl-3.0.7-24.el9.src.rpm\0"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("rpmdb.sqlite");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL)")
            .unwrap();
        conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [&blob]).unwrap();
        drop(conn);
        let headers = read_sqlite(&std::fs::read(&db).unwrap()).unwrap();
        let p = package(headers.into_iter().next().unwrap(), "var/lib/rpm/rpmdb.sqlite", None);
        assert_eq!((p.name.as_str(), p.version.as_str()), ("openssl-libs", "1:3.0.7-24.el9"));
        assert_eq!(
            (p.source_name.as_deref(), p.source_version.as_deref()),
            (Some("openssl"), Some("3.0.7-24.el9"))
        );
        assert_eq!(
            p.purl,
            "pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?arch=x86_64&epoch=1&upstream=openssl-3.0.7-24.el9.src.rpm"
        );
    }

    proptest::proptest! {
        #[test]
        fn hostile_headers_never_panic(blob in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse_header(&blob);
        }
    }
}

//! Compiled binaries: Go build info (module and dependencies) and Rust dependency
//! lists embedded by cargo-auditable.

use std::io::Read;

use object::{Object, ObjectSection};
use serde::{Deserialize, Serialize};

use crate::package::{Package, PackageKind, purl};

const GO_MAGIC: &[u8] = b"\xff Go buildinf:";
/// Largest decompressed cargo-auditable payload we accept.
const MAX_AUDIT_JSON: u64 = 8 << 20;

/// What a binary says about how it was built; all a scan keeps of it.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct BuildInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    go: Option<GoInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    cargo: Vec<(String, String)>,
}

#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
struct GoInfo {
    toolchain: String,
    main: Option<(String, String)>,
    deps: Vec<(String, String)>,
}

/// True for ELF files; other executables (scripts) carry no build info.
pub(crate) fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// Reduces a binary to its build info, or `None` when it has none.
pub(crate) fn extract(bytes: &[u8]) -> Option<BuildInfo> {
    let info = BuildInfo {
        go: go_build_info(bytes),
        cargo: cargo_auditable(bytes),
    };
    (info.go.is_some() || !info.cargo.is_empty()).then_some(info)
}

fn uvarint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().take(10).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn varint_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, used) = uvarint(bytes)?;
    let rest = bytes.get(used..)?;
    let len = usize::try_from(len).ok()?;
    Some((rest.get(..len)?, rest.get(len..)?))
}

/// Go 1.18+ stores version and module info inline after the header; older
/// binaries store pointers, which we do not follow.
fn go_build_info(bytes: &[u8]) -> Option<GoInfo> {
    let at = memchr::memmem::find(bytes, GO_MAGIC)?;
    let header = bytes.get(at..at + 32)?;
    let flags = header[15];
    if flags & 0x2 == 0 {
        return None;
    }
    let (version, rest) = varint_string(bytes.get(at + 32..)?)?;
    let (modinfo, _) = varint_string(rest)?;
    // modinfo is wrapped in 16-byte sentinels.
    let modinfo = if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        &modinfo[16..modinfo.len() - 16]
    } else {
        modinfo
    };
    let mut info = GoInfo {
        toolchain: String::from_utf8_lossy(version).into_owned(),
        ..GoInfo::default()
    };
    for line in String::from_utf8_lossy(modinfo).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["mod", path, version, ..] => info.main = Some((path.to_string(), version.to_string())),
            // GOPATH-mode builds (as Debian makes them) name the main package but no module.
            ["path", path] if info.main.is_none() => info.main = Some((path.to_string(), "(devel)".to_string())),
            ["dep", path, version, ..] => info.deps.push((path.to_string(), version.to_string())),
            ["=>", path, version, ..] => {
                if let Some(last) = info.deps.last_mut() {
                    *last = (path.to_string(), version.to_string());
                }
            }
            _ => {}
        }
    }
    Some(info)
}

#[derive(Deserialize)]
struct AuditData {
    packages: Vec<AuditPackage>,
}

#[derive(Deserialize)]
struct AuditPackage {
    name: String,
    version: String,
}

fn cargo_auditable(bytes: &[u8]) -> Vec<(String, String)> {
    let Ok(file) = object::File::parse(bytes) else { return Vec::new() };
    let Some(data) = file.section_by_name(".dep-v0").and_then(|s| s.data().ok()) else {
        return Vec::new();
    };
    let mut json = Vec::new();
    if flate2::read::ZlibDecoder::new(data)
        .take(MAX_AUDIT_JSON)
        .read_to_end(&mut json)
        .is_err()
    {
        return Vec::new();
    }
    serde_json::from_slice::<AuditData>(&json)
        .map(|d| d.packages.into_iter().map(|p| (p.name, p.version)).collect())
        .unwrap_or_default()
}

/// Packages from the build info kept for the binary at `location`.
pub(crate) fn packages(kept: &[u8], location: &str) -> Vec<Package> {
    let Ok(info) = serde_json::from_slice::<BuildInfo>(kept) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mk = |kind: PackageKind, name: &str, version: &str| {
        let (ns, short) = match (kind, name.rsplit_once('/')) {
            (PackageKind::Go, Some((ns, n))) => (Some(ns), n),
            _ => (None, name),
        };
        Package {
            name: name.to_string(),
            version: version.to_string(),
            kind,
            source_name: None,
            source_version: None,
            arch: None,
            licenses: Vec::new(),
            purl: purl(kind, ns, short, version, &[]),
            location: location.to_string(),
            layer: None,
            line: None,
            direct: None,
            dev: false,
        }
    };
    if let Some(go) = info.go {
        if let Some(v) = go.toolchain.strip_prefix("go") {
            let mut p = mk(PackageKind::Go, "stdlib", &go.toolchain);
            p.purl = purl(PackageKind::Go, None, "stdlib", v.split(' ').next().unwrap_or(v), &[]);
            out.push(p);
        }
        if let Some((path, version)) = &go.main {
            out.push(mk(PackageKind::Go, path, version));
        }
        out.extend(go.deps.iter().map(|(p, v)| mk(PackageKind::Go, p, v)));
    }
    out.extend(info.cargo.iter().map(|(n, v)| mk(PackageKind::Cargo, n, v)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(s: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        let mut n = s.len();
        while n >= 0x80 {
            v.push(u8::try_from(n & 0x7f).unwrap() | 0x80);
            n >>= 7;
        }
        v.push(u8::try_from(n).unwrap());
        v.extend_from_slice(s);
        v
    }

    #[test]
    fn reads_inline_go_build_info() {
        let modinfo = b"0123456789abcdefpath\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgolang.org/x/net\tv0.17.0\th1:abc=\ndep\tgithub.com/old/lib\tv1.0.0\n=>\tgithub.com/new/lib\tv1.2.0\th1:x=\n\n0123456789abcdef";
        let mut blob = b"\x7fELF padding ".to_vec();
        blob.extend_from_slice(GO_MAGIC);
        blob.extend_from_slice(&[8, 2]);
        blob.resize(blob.len() + 16, 0);
        blob.extend(varint(b"go1.21.5"));
        blob.extend(varint(modinfo));
        let info = extract(&blob).unwrap();
        let pkgs = packages(&serde_json::to_vec(&info).unwrap(), "usr/bin/app");
        let got: Vec<(&str, &str)> = pkgs.iter().map(|p| (p.name.as_str(), p.version.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("stdlib", "go1.21.5"),
                ("example.com/app", "(devel)"),
                ("golang.org/x/net", "v0.17.0"),
                ("github.com/new/lib", "v1.2.0")
            ]
        );
        assert_eq!(pkgs[0].purl, "pkg:golang/stdlib@1.21.5");
        assert_eq!(pkgs[2].purl, "pkg:golang/golang.org/x/net@v0.17.0");
    }

    #[test]
    fn reads_cargo_auditable_section() {
        use object::write::{Object, StandardSection};
        use std::io::Write;
        let json = br#"{"packages":[{"name":"app","version":"0.1.0","source":"local","root":true},{"name":"time","version":"0.3.17","source":"crates.io","dependencies":[]}]}"#;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(json).unwrap();
        let mut obj = Object::new(object::BinaryFormat::Elf, object::Architecture::X86_64, object::Endianness::Little);
        let text = obj.section_id(StandardSection::Text);
        obj.append_section_data(text, &[0xc3], 1);
        let dep = obj.add_section(Vec::new(), b".dep-v0".to_vec(), object::SectionKind::ReadOnlyData);
        obj.append_section_data(dep, &z.finish().unwrap(), 1);
        let elf = obj.write().unwrap();
        assert!(is_elf(&elf));
        let pkgs = packages(&serde_json::to_vec(&extract(&elf).unwrap()).unwrap(), "usr/bin/app");
        let got: Vec<(&str, &str, &str)> = pkgs
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.purl.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![("app", "0.1.0", "pkg:cargo/app@0.1.0"), ("time", "0.3.17", "pkg:cargo/time@0.3.17")]
        );
    }

    proptest::proptest! {
        #[test]
        fn hostile_bytes_never_panic(mut tail in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let mut blob = b"\x7fELF".to_vec();
            blob.extend_from_slice(GO_MAGIC);
            blob.append(&mut tail);
            let _ = extract(&blob);
        }
    }
}

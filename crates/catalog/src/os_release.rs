//! Distribution detection from `os-release` (and older release files).

use customs_oci::FsView;

use crate::package::Distro;

/// Paths the distro detection reads.
pub(crate) const PATHS: &[&str] = &["etc/os-release", "usr/lib/os-release", "etc/alpine-release", "etc/debian_version"];

/// Parses `KEY=value` lines with optional shell quoting.
pub(crate) fn parse(text: &str) -> Option<Distro> {
    let mut d = Distro::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = v.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
        match k.trim() {
            "ID" => d.id = v,
            "VERSION_ID" => d.version_id = Some(v),
            "VERSION_CODENAME" => d.codename = Some(v),
            "PRETTY_NAME" => d.pretty_name = Some(v),
            "ID_LIKE" => d.id_like = v.split_whitespace().map(String::from).collect(),
            _ => {}
        }
    }
    (!d.id.is_empty()).then_some(d)
}

/// The image's distribution, if it says.
pub(crate) fn detect(view: &FsView) -> Option<Distro> {
    for p in ["etc/os-release", "usr/lib/os-release"] {
        if let Some(d) = view.read(p).and_then(|b| parse(&String::from_utf8_lossy(b))) {
            return Some(d);
        }
    }
    if let Some(v) = view.read("etc/alpine-release") {
        let v = String::from_utf8_lossy(v).trim().to_string();
        return Some(Distro {
            id: "alpine".into(),
            version_id: Some(v),
            ..Distro::default()
        });
    }
    if let Some(v) = view.read("etc/debian_version") {
        let v = String::from_utf8_lossy(v).trim().to_string();
        let major = v.split('.').next().unwrap_or_default().to_string();
        return Some(Distro {
            id: "debian".into(),
            version_id: Some(major),
            ..Distro::default()
        });
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_quoted_values() {
        let d = super::parse("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n")
            .unwrap();
        assert_eq!(
            (d.id.as_str(), d.version_id.as_deref(), d.codename.as_deref()),
            ("debian", Some("12"), Some("bookworm"))
        );
    }
}

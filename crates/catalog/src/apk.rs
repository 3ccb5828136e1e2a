//! Alpine packages: `lib/apk/db/installed`.

use customs_oci::FsView;

use crate::package::{Distro, Package, PackageKind, purl};

/// The apk database.
pub(crate) const INSTALLED: &str = "lib/apk/db/installed";

/// Parses the database: paragraphs of `X:value` lines, one package each.
pub(crate) fn parse(text: &str, location: &str, distro: Option<&Distro>) -> Vec<Package> {
    let mut out = Vec::new();
    let mut fields: Vec<(char, &str)> = Vec::new();
    let mut flush = |fields: &mut Vec<(char, &str)>| {
        let get = |k: char| fields.iter().find(|(c, _)| *c == k).map(|(_, v)| *v).filter(|v| !v.is_empty());
        if let (Some(name), Some(version)) = (get('P'), get('V')) {
            let arch = get('A');
            let origin = get('o');
            let distro_q = distro.map(Distro::purl_qualifier).unwrap_or_default();
            let q = [
                ("arch", arch.unwrap_or_default()),
                ("distro", distro_q.as_str()),
                ("upstream", origin.unwrap_or_default()),
            ];
            out.push(Package {
                name: name.to_string(),
                version: version.to_string(),
                kind: PackageKind::Apk,
                source_name: origin.map(String::from),
                source_version: None,
                arch: arch.map(String::from),
                licenses: get('L').map(|l| vec![l.to_string()]).unwrap_or_default(),
                purl: purl(
                    PackageKind::Apk,
                    Some(distro.map_or("alpine", |d| d.id.as_str())),
                    name,
                    version,
                    &q,
                ),
                location: location.to_string(),
                layer: None,
                line: None,
                direct: None,
                dev: false,
            });
        }
        fields.clear();
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut fields);
            continue;
        }
        let mut chars = line.chars();
        if let (Some(key), Some(':')) = (chars.next(), chars.next()) {
            fields.push((key, &line[key.len_utf8() + 1..]));
        }
    }
    flush(&mut fields);
    out
}

/// All apk packages in the view, each with the layer that added it.
pub(crate) fn catalog(view: &FsView, distro: Option<&Distro>) -> Vec<Package> {
    let Some(entry) = view.resolve(INSTALLED) else { return Vec::new() };
    let Some(bytes) = &entry.content else { return Vec::new() };
    let mut pkgs = parse(&String::from_utf8_lossy(bytes), INSTALLED, distro);
    let history: Vec<(usize, Vec<Package>)> = view
        .versions(&entry.path)
        .filter_map(|v| {
            v.content
                .as_ref()
                .map(|c| (v.layer, parse(&String::from_utf8_lossy(c), INSTALLED, distro)))
        })
        .collect();
    for p in &mut pkgs {
        let mut layer = entry.layer;
        for (l, listed) in history.iter().rev() {
            if !listed.iter().any(|q| q.name == p.name && q.version == p.version) {
                break;
            }
            layer = *l;
        }
        p.layer = Some(layer);
    }
    pkgs
}

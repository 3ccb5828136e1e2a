//! Property tests: catalogers never panic on hostile metadata, and on well-formed databases of many stanzas
//! they list exactly the packages a straightforward model of the format says are installed.

use customs_catalog::{parse_apk_installed, parse_dpkg_status};
use proptest::prelude::*;

/// One dpkg stanza: optional Package, Version and Status, a multi-line Description, in a shuffled field order.
#[derive(Clone, Debug)]
struct Stanza {
    package: Option<String>,
    version: Option<String>,
    status: Option<&'static str>,
    description: Vec<String>,
}

fn stanza() -> impl Strategy<Value = Stanza> {
    (
        proptest::option::weighted(0.9, "[a-z0-9][a-z0-9+.-]{0,15}"),
        proptest::option::weighted(0.9, "([0-9]:)?[0-9][0-9a-z.+~]{0,10}(-[0-9a-z.+~]{1,8})?"),
        proptest::option::of(prop_oneof![
            Just("install ok installed"),
            Just("deinstall ok config-files"),
            Just("purge ok not-installed"),
            Just("install ok unpacked"),
            Just("install ok half-configured"),
        ]),
        // Continuation lines hold text: a line of spaces alone separates paragraphs (Debian Policy 5.1 lets parsers
        // read it so, and dpkg's own parser does).
        proptest::collection::vec("[a-zA-Z0-9,.:][a-zA-Z0-9 ,.:]{0,29}", 0..3),
    )
        .prop_map(|(package, version, status, description)| Stanza {
            package,
            version,
            status,
            description,
        })
}

fn render(s: &Stanza, order: usize) -> String {
    let mut fields = Vec::new();
    if let Some(p) = &s.package {
        fields.push(format!("Package: {p}\n"));
    }
    if let Some(v) = &s.version {
        fields.push(format!("Version: {v}\n"));
    }
    if let Some(st) = s.status {
        fields.push(format!("Status: {st}\n"));
    }
    fields.push("Architecture: amd64\n".to_string());
    let mut d = "Description: a package".to_string();
    for line in &s.description {
        d.push_str(&format!("\n {}", line.trim()));
    }
    fields.push(d + "\n");
    let n = fields.len();
    fields.rotate_left(order % n);
    fields.concat()
}

proptest! {
    #[test]
    fn dpkg_and_apk_parsers_survive_anything(text in "\\PC{0,400}") {
        let _ = parse_dpkg_status(&text, "x");
        let _ = parse_apk_installed(&text, "x");
    }

    #[test]
    fn dpkg_parser_survives_field_soup(fields in proptest::collection::vec(("(Package|Version|Source|Status|Architecture)", "[ -~]{0,30}"), 0..20)) {
        let text: String = fields.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
        for p in parse_dpkg_status(&text, "x") {
            prop_assert!(!p.name.is_empty() && !p.version.is_empty());
            prop_assert!(p.purl.starts_with("pkg:deb/"));
        }
    }

    /// Many stanzas separated by blank lines (some holding spaces or tabs): the parser lists exactly those with a
    /// name and a version whose status leaves files on disk, in file order.
    #[test]
    fn dpkg_status_lists_every_installed_stanza(
        stanzas in proptest::collection::vec((stanza(), 0usize..5, prop_oneof![Just("\n"), Just("\n\n"), Just(" \n"), Just("\t\n\n")]), 0..25),
    ) {
        let mut text = String::new();
        for (s, order, gap) in &stanzas {
            text.push_str(&render(s, *order));
            text.push_str(gap);
        }
        let expected: Vec<(String, String)> = stanzas
            .iter()
            .map(|(s, _, _)| s)
            .filter(|s| !matches!(s.status, Some("deinstall ok config-files" | "purge ok not-installed")))
            .filter_map(|s| Some((s.package.clone()?, s.version.clone()?)))
            .collect();
        let got: Vec<(String, String)> = parse_dpkg_status(&text, "x").into_iter().map(|p| (p.name, p.version)).collect();
        prop_assert_eq!(got, expected, "{}", text);
    }
}

//! Property tests: catalogers never panic on hostile metadata.

use customs_catalog::{parse_apk_installed, parse_dpkg_status};
use proptest::prelude::*;

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
}

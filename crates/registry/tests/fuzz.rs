//! Hostile input to the request parsers never panics, and what they accept is well-formed.

use customs_registry::digest::Digest;
use customs_registry::route::{self, Endpoint};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn paths_parse_or_fail_cleanly(path in "[a-zA-Z0-9._/:-]{0,80}|(\\.\\./)*[a-z]+/(manifests|blobs|blobs/uploads|referrers|tags)/[a-z0-9:._-]{0,70}") {
        if let Ok(endpoint) = route::parse(&path) {
            if let Some(name) = endpoint.repository() {
                prop_assert!(route::valid_repository(name));
                prop_assert!(!name.contains(".."));
                prop_assert!(!name.starts_with('/'));
            }
            if let Endpoint::Manifest(_, reference) = &endpoint {
                prop_assert!(!reference.is_empty() && !reference.contains('/'));
            }
        }
    }

    #[test]
    fn manifests_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512), content_type in "[a-z./+-]{0,60}") {
        let _ = customs_registry::manifest::inspect(Some(&content_type), &body);
        let _ = customs_registry::manifest::inspect(None, &body);
    }

    #[test]
    fn json_shaped_manifests_never_panic(digest in "sha256:[0-9a-f]{0,70}", media in "[a-z./+-]{0,40}", n in 0usize..4) {
        let layers: Vec<String> = (0..n).map(|_| format!(r#"{{"mediaType":"{media}","digest":"{digest}","size":1}}"#)).collect();
        let body = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{media}","digest":"{digest}"}},"layers":[{}],"manifests":[{}],"subject":{{"digest":"{digest}"}}}}"#,
            layers.join(","), layers.join(",")
        );
        if let Ok(info) = customs_registry::manifest::inspect(None, body.as_bytes()) {
            prop_assert!(info.blobs.iter().all(|d| d.as_str().parse::<Digest>().is_ok()));
        }
    }

    #[test]
    fn scopes_and_digests_never_panic(raw in "\\PC{0,120}") {
        for scope in customs_registry::token::parse_scopes(&raw) {
            prop_assert!(!scope.name.is_empty());
        }
        if let Ok(d) = raw.parse::<Digest>() {
            prop_assert_eq!(d.hex().len(), 64);
        }
    }
}

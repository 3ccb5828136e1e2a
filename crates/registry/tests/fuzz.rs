//! Property tests over the request parsers. Random strings almost never form a manifest, a scope or a digest, so
//! each parser is fed valid documents built from their grammar (which must round-trip exactly) and mutations of
//! them (which must fail cleanly or still yield well-formed results).

use customs_registry::digest::Digest;
use customs_registry::manifest::{self, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use customs_registry::route::{self, Endpoint};
use customs_registry::token::{Scope, parse_scopes};
use proptest::prelude::*;

fn digest() -> impl Strategy<Value = String> {
    "[0-9a-f]{64}".prop_map(|hex| format!("sha256:{hex}"))
}

fn repository() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z0-9]{1,8}([._-][a-z0-9]{1,4})?", 1..4).prop_map(|parts| parts.join("/"))
}

/// A valid image manifest or index and what `inspect` must extract from it: (media type, body, blobs, children).
fn manifest_document() -> impl Strategy<Value = (String, String, Vec<String>, Vec<String>)> {
    let image = (
        prop_oneof![Just(OCI_MANIFEST), Just(DOCKER_MANIFEST)],
        digest(),
        proptest::collection::vec(digest(), 0..5),
    )
        .prop_map(|(media, config, layers)| {
            let descs: Vec<String> = layers
                .iter()
                .map(|d| format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{d}","size":7}}"#))
                .collect();
            let body = format!(
                r#"{{"schemaVersion":2,"mediaType":"{media}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[{}]}}"#,
                descs.join(",")
            );
            let mut blobs = vec![config];
            blobs.extend(layers);
            (media.to_string(), body, blobs, Vec::new())
        });
    let index = (
        prop_oneof![Just(OCI_INDEX), Just(DOCKER_LIST)],
        proptest::collection::vec(digest(), 0..5),
    )
        .prop_map(|(media, children)| {
            let descs: Vec<String> = children
                .iter()
                .map(|d| {
                    format!(
                        r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":9,"platform":{{"os":"linux","architecture":"amd64"}}}}"#
                    )
                })
                .collect();
            let body = format!(r#"{{"schemaVersion":2,"mediaType":"{media}","manifests":[{}]}}"#, descs.join(","));
            (media.to_string(), body, Vec::new(), children)
        });
    prop_oneof![image, index]
}

fn scope() -> impl Strategy<Value = Scope> {
    (
        prop_oneof![Just("repository"), Just("registry")],
        repository(),
        proptest::option::of("[0-9]{2,5}"),
        proptest::collection::btree_set(prop_oneof![Just("pull"), Just("push"), Just("delete"), Just("*")], 1..4),
    )
        .prop_map(|(kind, name, port, actions)| Scope {
            kind: kind.to_string(),
            // A port-qualified name holds a `:`; actions are split from the right, so it survives.
            name: match port {
                Some(p) => format!("localhost:{p}/{name}"),
                None => name,
            },
            actions: actions.into_iter().map(str::to_string).collect(),
        })
}

fn render(s: &Scope) -> String {
    format!("{}:{}:{}", s.kind, s.name, s.actions.iter().cloned().collect::<Vec<_>>().join(","))
}

fn mutate(bytes: &mut Vec<u8>, flips: &[(prop::sample::Index, u8)], cut: Option<prop::sample::Index>) {
    for (at, value) in flips {
        if !bytes.is_empty() {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
    }
    if let Some(cut) = cut {
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

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

    /// Every well-formed distribution path parses to the endpoint it names.
    #[test]
    fn valid_paths_round_trip(name in repository(), tag in "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,40}", d in digest()) {
        prop_assert!(route::valid_repository(&name));
        match route::parse(&format!("{name}/manifests/{tag}")) {
            Ok(Endpoint::Manifest(n, r)) => { prop_assert_eq!(n, name.clone()); prop_assert_eq!(r, tag.clone()); }
            other => prop_assert!(false, "{name}/manifests/{tag}: {other:?}"),
        }
        match route::parse(&format!("{name}/manifests/{d}")) {
            Ok(Endpoint::Manifest(n, r)) => { prop_assert_eq!(n, name.clone()); prop_assert_eq!(r, d.clone()); }
            other => prop_assert!(false, "{name}/manifests/{d}: {other:?}"),
        }
        let tags = route::parse(&format!("{name}/tags/list"));
        prop_assert!(matches!(&tags, Ok(Endpoint::Tags(n)) if *n == name), "{:?}", tags);
        // A `..` segment anywhere is refused.
        let climbing = format!("{name}/../x/tags/list");
        prop_assert!(route::parse(&climbing).is_err(), "{}", climbing);
    }

    /// A valid manifest is accepted with exactly its blobs and children; mutated, it fails cleanly or still names
    /// only well-formed digests.
    #[test]
    fn manifests_round_trip_and_survive_mutation(
        (media, body, blobs, children) in manifest_document(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let info = manifest::inspect(Some(&media), body.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}: {body}")))?;
        prop_assert_eq!(&info.media_type, &media);
        prop_assert_eq!(info.blobs.iter().map(|d| d.to_string()).collect::<Vec<_>>(), blobs);
        prop_assert_eq!(info.manifests.iter().map(|d| d.to_string()).collect::<Vec<_>>(), children);
        // Without a Content-Type the declared mediaType decides.
        prop_assert_eq!(manifest::inspect(None, body.as_bytes()).unwrap().media_type, media.clone());

        let mut bytes = body.into_bytes();
        mutate(&mut bytes, &flips, cut);
        if let Ok(info) = manifest::inspect(Some(&media), &bytes) {
            prop_assert!(info.blobs.iter().chain(&info.manifests).all(|d| d.as_str().parse::<Digest>().is_ok()));
        }
        let _ = manifest::inspect(None, &bytes);
    }

    #[test]
    fn manifests_never_panic_on_random_bytes(body in proptest::collection::vec(any::<u8>(), 0..512), content_type in "[a-z./+-]{0,60}") {
        let _ = manifest::inspect(Some(&content_type), &body);
        let _ = manifest::inspect(None, &body);
    }

    /// Scopes render and parse back to themselves, several in one header; mutated, whatever parses is non-empty.
    #[test]
    fn scopes_round_trip_and_survive_mutation(
        scopes in proptest::collection::vec(scope(), 1..4),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let raw = scopes.iter().map(render).collect::<Vec<_>>().join(" ");
        prop_assert_eq!(parse_scopes(&raw), scopes);
        let mut bytes = raw.into_bytes();
        mutate(&mut bytes, &flips, None);
        for s in parse_scopes(&String::from_utf8_lossy(&bytes)) {
            prop_assert!(!s.name.is_empty() && !s.kind.is_empty());
        }
    }

    /// A digest parses and prints as itself; any change to its length or alphabet is refused.
    #[test]
    fn digests_round_trip_and_refuse_changes(d in digest(), at in any::<prop::sample::Index>(), c in "[g-zA-Z!/ .:]", extra in "[0-9a-f]{1,3}") {
        let parsed: Digest = d.parse().unwrap();
        prop_assert_eq!(parsed.to_string(), d.clone());
        prop_assert_eq!(parsed.hex(), &d[7..]);
        let i = 7 + at.index(64);
        let bad = format!("{}{}{}", &d[..i], c, &d[i + 1..]);
        prop_assert!(bad.parse::<Digest>().is_err(), "{bad}");
        let longer = format!("{d}{extra}");
        prop_assert!(longer.parse::<Digest>().is_err(), "{}", longer);
        prop_assert!(d[..d.len() - 1].parse::<Digest>().is_err());
        prop_assert!(d.replacen("sha256", "sha257", 1).parse::<Digest>().is_err());
    }
}

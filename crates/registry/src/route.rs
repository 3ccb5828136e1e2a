//! Parsing `/v2/...` paths into distribution API endpoints. Repository names contain slashes, so endpoints are
//! recognised from the right-hand end of the path.

/// An endpoint of the distribution API below `/v2/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/tags/list`.
    Tags(String),
    /// `/v2/<name>/manifests/<reference>`.
    Manifest(String, String),
    /// `/v2/<name>/blobs/<digest>`.
    Blob(String, String),
    /// `/v2/<name>/blobs/uploads/`.
    UploadStart(String),
    /// `/v2/<name>/blobs/uploads/<id>`.
    Upload(String, String),
    /// `/v2/<name>/referrers/<digest>`.
    Referrers(String, String),
}

impl Endpoint {
    /// The repository the endpoint touches.
    pub fn repository(&self) -> Option<&str> {
        match self {
            Endpoint::Catalog => None,
            Endpoint::Tags(n)
            | Endpoint::Manifest(n, _)
            | Endpoint::Blob(n, _)
            | Endpoint::UploadStart(n)
            | Endpoint::Upload(n, _)
            | Endpoint::Referrers(n, _) => Some(n),
        }
    }
}

/// A path that is not an endpoint, or names an invalid repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// No such endpoint.
    NotFound,
    /// The repository name breaks the distribution spec's grammar.
    NameInvalid(String),
}

/// Whether `name` follows `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub fn valid_repository(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.split('/').all(valid_component)
}

fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = separator == "." || separator == "_" || separator == "__" || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Whether `tag` follows `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Parses the part of the path after `/v2/`.
pub fn parse(rest: &str) -> Result<Endpoint, RouteError> {
    if rest == "_catalog" {
        return Ok(Endpoint::Catalog);
    }
    let named = |name: &str, endpoint: Endpoint| {
        if valid_repository(name) {
            Ok(endpoint)
        } else {
            Err(RouteError::NameInvalid(name.to_string()))
        }
    };
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return named(name, Endpoint::Tags(name.to_string()));
    }
    let (head, last) = rest.rsplit_once('/').ok_or(RouteError::NotFound)?;
    if let Some(name) = head.strip_suffix("/manifests") {
        if last.is_empty() {
            return Err(RouteError::NotFound);
        }
        return named(name, Endpoint::Manifest(name.to_string(), last.to_string()));
    }
    if let Some(name) = head.strip_suffix("/blobs/uploads") {
        return if last.is_empty() {
            named(name, Endpoint::UploadStart(name.to_string()))
        } else {
            named(name, Endpoint::Upload(name.to_string(), last.to_string()))
        };
    }
    if let Some(name) = head.strip_suffix("/blobs") {
        return match last {
            "" => Err(RouteError::NotFound),
            "uploads" => named(name, Endpoint::UploadStart(name.to_string())),
            digest => named(name, Endpoint::Blob(name.to_string(), digest.to_string())),
        };
    }
    if let Some(name) = head.strip_suffix("/referrers") {
        return named(name, Endpoint::Referrers(name.to_string(), last.to_string()));
    }
    Err(RouteError::NotFound)
}

/// The `key=value` pairs of a query string (or form body); an undecodable one is empty.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default()
}

/// The first value of `key`.
pub(crate) fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(parse("_catalog"), Ok(Endpoint::Catalog));
        assert_eq!(parse("a/b/tags/list"), Ok(Endpoint::Tags("a/b".into())));
        assert_eq!(parse("a/b/manifests/latest"), Ok(Endpoint::Manifest("a/b".into(), "latest".into())));
        assert_eq!(parse(&format!("a/blobs/{d}")), Ok(Endpoint::Blob("a".into(), d.into())));
        assert_eq!(parse("a/blobs/uploads/"), Ok(Endpoint::UploadStart("a".into())));
        assert_eq!(parse("a/blobs/uploads"), Ok(Endpoint::UploadStart("a".into())));
        assert_eq!(parse("a/blobs/uploads/xyz"), Ok(Endpoint::Upload("a".into(), "xyz".into())));
        assert_eq!(parse(&format!("a/referrers/{d}")), Ok(Endpoint::Referrers("a".into(), d.into())));
        // A repository may itself be called `manifests` or `blobs`.
        assert_eq!(parse("blobs/manifests/v1"), Ok(Endpoint::Manifest("blobs".into(), "v1".into())));
        assert_eq!(parse("a/unknown/x"), Err(RouteError::NotFound));
        assert_eq!(parse("A/manifests/x"), Err(RouteError::NameInvalid("A".into())));
        assert_eq!(parse("../etc/manifests/x"), Err(RouteError::NameInvalid("../etc".into())));
    }

    #[test]
    fn names_and_tags() {
        for ok in ["a", "project1/app", "a.b_c__d--e/f", "a---b"] {
            assert!(valid_repository(ok), "{ok}");
        }
        for bad in ["", "a//b", "-a", "a-", "a..b", "a___b", "a/", "/a", "a b", "A"] {
            assert!(!valid_repository(bad), "{bad}");
        }
        assert!(valid_tag("v1.2.3-rc_1"));
        assert!(valid_tag("sha256-abc.sig"));
        assert!(!valid_tag(".hidden"));
        assert!(!valid_tag(&"a".repeat(129)));
    }
}

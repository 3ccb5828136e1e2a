//! Pulling images from an OCI distribution registry: references, authentication
//! (anonymous, basic, bearer token) and streaming blob reads.

use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// Docker Hub's API host, used for references with no registry part.
const DOCKER_HUB: &str = "registry-1.docker.io";

/// An image reference: `[registry/]repository[:tag][@digest]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Registry host (and port), normalized (`docker.io` becomes Docker Hub's API host).
    pub registry: String,
    /// Repository path (`library/debian`).
    pub repository: String,
    /// Tag, when no digest is given (`latest` by default).
    pub tag: Option<String>,
    /// Digest, which wins over the tag.
    pub digest: Option<Digest>,
}

impl Reference {
    /// What to ask the registry for: the digest when there is one, else the tag.
    pub fn target(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }

    fn host_is_loopback(&self) -> bool {
        let host = self.registry.rsplit_once(':').map_or(self.registry.as_str(), |(h, p)| {
            if p.chars().all(|c| c.is_ascii_digit()) { h } else { &self.registry }
        });
        matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1") || host.starts_with("127.")
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| format!("invalid image reference {s:?}: {why}");
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.parse::<Digest>().map_err(|e| bad(&e.to_string()))?)),
            None => (s, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if name.is_empty() || name.starts_with('/') || name.ends_with('/') || name.contains("//") {
            return Err(bad("expected [registry/]repository[:tag][@digest]"));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path)) if first.contains(['.', ':']) || first == "localhost" => (first.to_string(), path.to_string()),
            _ if name.contains('/') => (DOCKER_HUB.to_string(), name.to_string()),
            _ => (DOCKER_HUB.to_string(), format!("library/{name}")),
        };
        let registry = if registry == "docker.io" || registry == "index.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        let valid_repo = repository.split('/').all(|c| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-'))
        });
        if !valid_repo {
            return Err(bad("repository names are lowercase letters, digits and . _ - separated by /"));
        }
        if let Some(t) = &tag
            && (t.is_empty() || t.len() > 128 || !t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(bad("tags are up to 128 letters, digits, . _ -"));
        }
        let tag = if digest.is_none() {
            Some(tag.unwrap_or_else(|| "latest".into()))
        } else {
            tag
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

/// How to reach and log in to registries.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Username for basic auth or for the token service.
    pub username: Option<String>,
    /// Password or token for `username`.
    pub password: Option<String>,
    /// Extra PEM root certificates to trust (a private registry's CA).
    pub ca_file: Option<PathBuf>,
    /// Speak plain HTTP. Only allowed for loopback registries: the policy requires TLS.
    pub plain_http: bool,
}

/// Credentials for `registry` from a Docker `config.json` (`auths.<registry>.auth`), if any.
///
/// Reads `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`; credential helpers are not run.
pub fn docker_config_credentials(registry: &str) -> Option<(String, String)> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))?;
    let text = std::fs::read(dir.join("config.json")).ok()?;
    let doc: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let auths = doc.get("auths")?.as_object()?;
    let keys = [
        registry.to_string(),
        format!("https://{registry}"),
        if registry == DOCKER_HUB {
            "https://index.docker.io/v1/".into()
        } else {
            String::new()
        },
    ];
    let auth = keys.iter().find_map(|k| auths.get(k)?.get("auth")?.as_str())?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(auth).ok()?;
    let (u, p) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// A client of one repository of an OCI distribution registry: reads (manifests, blobs, referrers) and the
/// writes a signer needs (blobs, manifests), with basic or token authentication.
pub struct RegistryClient {
    agent: ureq::Agent,
    base: String,
    reference: Reference,
    credentials: Option<(String, String)>,
    authorization: Mutex<Option<String>>,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base)
            .field("reference", &self.reference)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct RegistryErrors {
    errors: Vec<RegistryErrorItem>,
}

#[derive(Deserialize)]
struct RegistryErrorItem {
    code: String,
    #[serde(default)]
    message: String,
}

/// Parses `Bearer realm="…",service="…",scope="…"` into its scheme and parameters.
fn parse_challenge(header: &str) -> (String, Vec<(String, String)>) {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        params.push((key, value.to_string()));
        rest = remainder.trim_start_matches([',', ' ']);
    }
    (scheme.to_ascii_lowercase(), params)
}

/// An HTTP agent for registries: TLS with the platform's roots plus `options.ca_file`, HTTPS only unless
/// `options.plain_http`, status codes returned rather than raised.
pub fn http_agent(options: &RegistryOptions) -> Result<ureq::Agent> {
    let mut tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier);
    if let Some(ca) = &options.ca_file {
        let ca_shown = ca.display().to_string();
        let pem = std::fs::read(ca).map_err(|e| Error::io(&ca_shown, e))?;
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(Error::invalid(ca_shown, "holds no PEM certificate"));
        }
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .https_only(!options.plain_http)
        .tls_config(tls.build())
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(120)))
        .user_agent(concat!("customs/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    Ok(agent)
}

impl RegistryClient {
    /// A client for `reference`'s registry and repository.
    pub fn new(reference: Reference, options: &RegistryOptions) -> Result<RegistryClient> {
        let shown = reference.to_string();
        if options.plain_http && !reference.host_is_loopback() {
            return Err(Error::invalid(
                shown,
                "plain HTTP is refused: the Secure Image Policy requires TLS; only loopback registries may use --plain-http",
            ));
        }
        let agent = http_agent(options)?;
        let scheme = if options.plain_http { "http" } else { "https" };
        let credentials = match (&options.username, &options.password) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            _ => None,
        };
        Ok(RegistryClient {
            agent,
            base: format!("{scheme}://{}", reference.registry),
            reference,
            credentials,
            authorization: Mutex::new(None),
        })
    }

    /// The reference the client was made for.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// Sends one request with the current authorization.
    fn send(&self, method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<ureq::http::Response<ureq::Body>> {
        let auth = self.authorization.lock().map(|a| a.clone()).unwrap_or_default();
        let mut req = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let req = req
            .body(body.to_vec())
            .map_err(|e| Error::invalid(self.reference.to_string(), format!("bad request to {url}: {e}")))?;
        self.agent.run(req).map_err(|e| {
            let hint = if e.to_string().contains("certificate") {
                "; if the registry uses a private CA, pass its certificate with --ca-file"
            } else {
                ""
            };
            Error::invalid(self.reference.to_string(), format!("cannot reach {url}: {e}{hint}"))
        })
    }

    /// Sends a request, logging in once when the registry asks (for the challenge's scope, else `actions` on
    /// the repository), then once more. Any status is returned.
    fn exchange(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        actions: &str,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let resp = self.send(method, url, headers, body)?;
        if resp.status() != 401 {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        self.authenticate(&challenge, actions)?;
        self.send(method, url, headers, body)
    }

    /// The error a refused request becomes, with the registry's own words and what to check.
    fn refused(&self, what: &str, resp: ureq::http::Response<ureq::Body>, actions: &str) -> Error {
        let status = resp.status();
        let body = resp.into_body().with_config().limit(64 << 10).read_to_vec().unwrap_or_default();
        let detail = serde_json::from_slice::<RegistryErrors>(&body)
            .ok()
            .map(|e| {
                e.errors
                    .iter()
                    .map(|i| format!("{} {}", i.code, i.message).trim().to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
        let hint = match status.as_u16() {
            401 | 403 => format!(
                "; check the credentials (CUSTOMS_REGISTRY_USERNAME / CUSTOMS_REGISTRY_PASSWORD or docker login) and that this identity may {} this repository",
                actions.replace(',', " and ")
            ),
            404 => "; check the repository name and tag".to_string(),
            _ => String::new(),
        };
        Error::invalid(
            self.reference.to_string(),
            format!("registry answered {} for {what}: {detail}{hint}", status.as_u16()),
        )
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base, self.reference.repository)
    }

    /// GETs `/v2/<repository>/<path>`, logging in once when the registry asks.
    pub(crate) fn get(&self, path: &str, accept: &str) -> Result<ureq::Body> {
        let resp = self.exchange("GET", &self.url(path), &[("Accept", accept)], &[], "pull")?;
        if resp.status().is_success() {
            return Ok(resp.into_body());
        }
        Err(self.refused(path, resp, "pull"))
    }

    /// A manifest by tag or digest, with its media type and digest; `None` when the registry has no such
    /// manifest. At most 4 MiB is read.
    pub fn fetch_manifest(&self, reference: &str) -> Result<Option<FetchedManifest>> {
        let path = format!("manifests/{reference}");
        let resp = self.exchange("GET", &self.url(&path), &[("Accept", MANIFEST_ACCEPT)], &[], "pull")?;
        if resp.status() == 404 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.refused(&path, resp, "pull"));
        }
        let media_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = resp
            .into_body()
            .with_config()
            .limit(MAX_MANIFEST_BYTES)
            .read_to_vec()
            .map_err(|e| Error::invalid(self.reference.to_string(), format!("reading manifest {reference}: {e}")))?;
        let digest = Digest::sha256_of(&bytes);
        if let Ok(asked) = reference.parse::<Digest>()
            && asked != digest
        {
            return Err(Error::invalid(
                self.reference.to_string(),
                format!("the registry sent a manifest whose digest is {digest}, not {asked}"),
            ));
        }
        Ok(Some(FetchedManifest { media_type, bytes, digest }))
    }

    /// A small blob's bytes (at most `limit`), checked against its digest.
    pub fn fetch_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let bytes = self
            .get(&format!("blobs/{digest}"), "*/*")?
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| Error::invalid(self.reference.to_string(), format!("reading blob {digest}: {e}")))?;
        if Digest::sha256_of(&bytes) != *digest {
            return Err(Error::invalid(
                self.reference.to_string(),
                format!("blob {digest} does not match its digest"),
            ));
        }
        Ok(bytes)
    }

    /// Uploads a blob unless the repository has it; returns its digest.
    pub fn push_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::sha256_of(bytes);
        let head = self.exchange("HEAD", &self.url(&format!("blobs/{digest}")), &[], &[], "pull,push")?;
        if head.status().is_success() {
            return Ok(digest);
        }
        let start = self.exchange("POST", &self.url("blobs/uploads/"), &[("Content-Length", "0")], &[], "pull,push")?;
        if start.status() != 202 {
            return Err(self.refused("starting a blob upload", start, "push"));
        }
        let location = start
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::invalid(self.reference.to_string(), "the registry started an upload with no Location"))?
            .to_string();
        let location = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest={digest}");
        let done = self.exchange("PUT", &url, &[("Content-Type", "application/octet-stream")], bytes, "pull,push")?;
        if done.status() != 201 {
            return Err(self.refused(&format!("blob {digest}"), done, "push"));
        }
        Ok(digest)
    }

    /// Pushes a manifest under `reference` (a tag, or its digest); returns its digest.
    pub fn push_manifest(&self, reference: &str, media_type: &str, bytes: &[u8]) -> Result<Digest> {
        let path = format!("manifests/{reference}");
        let resp = self.exchange("PUT", &self.url(&path), &[("Content-Type", media_type)], bytes, "pull,push")?;
        if resp.status() != 201 {
            return Err(self.refused(&path, resp, "push"));
        }
        Ok(Digest::sha256_of(bytes))
    }

    /// GETs a path of the registry outside `/v2/<repository>` (its own API, `/api/v1/…`), with the same login;
    /// returns the status and the JSON body (`null` when it is not JSON). At most 4 MiB is read.
    pub fn get_json(&self, path: &str) -> Result<(u16, serde_json::Value)> {
        let url = format!("{}{path}", self.base);
        let resp = self.exchange("GET", &url, &[("Accept", "application/json")], &[], "pull")?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .with_config()
            .limit(MAX_MANIFEST_BYTES)
            .read_to_vec()
            .map_err(|e| Error::invalid(self.reference.to_string(), format!("reading {path}: {e}")))?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)))
    }

    /// The repository's tags (the first 10,000).
    pub fn tags(&self) -> Result<Vec<String>> {
        let bytes = self
            .get("tags/list?n=10000", "application/json")?
            .with_config()
            .limit(MAX_MANIFEST_BYTES)
            .read_to_vec()
            .map_err(|e| Error::invalid(self.reference.to_string(), format!("reading the tags list: {e}")))?;
        let list: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::invalid(self.reference.to_string(), format!("tags list: {e}")))?;
        Ok(list["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect())
    }

    /// The referrers of `digest` (OCI 1.1), optionally of one artifact type: the descriptors of the index the
    /// registry answers. A registry without the referrers API answers 404: an empty list.
    pub fn referrers(&self, digest: &Digest, artifact_type: Option<&str>) -> Result<Vec<serde_json::Value>> {
        let mut path = format!("referrers/{digest}");
        if let Some(t) = artifact_type {
            // Media types hold `+`, which a query string reads as a space.
            let encoded: String = t
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect();
            path.push_str(&format!("?artifactType={encoded}"));
        }
        let resp = self.exchange(
            "GET",
            &self.url(&path),
            &[("Accept", "application/vnd.oci.image.index.v1+json")],
            &[],
            "pull",
        )?;
        if resp.status() == 404 {
            return Ok(Vec::new());
        }
        if !resp.status().is_success() {
            return Err(self.refused(&path, resp, "pull"));
        }
        let bytes = resp
            .into_body()
            .with_config()
            .limit(MAX_MANIFEST_BYTES)
            .read_to_vec()
            .map_err(|e| Error::invalid(self.reference.to_string(), format!("reading referrers of {digest}: {e}")))?;
        let index: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::invalid(self.reference.to_string(), format!("referrers of {digest}: {e}")))?;
        Ok(index["manifests"].as_array().cloned().unwrap_or_default())
    }

    fn authenticate(&self, challenge: &str, actions: &str) -> Result<()> {
        let shown = self.reference.to_string();
        let (scheme, params) = parse_challenge(challenge);
        let param = |k: &str| params.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let basic = |(u, p): &(String, String)| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")));
        let header = match scheme.as_str() {
            "basic" => {
                let creds = self.credentials.as_ref().ok_or_else(|| {
                    Error::invalid(
                        &shown,
                        "the registry requires credentials: set CUSTOMS_REGISTRY_USERNAME and CUSTOMS_REGISTRY_PASSWORD (or docker login)",
                    )
                })?;
                basic(creds)
            }
            "bearer" => {
                let realm =
                    param("realm").ok_or_else(|| Error::invalid(&shown, format!("bearer challenge without realm: {challenge:?}")))?;
                // A token service on plain HTTP is only acceptable when the registry itself is (loopback).
                let realm_ok = realm.starts_with("https://") || (realm.starts_with("http://") && self.base.starts_with("http://"));
                if !realm_ok {
                    return Err(Error::invalid(
                        &shown,
                        format!("refusing token service {realm:?}: credentials only travel over TLS"),
                    ));
                }
                let scope = param("scope").unwrap_or_else(|| format!("repository:{}:{actions}", self.reference.repository));
                let mut req = self.agent.get(&realm).query("scope", &scope);
                if let Some(service) = param("service") {
                    req = req.query("service", &service);
                }
                if let Some(creds) = &self.credentials {
                    req = req.header("Authorization", basic(creds));
                }
                let resp = req
                    .call()
                    .map_err(|e| Error::invalid(&shown, format!("cannot reach token service {realm}: {e}")))?;
                if !resp.status().is_success() {
                    return Err(Error::invalid(
                        &shown,
                        format!("token service {realm} answered {}; check the credentials", resp.status().as_u16()),
                    ));
                }
                let body = resp
                    .into_body()
                    .with_config()
                    .limit(1 << 20)
                    .read_to_vec()
                    .map_err(|e| Error::invalid(&shown, format!("reading token: {e}")))?;
                let token: TokenResponse =
                    serde_json::from_slice(&body).map_err(|e| Error::invalid(&shown, format!("token service sent malformed JSON: {e}")))?;
                let token = token
                    .token
                    .or(token.access_token)
                    .ok_or_else(|| Error::invalid(&shown, "token service sent no token"))?;
                format!("Bearer {token}")
            }
            _ => {
                return Err(Error::invalid(
                    &shown,
                    format!("registry asked for unsupported authentication {challenge:?}"),
                ));
            }
        };
        if let Ok(mut a) = self.authorization.lock() {
            *a = Some(header);
        }
        Ok(())
    }

    /// Streams a blob.
    pub(crate) fn blob(&self, digest: &str) -> Result<Box<dyn Read + Send>> {
        Ok(Box::new(self.get(&format!("blobs/{digest}"), "*/*")?.into_reader()))
    }
}

/// The largest manifest read (the registry's own limit).
const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// A manifest as a registry served it.
#[derive(Clone, Debug)]
pub struct FetchedManifest {
    /// Its `Content-Type`.
    pub media_type: String,
    /// The exact bytes.
    pub bytes: Vec<u8>,
    /// Their SHA-256.
    pub digest: Digest,
}

/// Media types a manifest request accepts.
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_normalize_like_docker() {
        let r: Reference = "debian".parse().unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            (DOCKER_HUB, "library/debian", Some("latest"))
        );
        let r: Reference = "localhost:5000/team/app:1.2".parse().unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("localhost:5000", "team/app", Some("1.2"))
        );
        assert!(r.host_is_loopback());
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r: Reference = format!("acr.example.com/app@{d}").parse().unwrap();
        assert_eq!((r.tag.clone(), r.target()), (None, d.to_string()));
        for bad in ["", "UPPER/case", "a//b", "app:bad tag", "app@sha256:zz", "/abs/path"] {
            assert!(bad.parse::<Reference>().is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_bearer_challenges() {
        let (s, p) =
            parse_challenge(r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:app:pull""#);
        assert_eq!(s, "bearer");
        assert_eq!(p[0], ("realm".into(), "https://auth.example.com/token".into()));
        assert_eq!(p[2], ("scope".into(), "repository:app:pull".into()));
    }

    #[test]
    fn plain_http_only_for_loopback() {
        let opts = RegistryOptions {
            plain_http: true,
            ..RegistryOptions::default()
        };
        assert!(RegistryClient::new("registry.example.com/app".parse().unwrap(), &opts).is_err());
        assert!(RegistryClient::new("127.0.0.1:5000/app".parse().unwrap(), &opts).is_ok());
    }
}

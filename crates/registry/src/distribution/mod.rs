//! The distribution API under `/v2/<repository>/`: routing, authorization context and the audit record of each request.

mod blobs;
mod manifests;
mod uploads;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::access::{Action, Caller};
use crate::audit::AuditEvent;
use crate::digest::{Digest, DigestError};
use crate::error::ApiError;
use crate::login::Auth;
use crate::manifest;
use crate::route::{self, Endpoint, RouteError, first, query_pairs};
use crate::server::Registry;

pub(crate) struct Ctx<'a> {
    pub(crate) reg: &'a Arc<Registry>,
    pub(crate) auth: Auth,
    pub(crate) headers: &'a HeaderMap,
}

impl Ctx<'_> {
    pub(crate) fn principal(&self) -> String {
        match &self.auth {
            Auth::Anonymous => "anonymous".into(),
            Auth::Basic(caller) => caller.principal.clone().unwrap_or_else(|| "anonymous".into()),
            Auth::Bearer(claims) => claims.sub.clone(),
        }
    }

    pub(crate) fn allows(&self, repository: &str, action: Action) -> bool {
        match &self.auth {
            Auth::Anonymous => self.reg.policy.decide(&Caller::anonymous(), repository, action).allowed,
            Auth::Basic(caller) => self.reg.policy.decide(caller, repository, action).allowed,
            Auth::Bearer(claims) => claims.allows(repository, action),
        }
    }

    /// The error for a refused action: a challenge for token and anonymous callers (so clients fetch a token
    /// with the scope), 403 for basic-auth callers who are who they say but lack the right.
    pub(crate) fn refuse(&self, repository: &str, action: Action) -> ApiError {
        let scope_action = if action == Action::Sign { "push" } else { action.as_str() };
        let scope = format!("repository:{repository}:{scope_action}");
        match &self.auth {
            Auth::Basic(_) => ApiError::denied(format!("{} may not {action} on {repository}", self.principal())),
            Auth::Anonymous => ApiError::unauthorized(self.reg.challenge(self.headers, Some(&scope), false), "authentication required"),
            Auth::Bearer(_) => ApiError::unauthorized(
                self.reg.challenge(self.headers, Some(&scope), true),
                format!("token does not grant {action} on {repository}"),
            ),
        }
    }

    pub(crate) fn require(&self, repository: &str, action: Action) -> Result<(), ApiError> {
        if self.allows(repository, action) {
            Ok(())
        } else {
            Err(self.refuse(repository, action))
        }
    }

    /// Pushing blobs is allowed with `push` or `sign` (signatures need their blobs too).
    pub(crate) fn require_upload(&self, repository: &str) -> Result<(), ApiError> {
        if self.allows(repository, Action::Push) || self.allows(repository, Action::Sign) {
            Ok(())
        } else {
            Err(self.refuse(repository, Action::Push))
        }
    }

    pub(crate) async fn caller(&self) -> Result<Caller, ApiError> {
        match &self.auth {
            Auth::Anonymous => Ok(Caller::anonymous()),
            Auth::Basic(caller) => Ok(caller.clone()),
            Auth::Bearer(claims) if claims.sub == "anonymous" => Ok(Caller::anonymous()),
            Auth::Bearer(claims) => {
                let groups = self
                    .reg
                    .auth
                    .groups_of(&self.reg.policy, &claims.sub)
                    .await
                    .map_err(ApiError::internal)?;
                Ok(Caller {
                    principal: Some(claims.sub.clone()),
                    groups,
                })
            }
        }
    }
}

fn default_action(endpoint: &Endpoint, method: &Method) -> &'static str {
    match (endpoint, method) {
        (Endpoint::Catalog, _) => "catalog",
        (_, &Method::GET | &Method::HEAD) => "pull",
        (_, &Method::DELETE) if !matches!(endpoint, Endpoint::Upload(..)) => "delete",
        _ => "push",
    }
}

/// Everything under `/v2/` but `/v2/` itself: authenticated, dispatched, answered and audited — malformed
/// names and unknown endpoints included.
pub(crate) async fn api(
    State(reg): State<Arc<Registry>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let route = uri.path().strip_prefix("/v2/").map_or(Err(RouteError::NotFound), route::parse);
    let event = AuditEvent {
        action: match &route {
            Ok(endpoint) => default_action(endpoint, &method).into(),
            Err(_) => "request".into(),
        },
        repository: route.as_ref().ok().and_then(|e| e.repository()).unwrap_or_default().to_string(),
        // What was asked for, when it is not a valid route: the stored record bounds its length.
        reference: if route.is_err() { uri.path().to_string() } else { String::new() },
        ..AuditEvent::default()
    };
    crate::audited::serve(&reg, addr, &headers, event, async |ctx, note| {
        let endpoint = match route {
            Ok(endpoint) => endpoint,
            Err(RouteError::NotFound) => return Err(ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint")),
            Err(RouteError::NameInvalid(name)) => {
                return Err(ApiError::bad_request("NAME_INVALID", format!("invalid repository name `{name}`")));
            }
        };
        let query = query_pairs(uri.query());
        dispatch(ctx, note, &endpoint, &method, &query, body).await
    })
    .await
}

async fn dispatch(
    ctx: &Ctx<'_>,
    note: &mut AuditEvent,
    endpoint: &Endpoint,
    method: &Method,
    query: &[(String, String)],
    body: Body,
) -> Result<Response, ApiError> {
    match (endpoint, method) {
        (Endpoint::Catalog, &Method::GET) => catalog(ctx, query).await,
        (Endpoint::Tags(repo), &Method::GET) => tags(ctx, repo, query).await,
        (Endpoint::Manifest(repo, reference), &Method::GET | &Method::HEAD) => {
            note.reference = reference.clone();
            manifests::manifest_get(ctx, repo, reference, method == Method::HEAD).await
        }
        (Endpoint::Manifest(repo, reference), &Method::PUT) => {
            note.reference = reference.clone();
            manifests::manifest_put(ctx, note, repo, reference, body).await
        }
        (Endpoint::Manifest(repo, reference), &Method::DELETE) => {
            note.reference = reference.clone();
            manifests::manifest_delete(ctx, repo, reference).await
        }
        (Endpoint::Blob(repo, digest), &Method::GET | &Method::HEAD) => {
            note.reference = digest.clone();
            blobs::blob_get(ctx, repo, digest, method == Method::HEAD).await
        }
        (Endpoint::Blob(repo, digest), &Method::DELETE) => {
            note.reference = digest.clone();
            blobs::blob_delete(ctx, repo, digest).await
        }
        (Endpoint::UploadStart(repo), &Method::POST) => uploads::upload_start(ctx, note, repo, query, body).await,
        (Endpoint::Upload(repo, id), &Method::GET) => uploads::upload_status(ctx, repo, id).await,
        (Endpoint::Upload(repo, id), &Method::PATCH) => uploads::upload_patch(ctx, repo, id, body).await,
        (Endpoint::Upload(repo, id), &Method::PUT) => uploads::upload_finish(ctx, note, repo, id, query, body).await,
        (Endpoint::Upload(repo, id), &Method::DELETE) => uploads::upload_cancel(ctx, repo, id).await,
        (Endpoint::Referrers(repo, digest), &Method::GET) => {
            note.reference = digest.clone();
            referrers(ctx, repo, digest, query).await
        }
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            format!("{method} is not supported here"),
        )),
    }
}

/// Reads and discards a refused body (up to 64 MiB), so an HTTP/1.1 client that writes its whole body before
/// reading gets the answer instead of a broken pipe; past the limit the connection is dropped.
pub(super) async fn drain(body: Body) {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len();
        if seen > 64 << 20 {
            break;
        }
    }
}

/// The body, or `None` past `limit` bytes, after reading the rest ([`drain`]) so the client sees the answer.
pub(super) async fn read_limited(body: Body, limit: usize) -> Option<bytes::Bytes> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut buffer = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.ok()?;
        if buffer.len() + chunk.len() > limit {
            drain(Body::from_stream(stream)).await;
            return None;
        }
        buffer.extend_from_slice(&chunk);
    }
    Some(buffer.freeze())
}

pub(crate) fn parse_digest(raw: &str) -> Result<Digest, ApiError> {
    raw.parse().map_err(|e: DigestError| match e {
        DigestError::Unsupported(_) => ApiError::bad_request("UNSUPPORTED", e.to_string()),
        DigestError::Malformed(_) => ApiError::bad_request("DIGEST_INVALID", e.to_string()),
    })
}

fn paginate(items: Vec<String>, query: &[(String, String)], path: &str) -> Result<(Vec<String>, Option<String>), ApiError> {
    let last = first(query, "last");
    let mut items: Vec<String> = match last {
        Some(last) => items.into_iter().filter(|i| i.as_str() > last).collect(),
        None => items,
    };
    let Some(n) = first(query, "n") else {
        return Ok((items, None));
    };
    let n: usize = n
        .parse()
        .map_err(|_| ApiError::bad_request("PAGINATION_NUMBER_INVALID", format!("n={n} is not a number")))?;
    if items.len() > n {
        items.truncate(n);
        let link = items.last().map(|l| {
            format!(
                "<{path}?n={n}&last={}>; rel=\"next\"",
                serde_urlencoded::to_string([("x", l)]).unwrap_or_default().trim_start_matches("x=")
            )
        });
        return Ok((items, link));
    }
    Ok((items, None))
}

pub(crate) fn json_response(status: StatusCode, value: &Value, link: Option<String>) -> Response {
    let body = serde_json::to_vec(value).expect("serialize");
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len());
    if let Some(link) = link {
        response = response.header(header::LINK, link);
    }
    response.body(Body::from(body)).expect("valid response")
}

async fn catalog(ctx: &Ctx<'_>, query: &[(String, String)]) -> Result<Response, ApiError> {
    let caller = ctx.caller().await?;
    if caller.principal.is_none()
        && ctx
            .reg
            .policy
            .grants()
            .iter()
            .all(|g| g.subject != crate::access::Subject::Anonymous)
    {
        return Err(ApiError::unauthorized(
            ctx.reg.challenge(ctx.headers, Some("registry:catalog:*"), false),
            "authentication required",
        ));
    }
    let all = ctx.reg.meta.repositories().await.map_err(ApiError::internal)?;
    let visible = all
        .into_iter()
        .filter(|r| ctx.reg.policy.decide(&caller, r, Action::Pull).allowed)
        .collect();
    let (page, link) = paginate(visible, query, "/v2/_catalog")?;
    Ok(json_response(StatusCode::OK, &json!({ "repositories": page }), link))
}

async fn tags(ctx: &Ctx<'_>, repo: &str, query: &[(String, String)]) -> Result<Response, ApiError> {
    ctx.require(repo, Action::Pull)?;
    let tags = ctx.reg.meta.tags(repo).await.map_err(ApiError::internal)?;
    let tags = tags.ok_or_else(|| ApiError::not_found("NAME_UNKNOWN", format!("repository {repo} does not exist")))?;
    let (page, link) = paginate(tags, query, &format!("/v2/{repo}/tags/list"))?;
    Ok(json_response(StatusCode::OK, &json!({ "name": repo, "tags": page }), link))
}

pub(crate) async fn resolve(ctx: &Ctx<'_>, repo: &str, reference: &str) -> Result<Digest, ApiError> {
    if reference.contains(':') {
        return parse_digest(reference);
    }
    if !route::valid_tag(reference) {
        return Err(ApiError::bad_request("TAG_INVALID", format!("`{reference}` is not a valid tag")));
    }
    let digest = ctx.reg.meta.resolve_tag(repo, reference).await.map_err(ApiError::internal)?;
    let digest = digest.ok_or_else(|| ApiError::not_found("MANIFEST_UNKNOWN", format!("{repo}:{reference} does not exist")))?;
    parse_digest(&digest)
}

async fn referrers(ctx: &Ctx<'_>, repo: &str, digest: &str, query: &[(String, String)]) -> Result<Response, ApiError> {
    ctx.require(repo, Action::Pull)?;
    let digest = parse_digest(digest)?;
    let filter = first(query, "artifactType");
    let rows = ctx.reg.meta.referrers(repo, digest.as_str()).await.map_err(ApiError::internal)?;
    let manifests: Vec<Value> = rows
        .into_iter()
        .filter(|row| filter.is_none_or(|f| row.artifact_type.as_deref() == Some(f)))
        .map(|row| {
            let annotations = serde_json::from_slice::<Value>(&row.content)
                .ok()
                .and_then(|v| v.get("annotations").cloned());
            let mut descriptor = json!({"mediaType": row.media_type, "digest": row.digest, "size": row.content.len()});
            if let Some(t) = row.artifact_type {
                descriptor["artifactType"] = json!(t);
            }
            if let Some(a) = annotations {
                descriptor["annotations"] = a;
            }
            descriptor
        })
        .collect();
    let body = json!({"schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": manifests});
    let mut response = json_response(StatusCode::OK, &body, None);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(manifest::OCI_INDEX));
    if filter.is_some() {
        response
            .headers_mut()
            .insert("oci-filters-applied", HeaderValue::from_static("artifactType"));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_links() {
        let items: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let q = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let (page, link) = paginate(items.clone(), &q(&[("n", "2")]), "/v2/x/tags/list").unwrap();
        assert_eq!(page, ["a", "b"]);
        assert_eq!(link.as_deref(), Some("</v2/x/tags/list?n=2&last=b>; rel=\"next\""));
        let (page, link) = paginate(items.clone(), &q(&[("n", "2"), ("last", "b")]), "/p").unwrap();
        assert_eq!(page, ["c", "d"]);
        assert_eq!(link, None);
        assert!(paginate(items, &q(&[("n", "x")]), "/p").is_err());
    }
}

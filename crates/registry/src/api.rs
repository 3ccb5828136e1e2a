//! The registry's own REST API under `/api/v1` (documented in `docs/registry-api.md`): scan results, on-demand
//! scans, scan jobs and repository exceptions. Authenticated like `/v2/`, authorized per repository, and every
//! request is audited.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::access::Action;
use crate::audit::AuditEvent;
use crate::distribution::{Ctx, json_response, resolve};
use crate::error::ApiError;
use crate::route::{first, query_pairs};
use crate::server::Registry;

/// The `/api/v1` routes (nested by the server's router).
pub fn routes() -> Router<Arc<Registry>> {
    Router::new().fallback(handle)
}

/// What one API request is, parsed from its path.
enum Call {
    Scan { repository: String, reference: String },
    Dependents { repository: String, reference: String },
    Verdicts { repository: String },
    Exceptions { repository: String },
    Jobs,
    Webhooks,
    Deliveries,
    Delivery { id: String, redeliver: bool },
}

fn parse(path: &str) -> Option<Call> {
    match path {
        "/jobs" => return Some(Call::Jobs),
        "/webhooks" => return Some(Call::Webhooks),
        "/webhooks/deliveries" => return Some(Call::Deliveries),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/webhooks/deliveries/") {
        let (id, redeliver) = match rest.strip_suffix("/redeliver") {
            Some(id) => (id, true),
            None => (rest, false),
        };
        return (!id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_hexdigit())).then(|| Call::Delivery {
            id: id.to_string(),
            redeliver,
        });
    }
    let rest = path.strip_prefix("/repositories/")?;
    if let Some(repository) = rest.strip_suffix("/exceptions") {
        return crate::route::valid_repository(repository).then(|| Call::Exceptions {
            repository: repository.to_string(),
        });
    }
    if let Some(repository) = rest.strip_suffix("/verdicts") {
        return crate::route::valid_repository(repository).then(|| Call::Verdicts {
            repository: repository.to_string(),
        });
    }
    let (repository, tail) = rest.rsplit_once("/manifests/")?;
    let (reference, dependents) = match (tail.strip_suffix("/scan"), tail.strip_suffix("/dependents")) {
        (Some(reference), _) => (reference, false),
        (None, Some(reference)) => (reference, true),
        (None, None) => return None,
    };
    if !(crate::route::valid_repository(repository) && !reference.is_empty() && !reference.contains('/')) {
        return None;
    }
    let (repository, reference) = (repository.to_string(), reference.to_string());
    Some(if dependents {
        Call::Dependents { repository, reference }
    } else {
        Call::Scan { repository, reference }
    })
}

async fn handle(
    State(reg): State<Arc<Registry>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = uri.path().to_string();
    let Some(call) = parse(&path) else {
        return ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint (see docs/registry-api.md)").into_response();
    };
    let (action, repository) = match (&call, &method) {
        (Call::Scan { repository, .. }, &Method::POST) => ("scan.request", repository.clone()),
        (Call::Scan { repository, .. }, _) => ("scan.show", repository.clone()),
        (Call::Dependents { repository, .. }, _) => ("dependents.list", repository.clone()),
        (Call::Verdicts { repository }, _) => ("verdicts.list", repository.clone()),
        (Call::Exceptions { repository }, &Method::PUT) => ("exceptions.set", repository.clone()),
        (Call::Exceptions { repository }, _) => ("exceptions.show", repository.clone()),
        (Call::Jobs, _) => ("jobs.list", String::new()),
        (Call::Webhooks, _) => ("webhooks.list", String::new()),
        (Call::Deliveries, _) => ("webhooks.deliveries", String::new()),
        (Call::Delivery { redeliver: true, .. }, _) => ("webhooks.redeliver", String::new()),
        (Call::Delivery { .. }, _) => ("webhooks.delivery", String::new()),
    };
    let event = AuditEvent {
        action: action.into(),
        repository,
        ..AuditEvent::default()
    };
    crate::audited::serve(&reg, addr, &headers, event, async |ctx, note| {
        let query = query_pairs(uri.query());
        match (call, method) {
            (Call::Scan { repository, reference: r }, Method::GET) => {
                note.reference = r.clone();
                scan_show(ctx, &repository, &r).await
            }
            (Call::Scan { repository, reference: r }, Method::POST) => {
                note.reference = r.clone();
                scan_request(ctx, &repository, &r).await
            }
            (Call::Dependents { repository, reference: r }, Method::GET) => {
                note.reference = r.clone();
                dependents(ctx, &repository, &r).await
            }
            (Call::Verdicts { repository }, Method::GET) => verdicts(ctx, &repository, &query).await,
            (Call::Exceptions { repository }, Method::GET) => exceptions_show(ctx, &repository).await,
            (Call::Exceptions { repository }, Method::PUT) => exceptions_set(ctx, &repository, body, &mut note.detail).await,
            (Call::Jobs, Method::GET) => jobs(ctx, &query).await,
            (Call::Webhooks, Method::GET) => webhooks_list(ctx),
            (Call::Deliveries, Method::GET) => deliveries(ctx, &query).await,
            (Call::Delivery { id, redeliver: false }, Method::GET) => {
                note.reference = id.clone();
                delivery(ctx, &id).await
            }
            (Call::Delivery { id, redeliver: true }, Method::POST) => {
                note.reference = id.clone();
                redeliver(ctx, &id).await
            }
            (_, method) => Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "UNSUPPORTED",
                format!("{method} is not supported here"),
            )),
        }
    })
    .await
}

fn scanning<'a>(ctx: &Ctx<'a>) -> Result<&'a crate::scanning::Scanning, ApiError> {
    ctx.reg.scanning.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "UNSUPPORTED",
            "scanning is off on this registry (no [scanning] section in registry.toml)",
        )
    })
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e)
}

/// A manifest's scan under its repository's rule (the gate's defaults without one), as `customs gate --report
/// json` writes it, with a `scan` section saying where and when it was scanned.
async fn scan_show(ctx: &Ctx<'_>, repository: &str, reference: &str) -> Result<Response, ApiError> {
    ctx.require(repository, Action::Pull)?;
    let scanning = scanning(ctx)?;
    let digest = resolve(ctx, repository, reference).await?;
    let row = ctx.reg.meta.manifest(repository, digest.as_str()).await.map_err(internal)?;
    let row = row.ok_or_else(|| ApiError::not_found("MANIFEST_UNKNOWN", format!("{repository}@{digest} does not exist")))?;
    if !crate::scanning::is_image(&row) {
        let children = crate::manifest::inspect(Some(&row.media_type), &row.content)
            .map(|i| i.manifests.iter().map(|d| d.to_string()).collect::<Vec<_>>())
            .unwrap_or_default();
        let message = if children.is_empty() {
            format!("{repository}@{digest} is not an image (an artifact or signature); it is not scanned")
        } else {
            format!(
                "{repository}@{digest} is an index; ask for one of its images: {}",
                children.join(", ")
            )
        };
        return Err(ApiError::not_found("MANIFEST_UNKNOWN", message));
    }
    let document = scan_document(scanning, &ctx.reg.protection, repository, digest.as_str(), ctx.reg.clock.now())
        .await
        .map_err(internal)?;
    let status = if document["status"] == "pending" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(json_response(status, &document, None))
}

/// A stored image's scan as the API and `customs registry scans show` give it: the gate's JSON
/// (`customs.gate/v1`) under the repository's rule and exceptions on `now`'s date, with a `scan` section (database
/// version and sources, scanner version, times, the rule); `{"status": "pending"}` before the first result, and
/// `{"status": "failed", "scan": {"error": …}}` when the scan failed. A `base` section says what the image is built
/// on, how many findings its base layers bring and which newer base image of the registry has fewer.
pub async fn scan_document(
    scanning: &crate::scanning::Scanning,
    protection: &crate::protect::Protection,
    repository: &str,
    digest: &str,
    now: time::OffsetDateTime,
) -> Result<Value, String> {
    let rule = protection.rule_for(repository);
    let Some(latest) = scanning.store.latest(digest).await.map_err(|e| e.to_string())? else {
        return Ok(json!({"schema": "customs.registry.scan/v1", "status": "pending", "digest": digest, "repository": repository}));
    };
    let mut meta = json!({
        "status": latest.outcome,
        "digest": latest.digest,
        "repository": latest.repository,
        "db_version": latest.db_version,
        "sources": serde_json::from_str::<Value>(&latest.sources).unwrap_or(Value::Null),
        "scanner_version": latest.scanner_version,
        "started_at": latest.started_at,
        "finished_at": latest.finished_at,
        "rule": rule.map(|r| json!(r.config.repositories)),
    });
    // Whether this result is current, and if not, why it was not rescanned.
    let (last_pushed, last_pulled) = scanning.store.activity(digest).await.map_err(|e| e.to_string())?;
    let current = scanning.db_version().await;
    if latest.db_version != current {
        let since = crate::clock::format(now - time::Duration::days(scanning.config.rescan_window_days));
        let used = last_pushed.iter().chain(&last_pulled).max().cloned();
        meta["rescan"] = json!(if used.as_deref().is_some_and(|u| u >= since.as_str()) {
            format!("a rescan for database {current} is queued")
        } else {
            format!(
                "not rescanned since {}: last pushed {}, last pulled {}, outside the {}-day rescan window (`customs registry scan` rescans it)",
                latest.finished_at,
                last_pushed.as_deref().unwrap_or("never"),
                last_pulled.as_deref().unwrap_or("never"),
                scanning.config.rescan_window_days
            )
        });
    }
    meta["current_db_version"] = json!(current);
    meta["last_pushed"] = json!(last_pushed);
    meta["last_pulled"] = json!(last_pulled);
    let Some(scan) = scanning.parsed(&latest) else {
        meta["error"] = json!(latest.error);
        return Ok(json!({"schema": "customs.registry.scan/v1", "status": "failed", "scan": meta}));
    };
    let inspection = crate::protect::judge(scanning, protection, repository, &scan, now.date()).await?;
    let mut doc: Value = serde_json::from_str(&customs_report::gate_json(&inspection.result())).map_err(|e| e.to_string())?;
    if rule.is_some_and(|r| r.too_old(&latest.finished_at, now)) {
        meta["stale"] = json!(true);
    }
    doc["scan"] = meta;
    doc["base"] = crate::lineage::base_summary(scanning.store.meta(), scanning, repository, digest, &scan).await?;
    Ok(doc)
}

async fn scan_request(ctx: &Ctx<'_>, repository: &str, reference: &str) -> Result<Response, ApiError> {
    if !(ctx.allows(repository, Action::Push) || ctx.allows(repository, Action::Admin)) {
        ctx.require(repository, Action::Push)?;
    }
    let scanning = scanning(ctx)?;
    let digest = resolve(ctx, repository, reference).await?;
    let row = ctx.reg.meta.manifest(repository, digest.as_str()).await.map_err(internal)?;
    let row = row.ok_or_else(|| ApiError::not_found("MANIFEST_UNKNOWN", format!("{repository}@{digest} does not exist")))?;
    if !crate::scanning::is_image(&row) {
        return Err(ApiError::bad_request(
            "UNSUPPORTED",
            format!("{repository}@{digest} is not an image"),
        ));
    }
    let queued = scanning
        .on_demand(repository, digest.as_str(), &ctx.reg.clock.now_rfc3339())
        .await
        .map_err(internal)?;
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({"digest": digest.to_string(), "queued": queued, "note": if queued { "queued" } else { "a scan is already queued or running" }}),
        None,
    ))
}

async fn exceptions_show(ctx: &Ctx<'_>, repository: &str) -> Result<Response, ApiError> {
    ctx.require(repository, Action::Pull)?;
    let row = scanning(ctx)?.store.exceptions(repository).await.map_err(internal)?;
    let doc = match row {
        Some(row) => json!({
            "repository": repository,
            "exceptions": serde_json::from_str::<Value>(&row.body).unwrap_or(Value::Null),
            "updated_at": row.updated_at,
            "updated_by": row.updated_by,
        }),
        None => json!({"repository": repository, "exceptions": []}),
    };
    Ok(json_response(StatusCode::OK, &doc, None))
}

/// Replaces a repository's exceptions with an exclusions.json body (admin only); refused when it does not parse.
async fn exceptions_set(ctx: &Ctx<'_>, repository: &str, body: Body, detail: &mut String) -> Result<Response, ApiError> {
    ctx.require(repository, Action::Admin)?;
    let scanning = scanning(ctx)?;
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|_| ApiError::bad_request("SIZE_INVALID", "exceptions larger than 1 MiB"))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| ApiError::bad_request("EXCEPTIONS_INVALID", "not UTF-8"))?;
    let require_reason = ctx.reg.protection.rule_for(repository).is_some_and(|r| r.config.require_reason);
    let parsed =
        crate::protect::parse_exceptions(repository, text, require_reason).map_err(|e| ApiError::bad_request("EXCEPTIONS_INVALID", e))?;
    scanning
        .store
        .set_exceptions(repository, text, &ctx.reg.clock.now_rfc3339(), &ctx.principal())
        .await
        .map_err(internal)?;
    *detail = exceptions_summary(&parsed);
    Ok(json_response(
        StatusCode::OK,
        &json!({"repository": repository, "exceptions": parsed.len()}),
        None,
    ))
}

/// What the audit record of an exceptions change says: each entry's id or library, expiry and approver.
pub fn exceptions_summary(exceptions: &[customs_policy::Exception]) -> String {
    let entries: Vec<String> = exceptions
        .iter()
        .map(|e| {
            let what: Vec<&str> = [e.id.as_deref(), e.library_name.as_deref()].into_iter().flatten().collect();
            let mut s = what.join(" in ");
            if let Some(x) = e.expires {
                s.push_str(&format!(" until {x}"));
            }
            if let Some(a) = &e.approved_by {
                s.push_str(&format!(" approved by {a}"));
            }
            s
        })
        .collect();
    format!("{} exception(s): {}", exceptions.len(), entries.join(", "))
}

/// Each tag of a repository (the first `n`, sorted) with the verdict of its image, or of each image of its
/// index (the first `scanning::INDEX_ENTRIES`), judged now: `pending` before a scan, `failed` when the scan failed.
async fn verdicts(ctx: &Ctx<'_>, repository: &str, query: &[(String, String)]) -> Result<Response, ApiError> {
    ctx.require(repository, Action::Pull)?;
    let scanning = scanning(ctx)?;
    let limit = first(query, "n").and_then(|n| n.parse().ok()).unwrap_or(100usize).clamp(1, 1000);
    let tags = ctx
        .reg
        .meta
        .tags(repository)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::not_found("NAME_UNKNOWN", format!("repository {repository} does not exist")))?;
    let today = ctx.reg.clock.today();
    let now = ctx.reg.clock.now();
    let mut listed = Vec::new();
    for tag in tags.iter().take(limit) {
        let Some(digest) = ctx.reg.meta.resolve_tag(repository, tag).await.map_err(internal)? else {
            continue;
        };
        let Some(row) = ctx.reg.meta.manifest(repository, &digest).await.map_err(internal)? else {
            continue;
        };
        let mut entries = Vec::new();
        for image in crate::scanning::images_of(&row) {
            let Some(latest) = scanning.store.latest(&image).await.map_err(internal)? else {
                entries.push(json!({"digest": image, "status": "pending"}));
                continue;
            };
            let Some(scan) = scanning.parsed(&latest) else {
                entries.push(json!({"digest": image, "status": "failed", "error": latest.error, "scanned_at": latest.finished_at}));
                continue;
            };
            let inspection = crate::protect::judge(scanning, &ctx.reg.protection, repository, &scan, today)
                .await
                .map_err(internal)?;
            let mut verdict = crate::webhooks::event::verdict_json(&inspection);
            if let Some(v) = verdict.as_object_mut() {
                v.remove("failing");
            }
            let stale = ctx
                .reg
                .protection
                .rule_for(repository)
                .is_some_and(|r| r.too_old(&latest.finished_at, now));
            entries.push(json!({"digest": image, "status": "scanned", "verdict": verdict,
                "scanned_at": latest.finished_at, "db_version": latest.db_version, "stale": stale}));
        }
        listed.push(json!({"tag": tag, "digest": digest, "media_type": row.media_type, "images": entries}));
    }
    let body = json!({"repository": repository, "tags": listed, "truncated": tags.len() > limit});
    Ok(json_response(StatusCode::OK, &body, None))
}

/// Tagged images built on a manifest (and, by tag, on the tag's earlier images), in repositories the caller may
/// pull; how many others there are is said, not who.
async fn dependents(ctx: &Ctx<'_>, repository: &str, reference: &str) -> Result<Response, ApiError> {
    ctx.require(repository, Action::Pull)?;
    let digest = resolve(ctx, repository, reference).await?;
    let tag = (!reference.contains(':')).then_some(reference);
    let found = crate::lineage::dependents(&ctx.reg.meta, repository, digest.as_str(), tag)
        .await
        .map_err(internal)?;
    let (visible, hidden): (Vec<_>, Vec<_>) = found.into_iter().partition(|d| ctx.allows(&d.lineage.repository, Action::Pull));
    let body = json!({
        "base": {"repository": repository, "tag": tag, "digest": digest.as_str()},
        "dependents": visible,
        "not_shown": hidden.len(),
    });
    Ok(json_response(StatusCode::OK, &body, None))
}

async fn jobs(ctx: &Ctx<'_>, query: &[(String, String)]) -> Result<Response, ApiError> {
    let scanning = scanning(ctx)?;
    let limit = first(query, "n").and_then(|n| n.parse().ok()).unwrap_or(100i64).clamp(1, 1000);
    let state = first(query, "state");
    let jobs = scanning.store.jobs(state, limit).await.map_err(internal)?;
    let visible: Vec<_> = jobs.into_iter().filter(|j| ctx.allows(&j.repository, Action::Pull)).collect();
    let pending = scanning.store.pending().await.map_err(internal)?;
    Ok(json_response(StatusCode::OK, &json!({"pending": pending, "jobs": visible}), None))
}

fn webhooks<'a>(ctx: &Ctx<'a>) -> Result<&'a crate::webhooks::Webhooks, ApiError> {
    ctx.reg.webhooks.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "UNSUPPORTED",
            "no webhooks are configured on this registry ([[webhook]] in registry.toml)",
        )
    })
}

/// The configured webhooks (URLs masked), for any signed-in caller.
fn webhooks_list(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    if ctx.principal() == "anonymous" {
        return Err(ApiError::unauthorized(
            ctx.reg.challenge(ctx.headers, None, false),
            "authentication required",
        ));
    }
    let hooks = webhooks(ctx)?.describe();
    Ok(json_response(StatusCode::OK, &json!({"webhooks": hooks}), None))
}

/// The delivery log, newest first: only deliveries about repositories the caller administers.
async fn deliveries(ctx: &Ctx<'_>, query: &[(String, String)]) -> Result<Response, ApiError> {
    let hooks = webhooks(ctx)?;
    let limit = first(query, "n").and_then(|n| n.parse().ok()).unwrap_or(100i64).clamp(1, 1000);
    let rows = hooks
        .store
        .list(first(query, "webhook"), first(query, "state"), first(query, "event"), limit)
        .await
        .map_err(internal)?;
    let visible: Vec<_> = rows.into_iter().filter(|d| ctx.allows(&d.repository, Action::Admin)).collect();
    Ok(json_response(StatusCode::OK, &json!({"deliveries": visible}), None))
}

async fn visible_delivery(ctx: &Ctx<'_>, id: &str) -> Result<crate::webhooks::DeliveryRow, ApiError> {
    let row = webhooks(ctx)?.store.get(id).await.map_err(internal)?;
    match row {
        Some(row) if ctx.allows(&row.repository, Action::Admin) => Ok(row),
        _ => Err(ApiError::not_found("NOT_FOUND", format!("no delivery {id} that you administer"))),
    }
}

async fn delivery(ctx: &Ctx<'_>, id: &str) -> Result<Response, ApiError> {
    let row = visible_delivery(ctx, id).await?;
    Ok(json_response(StatusCode::OK, &json!(row), None))
}

/// Queues a delivery again (after fixing a receiver): admin on its repository.
async fn redeliver(ctx: &Ctx<'_>, id: &str) -> Result<Response, ApiError> {
    visible_delivery(ctx, id).await?;
    let queued = webhooks(ctx)?
        .store
        .redeliver(id, &ctx.reg.clock.now_rfc3339())
        .await
        .map_err(internal)?;
    if !queued {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "UNSUPPORTED",
            "the delivery is being sent; try again shortly",
        ));
    }
    Ok(json_response(StatusCode::ACCEPTED, &json!({"id": id, "queued": true}), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_repository_and_reference() {
        match parse("/repositories/team/app/manifests/1.0/scan") {
            Some(Call::Scan { repository, reference }) => assert_eq!((repository.as_str(), reference.as_str()), ("team/app", "1.0")),
            _ => panic!("not a scan call"),
        }
        // A repository may itself hold `manifests` as a path segment: the last one separates.
        match parse("/repositories/a/manifests/b/manifests/sha256:ab/scan") {
            Some(Call::Scan { repository, .. }) => assert_eq!(repository, "a/manifests/b"),
            _ => panic!("not a scan call"),
        }
        assert!(matches!(parse("/repositories/team/app/exceptions"), Some(Call::Exceptions { .. })));
        assert!(matches!(parse("/repositories/team/app/verdicts"), Some(Call::Verdicts { .. })));
        match parse("/repositories/base/debian/manifests/12/dependents") {
            Some(Call::Dependents { repository, reference }) => {
                assert_eq!((repository.as_str(), reference.as_str()), ("base/debian", "12"))
            }
            _ => panic!("not a dependents call"),
        }
        assert!(parse("/repositories/team/app/manifests/1/other").is_none());
        assert!(matches!(parse("/jobs"), Some(Call::Jobs)));
        assert!(matches!(parse("/webhooks"), Some(Call::Webhooks)));
        assert!(matches!(parse("/webhooks/deliveries"), Some(Call::Deliveries)));
        assert!(matches!(
            parse("/webhooks/deliveries/0a1b/redeliver"),
            Some(Call::Delivery { redeliver: true, .. })
        ));
        assert!(matches!(
            parse("/webhooks/deliveries/0a1b"),
            Some(Call::Delivery { redeliver: false, .. })
        ));
        for bad in [
            "/webhooks/deliveries/../x",
            "/webhooks/deliveries/",
            "/repositories/../etc/exceptions",
            "/repositories/Team/exceptions",
            "/repositories/a/manifests//scan",
            "/repositories/a/manifests/x/y/scan",
            "/repositories/a/manifests/1",
            "/other",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}

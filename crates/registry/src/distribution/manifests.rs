//! Manifests: get, put (with blob checks, lineage, scan queueing and events), delete.

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Ctx, parse_digest, resolve};
use crate::access::Action;
use crate::audit::AuditEvent;
use crate::digest::Digest;
use crate::error::ApiError;
use crate::manifest;
use crate::meta::ManifestRow;
use crate::route;

pub(super) async fn manifest_get(ctx: &Ctx<'_>, repo: &str, reference: &str, head: bool) -> Result<Response, ApiError> {
    ctx.require(repo, Action::Pull)?;
    let digest = resolve(ctx, repo, reference).await?;
    let row = ctx.reg.meta.manifest(repo, digest.as_str()).await.map_err(ApiError::internal)?;
    let row = row.ok_or_else(|| ApiError::not_found("MANIFEST_UNKNOWN", format!("{repo}@{digest} does not exist")))?;
    // Who may push or sign here reads unsigned manifests (to sign them), whatever scope its token asked for:
    // the matrix decides, not the token.
    let may_sign = if ctx.reg.protection.rule_for(repo).is_some_and(|r| r.config.require_signature) {
        let caller = ctx.caller().await?;
        [Action::Push, Action::Sign]
            .into_iter()
            .any(|a| ctx.reg.policy.decide(&caller, repo, a).allowed)
    } else {
        false
    };
    // Admins still pull a blocked image (to inspect or fix it); everyone else meets the protection rule.
    if !ctx.allows(repo, Action::Admin)
        && let Err(crate::protect::Blocked(why)) = crate::protect::check_pull(ctx.reg, repo, &row, may_sign).await
    {
        ctx.reg.metrics.blocked_pulls.inc();
        let principal = ctx.principal();
        if let Some(webhooks) = &ctx.reg.webhooks
            && webhooks.blocked_pull_is_news(&format!("{repo}@{digest} {principal}"))
        {
            ctx.reg
                .emit(crate::webhooks::Event::about(
                    crate::webhooks::EventKind::PullBlocked,
                    repo,
                    format!("{repo}@{digest}"),
                    serde_json::json!({"digest": digest.as_str(), "reference": reference, "principal": principal, "reason": why}),
                    (format!("pull of {repo}:{reference} by {principal} blocked"), why.clone(), false),
                    ctx.reg.clock.now_rfc3339(),
                ))
                .await;
        }
        return Err(ApiError::denied(why));
    }
    if !head {
        ctx.reg
            .queue_alerts(ctx.reg.anomaly.pull(&ctx.principal(), repo, std::time::Instant::now()));
    }
    if !head
        && let Some(scanning) = &ctx.reg.scanning
        && crate::scanning::is_image(&row)
    {
        scanning.note_pull(&row.digest, repo, &ctx.reg.clock.now_rfc3339());
    }
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, &row.media_type)
        .header(header::CONTENT_LENGTH, row.content.len())
        .header("docker-content-digest", &row.digest)
        .header(header::ETAG, format!("\"{}\"", row.digest));
    let body = if head { Body::empty() } else { Body::from(row.content) };
    Ok(response.body(body).expect("valid response"))
}

pub(super) async fn manifest_put(
    ctx: &Ctx<'_>,
    note: &mut AuditEvent,
    repo: &str,
    reference: &str,
    body: Body,
) -> Result<Response, ApiError> {
    ctx.require_upload(repo)?;
    let limit = ctx.reg.config.server.max_manifest_bytes;
    let bytes = super::read_limited(body, limit).await.ok_or_else(|| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "SIZE_INVALID",
            format!("manifest larger than {limit} bytes"),
        )
    })?;
    // Pushed by digest: stored under that digest's algorithm (sha256 or sha512); by tag: sha256.
    let algorithm = if reference.contains(':') {
        parse_digest(reference)?.algorithm()
    } else {
        crate::digest::Algorithm::Sha256
    };
    let digest = Digest::of_with(algorithm, &bytes);
    let tag = if reference.contains(':') {
        if parse_digest(reference)? != digest {
            return Err(ApiError::bad_request(
                "DIGEST_INVALID",
                format!("manifest digest is {digest}, not {reference}"),
            ));
        }
        None
    } else if route::valid_tag(reference) {
        Some(reference)
    } else {
        return Err(ApiError::bad_request("TAG_INVALID", format!("`{reference}` is not a valid tag")));
    };
    let content_type = ctx.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let info = manifest::inspect(content_type, &bytes).map_err(|e| ApiError::bad_request("MANIFEST_INVALID", e))?;
    let signature = info.is_signature || tag.is_some_and(manifest::is_cosign_tag);
    if signature {
        note.action = "sign".into();
    }
    // `sign` alone may add signatures, never move an ordinary tag (that would repoint `latest` at a signature).
    let may_push = ctx.allows(repo, Action::Push);
    let may_sign_this = signature && ctx.allows(repo, Action::Sign) && tag.is_none_or(manifest::is_cosign_tag);
    if !(may_push || may_sign_this) {
        return Err(ctx.refuse(repo, Action::Push));
    }
    let row = ManifestRow {
        digest: digest.to_string(),
        media_type: info.media_type,
        artifact_type: info.artifact_type,
        content: bytes.to_vec(),
    };
    let blobs: Vec<String> = info.blobs.iter().map(|d| d.to_string()).collect();
    let manifests: Vec<String> = info.manifests.iter().map(|d| d.to_string()).collect();
    let references = crate::meta::References {
        blobs: &blobs,
        manifests: &manifests,
        subject: info.subject.as_deref(),
    };
    let moved_from = match ctx
        .reg
        .meta
        .put_manifest(repo, &row, &references, tag)
        .await
        .map_err(ApiError::internal)?
    {
        Ok(moved_from) => moved_from,
        Err(missing) => {
            let what = if missing.manifest { "manifest" } else { "blob" };
            return Err(ApiError::bad_request(
                "MANIFEST_BLOB_UNKNOWN",
                format!("{what} {} is not in {repo}; push it first", missing.digest),
            ));
        }
    };
    let image = crate::scanning::is_image(&row);
    if image && let Err(e) = crate::lineage::record(ctx.reg, repo, &row, &ctx.reg.clock.now_rfc3339()).await {
        // Lineage informs rebuild triggers; an image it cannot be read for is still stored and scanned.
        tracing::warn!("lineage of {repo}@{digest}: {e}");
    }
    if let (Some(tag), Some(old)) = (tag, moved_from)
        && ctx.reg.webhooks.is_some()
    {
        let (registry, repo, tag, new) = (ctx.reg.clone(), repo.to_string(), tag.to_string(), digest.to_string());
        tokio::spawn(async move {
            if let Err(e) = crate::lineage::on_tag_moved(&registry, &repo, &tag, &old, &new).await {
                tracing::error!("{repo}:{tag} moved: the images built on it could not be listed: {e}");
            }
        });
    }
    if let Some(scanning) = &ctx.reg.scanning
        && image
    {
        // No push is acknowledged without its scan queued; a retried PUT stores the same manifest again.
        scanning
            .on_push(repo, &row.digest, &ctx.reg.clock.now_rfc3339())
            .await
            .map_err(ApiError::internal)?;
    }
    note.detail = digest.to_string();
    let principal = ctx.principal();
    let subject = match tag {
        Some(tag) => format!("{repo}:{tag}"),
        None => format!("{repo}@{digest}"),
    };
    ctx.reg
        .emit(crate::webhooks::Event::about(
            crate::webhooks::EventKind::Push,
            repo,
            subject.clone(),
            serde_json::json!({"digest": digest.as_str(), "tag": tag, "media_type": row.media_type,
                               "artifact_type": row.artifact_type, "principal": principal}),
            (format!("{subject} pushed by {principal}"), digest.to_string(), true),
            ctx.reg.clock.now_rfc3339(),
        ))
        .await;
    let mut response = Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{repo}/manifests/{digest}"))
        .header("docker-content-digest", digest.as_str())
        .header(header::CONTENT_LENGTH, 0);
    if let Some(subject) = &info.subject {
        response = response.header("oci-subject", subject);
    }
    Ok(response.body(Body::empty()).expect("valid response"))
}

pub(super) async fn manifest_delete(ctx: &Ctx<'_>, repo: &str, reference: &str) -> Result<Response, ApiError> {
    ctx.require(repo, Action::Delete)?;
    let deleted = if reference.contains(':') {
        let digest = parse_digest(reference)?;
        ctx.reg.meta.delete_manifest(repo, digest.as_str()).await
    } else {
        ctx.reg.meta.delete_tag(repo, reference).await
    }
    .map_err(ApiError::internal)?;
    if !deleted {
        return Err(ApiError::not_found(
            "MANIFEST_UNKNOWN",
            format!("{repo}: {reference} does not exist"),
        ));
    }
    let principal = ctx.principal();
    let subject = if reference.contains(':') {
        format!("{repo}@{reference}")
    } else {
        format!("{repo}:{reference}")
    };
    ctx.reg
        .emit(crate::webhooks::Event::about(
            crate::webhooks::EventKind::Delete,
            repo,
            subject.clone(),
            serde_json::json!({"reference": reference, "principal": principal}),
            (format!("{subject} deleted by {principal}"), String::new(), false),
            ctx.reg.clock.now_rfc3339(),
        ))
        .await;
    Ok(StatusCode::ACCEPTED.into_response())
}

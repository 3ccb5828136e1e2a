//! Blob uploads: start (with mount and monolithic), chunks, status, finish, cancel.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Ctx, drain, parse_digest};
use crate::access::Action;
use crate::audit::AuditEvent;
use crate::digest::Digest;
use crate::error::ApiError;
use crate::route::{self, first};
use crate::storage::Assembly;

fn upload_response(status: StatusCode, repo: &str, id: &str, size: u64) -> Response {
    Response::builder()
        .status(status)
        .header(header::LOCATION, format!("/v2/{repo}/blobs/uploads/{id}"))
        .header(header::RANGE, format!("0-{}", size.saturating_sub(1)))
        .header("docker-upload-uuid", id)
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .expect("valid response")
}

fn blob_created(repo: &str, digest: &Digest) -> Response {
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{repo}/blobs/{digest}"))
        .header("docker-content-digest", digest.as_str())
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .expect("valid response")
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

pub(super) async fn upload_start(
    ctx: &Ctx<'_>,
    note: &mut AuditEvent,
    repo: &str,
    query: &[(String, String)],
    body: Body,
) -> Result<Response, ApiError> {
    ctx.require_upload(repo)?;
    if let (Some(mount), Some(from)) = (first(query, "mount"), first(query, "from")) {
        let digest = parse_digest(mount)?;
        note.reference = digest.to_string();
        if route::valid_repository(from) && ctx.allows(from, Action::Pull) {
            if let Some((size, _)) = ctx.reg.meta.blob_link(from, digest.as_str()).await.map_err(ApiError::internal)?
                && ctx.reg.meta.claim_blob(digest.as_str(), size).await.map_err(ApiError::internal)?
            {
                // (A blob the collector is deleting is not mounted: the client uploads it instead.)
                ctx.reg
                    .meta
                    .link_blob(repo, digest.as_str(), size)
                    .await
                    .map_err(ApiError::internal)?;
                note.detail = format!("mounted from {from}");
                return Ok(blob_created(repo, &digest));
            }
        } else {
            note.detail = format!("mount from {from} refused: no pull right there; starting an upload instead");
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    ctx.reg.meta.create_upload(&id, repo).await.map_err(ApiError::internal)?;
    if let Some(digest) = first(query, "digest") {
        // Monolithic upload in the POST itself.
        let digest = parse_digest(digest)?;
        note.reference = digest.to_string();
        if has_body(ctx.headers) {
            append_part(ctx, &id, 0, body, None)
                .await?
                .map_err(|PartError::Length(m)| ApiError::bad_request("BLOB_UPLOAD_INVALID", m))?;
        }
        return finish(ctx, repo, &id, &digest).await;
    }
    Ok(upload_response(StatusCode::ACCEPTED, repo, &id, 0))
}

async fn open_upload(ctx: &Ctx<'_>, repo: &str, id: &str) -> Result<u64, ApiError> {
    ctx.require_upload(repo)?;
    match ctx.reg.meta.upload(id).await.map_err(ApiError::internal)? {
        Some((upload_repo, size)) if upload_repo == repo => Ok(size),
        _ => Err(ApiError::not_found(
            "BLOB_UPLOAD_UNKNOWN",
            format!("upload {id} does not exist in {repo}"),
        )),
    }
}

pub(super) async fn upload_status(ctx: &Ctx<'_>, repo: &str, id: &str) -> Result<Response, ApiError> {
    let size = open_upload(ctx, repo, id).await?;
    Ok(upload_response(StatusCode::NO_CONTENT, repo, id, size))
}

/// A chunk whose body does not match its `Content-Range`.
enum PartError {
    /// What differs.
    Length(String),
}

/// Streams one part into storage and records it; refuses when another writer moved the upload meanwhile.
/// With `length` (from `Content-Range`), a body of any other length is discarded: `Ok(Err(..))`.
async fn append_part(ctx: &Ctx<'_>, id: &str, offset: u64, body: Body, length: Option<u64>) -> Result<Result<u64, PartError>, ApiError> {
    let max = ctx.reg.config.server.max_blob_bytes.saturating_sub(offset);
    // One byte past the declared length is enough to know the body is longer.
    let limit = length.map_or(max, |l| l.saturating_add(1).min(max));
    let part = ctx.reg.blobs.write_part(id, offset, body.into_data_stream(), limit).await;
    let part = match part {
        Err(crate::storage::StorageError::TooLarge(_)) if length.is_some_and(|l| l < max) => {
            return Ok(Err(PartError::Length(format!(
                "the chunk's body is longer than the {} bytes its Content-Range says",
                length.unwrap_or(0)
            ))));
        }
        Err(crate::storage::StorageError::TooLarge(_)) => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_INVALID",
                format!("blob larger than {} bytes", ctx.reg.config.server.max_blob_bytes),
            ));
        }
        Err(crate::storage::StorageError::Body(e)) => {
            return Err(ApiError::bad_request("BLOB_UPLOAD_INVALID", format!("request body broke off: {e}")));
        }
        Err(other) => return Err(ApiError::internal(other)),
        Ok(part) => part,
    };
    ctx.reg.metrics.bytes_received.inc_by(part.size);
    if let Some(length) = length
        && part.size != length
    {
        ctx.reg.blobs.delete_parts(std::slice::from_ref(&part)).await;
        return Ok(Err(PartError::Length(format!(
            "the chunk's body has {} bytes, its Content-Range says {length}; it was discarded",
            part.size
        ))));
    }
    if part.size == 0 {
        ctx.reg.blobs.delete_parts(std::slice::from_ref(&part)).await;
        return Ok(Ok(offset));
    }
    if !ctx.reg.meta.add_part(id, &part).await.map_err(ApiError::internal)? {
        ctx.reg.blobs.delete_parts(std::slice::from_ref(&part)).await;
        return Err(ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            "upload moved on concurrently; ask for its status",
        ));
    }
    Ok(Ok(offset + part.size))
}

/// The 416 answer for an upload at `size` whose chunk does not fit, saying why.
fn range_refused(repo: &str, id: &str, size: u64, message: String) -> Response {
    let mut response = upload_response(StatusCode::RANGE_NOT_SATISFIABLE, repo, id, size);
    response.headers_mut().remove(header::CONTENT_LENGTH);
    *response.body_mut() = Body::from(json!({"errors":[{"code":"BLOB_UPLOAD_INVALID","message":message}]}).to_string());
    response
}

/// How many bytes the chunk's `Content-Range: START-END` says it carries (`None` without the header), or why
/// it is refused (416): it must start where the upload stands, end at or after its start, and agree with
/// `Content-Length` when both are sent.
fn chunk_length(ctx: &Ctx<'_>, size: u64) -> Result<Option<u64>, String> {
    let Some(value) = ctx.headers.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let spec = value.trim().trim_start_matches("bytes ").trim_start_matches("bytes=");
    let spec = spec.split('/').next().unwrap_or_default();
    let bounds = spec
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?)));
    let Some((start, end)) = bounds else {
        return Err(format!("Content-Range `{value}` is not START-END"));
    };
    if start != size {
        return Err(format!("Content-Range {value} does not start at the upload's size {size}"));
    }
    if end < start {
        return Err(format!("Content-Range {value} ends before it starts"));
    }
    let length = end - start + 1;
    let declared = ctx
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|d| d != length) {
        return Err(format!(
            "Content-Range {value} covers {length} bytes but Content-Length is {}",
            declared.unwrap_or(0)
        ));
    }
    Ok(Some(length))
}

pub(super) async fn upload_patch(ctx: &Ctx<'_>, repo: &str, id: &str, body: Body) -> Result<Response, ApiError> {
    let size = open_upload(ctx, repo, id).await?;
    let length = match chunk_length(ctx, size) {
        Ok(length) => length,
        Err(message) => {
            drain(body).await;
            return Ok(range_refused(repo, id, size, message));
        }
    };
    let size = match append_part(ctx, id, size, body, length).await? {
        Ok(size) => size,
        Err(PartError::Length(message)) => return Ok(range_refused(repo, id, size, message)),
    };
    Ok(upload_response(StatusCode::ACCEPTED, repo, id, size))
}

pub(super) async fn upload_finish(
    ctx: &Ctx<'_>,
    note: &mut AuditEvent,
    repo: &str,
    id: &str,
    query: &[(String, String)],
    body: Body,
) -> Result<Response, ApiError> {
    let size = open_upload(ctx, repo, id).await?;
    let digest = first(query, "digest").ok_or_else(|| ApiError::bad_request("DIGEST_INVALID", "the digest query parameter is required"))?;
    let digest = parse_digest(digest)?;
    note.reference = digest.to_string();
    if has_body(ctx.headers) {
        let length = match chunk_length(ctx, size) {
            Ok(length) => length,
            Err(message) => {
                drain(body).await;
                return Ok(range_refused(repo, id, size, message));
            }
        };
        if let Err(PartError::Length(message)) = append_part(ctx, id, size, body, length).await? {
            return Ok(range_refused(repo, id, size, message));
        }
    }
    finish(ctx, repo, id, &digest).await
}

async fn finish(ctx: &Ctx<'_>, repo: &str, id: &str, digest: &Digest) -> Result<Response, ApiError> {
    let (_, size) = ctx.reg.meta.upload(id).await.map_err(ApiError::internal)?.unwrap_or_default();
    let parts = ctx.reg.meta.parts(id).await.map_err(ApiError::internal)?;
    let outcome = ctx.reg.blobs.assemble(id, &parts, size, digest).await.map_err(ApiError::internal)?;
    match outcome {
        Assembly::Verified(verified) => {
            // Claimed before it becomes visible, linked after: the collector never deletes a blob in between.
            if let Err(refused) = claim(ctx, digest, size).await {
                ctx.reg.blobs.discard(&verified).await;
                return Err(refused);
            }
            ctx.reg.blobs.publish(&verified, digest).await.map_err(ApiError::internal)?;
            ctx.reg
                .meta
                .link_blob(repo, digest.as_str(), size)
                .await
                .map_err(ApiError::internal)?;
            ctx.reg.meta.delete_upload(id).await.map_err(ApiError::internal)?;
            if parts.len() > 1 {
                ctx.reg.blobs.delete_parts(&parts).await;
            }
            Ok(blob_created(repo, digest))
        }
        Assembly::DigestMismatch(actual) => {
            ctx.reg.meta.delete_upload(id).await.map_err(ApiError::internal)?;
            ctx.reg.blobs.delete_parts(&parts).await;
            Err(ApiError::bad_request(
                "DIGEST_INVALID",
                format!("uploaded content has digest {actual}, not {digest}; the upload was discarded"),
            ))
        }
        Assembly::Incomplete => Err(ApiError::bad_request(
            "BLOB_UPLOAD_INVALID",
            "the upload's chunks do not cover the blob contiguously",
        )),
    }
}

/// How long a push waits for the garbage collector to finish deleting a blob it is storing again.
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Claims `digest` for this push ([`crate::meta::MetaStore::claim_blob`]), waiting while the collector deletes
/// it; past [`CLAIM_WAIT`] the client is told to retry (503), the upload kept for the retry.
async fn claim(ctx: &Ctx<'_>, digest: &Digest, size: u64) -> Result<(), ApiError> {
    let deadline = tokio::time::Instant::now() + CLAIM_WAIT;
    loop {
        if ctx.reg.meta.claim_blob(digest.as_str(), size).await.map_err(ApiError::internal)? {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                format!("blob {digest} is being garbage-collected; retry the request"),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub(super) async fn upload_cancel(ctx: &Ctx<'_>, repo: &str, id: &str) -> Result<Response, ApiError> {
    open_upload(ctx, repo, id).await?;
    let parts = ctx.reg.meta.parts(id).await.map_err(ApiError::internal)?;
    ctx.reg.meta.delete_upload(id).await.map_err(ApiError::internal)?;
    ctx.reg.blobs.delete_parts(&parts).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

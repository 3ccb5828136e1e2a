//! Blob uploads: start (with mount and monolithic), chunks, status, finish, cancel.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Ctx, parse_digest};
use crate::access::Action;
use crate::audit::AuditEvent;
use crate::digest::Digest;
use crate::error::ApiError;
use crate::route::{self, first};
use crate::storage::Commit;

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
            if let Some(size) = ctx
                .reg
                .meta
                .blob_in_repository(from, digest.as_str())
                .await
                .map_err(ApiError::internal)?
            {
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
            append_part(ctx, &id, 0, body).await?;
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

/// Streams one part into storage and records it; refuses when another writer moved the upload meanwhile.
async fn append_part(ctx: &Ctx<'_>, id: &str, offset: u64, body: Body) -> Result<u64, ApiError> {
    let limit = ctx.reg.config.server.max_blob_bytes.saturating_sub(offset);
    let part = ctx
        .reg
        .blobs
        .write_part(id, offset, body.into_data_stream(), limit)
        .await
        .map_err(|e| match e {
            crate::storage::StorageError::TooLarge(_) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_INVALID",
                format!("blob larger than {} bytes", ctx.reg.config.server.max_blob_bytes),
            ),
            crate::storage::StorageError::Body(e) => ApiError::bad_request("BLOB_UPLOAD_INVALID", format!("request body broke off: {e}")),
            other => ApiError::internal(other),
        })?;
    ctx.reg.metrics.bytes_received.inc_by(part.size);
    if part.size == 0 {
        ctx.reg.blobs.delete_parts(std::slice::from_ref(&part)).await;
        return Ok(offset);
    }
    if !ctx.reg.meta.add_part(id, &part).await.map_err(ApiError::internal)? {
        ctx.reg.blobs.delete_parts(std::slice::from_ref(&part)).await;
        return Err(ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            "upload moved on concurrently; ask for its status",
        ));
    }
    Ok(offset + part.size)
}

/// Reads and discards a refused chunk (up to 64 MiB), so an HTTP/1.1 client that writes its whole body before
/// reading gets the answer instead of a broken pipe; past the limit the connection is dropped.
async fn drain(body: Body) {
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

/// The 416 answer when `Content-Range` does not start where the upload stands.
fn content_range_mismatch(ctx: &Ctx<'_>, repo: &str, id: &str, size: u64) -> Option<Response> {
    let value = ctx.headers.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok())?;
    let start = value
        .trim()
        .trim_start_matches("bytes ")
        .split(['-', '/'])
        .next()
        .and_then(|s| s.trim().parse::<u64>().ok());
    if start == Some(size) {
        return None;
    }
    let mut response = upload_response(StatusCode::RANGE_NOT_SATISFIABLE, repo, id, size);
    response.headers_mut().remove(header::CONTENT_LENGTH);
    *response.body_mut() = Body::from(
        json!({"errors":[{"code":"BLOB_UPLOAD_INVALID","message":format!("Content-Range {value} does not start at the upload's size {size}")}]})
            .to_string(),
    );
    Some(response)
}

pub(super) async fn upload_patch(ctx: &Ctx<'_>, repo: &str, id: &str, body: Body) -> Result<Response, ApiError> {
    let size = open_upload(ctx, repo, id).await?;
    if let Some(response) = content_range_mismatch(ctx, repo, id, size) {
        drain(body).await;
        return Ok(response);
    }
    let size = append_part(ctx, id, size, body).await?;
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
        if let Some(response) = content_range_mismatch(ctx, repo, id, size) {
            drain(body).await;
            return Ok(response);
        }
        append_part(ctx, id, size, body).await?;
    }
    finish(ctx, repo, id, &digest).await
}

async fn finish(ctx: &Ctx<'_>, repo: &str, id: &str, digest: &Digest) -> Result<Response, ApiError> {
    let (_, size) = ctx.reg.meta.upload(id).await.map_err(ApiError::internal)?.unwrap_or_default();
    let parts = ctx.reg.meta.parts(id).await.map_err(ApiError::internal)?;
    let outcome = ctx.reg.blobs.commit(id, &parts, size, digest).await.map_err(ApiError::internal)?;
    match outcome {
        Commit::Stored => {
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
        Commit::DigestMismatch(actual) => {
            ctx.reg.meta.delete_upload(id).await.map_err(ApiError::internal)?;
            ctx.reg.blobs.delete_parts(&parts).await;
            Err(ApiError::bad_request(
                "DIGEST_INVALID",
                format!("uploaded content has digest {actual}, not {digest}; the upload was discarded"),
            ))
        }
        Commit::Incomplete => Err(ApiError::bad_request(
            "BLOB_UPLOAD_INVALID",
            "the upload's chunks do not cover the blob contiguously",
        )),
    }
}

pub(super) async fn upload_cancel(ctx: &Ctx<'_>, repo: &str, id: &str) -> Result<Response, ApiError> {
    open_upload(ctx, repo, id).await?;
    let parts = ctx.reg.meta.parts(id).await.map_err(ApiError::internal)?;
    ctx.reg.meta.delete_upload(id).await.map_err(ApiError::internal)?;
    ctx.reg.blobs.delete_parts(&parts).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

//! Blob reads (with ranges) and unlinking.

use std::ops::Range;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Ctx, parse_digest};
use crate::access::Action;
use crate::error::ApiError;

/// Parses `Range: bytes=a-b` / `bytes=a-` against a blob of `size` bytes.
fn parse_range(value: &str, size: u64) -> Option<Range<u64>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = if end.trim().is_empty() {
        size.checked_sub(1)?
    } else {
        end.trim().parse().ok()?
    };
    (start <= end && end < size).then_some(start..end + 1)
}

pub(super) async fn blob_get(ctx: &Ctx<'_>, repo: &str, digest: &str, head: bool) -> Result<Response, ApiError> {
    ctx.require(repo, Action::Pull)?;
    let digest = parse_digest(digest)?;
    let size = ctx
        .reg
        .meta
        .blob_in_repository(repo, digest.as_str())
        .await
        .map_err(ApiError::internal)?;
    let size = size.ok_or_else(|| ApiError::not_found("BLOB_UNKNOWN", format!("blob {digest} is not in {repo}")))?;
    let range = match ctx.headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(value) => Some(parse_range(value, size).ok_or_else(|| {
            ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UNKNOWN",
                format!("range `{value}` is outside 0-{size}"),
            )
        })?),
    };
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::ACCEPT_RANGES, "bytes")
        .header("docker-content-digest", digest.as_str())
        .header(header::ETAG, format!("\"{digest}\""));
    response = match &range {
        Some(r) => response
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {}-{}/{size}", r.start, r.end - 1))
            .header(header::CONTENT_LENGTH, r.end - r.start),
        None => response.status(StatusCode::OK).header(header::CONTENT_LENGTH, size),
    };
    if head {
        return Ok(response.body(Body::empty()).expect("valid response"));
    }
    let stream = ctx.reg.blobs.get(&digest, range).await.map_err(ApiError::internal)?;
    let stream = stream.ok_or_else(|| ApiError::internal(format!("blob {digest} is linked in {repo} but missing from storage")))?;
    Ok(response.body(Body::from_stream(stream)).expect("valid response"))
}

pub(super) async fn blob_delete(ctx: &Ctx<'_>, repo: &str, digest: &str) -> Result<Response, ApiError> {
    ctx.require(repo, Action::Delete)?;
    let digest = parse_digest(digest)?;
    if !ctx.reg.meta.unlink_blob(repo, digest.as_str()).await.map_err(ApiError::internal)? {
        return Err(ApiError::not_found("BLOB_UNKNOWN", format!("blob {digest} is not in {repo}")));
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

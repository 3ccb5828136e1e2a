//! Blob reads (with ranges) and unlinking.

use std::ops::Range;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Ctx, parse_digest};
use crate::access::Action;
use crate::error::ApiError;

/// What a `Range` header asks of a blob, by RFC 9110 §14.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    /// The whole blob: no header, one that does not parse, or several ranges (which a server may ignore).
    Whole,
    /// One satisfiable range, clamped to the blob.
    Part(Range<u64>),
    /// A range that starts past the end (or a suffix of an empty blob): 416.
    Unsatisfiable,
}

/// Reads `bytes=A-B`, `bytes=A-` and `bytes=-N` against a blob of `size` bytes: an end past the last byte is
/// clamped to it, a suffix longer than the blob is all of it.
fn wanted(value: &str, size: u64) -> Wanted {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (number(first), number(last)) {
        (None, Some(suffix)) if first.is_empty() => {
            if suffix == 0 || size == 0 {
                Wanted::Unsatisfiable
            } else {
                Wanted::Part(size - suffix.min(size)..size)
            }
        }
        (Some(start), None) if last.is_empty() => {
            if start < size {
                Wanted::Part(start..size)
            } else {
                Wanted::Unsatisfiable
            }
        }
        (Some(start), Some(end)) if start <= end => {
            if start < size {
                Wanted::Part(start..end.min(size - 1) + 1)
            } else {
                Wanted::Unsatisfiable
            }
        }
        _ => Wanted::Whole,
    }
}

pub(super) async fn blob_get(ctx: &Ctx<'_>, repo: &str, digest: &str, head: bool) -> Result<Response, ApiError> {
    ctx.require(repo, Action::Pull)?;
    let digest = parse_digest(digest)?;
    let link = ctx.reg.meta.blob_link(repo, digest.as_str()).await.map_err(ApiError::internal)?;
    let (size, linked_at) = link.ok_or_else(|| ApiError::not_found("BLOB_UNKNOWN", format!("blob {digest} is not in {repo}")))?;
    // A client checking a blob may be about to push a manifest that uses it: an old link is refreshed so the
    // collector leaves it for another grace period (one write per link per half period, not per request).
    if linked_at < crate::meta::now_ms() - ctx.reg.gc.refresh_links_after_ms() {
        ctx.reg.meta.touch_link(repo, digest.as_str()).await.map_err(ApiError::internal)?;
    }
    let value = ctx.headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let range = match value.map_or(Wanted::Whole, |v| wanted(v, size)) {
        Wanted::Whole => None,
        Wanted::Part(range) => Some(range),
        Wanted::Unsatisfiable => {
            let mut refused = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UNKNOWN",
                format!("range `{}` starts past the blob's {size} bytes", value.unwrap_or_default()),
            )
            .into_response();
            refused.headers_mut().insert(
                header::CONTENT_RANGE,
                axum::http::HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
            );
            return Ok(refused);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        // The examples of RFC 9110 §14.1.2 on a 10,000-byte representation.
        assert_eq!(wanted("bytes=0-499", 10_000), Wanted::Part(0..500));
        assert_eq!(wanted("bytes=500-999", 10_000), Wanted::Part(500..1000));
        assert_eq!(wanted("bytes=-500", 10_000), Wanted::Part(9500..10_000));
        assert_eq!(wanted("bytes=9500-", 10_000), Wanted::Part(9500..10_000));
        // Issue 19's measured failures on a 2048-byte blob: a suffix, and an end past the last byte.
        assert_eq!(wanted("bytes=-500", 2048), Wanted::Part(1548..2048));
        assert_eq!(wanted("bytes=2000-5000", 2048), Wanted::Part(2000..2048));
        assert_eq!(wanted("bytes=-5000", 2048), Wanted::Part(0..2048), "a suffix longer than the blob");
        assert_eq!(wanted("bytes=2048-", 2048), Wanted::Unsatisfiable);
        assert_eq!(wanted("bytes=4096-5000", 2048), Wanted::Unsatisfiable);
        assert_eq!(wanted("bytes=-0", 2048), Wanted::Unsatisfiable);
        assert_eq!(wanted("bytes=0-", 0), Wanted::Unsatisfiable);
        // Not understood or several ranges: the whole blob (RFC 9110 lets a server ignore the header).
        assert_eq!(wanted("bytes=5-1", 100), Wanted::Whole);
        assert_eq!(wanted("items=0-1", 100), Wanted::Whole);
        assert_eq!(wanted("bytes=0-1,5-6", 100), Wanted::Whole);
        assert_eq!(wanted("bytes=+1-2", 100), Wanted::Whole);
    }
}

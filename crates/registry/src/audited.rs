//! The frame every API request (`/v2/…`, `/api/v1/…`) is served in: authenticate, hold back a client without
//! valid credentials that spent its audit budget, serve, then write one audit record with the outcome — refused,
//! failed and malformed requests included.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::audit::AuditEvent;
use crate::audit_budget::Admission;
use crate::distribution::Ctx;
use crate::error::ApiError;
use crate::login::{Auth, claimed_name};
use crate::rate_limit::Decision;
use crate::server::Registry;

/// How the audit log classes an answer: refused by authentication or authorization, failed, or allowed.
pub(crate) fn audit_result(status: u16) -> &'static str {
    match status {
        401 | 403 => "denied",
        s if s >= 400 => "error",
        _ => "allowed",
    }
}

/// Adds `note` to an audit record's detail, after what is there.
fn append_detail(detail: &mut String, note: &str) {
    if !detail.is_empty() {
        detail.push_str("; ");
    }
    detail.push_str(note);
}

/// Whether `auth` carries valid credentials of a principal (an anonymous token does not).
pub(crate) fn authenticated(auth: &Auth) -> bool {
    match auth {
        Auth::Anonymous => false,
        Auth::Basic(caller) => caller.principal.is_some(),
        Auth::Bearer(claims) => claims.sub != "anonymous",
    }
}

impl Registry {
    /// Whether a request without valid credentials from `ip` may be served: `Ok(refused_before)` with the
    /// number refused since the address's last allowed one, or the 429 to answer (the first of a run writes a
    /// record saying so; the rest only count in `customs_registry_audit_throttled_requests`).
    pub(crate) fn admit_unauthenticated(&self, ip: IpAddr, action: &str) -> Result<u64, ApiError> {
        match self.audit_budget.admit(ip, Instant::now()) {
            Admission::Allowed { refused_before } => Ok(refused_before),
            Admission::Refused { retry_after, first } => {
                self.metrics.audit_throttled.inc();
                if first {
                    self.record(AuditEvent {
                        client_ip: ip.to_string(),
                        principal: "anonymous".into(),
                        action: action.into(),
                        result: "throttled".into(),
                        status: 429,
                        detail: format!(
                            "requests without valid credentials from this address exceed the audit budget \
                             ({} bytes/min); refused until it refills, counted in audit_throttled_requests",
                            self.config.audit.unauthenticated_bytes_per_minute
                        ),
                        ..AuditEvent::default()
                    });
                }
                Err(ApiError::too_many(
                    "too many requests without valid credentials from this address; authenticate, or retry later",
                    retry_after,
                ))
            }
        }
    }

    /// Writes `event` for a request; one without valid credentials is charged to its address's budget and
    /// says how many were refused before it.
    pub(crate) fn record_request(&self, mut event: AuditEvent, unauthenticated: Option<(IpAddr, u64)>) {
        if matches!(event.status, 401 | 403) && event.result == "denied" {
            self.queue_alerts(self.anomaly.refused(&event.client_ip, &event.principal, Instant::now()));
        }
        let Some((ip, refused_before)) = unauthenticated else {
            self.record(event);
            return;
        };
        if refused_before > 0 {
            append_detail(
                &mut event.detail,
                &format!("{refused_before} requests from this address were refused (429) before this one: audit budget"),
            );
        }
        // The stored line's size, near enough: the fields plus the fixed part (seq, time, two hashes).
        let size = 260
            + event.client_ip.len()
            + event.principal.len().min(200)
            + event.action.len()
            + event.repository.len().min(400)
            + event.reference.len().min(400)
            + event.detail.len().min(1100);
        self.record(event);
        self.audit_budget.charge(ip, size, Instant::now());
    }
}

/// Serves one API request: authenticates it, runs `handler` with the caller's context and the request's
/// audit event (which it fills in: action, repository, reference, detail), and records the outcome. A failed
/// login is recorded as action `login`, whatever the endpoint.
pub(crate) async fn serve(
    reg: &Arc<Registry>,
    addr: SocketAddr,
    headers: &HeaderMap,
    mut event: AuditEvent,
    handler: impl AsyncFnOnce(&Ctx<'_>, &mut AuditEvent) -> Result<Response, ApiError>,
) -> Response {
    let ip = addr.ip();
    event.client_ip = ip.to_string();
    let auth = reg.authenticate(headers, ip).await;
    let unauthenticated = match &auth {
        Ok(auth) if authenticated(auth) => None,
        _ => match reg.admit_unauthenticated(ip, &event.action) {
            Ok(refused_before) => Some((ip, refused_before)),
            Err(e) => return e.into_response(),
        },
    };
    let mut throttled_before = 0;
    let response = match auth {
        Err(e) => {
            event.principal = claimed_name(headers);
            event.action = "login".into();
            event.result = "denied".into();
            event.detail = e.audit_detail.clone().unwrap_or_else(|| e.message.clone());
            // The same challenge as `/v2/`, so a client knows where to get a token.
            let challenge = (e.status == axum::http::StatusCode::UNAUTHORIZED).then(|| reg.challenge(headers, None, false));
            ApiError { challenge, ..e }.into_response()
        }
        Ok(auth) => {
            let principal = match &auth {
                Auth::Basic(caller) => caller.principal.clone(),
                Auth::Bearer(claims) if claims.sub != "anonymous" => Some(claims.sub.clone()),
                _ => None,
            };
            match reg.rate_limits.admit(principal.as_deref(), ip, &event.repository, Instant::now()) {
                Decision::Allowed { refused_before } => throttled_before = refused_before,
                Decision::Refused { limit, retry_after, first } => {
                    reg.metrics.rate_limited.inc();
                    let e = ApiError::too_many(format!("rate limit ({limit}) exceeded; retry after {retry_after} s"), retry_after);
                    // One record per run of refusals; the next allowed request's record counts them.
                    if first {
                        event.principal = principal.unwrap_or_else(|| "anonymous".into());
                        event.result = "throttled".into();
                        event.status = 429;
                        event.detail = format!("{}; later refusals are counted in rate_limited_requests", e.message);
                        reg.record_request(event, unauthenticated);
                    }
                    return e.into_response();
                }
            }
            let ctx = Ctx { reg, auth, headers };
            let response = match handler(&ctx, &mut event).await {
                Ok(response) => response,
                Err(e) => {
                    event.detail = format!("{}: {}", e.code, e.message);
                    e.into_response()
                }
            };
            event.principal = ctx.principal();
            response
        }
    };
    event.status = response.status().as_u16();
    if event.result.is_empty() {
        event.result = audit_result(event.status).into();
    }
    if throttled_before > 0 {
        append_detail(
            &mut event.detail,
            &format!("{throttled_before} requests were refused (429) by a rate limit before this one"),
        );
    }
    reg.record_request(event, unauthenticated);
    response
}

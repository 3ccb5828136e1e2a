//! `/v2/` (the login check clients make first) and `/token` (Docker's token protocol, GET and OAuth2 POST).
//! Every request is audited: anonymous pings as `ping` with result `challenge`, logins and token grants, and
//! every refusal; requests without valid credentials are charged to their address's audit budget.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::access::{Action, Caller};
use crate::audit::AuditEvent;
use crate::audited::audit_result;
use crate::error::ApiError;
use crate::identity::LoginFailure;
use crate::login::{Auth, LoginDenied, claimed_name};
use crate::route::{self, first, query_pairs};
use crate::server::Registry;
use crate::token::{ResourceAccess, parse_scopes};

/// Scopes one token request may ask for (Docker asks for one to three).
const MAX_SCOPES: usize = 32;
/// Refused scope actions written one record each; past it one record counts the rest.
const MAX_DENIED_RECORDS: usize = 16;

/// `GET /v2/`: 200 for a valid login or token, else the challenge.
pub(crate) async fn base(State(reg): State<Arc<Registry>>, ConnectInfo(addr): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    let ip = addr.ip();
    let auth = reg.authenticate(&headers, ip).await;
    let unauthenticated = match &auth {
        Ok(auth) if crate::audited::authenticated(auth) => None,
        _ => match reg.admit_unauthenticated(ip, "ping") {
            Ok(refused_before) => Some((ip, refused_before)),
            Err(e) => return e.into_response(),
        },
    };
    let mut event = AuditEvent {
        client_ip: ip.to_string(),
        action: "ping".into(),
        ..AuditEvent::default()
    };
    let response = match auth {
        Ok(Auth::Anonymous) => {
            event.principal = "anonymous".into();
            event.result = "challenge".into();
            ApiError::unauthorized(reg.challenge(&headers, None, false), "authentication required").into_response()
        }
        Ok(auth) => {
            if let Auth::Basic(caller) = &auth {
                event.action = "login".into();
                event.principal = caller.principal.clone().unwrap_or_default();
            } else if let Auth::Bearer(claims) = &auth {
                event.principal = claims.sub.clone();
            }
            ([(header::CONTENT_TYPE, "application/json")], "{}").into_response()
        }
        Err(e) => {
            event.principal = claimed_name(&headers);
            event.action = "login".into();
            event.result = "denied".into();
            event.detail = e.audit_detail.clone().unwrap_or_else(|| e.message.clone());
            let challenge = (e.status == StatusCode::UNAUTHORIZED).then(|| reg.challenge(&headers, None, false));
            ApiError { challenge, ..e }.into_response()
        }
    };
    event.status = response.status().as_u16();
    if event.result.is_empty() {
        event.result = audit_result(event.status).into();
    }
    reg.record_request(event, unauthenticated);
    response
}

/// Whether a token request from `ip` without valid credentials may go on: the budget state to record with,
/// or the 429 to answer.
fn admit(reg: &Registry, ip: IpAddr) -> Result<Option<(IpAddr, u64)>, ApiError> {
    reg.admit_unauthenticated(ip, "token")
        .map(|refused_before| Some((ip, refused_before)))
}

/// `GET /token`: Docker's token protocol (basic credentials, scopes in the query).
pub(crate) async fn token_get(
    State(reg): State<Arc<Registry>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let ip = addr.ip();
    let pairs = query_pairs(uri.query());
    let scopes: Vec<String> = pairs.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.clone()).collect();
    let offline = first(&pairs, "offline_token") == Some("true");
    let (caller, unauthenticated) = match reg.login(&headers, ip).await {
        Err(e) => return e.into_response(),
        Ok(None) => match admit(&reg, ip) {
            Ok(budget) => (Caller::anonymous(), budget),
            Err(e) => return e.into_response(),
        },
        Ok(Some(Ok(caller))) => (caller, None),
        Ok(Some(Err(denied))) => return deny_login(&reg, ip, &headers, denied),
    };
    let offline = offline && refresh_allowed(&reg, caller.principal.as_deref()).await;
    issue_token(&reg, ip, caller, &scopes, offline, unauthenticated)
}

/// `POST /token`: the OAuth2 form (password or refresh_token grant).
pub(crate) async fn token_post(
    State(reg): State<Arc<Registry>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let ip = addr.ip();
    let form = query_pairs(Some(&body));
    let scopes: Vec<String> = form.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.clone()).collect();
    let offline = first(&form, "access_type") == Some("offline");
    let caller = match first(&form, "grant_type") {
        Some("password") => {
            let name = first(&form, "username").unwrap_or_default().to_string();
            let secret = first(&form, "password").unwrap_or_default();
            match reg.check_login(&name, secret, ip).await {
                Err(e) => return e.into_response(),
                Ok(Ok(caller)) => caller,
                Ok(Err(denied)) => return deny_login(&reg, ip, &headers, denied),
            }
        }
        Some("refresh_token") => {
            let principal = first(&form, "refresh_token").and_then(|t| reg.tokens.verify_refresh(t));
            // Enabled, and not a user: a user's refresh token (from before users got none) does not stand in for
            // the second factor.
            let usable = match &principal {
                Some(name) => refresh_allowed(&reg, Some(name)).await,
                None => false,
            };
            match principal {
                Some(name) if usable => match reg.auth.groups_of(&reg.policy, &name).await {
                    Ok(groups) => Caller {
                        principal: Some(name),
                        groups,
                    },
                    Err(e) => return ApiError::internal(e).into_response(),
                },
                other => {
                    let failure = if other.is_some() {
                        LoginFailure::RefreshPrincipalGone
                    } else {
                        LoginFailure::InvalidRefreshToken
                    };
                    let denied = LoginDenied {
                        claimed: other.unwrap_or_default(),
                        failure,
                    };
                    return deny_login(&reg, ip, &headers, denied);
                }
            }
        }
        other => {
            let budget = match admit(&reg, ip) {
                Ok(budget) => budget,
                Err(e) => return e.into_response(),
            };
            let e = ApiError::bad_request(
                "UNSUPPORTED",
                format!("grant_type {other:?} is not supported; use password or refresh_token"),
            );
            return refuse_token_request(&reg, ip, "anonymous".into(), e, budget);
        }
    };
    let offline = offline && refresh_allowed(&reg, caller.principal.as_deref()).await;
    issue_token(&reg, ip, caller, &scopes, offline, None)
}

/// `POST /token/personal`: a user's password and TOTP code (form fields `username`, `password`, `code`) for a
/// personal token that docker and podman then log in with, valid `[auth] personal_token_hours`.
pub(crate) async fn personal_token(
    State(reg): State<Arc<Registry>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let ip = addr.ip();
    let form = query_pairs(Some(&body));
    let name = first(&form, "username").unwrap_or_default().to_string();
    let secret = first(&form, "password").unwrap_or_default();
    let code = first(&form, "code").unwrap_or_default();
    match reg.exchange_code(&name, secret, code, ip).await {
        Err(e) => e.into_response(),
        Ok(Err(denied)) => deny_login(&reg, ip, &headers, denied),
        Ok(Ok(personal)) => {
            let expires_at = crate::clock::format(personal.expires_at);
            reg.record_request(
                AuditEvent {
                    client_ip: ip.to_string(),
                    principal: name,
                    action: "login".into(),
                    result: "allowed".into(),
                    status: 200,
                    detail: format!("second factor accepted: personal token issued, valid until {expires_at}"),
                    ..AuditEvent::default()
                },
                None,
            );
            let expires_in = reg.config.auth.personal_token_hours.saturating_mul(3600);
            axum::Json(json!({
                "token": personal.token,
                "expires_at": expires_at,
                "expires_in": expires_in,
            }))
            .into_response()
        }
    }
}

/// Whether `principal` may have (or use) a refresh token: enabled, and not a person, whose refresh token must
/// not outlive the personal token it logged in with (docker keeps the personal token and logs in again with it).
async fn refresh_allowed(reg: &Registry, principal: Option<&str>) -> bool {
    let Some(name) = principal else {
        return false;
    };
    matches!(reg.meta.principal(name).await, Ok(Some(row)) if !row.disabled && row.kind != "user")
}

/// A refused login on the token endpoints: charged to the address's audit budget (429 past it), audited, and
/// answered 401 with the challenge or 429.
fn deny_login(reg: &Registry, ip: IpAddr, headers: &HeaderMap, denied: LoginDenied) -> Response {
    let budget = match admit(reg, ip) {
        Ok(budget) => budget,
        Err(e) => return e.into_response(),
    };
    let answer = denied.answer(reg.clock.now());
    reg.record_request(
        AuditEvent {
            client_ip: ip.to_string(),
            principal: denied.claimed,
            action: "login".into(),
            result: "denied".into(),
            status: answer.status.as_u16(),
            detail: denied.failure.as_str().into(),
            ..AuditEvent::default()
        },
        budget,
    );
    if answer.status == StatusCode::UNAUTHORIZED {
        return ApiError::unauthorized(reg.challenge(headers, None, false), answer.message).into_response();
    }
    answer.into_response()
}

/// Audits a malformed token request (action `token`, result `error`) and answers `e`.
fn refuse_token_request(reg: &Registry, ip: IpAddr, principal: String, e: ApiError, budget: Option<(IpAddr, u64)>) -> Response {
    reg.record_request(
        AuditEvent {
            client_ip: ip.to_string(),
            principal,
            action: "token".into(),
            result: "error".into(),
            status: e.status.as_u16(),
            detail: e.message.clone(),
            ..AuditEvent::default()
        },
        budget,
    );
    e.into_response()
}

/// Grants the intersection of what was asked and what the matrix allows; the grant and each refused action
/// are audited (the first [`MAX_DENIED_RECORDS`] refusals one record each, the rest counted in one).
fn issue_token(
    reg: &Registry,
    ip: IpAddr,
    caller: Caller,
    scopes: &[String],
    offline: bool,
    mut budget: Option<(IpAddr, u64)>,
) -> Response {
    let subject = caller.principal.clone().unwrap_or_else(|| "anonymous".into());
    if scopes.len() > MAX_SCOPES {
        let e = ApiError::bad_request("UNSUPPORTED", format!("{} scopes asked for; at most {MAX_SCOPES}", scopes.len()));
        return refuse_token_request(reg, ip, subject, e, budget);
    }
    let mut access = Vec::new();
    let mut granted_text = Vec::new();
    let mut denied = 0usize;
    // Only the first record of the request says how many were refused before it.
    let mut next_budget = || {
        let now = budget;
        if let Some((ip, _)) = budget {
            budget = Some((ip, 0));
        }
        now
    };
    for scope in parse_scopes(&scopes.join(" ")) {
        if scope.kind == "registry" && scope.name == "catalog" {
            // The catalog is filtered per caller, so any caller may ask for it.
            access.push(ResourceAccess {
                kind: scope.kind,
                name: scope.name,
                actions: vec!["*".into()],
            });
            continue;
        }
        if scope.kind != "repository" || !route::valid_repository(&scope.name) {
            continue;
        }
        let allowed = reg.policy.allowed_actions(&caller, &scope.name);
        let mut granted: Vec<String> = Vec::new();
        for requested in &scope.actions {
            let wanted: Vec<Action> = match requested.as_str() {
                "*" => Action::ALL.to_vec(),
                "push" => vec![Action::Push, Action::Sign],
                other => other.parse().into_iter().collect(),
            };
            let mut any = false;
            for action in wanted {
                if allowed.contains(&action) {
                    any = true;
                    if !granted.iter().any(|g| g == action.as_str()) {
                        granted.push(action.as_str().to_string());
                    }
                }
            }
            if !any {
                denied += 1;
                if denied <= MAX_DENIED_RECORDS {
                    reg.record_request(
                        AuditEvent {
                            client_ip: ip.to_string(),
                            principal: subject.clone(),
                            action: requested.clone(),
                            repository: scope.name.clone(),
                            result: "denied".into(),
                            status: 200,
                            detail: "token request: action not granted by the access matrix".into(),
                            ..AuditEvent::default()
                        },
                        next_budget(),
                    );
                }
            }
        }
        if !granted.is_empty() {
            granted_text.push(format!("{}:{}", scope.name, granted.join(",")));
            access.push(ResourceAccess {
                kind: "repository".into(),
                name: scope.name,
                actions: granted,
            });
        }
    }
    let (token, claims) = reg.tokens.issue(&subject, access);
    let more = denied.saturating_sub(MAX_DENIED_RECORDS);
    reg.record_request(
        AuditEvent {
            client_ip: ip.to_string(),
            principal: subject.clone(),
            action: "token".into(),
            result: "allowed".into(),
            status: 200,
            detail: format!(
                "jti {} granted [{}]{}",
                claims.jti,
                granted_text.join(" "),
                if more > 0 {
                    format!("; {more} more refused actions not recorded one by one")
                } else {
                    String::new()
                }
            ),
            ..AuditEvent::default()
        },
        next_budget(),
    );
    let issued_at = time::OffsetDateTime::from_unix_timestamp(claims.iat as i64)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    let mut body = json!({
        "token": token,
        "access_token": token,
        "expires_in": reg.tokens.ttl_seconds(),
        "issued_at": issued_at,
    });
    if offline && caller.principal.is_some() {
        body["refresh_token"] = json!(reg.tokens.issue_refresh(&subject));
    }
    axum::Json(body).into_response()
}

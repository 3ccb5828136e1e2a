//! `/v2/` (the login check clients make first) and `/token` (Docker's token protocol, GET and OAuth2 POST).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::access::{Action, Caller};
use crate::audit::AuditEvent;
use crate::error::ApiError;
use crate::identity::LoginFailure;
use crate::login::{Auth, LoginDenied, claimed_name, too_many_logins};
use crate::route::{self, first, query_pairs};
use crate::server::Registry;
use crate::token::{ResourceAccess, parse_scopes};

/// `GET /v2/`: 200 for a valid login or token, else the challenge.
pub(crate) async fn base(State(reg): State<Arc<Registry>>, ConnectInfo(addr): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    match reg.authenticate(&headers).await {
        Ok(Auth::Anonymous) => ApiError::unauthorized(reg.challenge(&headers, None, false), "authentication required").into_response(),
        Ok(_) => ([(header::CONTENT_TYPE, "application/json")], "{}").into_response(),
        Err(e) => {
            let claimed = claimed_name(&headers);
            reg.record(AuditEvent {
                client_ip: addr.ip().to_string(),
                principal: claimed,
                action: "login".into(),
                result: "denied".into(),
                status: 401,
                detail: e.message.clone(),
                ..AuditEvent::default()
            });
            ApiError {
                challenge: Some(reg.challenge(&headers, None, false)),
                ..e
            }
            .into_response()
        }
    }
}

/// `GET /token`: Docker's token protocol (basic credentials, scopes in the query).
pub(crate) async fn token_get(
    State(reg): State<Arc<Registry>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let pairs = query_pairs(uri.query());
    let scopes: Vec<String> = pairs.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.clone()).collect();
    let offline = first(&pairs, "offline_token") == Some("true");
    let caller = match reg.login(&headers).await {
        Err(e) => return e.into_response(),
        Ok(None) => Caller::anonymous(),
        Ok(Some(Ok(caller))) => caller,
        Ok(Some(Err(denied))) => return token_login_denied(&reg, &addr, &headers, denied),
    };
    issue_token(&reg, &addr, caller, &scopes.join(" "), offline)
}

/// `POST /token`: the OAuth2 form (password or refresh_token grant).
pub(crate) async fn token_post(
    State(reg): State<Arc<Registry>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form = query_pairs(Some(&body));
    let scope = form
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let offline = first(&form, "access_type") == Some("offline");
    let caller = match first(&form, "grant_type") {
        Some("password") => {
            let name = first(&form, "username").unwrap_or_default().to_string();
            let secret = first(&form, "password").unwrap_or_default();
            match reg.auth.login(&reg.policy, &name, secret).await {
                Err(e) => return ApiError::internal(e).into_response(),
                Ok(Ok(caller)) => caller,
                Ok(Err(failure)) => {
                    return token_login_denied(&reg, &addr, &headers, LoginDenied { claimed: name, failure });
                }
            }
        }
        Some("refresh_token") => {
            let principal = first(&form, "refresh_token").and_then(|t| reg.tokens.verify_refresh(t));
            let active = match &principal {
                Some(name) => reg.auth.is_active(name).await.unwrap_or(false),
                None => false,
            };
            match principal {
                Some(name) if active => match reg.auth.groups_of(&reg.policy, &name).await {
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
                    return token_login_denied(
                        &reg,
                        &addr,
                        &headers,
                        LoginDenied {
                            claimed: other.unwrap_or_default(),
                            failure,
                        },
                    );
                }
            }
        }
        other => {
            return ApiError::bad_request(
                "UNSUPPORTED",
                format!("grant_type {other:?} is not supported; use password or refresh_token"),
            )
            .into_response();
        }
    };
    issue_token(&reg, &addr, caller, &scope, offline)
}

fn token_login_denied(reg: &Registry, addr: &SocketAddr, headers: &HeaderMap, denied: LoginDenied) -> Response {
    let busy = denied.failure == LoginFailure::Busy;
    reg.record(AuditEvent {
        client_ip: addr.ip().to_string(),
        principal: denied.claimed,
        action: "login".into(),
        result: "denied".into(),
        status: if busy { 429 } else { 401 },
        detail: denied.failure.as_str().into(),
        ..AuditEvent::default()
    });
    if busy {
        return too_many_logins().into_response();
    }
    ApiError::unauthorized(reg.challenge(headers, None, false), "invalid credentials").into_response()
}

/// Grants the intersection of what was asked and what the matrix allows; each refused action is audited.
fn issue_token(reg: &Registry, addr: &SocketAddr, caller: Caller, scope: &str, offline: bool) -> Response {
    let subject = caller.principal.clone().unwrap_or_else(|| "anonymous".into());
    let mut access = Vec::new();
    let mut granted_text = Vec::new();
    for scope in parse_scopes(scope) {
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
                reg.record(AuditEvent {
                    client_ip: addr.ip().to_string(),
                    principal: subject.clone(),
                    action: requested.clone(),
                    repository: scope.name.clone(),
                    result: "denied".into(),
                    status: 200,
                    detail: "token request: action not granted by the access matrix".into(),
                    ..AuditEvent::default()
                });
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
    if caller.principal.is_some() {
        reg.record(AuditEvent {
            client_ip: addr.ip().to_string(),
            principal: subject.clone(),
            action: "token".into(),
            result: "allowed".into(),
            status: 200,
            detail: format!("jti {} granted [{}]", claims.jti, granted_text.join(" ")),
            ..AuditEvent::default()
        });
    }
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

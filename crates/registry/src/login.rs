//! Authentication of a request: bearer token, basic credentials or anonymous.

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use std::net::IpAddr;

use crate::access::Caller;
use crate::alerts::{Alert, AlertKind};
use crate::error::ApiError;
use crate::identity::{LoginAttempt, LoginFailure, PersonalToken};
use crate::lockout::{Lock, LockSubject};
use crate::server::Registry;
use crate::token::Claims;

/// Who a request says it is.
pub(crate) enum Auth {
    Anonymous,
    Basic(Caller),
    Bearer(Claims),
}

/// A refused login: the name it claimed and why.
pub(crate) struct LoginDenied {
    pub(crate) claimed: String,
    pub(crate) failure: LoginFailure,
}

fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), ()>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = STANDARD.decode(encoded.trim()).ok().and_then(|b| String::from_utf8(b).ok());
    Some(
        decoded
            .and_then(|d| d.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())))
            .ok_or(()),
    )
}

/// The name a basic-auth header claims, for the audit record of a refused login (empty when none is readable).
pub(crate) fn claimed_name(headers: &HeaderMap) -> String {
    basic_credentials(headers)
        .and_then(Result::ok)
        .map(|(name, _)| name)
        .unwrap_or_default()
}

impl LoginDenied {
    /// What the client is told: 429 for a lockout or a login storm (with when to retry), else 401.
    pub(crate) fn answer(&self, now: time::OffsetDateTime) -> ApiError {
        match &self.failure {
            LoginFailure::Busy => too_many_logins(),
            LoginFailure::Locked(lock) => ApiError::too_many(
                format!(
                    "too many failed logins: {}; retry after {}",
                    match lock.subject {
                        LockSubject::Ip(_) => "this address is locked",
                        LockSubject::Principal(_) => "this principal is locked for addresses it has not logged in from",
                    },
                    crate::clock::format(lock.until)
                ),
                (lock.until - now).whole_seconds().max(1) as u64,
            ),
            _ => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "invalid credentials (people with a second factor log in with a personal token: customs registry login --totp CODE)",
            ),
        }
    }
}

impl Registry {
    /// Who `headers` say the caller is; an error is the answer (401, or 429 for a lockout or a login storm).
    pub(crate) async fn authenticate(&self, headers: &HeaderMap, ip: IpAddr) -> Result<Auth, ApiError> {
        let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return Ok(Auth::Anonymous);
        };
        if let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) {
            let Some(claims) = self.tokens.verify(token.trim()) else {
                return Err(ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "invalid or expired token"));
            };
            if claims.sub != "anonymous" && !self.auth.token_subject_active(&claims.sub).await.map_err(ApiError::internal)? {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED",
                    "the token's principal is disabled or removed",
                ));
            }
            return Ok(Auth::Bearer(claims));
        }
        match self.login(headers, ip).await? {
            Some(Ok(caller)) => Ok(Auth::Basic(caller)),
            Some(Err(denied)) => Err(ApiError {
                audit_detail: Some(denied.failure.as_str().into()),
                ..denied.answer(self.clock.now())
            }),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "unsupported Authorization scheme",
            )),
        }
    }

    /// Basic credentials in `headers`: `None` without them, else the caller or why the login failed.
    pub(crate) async fn login(&self, headers: &HeaderMap, ip: IpAddr) -> Result<Option<Result<Caller, LoginDenied>>, ApiError> {
        let Some(credentials) = basic_credentials(headers) else {
            return Ok(None);
        };
        let Ok((name, secret)) = credentials else {
            return Ok(Some(Err(LoginDenied {
                claimed: String::new(),
                failure: LoginFailure::Malformed,
            })));
        };
        Ok(Some(self.check_login(&name, &secret, ip).await?))
    }

    /// Checks `name`/`secret` from `ip`, raising the alerts it causes (a lockout it tripped, a service principal
    /// logging in from a new address).
    pub(crate) async fn check_login(&self, name: &str, secret: &str, ip: IpAddr) -> Result<Result<Caller, LoginDenied>, ApiError> {
        let now = self.clock.now();
        let report = self
            .auth
            .login(&self.policy, LoginAttempt { name, secret, ip, now })
            .await
            .map_err(ApiError::internal)?;
        self.raise_lock_alerts(name, ip, &report.tripped).await;
        if report.new_address == Some(true) {
            self.raise(Alert {
                kind: AlertKind::NewClientIp,
                subject: format!("principal:{name}@{ip}"),
                principal: name.to_string(),
                client_ip: ip.to_string(),
                repository: String::new(),
                summary: format!("service principal {name} logged in from {ip}, an address it never used before"),
                data: serde_json::json!({}),
            })
            .await;
        }
        if matches!(report.outcome, Err(LoginFailure::Locked(_))) {
            self.metrics.locked_logins.inc();
        }
        Ok(report.outcome.map_err(|failure| LoginDenied {
            claimed: name.to_string(),
            failure,
        }))
    }

    /// Password + second-factor code from `ip` → a personal token, raising the lockout alerts it trips.
    pub(crate) async fn exchange_code(
        &self,
        name: &str,
        secret: &str,
        code: &str,
        ip: IpAddr,
    ) -> Result<Result<PersonalToken, LoginDenied>, ApiError> {
        let now = self.clock.now();
        let ttl = std::time::Duration::from_secs(self.config.auth.personal_token_hours.saturating_mul(3600));
        let (outcome, tripped) = self
            .auth
            .exchange(LoginAttempt { name, secret, ip, now }, code, ttl)
            .await
            .map_err(ApiError::internal)?;
        self.raise_lock_alerts(name, ip, &tripped).await;
        if matches!(outcome, Err(LoginFailure::Locked(_))) {
            self.metrics.locked_logins.inc();
        }
        Ok(outcome.map_err(|failure| LoginDenied {
            claimed: name.to_string(),
            failure,
        }))
    }

    async fn raise_lock_alerts(&self, name: &str, ip: IpAddr, tripped: &[Lock]) {
        for lock in tripped {
            let (subject, what) = match &lock.subject {
                LockSubject::Ip(ip) => (format!("ip:{ip}"), format!("address {ip}")),
                LockSubject::Principal(name) => (
                    format!("principal:{name}"),
                    format!("principal {name} (for addresses it is not known at)"),
                ),
            };
            self.raise(Alert {
                kind: AlertKind::Lockout,
                subject,
                principal: name.to_string(),
                client_ip: ip.to_string(),
                repository: String::new(),
                summary: format!(
                    "{what} locked until {} after {} failed logins (last from {ip})",
                    crate::clock::format(lock.until),
                    lock.failures
                ),
                data: serde_json::json!({"locked": lock.subject.key(), "until": crate::clock::format(lock.until), "failures": lock.failures}),
            })
            .await;
        }
    }

    fn realm(&self, headers: &HeaderMap) -> String {
        if let Some(realm) = &self.config.server.realm {
            return realm.clone();
        }
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        format!("{}://{host}/token", if self.insecure { "http" } else { "https" })
    }

    pub(crate) fn challenge(&self, headers: &HeaderMap, scope: Option<&str>, insufficient: bool) -> String {
        let mut challenge = format!(
            "Bearer realm=\"{}\",service=\"{}\"",
            self.realm(headers),
            self.config.server.service
        );
        if let Some(scope) = scope {
            challenge.push_str(&format!(",scope=\"{scope}\""));
        }
        if insufficient {
            challenge.push_str(",error=\"insufficient_scope\"");
        }
        challenge
    }
}

/// The answer when every password-hash slot stayed busy (a login storm): retry shortly.
pub(crate) fn too_many_logins() -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TOOMANYREQUESTS",
        "too many logins are being checked at once; retry in a second (tokens from /token avoid a login per request)",
    )
}

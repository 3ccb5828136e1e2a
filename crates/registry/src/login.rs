//! Authentication of a request: bearer token, basic credentials or anonymous.

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::access::Caller;
use crate::error::ApiError;
use crate::identity::LoginFailure;
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

impl Registry {
    pub(crate) async fn authenticate(&self, headers: &HeaderMap) -> Result<Auth, ApiError> {
        let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return Ok(Auth::Anonymous);
        };
        if let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) {
            return match self.tokens.verify(token.trim()) {
                Some(claims) => Ok(Auth::Bearer(claims)),
                None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "invalid or expired token")),
            };
        }
        match self.login(headers).await? {
            Some(Ok(caller)) => Ok(Auth::Basic(caller)),
            Some(Err(LoginDenied {
                failure: LoginFailure::Busy,
                ..
            })) => Err(too_many_logins()),
            Some(Err(_)) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "invalid credentials")),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "unsupported Authorization scheme",
            )),
        }
    }

    /// Basic credentials in `headers`: `None` without them, else the caller or why the login failed.
    pub(crate) async fn login(&self, headers: &HeaderMap) -> Result<Option<Result<Caller, LoginDenied>>, ApiError> {
        let Some(credentials) = basic_credentials(headers) else {
            return Ok(None);
        };
        let Ok((name, secret)) = credentials else {
            return Ok(Some(Err(LoginDenied {
                claimed: String::new(),
                failure: LoginFailure::Malformed,
            })));
        };
        let outcome = self.auth.login(&self.policy, &name, &secret).await.map_err(ApiError::internal)?;
        Ok(Some(outcome.map_err(|failure| LoginDenied { claimed: name, failure })))
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

//! Bearer tokens of the Docker registry token spec: JWTs with an `access` claim listing granted actions per
//! repository, signed with the registry's HMAC key and short-lived.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::access::Action;

/// One `access` entry: actions granted on one resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceAccess {
    /// `repository` (or `registry` for `registry:catalog:*`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The repository name.
    pub name: String,
    /// Granted actions.
    pub actions: Vec<String>,
}

/// The claims of an access or refresh token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the registry's service name.
    pub iss: String,
    /// Subject: the principal, or `anonymous`.
    pub sub: String,
    /// Audience: the service the token is for.
    pub aud: String,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Not before.
    pub nbf: u64,
    /// Issued at.
    pub iat: u64,
    /// Unique id, for the audit log.
    pub jti: String,
    /// Granted access; empty on refresh tokens.
    #[serde(default)]
    pub access: Vec<ResourceAccess>,
    /// `refresh` on refresh tokens, absent on access tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

impl Claims {
    /// Whether the token grants `action` on `repository`.
    pub fn allows(&self, repository: &str, action: Action) -> bool {
        self.access
            .iter()
            .any(|a| a.kind == "repository" && a.name == repository && a.actions.iter().any(|x| x == action.as_str() || x == "admin"))
    }
}

/// A requested scope: `repository:NAME:ACTION[,ACTION...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// Resource type.
    pub kind: String,
    /// Resource name (may contain `:` for a port-qualified name, so the actions are split from the right).
    pub name: String,
    /// Requested action names; `*` means every action.
    pub actions: BTreeSet<String>,
}

/// Parses space-separated scopes; malformed ones are skipped, as Distribution does.
pub fn parse_scopes(raw: &str) -> Vec<Scope> {
    raw.split_whitespace()
        .filter_map(|s| {
            let (kind, rest) = s.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            (!kind.is_empty() && !name.is_empty()).then(|| Scope {
                kind: kind.to_string(),
                name: name.to_string(),
                actions: actions.split(',').filter(|a| !a.is_empty()).map(str::to_string).collect(),
            })
        })
        .collect()
}

/// Issues and checks tokens with one HMAC-SHA256 key.
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    service: String,
    ttl_seconds: u64,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Seconds a token is still accepted past its `exp` (and before its `nbf`), for clocks of replicas that differ
/// a little: an access token works for at most `token_ttl_seconds` plus this.
pub const CLOCK_LEEWAY_SECONDS: u64 = 5;

/// Refresh tokens live one day; the permissions are evaluated again at every refresh.
const REFRESH_TTL_SECONDS: u64 = 24 * 3600;

impl TokenIssuer {
    /// An issuer for `service` with a secret key and access-token lifetime.
    pub fn new(key: &[u8], service: &str, ttl_seconds: u64) -> TokenIssuer {
        TokenIssuer {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            service: service.to_string(),
            ttl_seconds,
        }
    }

    /// Access-token lifetime in seconds.
    pub fn ttl_seconds(&self) -> u64 {
        self.ttl_seconds
    }

    /// The service name tokens are issued for.
    pub fn service(&self) -> &str {
        &self.service
    }

    fn sign(&self, sub: &str, access: Vec<ResourceAccess>, typ: Option<&str>, ttl: u64) -> (String, Claims) {
        let iat = now();
        let claims = Claims {
            iss: self.service.clone(),
            sub: sub.to_string(),
            aud: self.service.clone(),
            exp: iat + ttl,
            nbf: iat.saturating_sub(5),
            iat,
            jti: uuid::Uuid::new_v4().to_string(),
            access,
            typ: typ.map(str::to_string),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).expect("HS256 signing cannot fail");
        (token, claims)
    }

    /// A short-lived access token.
    pub fn issue(&self, sub: &str, access: Vec<ResourceAccess>) -> (String, Claims) {
        self.sign(sub, access, None, self.ttl_seconds)
    }

    /// A refresh token for `sub` (no access of its own).
    pub fn issue_refresh(&self, sub: &str) -> String {
        self.sign(sub, Vec::new(), Some("refresh"), REFRESH_TTL_SECONDS).0
    }

    fn decode(&self, token: &str) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[&self.service]);
        validation.set_issuer(&[&self.service]);
        validation.leeway = CLOCK_LEEWAY_SECONDS;
        validation.validate_nbf = true;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()
            .map(|d| d.claims)
    }

    /// The claims of a valid, unexpired access token.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        self.decode(token).filter(|c| c.typ.is_none())
    }

    /// The principal of a valid, unexpired refresh token.
    pub fn verify_refresh(&self, token: &str) -> Option<String> {
        self.decode(token).filter(|c| c.typ.as_deref() == Some("refresh")).map(|c| c.sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_like_distribution() {
        let scopes = parse_scopes("repository:project1/app:pull,push repository:localhost:5000/x:pull registry:catalog:* junk :x:pull");
        assert_eq!(scopes.len(), 3, "{scopes:?}");
        assert_eq!(scopes[0].name, "project1/app");
        assert_eq!(scopes[0].actions, BTreeSet::from(["pull".to_string(), "push".to_string()]));
        assert_eq!(scopes[1].name, "localhost:5000/x");
        assert_eq!(scopes[2].kind, "registry");
    }

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let issuer = TokenIssuer::new(b"0123456789abcdef0123456789abcdef", "customs", 60);
        let access = vec![ResourceAccess {
            kind: "repository".into(),
            name: "p1".into(),
            actions: vec!["pull".into()],
        }];
        let (token, _) = issuer.issue("sp1", access);
        let claims = issuer.verify(&token).unwrap();
        assert!(claims.allows("p1", Action::Pull));
        assert!(!claims.allows("p1", Action::Push));
        assert!(!claims.allows("p2", Action::Pull));
        let other = TokenIssuer::new(b"another key another key another k", "customs", 60);
        assert!(other.verify(&token).is_none());
        // A token that is not valid yet (nbf past the leeway) is refused.
        let mut early = claims.clone();
        early.nbf = now() + CLOCK_LEEWAY_SECONDS + 60;
        let early = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &early, &issuer.encoding).unwrap();
        assert!(issuer.verify(&early).is_none(), "nbf in the future");
        let refresh = issuer.issue_refresh("sp1");
        assert!(issuer.verify(&refresh).is_none(), "a refresh token is not an access token");
        assert_eq!(issuer.verify_refresh(&refresh).as_deref(), Some("sp1"));
        assert!(issuer.verify_refresh(&token).is_none());
    }
}

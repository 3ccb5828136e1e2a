//! Identities: service principals (one per project pipeline) and human users, with secrets hashed by Argon2id.
//!
//! Secrets are generated here, shown once, and never stored in clear. Verified credentials are cached for a
//! minute by default (`[auth] login_cache_seconds`, keyed by a SHA-256 of the secret) so that Argon2's deliberate
//! cost is paid once per client per period, not on every request; disabling or rotating takes effect within it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest as _, Sha256};

use crate::access::{AccessPolicy, Caller};
use crate::meta::{MetaError, MetaStore};

/// Kinds of principal.
pub const KINDS: [&str; 2] = ["service-principal", "user"];

/// A new random secret: `cst_` and 43 URL-safe characters (256 bits).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("cst_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The Argon2id PHC string of `secret`.
pub fn hash_secret(secret: &str) -> String {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .expect("argon2 with default parameters")
        .to_string()
}

fn verify_secret(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| Argon2::default().verify_password(secret.as_bytes(), &hash).is_ok())
}

/// A hash no secret matches, verified against for unknown principals.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_secret(&generate_secret()))
}

/// Whether a name is usable as a principal or group name: lowercase letters, digits, `-`, `_`, `.`, `@`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.@".contains(&b))
}

/// Why a login failed (for the audit log; clients only ever see 401).
#[derive(Debug, PartialEq, Eq)]
pub enum LoginFailure {
    /// No principal of that name.
    Unknown,
    /// The principal is disabled.
    Disabled,
    /// Wrong secret.
    BadSecret,
    /// Every password hash slot stayed busy: the caller should retry (429).
    Busy,
    /// The Authorization header's basic credentials do not decode.
    Malformed,
    /// A refresh token that does not verify.
    InvalidRefreshToken,
    /// A valid refresh token whose principal is disabled or gone.
    RefreshPrincipalGone,
}

impl LoginFailure {
    /// Short text for the audit log.
    pub fn as_str(&self) -> &'static str {
        match self {
            LoginFailure::Unknown => "unknown principal",
            LoginFailure::Disabled => "principal disabled",
            LoginFailure::BadSecret => "wrong secret",
            LoginFailure::Busy => "too many logins at once",
            LoginFailure::Malformed => "malformed basic credentials",
            LoginFailure::InvalidRefreshToken => "invalid refresh token",
            LoginFailure::RefreshPrincipalGone => "principal disabled or removed",
        }
    }
}

/// SHA-256 of the verified secret, when it was verified, and the principal's groups then.
type CachedLogin = ([u8; 32], Instant, BTreeSet<String>);

/// Checks credentials against the metadata store and resolves group memberships.
pub struct Authenticator {
    meta: MetaStore,
    cache: Mutex<HashMap<String, CachedLogin>>,
    cache_ttl: Duration,
    /// One permit per core: an Argon2id verification holds ~19 MiB for ~100 ms, so unbounded concurrent
    /// (bogus) logins would take memory and CPU from everyone.
    hashing: tokio::sync::Semaphore,
    /// How long a login waits for a slot before it is told to retry.
    hash_wait: Duration,
}

impl Authenticator {
    /// An authenticator over `meta` that remembers verified logins for `cache_ttl`; a login waits at most
    /// `hash_wait` for a password-hash slot.
    pub fn new(meta: MetaStore, cache_ttl: Duration, hash_wait: Duration) -> Authenticator {
        Authenticator {
            meta,
            cache: Mutex::new(HashMap::new()),
            cache_ttl,
            hashing: tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get())),
            hash_wait,
        }
    }

    /// Verifies `name`/`secret`; on success, the caller with its groups from config and database.
    pub async fn login(&self, policy: &AccessPolicy, name: &str, secret: &str) -> Result<Result<Caller, LoginFailure>, MetaError> {
        let fingerprint: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        if let Some((cached, at, groups)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(name)
            && *cached == fingerprint
            && at.elapsed() < self.cache_ttl
        {
            return Ok(Ok(Caller {
                principal: Some(name.to_string()),
                groups: groups.clone(),
            }));
        }
        let row = self.meta.principal(name).await?;
        // Unknown and disabled principals cost one Argon2 verification too, so response times do not tell
        // an attacker which names exist.
        let hash = match &row {
            Some(row) if !row.disabled => row.secret_hash.clone(),
            _ => dummy_hash().to_string(),
        };
        let candidate = secret.to_string();
        let Ok(Ok(_permit)) = tokio::time::timeout(self.hash_wait, self.hashing.acquire()).await else {
            return Ok(Err(LoginFailure::Busy));
        };
        let ok = tokio::task::spawn_blocking(move || verify_secret(&candidate, &hash))
            .await
            .unwrap_or(false);
        match row {
            None => return Ok(Err(LoginFailure::Unknown)),
            Some(row) if row.disabled => return Ok(Err(LoginFailure::Disabled)),
            Some(_) if !ok => return Ok(Err(LoginFailure::BadSecret)),
            Some(_) => {}
        }
        let groups = self.groups_of(policy, name).await?;
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), (fingerprint, Instant::now(), groups.clone()));
        Ok(Ok(Caller {
            principal: Some(name.to_string()),
            groups,
        }))
    }

    /// Every group `name` belongs to, from the config and the database.
    pub async fn groups_of(&self, policy: &AccessPolicy, name: &str) -> Result<BTreeSet<String>, MetaError> {
        let mut groups = policy.config_groups_of(name);
        groups.extend(self.meta.groups_of(name).await?);
        Ok(groups)
    }

    /// Whether `name` exists and is enabled (checked again at token refresh).
    pub async fn is_active(&self, name: &str) -> Result<bool, MetaError> {
        Ok(self.meta.principal(name).await?.is_some_and(|p| !p.disabled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_verify_only_themselves() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert!(a.starts_with("cst_") && a.len() == 47, "{a}");
        let hash = hash_secret(&a);
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_secret(&a, &hash));
        assert!(!verify_secret(&b, &hash));
        assert!(!verify_secret(&a, "not a phc string"));
    }

    #[test]
    fn names() {
        assert!(valid_name("sp-project1"));
        assert!(valid_name("alice@example.com"));
        assert!(!valid_name("Alice"));
        assert!(!valid_name("a b"));
        assert!(!valid_name(""));
    }
}

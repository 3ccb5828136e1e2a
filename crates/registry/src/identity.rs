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
use crate::lockout::{Lock, Lockout};
use crate::meta::{MetaError, MetaStore};

/// Kinds of principal.
pub const KINDS: [&str; 2] = ["service-principal", "user"];

/// Names the registry itself writes in the audit log (`anonymous` callers, `cli:USER` operators, the
/// `registry` and `scheduler` tasks): no principal may take them, so a record's principal is never ambiguous.
pub const RESERVED_NAMES: [&str; 5] = ["anonymous", "cli", "customs", "registry", "scheduler"];

/// How long a bearer token's principal is taken to be enabled after it was last checked.
pub const ACTIVE_CHECK: Duration = Duration::from_secs(2);

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

/// Whether `name` is one of the [`RESERVED_NAMES`].
pub fn reserved(name: &str) -> bool {
    RESERVED_NAMES.contains(&name)
}

/// Whether a name is usable as a principal or group name: lowercase letters, digits, `-`, `_`, `.`, `@`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.@".contains(&b))
}

/// Why a login failed (for the audit log; clients see 401, or 429 for [`LoginFailure::Busy`] and
/// [`LoginFailure::Locked`]).
#[derive(Debug, PartialEq, Eq)]
pub enum LoginFailure {
    /// Too many failed logins: refused without checking the secret until the lock ends.
    Locked(Lock),
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
            LoginFailure::Locked(lock) => match lock.subject {
                crate::lockout::LockSubject::Ip(_) => "locked: too many failed logins from this address",
                crate::lockout::LockSubject::Principal(_) => {
                    "locked: too many failed logins for this principal from addresses it is not known at"
                }
            },
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

/// SHA-256 of the verified secret, the stored hash it matched, when, and the principal's groups then.
struct CachedLogin {
    fingerprint: [u8; 32],
    hash: String,
    at: Instant,
    groups: BTreeSet<String>,
}

/// One login to check.
pub struct LoginAttempt<'a> {
    /// The claimed principal.
    pub name: &'a str,
    /// The secret presented.
    pub secret: &'a str,
    /// Where it comes from.
    pub ip: std::net::IpAddr,
    /// Now, by the registry's clock.
    pub now: time::OffsetDateTime,
}

/// What a login check found.
pub struct LoginReport {
    /// The caller, or why not.
    pub outcome: Result<Caller, LoginFailure>,
    /// Locks this failure tripped (for alerts).
    pub tripped: Vec<Lock>,
    /// After a verified login of a service principal from an address new for it: whether it had logged in
    /// from others.
    pub new_address: Option<bool>,
}

impl LoginReport {
    fn refused(failure: LoginFailure) -> LoginReport {
        LoginReport {
            outcome: Err(failure),
            tripped: Vec::new(),
            new_address: None,
        }
    }
}

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
    /// Failed-login counting and locks.
    pub lockout: Lockout,
    /// Whether a principal was enabled when last checked, for bearer tokens.
    active: Mutex<HashMap<String, (Instant, bool)>>,
}

impl Authenticator {
    /// An authenticator over `meta` that remembers verified logins for `cache_ttl`; a login waits at most
    /// `hash_wait` for a password-hash slot.
    pub fn new(meta: MetaStore, cache_ttl: Duration, hash_wait: Duration, lockout: Lockout) -> Authenticator {
        Authenticator {
            meta,
            cache: Mutex::new(HashMap::new()),
            cache_ttl,
            hashing: tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get())),
            hash_wait,
            lockout,
            active: Mutex::new(HashMap::new()),
        }
    }

    /// Verifies a login; on success, the caller with its groups from config and database.
    pub async fn login(&self, policy: &AccessPolicy, attempt: LoginAttempt<'_>) -> Result<LoginReport, MetaError> {
        let LoginAttempt { name, secret, ip, now } = attempt;
        let row = self.meta.principal(name).await?;
        let fingerprint: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        if let Some(row) = row.as_ref().filter(|r| !r.disabled)
            && let Some(cached) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(name)
            && cached.fingerprint == fingerprint
            && cached.hash == row.secret_hash
            && cached.at.elapsed() < self.cache_ttl
        {
            return Ok(LoginReport {
                outcome: Ok(Caller {
                    principal: Some(name.to_string()),
                    groups: cached.groups.clone(),
                }),
                tripped: Vec::new(),
                new_address: None,
            });
        }
        if let Some(lock) = self.lockout.refusing(name, ip, now).await? {
            return Ok(LoginReport::refused(LoginFailure::Locked(lock)));
        }
        // Unknown and disabled principals cost one Argon2 verification too, so response times do not tell
        // an attacker which names exist.
        let hash = match &row {
            Some(row) if !row.disabled => row.secret_hash.clone(),
            _ => dummy_hash().to_string(),
        };
        let candidate = secret.to_string();
        let Ok(Ok(_permit)) = tokio::time::timeout(self.hash_wait, self.hashing.acquire()).await else {
            return Ok(LoginReport::refused(LoginFailure::Busy));
        };
        let checked = hash.clone();
        let ok = tokio::task::spawn_blocking(move || verify_secret(&candidate, &checked))
            .await
            .unwrap_or(false);
        let service = row.as_ref().is_some_and(|r| r.kind == "service-principal");
        let failure = match row {
            None => Some(LoginFailure::Unknown),
            Some(row) if row.disabled => Some(LoginFailure::Disabled),
            Some(_) if !ok => Some(LoginFailure::BadSecret),
            Some(_) => None,
        };
        if let Some(failure) = failure {
            let tripped = self.lockout.failed(name, ip, now).await?;
            return Ok(LoginReport {
                outcome: Err(failure),
                tripped,
                new_address: None,
            });
        }
        let groups = self.groups_of(policy, name).await?;
        // Only service principals alert on a new address: people log in from wherever they are.
        let new_address = self.lockout.succeeded(name, ip, now).await?.filter(|_| service);
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(
            name.to_string(),
            CachedLogin {
                fingerprint,
                hash,
                at: Instant::now(),
                groups: groups.clone(),
            },
        );
        Ok(LoginReport {
            outcome: Ok(Caller {
                principal: Some(name.to_string()),
                groups,
            }),
            tripped: Vec::new(),
            new_address,
        })
    }

    /// Whether the principal a token was issued to is still enabled, checked in the database at most every
    /// [`ACTIVE_CHECK`] per principal (a disabled principal's tokens stop working within it).
    pub async fn token_subject_active(&self, name: &str) -> Result<bool, MetaError> {
        if let Some((at, active)) = self.active.lock().unwrap_or_else(|e| e.into_inner()).get(name)
            && at.elapsed() < ACTIVE_CHECK
        {
            return Ok(*active);
        }
        let active = self.is_active(name).await?;
        let mut cache = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 10_000 {
            cache.retain(|_, (at, _)| at.elapsed() < ACTIVE_CHECK);
        }
        cache.insert(name.to_string(), (Instant::now(), active));
        Ok(active)
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

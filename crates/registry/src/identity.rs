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
use crate::meta::{MetaError, MetaStore, PrincipalRow};
use crate::second_factor::{CodeRefusal, PERSONAL_TOKEN_PREFIX, SecondFactorStore, SeedKey, generate_personal_token};

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
    /// A user's right password without the second factor it owes.
    SecondFactorRequired,
    /// A second-factor code that was not accepted.
    SecondFactor(CodeRefusal),
    /// A personal token that is unknown, expired, revoked or not the principal's.
    InvalidPersonalToken,
    /// Personal tokens are for users; a service principal asked for one.
    NotAUser,
    /// A valid refresh token whose principal is disabled or gone.
    RefreshPrincipalGone,
}

impl LoginFailure {
    /// Whether the failure is a wrong guess at a credential, counted toward the lockout. A busy server, a right
    /// password that still owes its second factor, or a factor that cannot be checked are not the caller's guess.
    pub fn is_guess(&self) -> bool {
        !matches!(
            self,
            LoginFailure::Busy
                | LoginFailure::Locked(_)
                | LoginFailure::SecondFactorRequired
                | LoginFailure::NotAUser
                | LoginFailure::SecondFactor(CodeRefusal::NotEnrolled | CodeRefusal::SealBroken)
        )
    }

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
            LoginFailure::SecondFactorRequired => {
                "right password but no second factor: users log in with a personal token (customs registry login --totp)"
            }
            LoginFailure::SecondFactor(refusal) => refusal.as_str(),
            LoginFailure::InvalidPersonalToken => "invalid, expired or revoked personal token",
            LoginFailure::NotAUser => "personal tokens are for users; service principals use their secret",
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
    /// TOTP seeds and personal tokens.
    pub second_factor: SecondFactorStore,
    /// The key TOTP seeds are sealed with (`None`: no code can be checked, so exchanges are refused).
    seed_key: Option<SeedKey>,
    /// Whether users without an enrolled second factor are refused too.
    users_require_second_factor: bool,
}

/// A personal token handed out for password + code.
pub struct PersonalToken {
    /// The token, shown once.
    pub token: String,
    /// When it stops working.
    pub expires_at: time::OffsetDateTime,
}

impl Authenticator {
    /// An authenticator over `meta` that remembers verified logins for `cache_ttl`; a login waits at most
    /// `hash_wait` for a password-hash slot.
    pub fn new(meta: MetaStore, cache_ttl: Duration, hash_wait: Duration, lockout: Lockout) -> Authenticator {
        Authenticator {
            meta: meta.clone(),
            cache: Mutex::new(HashMap::new()),
            cache_ttl,
            hashing: tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get())),
            hash_wait,
            lockout,
            active: Mutex::new(HashMap::new()),
            second_factor: SecondFactorStore::new(meta),
            seed_key: None,
            users_require_second_factor: true,
        }
    }

    /// Sets the seed key and whether every user (enrolled or not) owes a second factor.
    pub fn with_second_factor(mut self, key: SeedKey, users_require_second_factor: bool) -> Authenticator {
        self.seed_key = Some(key);
        self.users_require_second_factor = users_require_second_factor;
        self
    }

    /// Verifies a login; on success, the caller with its groups from config and database. A user's password
    /// alone is refused when a second factor applies to it; a personal token (from [`Self::exchange`]) stands in.
    pub async fn login(&self, policy: &AccessPolicy, attempt: LoginAttempt<'_>) -> Result<LoginReport, MetaError> {
        let LoginAttempt { name, secret, ip, now } = attempt;
        let row = self.meta.principal(name).await?;
        let fingerprint: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        if let Some(row) = row.as_ref().filter(|r| !r.disabled)
            && let Some(groups) = self.cached_groups(name, &fingerprint, &row.secret_hash)
            && !self.needs_second_factor(row).await?
        {
            return Ok(LoginReport {
                outcome: Ok(Caller {
                    principal: Some(name.to_string()),
                    groups,
                }),
                tripped: Vec::new(),
                new_address: None,
            });
        }
        if let Some(lock) = self.lockout.refusing(name, ip, now).await? {
            return Ok(LoginReport::refused(LoginFailure::Locked(lock)));
        }
        if secret.starts_with(PERSONAL_TOKEN_PREFIX) {
            let valid = match &row {
                Some(r) if !r.disabled && r.kind == "user" => self.second_factor.token_valid(name, secret, now.unix_timestamp()).await?,
                _ => false,
            };
            if !valid {
                let failure = LoginFailure::InvalidPersonalToken;
                let tripped = self.count_failure(&failure, name, ip, now).await?;
                return Ok(LoginReport {
                    outcome: Err(failure),
                    tripped,
                    new_address: None,
                });
            }
            self.lockout.succeeded(name, ip, now).await?;
            let groups = self.groups_of(policy, name).await?;
            return Ok(LoginReport {
                outcome: Ok(Caller {
                    principal: Some(name.to_string()),
                    groups,
                }),
                tripped: Vec::new(),
                new_address: None,
            });
        }
        if let Err(failure) = self.check_password(row.as_ref(), secret).await {
            let tripped = self.count_failure(&failure, name, ip, now).await?;
            return Ok(LoginReport {
                outcome: Err(failure),
                tripped,
                new_address: None,
            });
        }
        let row = row.expect("check_password refuses unknown principals");
        // The password was right, but a person also owes the second factor: not counted as a failure, not
        // cached, and told apart only in the audit log.
        if self.needs_second_factor(&row).await? {
            return Ok(LoginReport::refused(LoginFailure::SecondFactorRequired));
        }
        let groups = self.groups_of(policy, name).await?;
        // Only service principals alert on a new address: people log in from wherever they are.
        let service = row.kind == "service-principal";
        let new_address = self.lockout.succeeded(name, ip, now).await?.filter(|_| service);
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(
            name.to_string(),
            CachedLogin {
                fingerprint,
                hash: row.secret_hash,
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

    /// Password + second-factor code → a personal token valid for `ttl` (`POST /token/personal`). A wrong
    /// password or code counts toward the lockout like any failed login; a code is accepted once.
    pub async fn exchange(
        &self,
        attempt: LoginAttempt<'_>,
        code: &str,
        ttl: Duration,
    ) -> Result<(Result<PersonalToken, LoginFailure>, Vec<Lock>), MetaError> {
        let LoginAttempt { name, secret, ip, now } = attempt;
        let row = self.meta.principal(name).await?;
        if let Some(lock) = self.lockout.refusing(name, ip, now).await? {
            return Ok((Err(LoginFailure::Locked(lock)), Vec::new()));
        }
        if let Err(failure) = self.check_password(row.as_ref(), secret).await {
            let tripped = self.count_failure(&failure, name, ip, now).await?;
            return Ok((Err(failure), tripped));
        }
        let row = row.expect("check_password refuses unknown principals");
        if row.kind != "user" {
            return Ok((Err(LoginFailure::NotAUser), Vec::new()));
        }
        let Some(key) = &self.seed_key else {
            return Ok((Err(LoginFailure::SecondFactor(CodeRefusal::SealBroken)), Vec::new()));
        };
        if let Err(refusal) = self.second_factor.accept_code(key, name, code, now.unix_timestamp()).await? {
            let failure = LoginFailure::SecondFactor(refusal);
            let tripped = self.count_failure(&failure, name, ip, now).await?;
            return Ok((Err(failure), tripped));
        }
        self.lockout.succeeded(name, ip, now).await?;
        let token = generate_personal_token();
        let issued = now.unix_timestamp();
        let expires = issued + ttl.as_secs() as i64;
        self.second_factor
            .issue_token(name, &token, issued, expires, &ip.to_string())
            .await?;
        let expires_at = time::OffsetDateTime::from_unix_timestamp(expires).unwrap_or(now);
        Ok((Ok(PersonalToken { token, expires_at }), Vec::new()))
    }

    /// Counts `failure` toward the lockout when it is a guess (see [`LoginFailure::is_guess`]); the locks it
    /// tripped.
    async fn count_failure(
        &self,
        failure: &LoginFailure,
        name: &str,
        ip: std::net::IpAddr,
        now: time::OffsetDateTime,
    ) -> Result<Vec<Lock>, MetaError> {
        if failure.is_guess() {
            self.lockout.failed(name, ip, now).await
        } else {
            Ok(Vec::new())
        }
    }

    /// Whether a person's password alone is not enough: always for enrolled users, and for every user while
    /// `[auth] users_require_second_factor` holds.
    async fn needs_second_factor(&self, row: &PrincipalRow) -> Result<bool, MetaError> {
        if row.kind != "user" {
            return Ok(false);
        }
        Ok(self.users_require_second_factor || self.second_factor.enrolled(&row.name).await?)
    }

    /// The groups remembered with a verified login of `name` with this secret and stored hash, while fresh.
    fn cached_groups(&self, name: &str, fingerprint: &[u8; 32], stored_hash: &str) -> Option<BTreeSet<String>> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .filter(|c| &c.fingerprint == fingerprint && c.hash == stored_hash && c.at.elapsed() < self.cache_ttl)
            .map(|c| c.groups.clone())
    }

    /// One Argon2id verification of `secret` in a hash slot. Unknown and disabled principals cost one too, so
    /// response times do not tell an attacker which names exist.
    async fn check_password(&self, row: Option<&PrincipalRow>, secret: &str) -> Result<(), LoginFailure> {
        let hash = match row {
            Some(row) if !row.disabled => row.secret_hash.clone(),
            _ => dummy_hash().to_string(),
        };
        let candidate = secret.to_string();
        let Ok(Ok(_permit)) = tokio::time::timeout(self.hash_wait, self.hashing.acquire()).await else {
            return Err(LoginFailure::Busy);
        };
        let ok = tokio::task::spawn_blocking(move || verify_secret(&candidate, &hash))
            .await
            .unwrap_or(false);
        match row {
            None => Err(LoginFailure::Unknown),
            Some(row) if row.disabled => Err(LoginFailure::Disabled),
            Some(_) if !ok => Err(LoginFailure::BadSecret),
            Some(_) => Ok(()),
        }
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

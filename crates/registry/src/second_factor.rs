//! A second factor for people: TOTP (RFC 6238) enrolment and one-time codes, and the short-lived personal tokens
//! a user gets for password + code.
//!
//! docker and podman send only a username and a password, so a user with a second factor cannot give the code
//! with each login. Instead the user exchanges password + code at `POST /token/personal` (`customs registry login
//! --totp CODE`) for a random personal token that the container clients then use as the password until it
//! expires. A user's password alone is refused (with `[auth] users_require_second_factor`, the default, also
//! before enrolment); service principals are machines and keep their single secret.
//!
//! A code is accepted once: the time step of the last accepted code is stored and only a later one passes,
//! updated in one conditional statement so two replicas cannot both accept it. TOTP seeds are stored encrypted
//! (AES-256-GCM, the principal's name as associated data) with a key file apart from the database, so a copy of
//! the database alone does not yield the second factor.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sha2::{Digest as _, Sha256};
use sqlx::Row;

use crate::meta::{MetaError, MetaStore, ctx};

/// The tables: one TOTP seed per user, and the personal tokens issued (by SHA-256; the token is shown once).
pub(crate) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS totp_seeds (principal TEXT PRIMARY KEY, sealed TEXT NOT NULL, enrolled_at TEXT NOT NULL,
        last_step BIGINT NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS personal_tokens (token_sha256 TEXT PRIMARY KEY, principal TEXT NOT NULL,
        issued_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, client_ip TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS personal_tokens_by_principal ON personal_tokens (principal)",
];

/// TOTP parameters: the defaults every authenticator app assumes (SHA-1, 6 digits, 30 s).
pub const STEP_SECONDS: i64 = 30;
const DIGITS: u32 = 6;
/// Codes of the previous and the next step are accepted too (clock drift, a code typed at the boundary).
const DRIFT_STEPS: i64 = 1;

/// The prefix of personal tokens, so a login can tell them from passwords without a database lookup.
pub const PERSONAL_TOKEN_PREFIX: &str = "cpt_";

/// A TOTP seed: 160 random bits (RFC 4226's recommended length).
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSeed([u8; 20]);

impl std::fmt::Debug for TotpSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSeed(..)")
    }
}

impl TotpSeed {
    /// A new random seed.
    pub fn generate() -> TotpSeed {
        let mut seed = [0u8; 20];
        rand::rng().fill_bytes(&mut seed);
        TotpSeed(seed)
    }

    /// A seed from the base32 text of an `otpauth://` URI (what an authenticator app stores).
    pub fn from_base32(text: &str) -> Option<TotpSeed> {
        let bytes = data_encoding::BASE32_NOPAD.decode(text.trim_end_matches('=').as_bytes()).ok()?;
        Some(TotpSeed(bytes.try_into().ok()?))
    }

    /// The seed in base32 without padding, as authenticator apps take it.
    pub fn base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.0)
    }

    /// The `otpauth://` URI an authenticator app enrols from (as text or a QR code).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let enc = |s: &str| {
            url::form_urlencoded::byte_serialize(s.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        };
        format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            enc(issuer),
            enc(account),
            self.base32(),
            enc(issuer)
        )
    }

    /// The code of time step `step` (RFC 4226 HOTP with the step as counter).
    pub fn code(&self, step: i64) -> u32 {
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &self.0);
        let mac = hmac::sign(&key, &step.to_be_bytes());
        let mac = mac.as_ref();
        let offset = (mac[19] & 0x0f) as usize;
        let value = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
        value % 10u32.pow(DIGITS)
    }

    /// The time step `code` belongs to at `unix` seconds (within the drift), or `None`.
    pub fn matching_step(&self, code: &str, unix: i64) -> Option<i64> {
        let code = code.trim();
        if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let wanted: u32 = code.parse().ok()?;
        let now = unix.div_euclid(STEP_SECONDS);
        // Every candidate is computed, so the time taken does not tell which step matched.
        let mut found = None;
        for step in now - DRIFT_STEPS..=now + DRIFT_STEPS {
            if self.code(step) == wanted && found.is_none() {
                found = Some(step);
            }
        }
        found
    }
}

/// The key TOTP seeds are sealed with (`[auth] second_factor_key_file`, 32 random bytes in hex, mode 0600).
pub struct SeedKey(LessSafeKey);

impl SeedKey {
    /// Reads the key file, creating it with a random key when missing.
    pub fn load_or_create(path: &std::path::Path) -> Result<SeedKey, String> {
        let err = |e: String| format!("second-factor key {}: {e}", path.display());
        let bytes = match std::fs::read_to_string(path) {
            Ok(text) => hex::decode(text.trim()).map_err(|_| err("not hex".into()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = vec![0u8; 32];
                rand::rng().fill_bytes(&mut key);
                crate::keyfile::create_private(path, hex::encode(&key).as_bytes()).map_err(|e| err(e.to_string()))?;
                key
            }
            Err(e) => return Err(err(e.to_string())),
        };
        if bytes.len() != 32 {
            return Err(err(format!("{} bytes; expected 32", bytes.len())));
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| err("unusable key".into()))?;
        Ok(SeedKey(LessSafeKey::new(key)))
    }

    /// `v1:` and base64 of nonce + ciphertext + tag, bound to `principal`.
    fn seal(&self, principal: &str, seed: &TotpSeed) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut data = seed.0.to_vec();
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(principal.as_bytes()), &mut data)
            .expect("AES-GCM sealing of 20 bytes");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        format!("v1:{}", STANDARD.encode(out))
    }

    fn open(&self, principal: &str, sealed: &str) -> Option<TotpSeed> {
        let raw = STANDARD.decode(sealed.strip_prefix("v1:")?).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, data) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = data.to_vec();
        let plain = self.0.open_in_place(nonce, Aad::from(principal.as_bytes()), &mut data).ok()?;
        Some(TotpSeed(plain.try_into().ok()?))
    }
}

/// A new personal token: `cpt_` and 43 URL-safe characters (256 bits).
pub fn generate_personal_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{PERSONAL_TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Why a code was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeRefusal {
    /// The principal has no second factor enrolled.
    NotEnrolled,
    /// The stored seed does not open with the key (a different key file, or a row moved between principals).
    SealBroken,
    /// Not a code of the current time (± one step).
    Wrong,
    /// The code, or a later one, was already used.
    Reused,
}

impl CodeRefusal {
    /// Short text for the audit log.
    pub fn as_str(&self) -> &'static str {
        match self {
            CodeRefusal::NotEnrolled => "second factor not enrolled",
            CodeRefusal::SealBroken => "stored second-factor seed does not open with the key file",
            CodeRefusal::Wrong => "wrong second-factor code",
            CodeRefusal::Reused => "second-factor code already used",
        }
    }
}

/// The second-factor tables of a registry database.
#[derive(Clone)]
pub struct SecondFactorStore {
    meta: MetaStore,
}

impl SecondFactorStore {
    /// The store over `meta`'s database.
    pub fn new(meta: MetaStore) -> SecondFactorStore {
        SecondFactorStore { meta }
    }

    /// Enrols (or replaces) `principal`'s seed; replacing revokes its personal tokens.
    pub async fn enroll(&self, key: &SeedKey, principal: &str, seed: &TotpSeed) -> Result<(), MetaError> {
        sqlx::query(
            "INSERT INTO totp_seeds (principal, sealed, enrolled_at, last_step) VALUES ($1, $2, $3, 0)
             ON CONFLICT (principal) DO UPDATE SET sealed = excluded.sealed, enrolled_at = excluded.enrolled_at,
             last_step = 0",
        )
        .bind(principal)
        .bind(key.seal(principal, seed))
        .bind(crate::clock::format(time::OffsetDateTime::now_utc()))
        .execute(self.meta.pool())
        .await
        .map_err(ctx("enrolling a second factor"))?;
        self.revoke_tokens(principal).await?;
        Ok(())
    }

    /// Removes `principal`'s seed and personal tokens; `false` when none was enrolled.
    pub async fn remove(&self, principal: &str) -> Result<bool, MetaError> {
        let done = sqlx::query("DELETE FROM totp_seeds WHERE principal = $1")
            .bind(principal)
            .execute(self.meta.pool())
            .await
            .map_err(ctx("removing a second factor"))?;
        self.revoke_tokens(principal).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether `principal` has a second factor enrolled.
    pub async fn enrolled(&self, principal: &str) -> Result<bool, MetaError> {
        let row = sqlx::query("SELECT 1 FROM totp_seeds WHERE principal = $1")
            .bind(principal)
            .fetch_optional(self.meta.pool())
            .await
            .map_err(ctx("reading a second factor"))?;
        Ok(row.is_some())
    }

    /// Every principal with a second factor enrolled.
    pub async fn enrolled_principals(&self) -> Result<Vec<String>, MetaError> {
        let rows = sqlx::query("SELECT principal FROM totp_seeds ORDER BY principal")
            .fetch_all(self.meta.pool())
            .await
            .map_err(ctx("listing second factors"))?;
        Ok(rows.into_iter().map(|r| r.get("principal")).collect())
    }

    /// Accepts `code` for `principal` at `unix` seconds, once: the step is consumed in the same statement that
    /// checks it was not used before.
    pub async fn accept_code(&self, key: &SeedKey, principal: &str, code: &str, unix: i64) -> Result<Result<(), CodeRefusal>, MetaError> {
        let row = sqlx::query("SELECT sealed FROM totp_seeds WHERE principal = $1")
            .bind(principal)
            .fetch_optional(self.meta.pool())
            .await
            .map_err(ctx("reading a second factor"))?;
        let Some(row) = row else {
            return Ok(Err(CodeRefusal::NotEnrolled));
        };
        let Some(seed) = key.open(principal, row.get("sealed")) else {
            return Ok(Err(CodeRefusal::SealBroken));
        };
        let Some(step) = seed.matching_step(code, unix) else {
            return Ok(Err(CodeRefusal::Wrong));
        };
        let done = sqlx::query("UPDATE totp_seeds SET last_step = $1 WHERE principal = $2 AND last_step < $1")
            .bind(step)
            .bind(principal)
            .execute(self.meta.pool())
            .await
            .map_err(ctx("recording a second-factor code"))?;
        Ok(if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(CodeRefusal::Reused)
        })
    }

    /// Stores a personal token for `principal` valid until `expires_at` (unix seconds).
    pub async fn issue_token(
        &self,
        principal: &str,
        token: &str,
        issued_at: i64,
        expires_at: i64,
        client_ip: &str,
    ) -> Result<(), MetaError> {
        // Expired tokens of the principal go with each new one, so the table stays the size of what is valid.
        sqlx::query("DELETE FROM personal_tokens WHERE principal = $1 AND expires_at <= $2")
            .bind(principal)
            .bind(issued_at)
            .execute(self.meta.pool())
            .await
            .map_err(ctx("pruning personal tokens"))?;
        sqlx::query(
            "INSERT INTO personal_tokens (token_sha256, principal, issued_at, expires_at, client_ip)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_sha256(token))
        .bind(principal)
        .bind(issued_at)
        .bind(expires_at)
        .bind(client_ip)
        .execute(self.meta.pool())
        .await
        .map_err(ctx("storing a personal token"))?;
        Ok(())
    }

    /// Whether `token` is an unexpired personal token of `principal` at `unix` seconds.
    pub async fn token_valid(&self, principal: &str, token: &str, unix: i64) -> Result<bool, MetaError> {
        let row = sqlx::query("SELECT 1 FROM personal_tokens WHERE token_sha256 = $1 AND principal = $2 AND expires_at > $3")
            .bind(token_sha256(token))
            .bind(principal)
            .bind(unix)
            .fetch_optional(self.meta.pool())
            .await
            .map_err(ctx("checking a personal token"))?;
        Ok(row.is_some())
    }

    /// Revokes every personal token of `principal`; how many.
    pub async fn revoke_tokens(&self, principal: &str) -> Result<u64, MetaError> {
        let done = sqlx::query("DELETE FROM personal_tokens WHERE principal = $1")
            .bind(principal)
            .execute(self.meta.pool())
            .await
            .map_err(ctx("revoking personal tokens"))?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1, the last six digits of each eight-digit value.
    #[test]
    fn codes_match_the_rfc_6238_vectors() {
        let seed = TotpSeed(*b"12345678901234567890");
        for (unix, code) in [
            (59, 287_082),
            (1_111_111_109, 81_804),
            (1_111_111_111, 50_471),
            (1_234_567_890, 5_924),
            (2_000_000_000, 279_037),
            (20_000_000_000, 353_130),
        ] {
            assert_eq!(seed.code(unix / STEP_SECONDS), code, "T = {unix}");
        }
        assert_eq!(seed.base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(TotpSeed::from_base32(&seed.base32()), Some(seed.clone()));
        assert_eq!(TotpSeed::from_base32("GEZDGNBV"), None, "a seed is 160 bits");
        assert_eq!(seed.matching_step("005924", 1_234_567_890), Some(1_234_567_890 / 30));
        // One step either side is accepted, two are not.
        assert_eq!(seed.matching_step("005924", 1_234_567_890 + 30), Some(1_234_567_890 / 30));
        assert_eq!(seed.matching_step("005924", 1_234_567_890 + 60), None);
        for bad in ["5924", "0059240", "00592a", "", "-05924"] {
            assert_eq!(seed.matching_step(bad, 1_234_567_890), None, "{bad}");
        }
    }

    #[test]
    fn the_enrolment_uri_is_what_authenticator_apps_read() {
        let seed = TotpSeed(*b"12345678901234567890");
        assert_eq!(
            seed.otpauth_uri("customs registry", "alice@example.com"),
            "otpauth://totp/customs%20registry:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=customs%20registry&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn sealed_seeds_open_only_for_their_principal_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("second-factor.key");
        let key = SeedKey::load_or_create(&path).unwrap();
        let again = SeedKey::load_or_create(&path).unwrap();
        let seed = TotpSeed::generate();
        let sealed = key.seal("alice", &seed);
        assert!(!sealed.contains(&seed.base32()));
        assert_eq!(again.open("alice", &sealed), Some(seed.clone()));
        assert_eq!(key.open("mallory", &sealed), None, "a row moved to another principal does not open");
        let other = SeedKey::load_or_create(&dir.path().join("other.key")).unwrap();
        assert_eq!(other.open("alice", &sealed), None);
        assert_eq!(key.open("alice", "v1:AAAA"), None);
        assert_eq!(key.open("alice", "not sealed"), None);
        std::fs::write(dir.path().join("short.key"), "abcd").unwrap();
        assert!(SeedKey::load_or_create(&dir.path().join("short.key")).is_err());
    }

    #[tokio::test]
    async fn a_code_is_accepted_once_and_never_an_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let meta = MetaStore::open(&dir.path().join("registry.db")).await.unwrap();
        let store = SecondFactorStore::new(meta);
        let key = SeedKey::load_or_create(&dir.path().join("k")).unwrap();
        let seed = TotpSeed::generate();
        let now = 1_800_000_000;
        let code = |t: i64| format!("{:06}", seed.code(t / STEP_SECONDS));
        assert_eq!(
            store.accept_code(&key, "alice", &code(now), now).await.unwrap(),
            Err(CodeRefusal::NotEnrolled)
        );
        store.enroll(&key, "alice", &seed).await.unwrap();
        assert!(store.enrolled("alice").await.unwrap());
        assert_eq!(store.accept_code(&key, "alice", &code(now), now).await.unwrap(), Ok(()));
        assert_eq!(
            store.accept_code(&key, "alice", &code(now), now + 5).await.unwrap(),
            Err(CodeRefusal::Reused)
        );
        // The previous step's code is within the drift but older than the one used: refused.
        assert_eq!(
            store.accept_code(&key, "alice", &code(now - 30), now).await.unwrap(),
            Err(CodeRefusal::Reused)
        );
        let wrong = format!("{:06}", (seed.code(now / STEP_SECONDS) + 1) % 1_000_000);
        assert_eq!(
            store.accept_code(&key, "alice", &wrong, now + 30).await.unwrap(),
            Err(CodeRefusal::Wrong)
        );
        assert_eq!(store.accept_code(&key, "alice", &code(now + 30), now + 30).await.unwrap(), Ok(()));

        // Personal tokens: valid for their principal until they expire; revoked by re-enrolment.
        let token = generate_personal_token();
        assert!(token.starts_with(PERSONAL_TOKEN_PREFIX) && token.len() == 47);
        store.issue_token("alice", &token, now, now + 3600, "192.0.2.1").await.unwrap();
        assert!(store.token_valid("alice", &token, now + 10).await.unwrap());
        assert!(!store.token_valid("bob", &token, now + 10).await.unwrap());
        assert!(!store.token_valid("alice", &token, now + 3600).await.unwrap());
        assert!(!store.token_valid("alice", &generate_personal_token(), now).await.unwrap());
        store.enroll(&key, "alice", &TotpSeed::generate()).await.unwrap();
        assert!(!store.token_valid("alice", &token, now + 10).await.unwrap());
        assert!(store.remove("alice").await.unwrap());
        assert!(!store.remove("alice").await.unwrap());
        assert!(store.enrolled_principals().await.unwrap().is_empty());
    }
}

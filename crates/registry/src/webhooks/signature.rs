//! Webhook signatures, as the Standard Webhooks specification defines them (so receivers can use its libraries):
//! `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `{id}.{timestamp}.{body}`, keyed with the secret `whsec_<base64 key>`.
//!
//! A receiver checks the HMAC in constant time, refuses a timestamp more than [`TOLERANCE_SECONDS`] away from its
//! clock, and remembers the ids it accepted within that window: a replayed delivery has a seen id or a stale
//! timestamp, a tampered one a wrong HMAC.

use std::path::Path;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// How far a delivery's timestamp may be from the receiver's clock.
pub const TOLERANCE_SECONDS: i64 = 300;

/// The prefix of a secret's text form.
const PREFIX: &str = "whsec_";

/// A webhook's signing key.
pub struct WebhookSecret {
    key: hmac::Key,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// Why a delivery does not verify.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header is missing or malformed.
    #[error("the webhook-{0} header is missing or malformed")]
    Header(&'static str),
    /// The timestamp is outside the tolerance (a replay of an old delivery, or a clock far off).
    #[error("the timestamp is {0} s away from now, more than the {TOLERANCE_SECONDS} s allowed")]
    Stale(i64),
    /// No signature matches: the body, id or timestamp was changed, or the secret differs.
    #[error("no signature matches the delivery")]
    Mismatch,
}

impl WebhookSecret {
    /// A new random 32-byte secret and its text form (`whsec_…`).
    pub fn generate() -> (WebhookSecret, String) {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
        let text = format!("{PREFIX}{}", STANDARD.encode(key));
        (WebhookSecret::from_key(&key), text)
    }

    fn from_key(key: &[u8]) -> WebhookSecret {
        WebhookSecret {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// Reads `whsec_<base64>` (surrounding whitespace ignored); at least 24 key bytes.
    pub fn parse(text: &str) -> Result<WebhookSecret, String> {
        let encoded = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or("a webhook secret starts with `whsec_` followed by base64")?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| "the part after `whsec_` is not base64".to_string())?;
        if key.len() < 24 {
            return Err(format!("the key has {} bytes; at least 24 are required", key.len()));
        }
        Ok(WebhookSecret::from_key(&key))
    }

    /// Reads the secret at `path`, or creates a random one there (mode 0600) on first start.
    pub fn load_or_create(path: &Path) -> Result<WebhookSecret, String> {
        let err = |e: String| format!("webhook secret {}: {e}", path.display());
        match std::fs::read_to_string(path) {
            Ok(text) => WebhookSecret::parse(&text).map_err(err),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (secret, text) = WebhookSecret::generate();
                crate::keyfile::create_private(path, format!("{text}\n").as_bytes()).map_err(|e| err(e.to_string()))?;
                Ok(secret)
            }
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// The `webhook-signature` value for a delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = hmac::sign(&self.key, &signed_content(id, timestamp, body));
        format!("v1,{}", STANDARD.encode(tag.as_ref()))
    }

    /// Checks a delivery's headers and body at `now` (Unix seconds). Remembering accepted ids is the caller's part.
    pub fn verify(&self, id: &str, timestamp: &str, signatures: &str, body: &[u8], now: i64) -> Result<(), VerifyError> {
        if id.is_empty() {
            return Err(VerifyError::Header("id"));
        }
        let timestamp: i64 = timestamp.trim().parse().map_err(|_| VerifyError::Header("timestamp"))?;
        if (now - timestamp).abs() > TOLERANCE_SECONDS {
            return Err(VerifyError::Stale(now - timestamp));
        }
        let content = signed_content(id, timestamp, body);
        let mut any = false;
        for candidate in signatures.split_whitespace() {
            let Some(encoded) = candidate.strip_prefix("v1,") else { continue };
            any = true;
            if let Ok(tag) = STANDARD.decode(encoded)
                && hmac::verify(&self.key, &content, &tag).is_ok()
            {
                return Ok(());
            }
        }
        Err(if any {
            VerifyError::Mismatch
        } else {
            VerifyError::Header("signature")
        })
    }
}

fn signed_content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    content
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries: a signature made elsewhere
    /// verifies here.
    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body), expected);
        assert_eq!(
            secret.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", expected, body, 1614265330 + 10),
            Ok(())
        );
    }

    #[test]
    fn tampered_stale_and_malformed_deliveries_fail() {
        let (secret, text) = WebhookSecret::generate();
        assert!(text.starts_with("whsec_"));
        let signature = secret.sign("e1", 1000, b"{}");
        assert_eq!(secret.verify("e1", "1000", &signature, b"{ }", 1000), Err(VerifyError::Mismatch));
        assert_eq!(secret.verify("e2", "1000", &signature, b"{}", 1000), Err(VerifyError::Mismatch));
        assert_eq!(
            secret.verify("e1", "1000", &signature, b"{}", 1000 + 301),
            Err(VerifyError::Stale(301))
        );
        assert_eq!(
            secret.verify("e1", "soon", &signature, b"{}", 1000),
            Err(VerifyError::Header("timestamp"))
        );
        assert_eq!(
            secret.verify("e1", "1000", "v2,abc", b"{}", 1000),
            Err(VerifyError::Header("signature"))
        );
        let other = WebhookSecret::generate().0;
        assert_eq!(other.verify("e1", "1000", &signature, b"{}", 1000), Err(VerifyError::Mismatch));
        // Several signatures (a key rotation): any one that matches is enough.
        let both = format!("v1,AAAA {signature}");
        assert_eq!(secret.verify("e1", "1000", &both, b"{}", 1000), Ok(()));
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").unwrap_err().contains("at least 24"));
        assert!(WebhookSecret::parse("secret").unwrap_err().contains("whsec_"));
    }
}

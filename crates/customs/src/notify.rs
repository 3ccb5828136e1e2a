//! Telling people when the gate fails: webhooks in customs JSON, Slack or Teams shape.
//!
//! A notification never changes the verdict: failures to deliver are warnings.
//! Webhook URLs are secrets (they authorize posting), so messages only ever show
//! the scheme and host.

use std::time::Duration;

pub use customs_report::notify::{Notice, mask, payload};
use serde_json::Value;

/// POSTs `body` to `url`: up to `attempts` tries, each bounded by `timeout`.
pub fn send(url: &str, body: &Value, attempts: u32, timeout: Duration) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
        )
        .build()
        .into();
    let mut last = String::new();
    let mut pause = Duration::from_millis(500);
    for attempt in 1..=attempts.max(1) {
        match agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())
        {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                return Err(format!("{} answered {}", mask(url), r.status().as_u16()));
            }
            Ok(r) => last = format!("{} answered {}", mask(url), r.status().as_u16()),
            // The error text may quote the URL: mask it.
            Err(e) => last = format!("{}: {}", mask(url), e.to_string().replace(url, &mask(url))),
        }
        if attempt < attempts {
            std::thread::sleep(pause);
            pause *= 2;
        }
    }
    Err(last)
}

//! Telling people when the gate fails: webhooks in customs JSON, Slack or Teams shape.
//!
//! A notification never changes the verdict: failures to deliver are warnings.
//! Webhook URLs are secrets (they authorize posting), so messages only ever show
//! the scheme and host.

use std::time::Duration;

use customs_policy::NotifyFormat;
use customs_vulndb::Finding;
use serde_json::{Value, json};

/// What a notification says.
pub struct Notice<'a> {
    /// The image.
    pub image: &'a str,
    /// The verdict.
    pub pass: bool,
    /// Why.
    pub reasons: &'a [String],
    /// The findings that fail the gate.
    pub failing: Vec<&'a Finding>,
}

/// `https://hooks.slack.com/services/T0/B0/secret` -> `https://hooks.slack.com/…`.
pub fn mask(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!(
            "{scheme}://{}/…",
            rest.split(['/', '?'])
                .next()
                .unwrap_or_default()
                .rsplit('@')
                .next()
                .unwrap_or_default()
        ),
        None => "(invalid URL)".into(),
    }
}

/// The request body for `format`.
pub fn payload(format: NotifyFormat, n: &Notice<'_>) -> Value {
    let verdict = if n.pass { "passed" } else { "FAILED" };
    let lines: Vec<String> = n
        .failing
        .iter()
        .take(20)
        .map(|f| {
            format!(
                "{} {} in {} {} (fixed: {})",
                f.severity.as_str(),
                f.id,
                f.package.name,
                f.package.version,
                f.fixed_version.as_deref().unwrap_or("none yet")
            )
        })
        .collect();
    let more = n.failing.len().saturating_sub(lines.len());
    let mut text = format!("customs gate {verdict} for {}\n{}", n.image, n.reasons.join("\n"));
    if !lines.is_empty() {
        text.push_str(&format!("\n{}", lines.join("\n")));
    }
    if more > 0 {
        text.push_str(&format!("\n… and {more} more"));
    }
    match format {
        NotifyFormat::Json => json!({
            "tool": "customs",
            "version": env!("CARGO_PKG_VERSION"),
            "image": n.image,
            "pass": n.pass,
            "reasons": n.reasons,
            "failing": n.failing.iter().map(|f| json!({"id": f.id, "aliases": f.aliases, "package": f.package.name, "version": f.package.version, "severity": f.severity.as_str(), "fixed_version": f.fixed_version})).collect::<Vec<_>>(),
        }),
        NotifyFormat::Slack => json!({"text": text}),
        NotifyFormat::Teams => json!({
            "@type": "MessageCard",
            "@context": "http://schema.org/extensions",
            "summary": format!("customs gate {verdict} for {}", n.image),
            "themeColor": if n.pass { "2EB886" } else { "D70000" },
            "title": format!("customs gate {verdict}: {}", n.image),
            "text": text.replace('\n', "<br>"),
        }),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secrets_in_urls() {
        assert_eq!(
            mask("https://hooks.slack.com/services/T0/B0/XXXXsecret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            mask("https://user:pass@example.com:8443/hook?token=x"),
            "https://example.com:8443/…"
        );
        assert_eq!(mask("not a url"), "(invalid URL)");
    }
}

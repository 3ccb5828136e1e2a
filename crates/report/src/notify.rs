//! Notifications about a verdict, in customs JSON, Slack or Teams shape: what `customs gate --notify` posts and
//! what the registry's Slack and Teams webhooks carry.
//!
//! Webhook URLs are secrets (they authorize posting), so [`mask`] is what messages show of them.

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
        NotifyFormat::Slack | NotifyFormat::Teams => chat_message(format, &format!("customs gate {verdict}: {}", n.image), &text, n.pass),
    }
}

/// A chat message (Slack `text`, or a Teams MessageCard with `title`) for any event; `good` picks the colour.
/// [`NotifyFormat::Json`] gives `{"title", "text"}`.
pub fn chat_message(format: NotifyFormat, title: &str, text: &str, good: bool) -> Value {
    match format {
        NotifyFormat::Json => json!({"title": title, "text": text}),
        NotifyFormat::Slack => json!({"text": text}),
        NotifyFormat::Teams => json!({
            "@type": "MessageCard",
            "@context": "http://schema.org/extensions",
            "summary": title,
            "themeColor": if good { "2EB886" } else { "D70000" },
            "title": title,
            "text": text.replace('\n', "<br>"),
        }),
    }
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

//! Webhooks: the registry tells other systems what happened (pushes, deletes, scans, verdict flips, blocked
//! pulls, base-image updates) with signed, retried deliveries, never on the request path.
//!
//! An event becomes one durable delivery per matching `[[webhook]]` (a row in the metadata database, written
//! before the request that caused it is answered); sender tasks post it with a Standard Webhooks signature
//! ([`signature`]) and retry with exponential backoff. The deliveries table is the queryable delivery log.

pub mod event;
pub mod signature;
pub mod store;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use globset::GlobMatcher;
use serde::Deserialize;

pub use event::{Event, EventKind, Format, Message};
pub use signature::WebhookSecret;
pub use store::{DeliveryRow, DeliveryStore};

use crate::server::Registry;

/// Senders working at once (a slow receiver holds one of them, never the others' queue).
const SENDERS: usize = 4;
/// How long a claimed delivery belongs to its sender.
const LEASE: Duration = Duration::from_secs(120);
/// The longest pause between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How often idle senders look for retries that came due.
const POLL: Duration = Duration::from_secs(1);
/// The same blocked pull (repository, digest, principal) makes one event per this long.
const BLOCKED_PULL_QUIET: Duration = Duration::from_secs(60);

/// `[[webhook]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A name for the log and the API (letters, digits, `-`, `_`).
    pub name: String,
    /// Where to post; `https://`, or `http://` to a loopback address only.
    pub url: Option<String>,
    /// An environment variable holding the URL instead (Slack and Teams URLs are secrets).
    pub url_env: Option<String>,
    /// Events to send [default: all].
    #[serde(default)]
    pub events: Vec<String>,
    /// Repositories (exact names or globs) whose events are sent [default: all].
    #[serde(default)]
    pub repositories: Vec<String>,
    /// `cloudevents` (default), `slack` or `teams`.
    #[serde(default)]
    pub format: Format,
    /// The signing secret (`whsec_…`), created on first start [default: `data/webhooks/NAME.secret`].
    pub secret_file: Option<PathBuf>,
    /// Attempts before a delivery is given up.
    #[serde(default = "default_attempts")]
    pub max_attempts: i64,
    /// The pause after the first failed attempt (`10s`, `1m`), doubled after each further one (at most 1 h).
    #[serde(default = "default_retry_after")]
    pub retry_after: String,
    /// How long one attempt may take.
    #[serde(default = "default_timeout")]
    pub timeout: String,
}

fn default_attempts() -> i64 {
    6
}
fn default_retry_after() -> String {
    "10s".into()
}
fn default_timeout() -> String {
    "10s".into()
}

/// One checked webhook.
struct Hook {
    config: WebhookConfig,
    url: String,
    events: Vec<EventKind>,
    matchers: Vec<GlobMatcher>,
    secret: WebhookSecret,
    retry_after: Duration,
    agent: ureq::Agent,
}

impl Hook {
    fn wants(&self, event: &Event) -> bool {
        (self.events.is_empty() || self.events.contains(&event.kind))
            // Events about no repository (alerts on a principal or an address) reach every webhook that wants
            // their kind.
            && (self.matchers.is_empty() || event.repository.is_empty() || self.matchers.iter().any(|m| m.is_match(&event.repository)))
    }
}

/// Whether `url` may receive deliveries: TLS, or plain HTTP to this machine (a local relay or a test receiver).
fn check_url(url: &str) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("not a URL".into());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    match scheme {
        "https" => Ok(()),
        "http" if host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) => Ok(()),
        "http" => Err("plain http is allowed to a loopback address only; use https".into()),
        other => Err(format!("scheme `{other}`: use https")),
    }
}

/// The configured webhooks and their deliveries.
pub struct Webhooks {
    hooks: Vec<Hook>,
    /// The deliveries (queue and log).
    pub store: DeliveryStore,
    source: String,
    wake: tokio::sync::Notify,
    quiet: Mutex<HashMap<String, Instant>>,
}

impl Webhooks {
    /// Checks the `[[webhook]]` entries and reads (or creates) their secrets; `None` when there are none. An error
    /// names the webhook and what is wrong.
    pub fn open(configs: &[WebhookConfig], store: DeliveryStore, source: &str) -> Result<Option<Webhooks>, String> {
        if configs.is_empty() {
            return Ok(None);
        }
        let mut hooks = Vec::new();
        for c in configs {
            let at = |e: String| format!("webhook `{}`: {e}", c.name);
            if c.name.is_empty() || !c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') {
                return Err(at("the name takes letters, digits, `-` and `_`".into()));
            }
            if hooks.iter().any(|h: &Hook| h.config.name == c.name) {
                return Err(at("the name is used twice".into()));
            }
            let url = match (&c.url, &c.url_env) {
                (Some(url), None) => url.clone(),
                (None, Some(var)) => std::env::var(var).map_err(|_| at(format!("the environment variable {var} is not set")))?,
                _ => return Err(at("give one of url and url_env".into())),
            };
            check_url(&url).map_err(|e| at(format!("{}: {e}", customs_report::notify::mask(&url))))?;
            let events = c
                .events
                .iter()
                .map(|e| EventKind::parse(e))
                .collect::<Result<Vec<_>, _>>()
                .map_err(at)?
                .concat();
            let matchers = crate::access::repository_matchers(&c.repositories).map_err(at)?;
            if c.max_attempts < 1 {
                return Err(at("max_attempts is at least 1".into()));
            }
            let seconds = |what: &str, s: &str| {
                crate::protect::parse_age(s)
                    .map(|d| Duration::from_secs(d.whole_seconds().max(0) as u64))
                    .map_err(|e| at(format!("{what} {e}")))
            };
            let retry_after = seconds("retry_after", &c.retry_after)?;
            let timeout = seconds("timeout", &c.timeout)?.max(Duration::from_secs(1));
            let secret_file = c.secret_file.clone().ok_or_else(|| at("no secret_file".into()))?;
            let secret = WebhookSecret::load_or_create(&secret_file).map_err(at)?;
            let agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_global(Some(timeout))
                .user_agent(concat!("customs-registry/", env!("CARGO_PKG_VERSION")))
                .tls_config(
                    ureq::tls::TlsConfig::builder()
                        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                        .build(),
                )
                .build()
                .into();
            hooks.push(Hook {
                config: c.clone(),
                url,
                events,
                matchers,
                secret,
                retry_after,
                agent,
            });
        }
        Ok(Some(Webhooks {
            hooks,
            store,
            source: source.to_string(),
            wake: tokio::sync::Notify::new(),
            quiet: Mutex::new(HashMap::new()),
        }))
    }

    /// The webhooks as the API lists them (URLs masked: they may carry secrets).
    pub fn describe(&self) -> Vec<serde_json::Value> {
        self.hooks
            .iter()
            .map(|h| {
                serde_json::json!({
                    "name": h.config.name,
                    "url": customs_report::notify::mask(&h.url),
                    "events": if h.events.is_empty() { EventKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>() } else { h.events.iter().map(|k| k.as_str()).collect() },
                    "repositories": h.config.repositories,
                    "format": format!("{:?}", h.config.format).to_lowercase(),
                    "max_attempts": h.config.max_attempts,
                })
            })
            .collect()
    }

    /// Queues `event` for every webhook that wants it. Never fails the caller: an error is logged (the event is
    /// what it is whether anyone hears of it).
    pub async fn emit(&self, event: &Event, now: &str) {
        let mut queued = false;
        for hook in self.hooks.iter().filter(|h| h.wants(event)) {
            let body = event.body(hook.config.format, &self.source).to_string();
            match self
                .store
                .enqueue(&hook.config.name, &event.id, event.kind.as_str(), &event.repository, &body, now)
                .await
            {
                Ok(()) => queued = true,
                Err(e) => tracing::error!(
                    "webhook {}: {} of {} not queued: {e}",
                    hook.config.name,
                    event.kind.as_str(),
                    event.subject
                ),
            }
        }
        if queued {
            self.wake.notify_one();
        }
    }

    /// Whether a blocked pull of `key` should make an event now (one per minute for the same pull, so a client
    /// retrying in a loop cannot flood receivers or the log).
    pub fn blocked_pull_is_news(&self, key: &str) -> bool {
        let mut quiet = self.quiet.lock().expect("lock");
        if quiet.len() > 10_000 {
            quiet.retain(|_, at| at.elapsed() < BLOCKED_PULL_QUIET);
        }
        match quiet.get(key) {
            Some(at) if at.elapsed() < BLOCKED_PULL_QUIET => false,
            _ => {
                quiet.insert(key.to_string(), Instant::now());
                true
            }
        }
    }
}

/// Starts the senders: deliveries a stopped process was sending are queued again first.
pub async fn start_senders(registry: &Arc<Registry>) {
    let Some(webhooks) = &registry.webhooks else { return };
    let expired_before = registry
        .meta
        .engine()
        .startup_requeue_cutoff(crate::clock::format(registry.clock.now()));
    match webhooks.store.requeue_abandoned(expired_before.as_deref()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!("{n} webhook deliveries interrupted by the last stop are queued again"),
        Err(e) => tracing::error!("{e}"),
    }
    for _ in 0..SENDERS {
        let registry = registry.clone();
        tokio::spawn(async move { send_loop(registry).await });
    }
}

async fn send_loop(registry: Arc<Registry>) {
    let webhooks = registry.webhooks.as_ref().expect("senders run with webhooks");
    loop {
        let now = registry.clock.now();
        let lease = now + time::Duration::seconds(LEASE.as_secs() as i64);
        match webhooks.store.claim(&crate::clock::format(now), &crate::clock::format(lease)).await {
            Ok(Some(delivery)) => send(&registry, webhooks, delivery).await,
            Ok(None) => {
                let _ = webhooks.store.requeue_abandoned(Some(&crate::clock::format(now))).await;
                let _ = tokio::time::timeout(POLL, webhooks.wake.notified()).await;
            }
            Err(e) => {
                tracing::error!("{e}");
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// One attempt: signed POST, then delivered, queued again with backoff, or given up.
async fn send(registry: &Arc<Registry>, webhooks: &Webhooks, delivery: store::Claimed) {
    let Some(hook) = webhooks.hooks.iter().find(|h| h.config.name == delivery.webhook) else {
        // The webhook was removed from the config: the delivery stays in the log as failed.
        let now = registry.clock.now_rfc3339();
        let _ = webhooks
            .store
            .record_attempt(&delivery.id, None, Some("the webhook is no longer configured"), false, None, &now)
            .await;
        return;
    };
    let timestamp = registry.clock.now().unix_timestamp();
    let signature = hook.secret.sign(&delivery.event_id, timestamp, delivery.body.as_bytes());
    let content_type = match hook.config.format {
        Format::Cloudevents => "application/cloudevents+json; charset=utf-8",
        Format::Slack | Format::Teams => "application/json",
    };
    let agent = hook.agent.clone();
    let url = hook.url.clone();
    let (id, body) = (delivery.event_id.clone(), delivery.body.clone());
    let outcome = tokio::task::spawn_blocking(move || {
        agent
            .post(&url)
            .header("Content-Type", content_type)
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", &signature)
            .send(body.as_bytes())
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string().replace(&url, &customs_report::notify::mask(&url)))
    })
    .await
    .unwrap_or_else(|e| Err(format!("the delivery stopped unexpectedly: {e}")));
    let (status, error, delivered) = match outcome {
        Ok(status) if (200..300).contains(&status) => (Some(status), None, true),
        Ok(status) => (Some(status), Some(format!("the receiver answered {status}")), false),
        Err(e) => (None, Some(e), false),
    };
    let now = registry.clock.now();
    let next = (!delivered && delivery.attempts < hook.config.max_attempts).then(|| {
        let factor = 1u32 << (delivery.attempts - 1).clamp(0, 20);
        let pause = hook.retry_after.saturating_mul(factor).min(MAX_BACKOFF);
        crate::clock::format(now + time::Duration::seconds(pause.as_secs() as i64))
    });
    let label = match (delivered, &next) {
        (true, _) => "delivered",
        (false, Some(_)) => "retried",
        (false, None) => "failed",
    };
    registry
        .metrics
        .webhook_deliveries
        .get_or_create(&crate::metrics::OutcomeLabels { outcome: label })
        .inc();
    if label == "failed" {
        tracing::warn!(
            "webhook {}: gave up on event {} after {} attempts: {}",
            hook.config.name,
            delivery.event_id,
            delivery.attempts,
            error.as_deref().unwrap_or_default()
        );
    }
    if let Err(e) = webhooks
        .store
        .record_attempt(
            &delivery.id,
            status,
            error.as_deref(),
            delivered,
            next.as_deref(),
            &crate::clock::format(now),
        )
        .await
    {
        tracing::error!("{e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receivers_need_tls_unless_they_are_on_this_machine() {
        assert!(check_url("https://hooks.slack.com/services/x").is_ok());
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_url("http://localhost/hook").is_ok());
        assert!(check_url("http://[::1]:9000/").is_ok());
        assert!(check_url("http://hooks.example.com/").unwrap_err().contains("loopback"));
        assert!(check_url("http://127.0.0.1.example.com/").is_err());
        assert!(check_url("ftp://x/").unwrap_err().contains("https"));
        assert!(check_url("https:///path").unwrap_err().contains("no host"));
    }
}

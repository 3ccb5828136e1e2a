//! Prometheus metrics: requests by route, method and status; latency by route; bytes in and out; denials by
//! action; failed logins. Scraped at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route family: base, token, catalog, tags, manifest, blob, upload, referrers, health, metrics, other.
    pub route: &'static str,
    /// HTTP method.
    pub method: String,
    /// HTTP status code.
    pub status: u16,
}

/// Labels of a latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route family.
    pub route: &'static str,
}

/// Labels of a denial.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DenialLabels {
    /// What was attempted.
    pub action: String,
}

/// The registry's metrics.
pub struct Metrics {
    registry: Registry,
    /// Requests served.
    pub requests: Family<RequestLabels, Counter>,
    /// Request latency in seconds.
    pub latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Bytes received in blob uploads.
    pub bytes_received: Counter,
    /// Bytes sent in responses with a known length.
    pub bytes_sent: Counter,
    /// Denied attempts.
    pub denials: Family<DenialLabels, Counter>,
    /// Scans finished, by outcome (`scanned`, `failed`).
    pub scans: Family<OutcomeLabels, Counter>,
    /// Seconds a scan took, from claim to stored result.
    pub scan_seconds: Histogram,
    /// Scan jobs queued or running.
    pub scan_queue: prometheus_client::metrics::gauge::Gauge,
    /// Pulls refused because the image fails its repository's protection rule, or is not scanned yet.
    pub blocked_pulls: Counter,
    /// Webhook delivery attempts, by outcome (`delivered`, `retried`, `failed`).
    pub webhook_deliveries: Family<OutcomeLabels, Counter>,
    /// Scheduled vulnerability-database updates, by outcome (`updated`, `unchanged`, `failed`).
    pub db_updates: Family<OutcomeLabels, Counter>,
    /// Audit records that could not be written (each turns the registry to refusing requests until one can).
    pub audit_failures: Counter,
    /// Alerts raised, by kind.
    pub alerts: Family<KindLabels, Counter>,
    /// Requests without valid credentials refused because their address spent its audit budget.
    pub audit_throttled: Counter,
    /// Logins refused by a lockout (without checking the secret).
    pub locked_logins: Counter,
    /// API requests refused by a rate limit.
    pub rate_limited: Counter,
    /// Audit checkpoints signed, by outcome (`written`, `failed`).
    pub audit_checkpoints: Family<OutcomeLabels, Counter>,
    /// Sequence number of the newest checkpointed record.
    pub audit_checkpoint_seq: prometheus_client::metrics::gauge::Gauge,
    /// Sequence number of the newest audit record exported to `[audit] export`.
    pub audit_exported_seq: prometheus_client::metrics::gauge::Gauge,
    /// Audit export rounds that failed.
    pub audit_export_failures: Counter,
    /// Garbage-collection runs, by outcome (`completed`, `failed`).
    pub gc_runs: Family<OutcomeLabels, Counter>,
    /// What garbage collection deleted, by kind (`manifest`, `link`, `blob`, `upload`, `staging`).
    pub gc_deleted: Family<KindLabels, Counter>,
    /// Bytes garbage collection reclaimed.
    pub gc_reclaimed_bytes: Counter,
}

/// Labels of an alert.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The alert kind (`lockout`, `auth_failures`, `pull_spike`, `new_client_ip`, `repository_sweep`), or what
    /// garbage collection deleted.
    pub kind: &'static str,
}

/// Labels of a finished scan.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `scanned` or `failed` (scans); `delivered`, `retried` or `failed` (webhook deliveries); `updated`,
    /// `unchanged` or `failed` (database updates); `written` or `failed` (audit checkpoints); `completed` or
    /// `failed` (garbage collection).
    pub outcome: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("customs_registry");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let bytes_received = Counter::default();
        let bytes_sent = Counter::default();
        let denials = Family::<DenialLabels, Counter>::default();
        registry.register("requests", "HTTP requests served", requests.clone());
        registry.register("request_duration_seconds", "HTTP request latency", latency.clone());
        registry.register("received_bytes", "Blob bytes received", bytes_received.clone());
        registry.register("sent_bytes", "Response bytes sent", bytes_sent.clone());
        registry.register("denials", "Requests denied by authentication or authorization", denials.clone());
        let scans = Family::<OutcomeLabels, Counter>::default();
        let scan_seconds = Histogram::new(exponential_buckets(0.05, 2.0, 12));
        let scan_queue = prometheus_client::metrics::gauge::Gauge::default();
        let blocked_pulls = Counter::default();
        registry.register("scans", "Image scans finished, by outcome", scans.clone());
        registry.register(
            "scan_duration_seconds",
            "Seconds from claiming a scan job to storing its result",
            scan_seconds.clone(),
        );
        registry.register("scan_queue_depth", "Scan jobs queued or running", scan_queue.clone());
        registry.register(
            "blocked_pulls",
            "Manifest pulls refused by a protection rule",
            blocked_pulls.clone(),
        );
        let webhook_deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts, by outcome",
            webhook_deliveries.clone(),
        );
        let db_updates = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "db_updates",
            "Scheduled vulnerability database updates, by outcome",
            db_updates.clone(),
        );
        let audit_failures = Counter::default();
        registry.register(
            "audit_write_failures",
            "Audit records that could not be written; while the last one failed, requests are refused",
            audit_failures.clone(),
        );
        let alerts = Family::<KindLabels, Counter>::default();
        registry.register("alerts", "Alerts raised, by kind", alerts.clone());
        let audit_throttled = Counter::default();
        registry.register(
            "audit_throttled_requests",
            "Requests without valid credentials refused (429) because their address spent its audit budget",
            audit_throttled.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "rate_limited_requests",
            "API requests refused (429) by a rate limit per principal, address or repository pattern",
            rate_limited.clone(),
        );
        let locked_logins = Counter::default();
        registry.register("locked_logins", "Logins refused by a lockout", locked_logins.clone());
        let audit_checkpoints = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "audit_checkpoints",
            "Signed checkpoints of the audit chain head, by outcome",
            audit_checkpoints.clone(),
        );
        let audit_checkpoint_seq = prometheus_client::metrics::gauge::Gauge::default();
        registry.register(
            "audit_checkpoint_record",
            "Sequence number of the newest audit record covered by a signed checkpoint",
            audit_checkpoint_seq.clone(),
        );
        let audit_exported_seq = prometheus_client::metrics::gauge::Gauge::default();
        registry.register(
            "audit_exported_record",
            "Sequence number of the newest audit record exported as a segment to [audit] export",
            audit_exported_seq.clone(),
        );
        let audit_export_failures = Counter::default();
        registry.register(
            "audit_export_failures",
            "Rounds of the audit export that failed (tried again at the next interval)",
            audit_export_failures.clone(),
        );
        let gc_runs = Family::<OutcomeLabels, Counter>::default();
        registry.register("gc_runs", "Garbage-collection runs, by outcome", gc_runs.clone());
        let gc_deleted = Family::<KindLabels, Counter>::default();
        registry.register("gc_deleted", "What garbage collection deleted, by kind", gc_deleted.clone());
        let gc_reclaimed_bytes = Counter::default();
        registry.register(
            "gc_reclaimed_bytes",
            "Bytes reclaimed by garbage collection",
            gc_reclaimed_bytes.clone(),
        );
        Metrics {
            gc_runs,
            gc_deleted,
            gc_reclaimed_bytes,
            audit_checkpoints,
            audit_checkpoint_seq,
            audit_exported_seq,
            audit_export_failures,
            alerts,
            audit_throttled,
            locked_logins,
            rate_limited,
            audit_failures,
            db_updates,
            webhook_deliveries,
            scans,
            scan_seconds,
            scan_queue,
            blocked_pulls,
            registry,
            requests,
            latency,
            bytes_received,
            bytes_sent,
            denials,
        }
    }
}

impl Metrics {
    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}

/// The route family of a request path, for metric labels.
pub fn route_of(path: &str) -> &'static str {
    if path == "/v2/" || path == "/v2" {
        "base"
    } else if path == "/token" {
        "token"
    } else if path == "/metrics" {
        "metrics"
    } else if path.starts_with("/api/v1/") {
        "api"
    } else if path == "/healthz" || path == "/readyz" {
        "health"
    } else if !path.starts_with("/v2/") {
        "other"
    } else if path == "/v2/_catalog" {
        "catalog"
    } else if path.ends_with("/tags/list") {
        "tags"
    } else if path.contains("/manifests/") {
        "manifest"
    } else if path.contains("/blobs/uploads") {
        "upload"
    } else if path.contains("/blobs/") {
        "blob"
    } else if path.contains("/referrers/") {
        "referrers"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every series the shipped alert rules use is one the registry exports (a renamed metric would leave an
    /// alert that can never fire). `promtool check rules` in `.ci/run` checks their syntax.
    #[test]
    fn the_shipped_alert_rules_use_exported_metrics() {
        let rules = include_str!("../../../examples/monitoring/alerts.yml");
        let metrics = Metrics::default();
        // Families are written once they have a series: give each labelled one a sample.
        metrics.alerts.get_or_create(&KindLabels { kind: "lockout" }).inc();
        metrics.denials.get_or_create(&DenialLabels { action: "pull".into() }).inc();
        for family in [
            &metrics.scans,
            &metrics.webhook_deliveries,
            &metrics.db_updates,
            &metrics.audit_checkpoints,
            &metrics.gc_runs,
        ] {
            family.get_or_create(&OutcomeLabels { outcome: "failed" }).inc();
        }
        let text = metrics.render();
        let exported: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        let mut used = 0;
        for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if let Some(name) = word.strip_prefix("customs_registry_") {
                let family = format!("customs_registry_{}", name.strip_suffix("_total").unwrap_or(name));
                assert!(exported.contains(&family.as_str()), "{word} is not exported: {exported:?}");
                used += 1;
            }
        }
        assert!(used >= 10, "{used}");
    }
}

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
        Metrics {
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

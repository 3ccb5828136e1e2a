//! Anomaly detection over the request stream, as the policy asks ("sudden spikes in pull requests or
//! unauthorized access attempts"). Counting is in memory per registry process, in buckets of `[anomaly] bucket`:
//!
//! - **pull spikes**: manifest pulls per principal and per repository in the current bucket against an EWMA of
//!   earlier buckets: alert when the count passes both `pull_spike_floor` (so a quiet repository's first pulls
//!   do not alert) and `pull_spike_factor` × the baseline;
//! - **bursts of refusals**: 401/403 answers per client address and per claimed principal in one bucket past
//!   `auth_failure_burst`;
//! - **repository sweeps**: a principal pulling more than `sweep_repositories` repositories it had not pulled
//!   since the process started, within one bucket.
//!
//! (A service principal logging in from a new address is detected at login, [`crate::lockout`].) The detector is
//! pure: it takes the time and returns [`Alert`]s, which the server raises.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use crate::alerts::{Alert, AlertKind};

/// Keys tracked per table; past it the table starts afresh (an attacker's random names cannot grow memory).
const MAX_KEYS: usize = 20_000;
/// Repositories remembered per principal for sweep detection.
const MAX_SEEN_REPOSITORIES: usize = 5_000;

/// `[anomaly]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyConfig {
    /// The counting bucket (`1m`).
    #[serde(default = "default_bucket")]
    pub bucket: String,
    /// A bucket's pulls alert past this many times the baseline.
    #[serde(default = "default_factor")]
    pub pull_spike_factor: f64,
    /// ... and past this many pulls in the bucket.
    #[serde(default = "default_floor")]
    pub pull_spike_floor: u64,
    /// Weight of the newest bucket in the baseline (EWMA), between 0 and 1: 0.1 remembers about 20 buckets.
    #[serde(default = "default_alpha")]
    pub baseline_weight: f64,
    /// 401/403 answers for one address or claimed principal in one bucket that alert.
    #[serde(default = "default_burst")]
    pub auth_failure_burst: u64,
    /// Repositories pulled for the first time by one principal in one bucket that alert.
    #[serde(default = "default_sweep")]
    pub sweep_repositories: usize,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            bucket: default_bucket(),
            pull_spike_factor: default_factor(),
            pull_spike_floor: default_floor(),
            baseline_weight: default_alpha(),
            auth_failure_burst: default_burst(),
            sweep_repositories: default_sweep(),
        }
    }
}
fn default_bucket() -> String {
    "1m".into()
}
fn default_factor() -> f64 {
    10.0
}
fn default_floor() -> u64 {
    100
}
fn default_alpha() -> f64 {
    0.1
}
fn default_burst() -> u64 {
    20
}
fn default_sweep() -> usize {
    20
}

/// A count per bucket with an EWMA of the closed buckets.
#[derive(Default)]
struct Rate {
    bucket: u64,
    count: u64,
    baseline: f64,
    alerted: bool,
}

impl Rate {
    /// Counts one event in `bucket`; the count so far in it and the baseline before it. A closed bucket enters
    /// the baseline at most at `threshold(baseline)`, so a sustained spike does not become the norm at once.
    fn add(&mut self, bucket: u64, weight: f64, threshold: impl Fn(f64) -> f64) -> (u64, f64) {
        if bucket > self.bucket {
            let closed = (self.count as f64).min(threshold(self.baseline));
            self.baseline = weight * closed + (1.0 - weight) * self.baseline;
            // Empty buckets in between pull the baseline down.
            let empty = (bucket - self.bucket - 1).min(1000) as i32;
            self.baseline *= (1.0 - weight).powi(empty);
            self.bucket = bucket;
            self.count = 0;
            self.alerted = false;
        }
        self.count += 1;
        (self.count, self.baseline)
    }
}

/// The detector's state.
pub struct Detector {
    config: AnomalyConfig,
    bucket: Duration,
    epoch: Instant,
    pulls: Mutex<HashMap<String, Rate>>,
    refusals: Mutex<HashMap<String, Rate>>,
    seen: Mutex<HashMap<String, (HashSet<String>, Rate)>>,
}

impl Detector {
    /// Checks `config`; an error names the setting.
    pub fn new(config: &AnomalyConfig) -> Result<Detector, String> {
        let bucket = crate::protect::parse_age(&config.bucket).map_err(|e| format!("[anomaly] bucket {e}"))?;
        if !bucket.is_positive() {
            return Err("[anomaly] bucket must be positive".into());
        }
        if !(config.baseline_weight > 0.0 && config.baseline_weight <= 1.0) {
            return Err("[anomaly] baseline_weight is between 0 (excluded) and 1".into());
        }
        if config.pull_spike_factor < 1.0 {
            return Err("[anomaly] pull_spike_factor is at least 1".into());
        }
        Ok(Detector {
            config: config.clone(),
            bucket: Duration::from_secs(bucket.whole_seconds() as u64),
            epoch: Instant::now(),
            pulls: Mutex::new(HashMap::new()),
            refusals: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
        })
    }

    fn bucket_of(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.epoch).as_secs_f64() / self.bucket.as_secs_f64()) as u64
    }

    /// A manifest pulled by `principal` from `repository`.
    pub fn pull(&self, principal: &str, repository: &str, now: Instant) -> Vec<Alert> {
        let bucket = self.bucket_of(now);
        let mut alerts = Vec::new();
        {
            let mut pulls = self.pulls.lock().unwrap_or_else(|e| e.into_inner());
            if pulls.len() >= MAX_KEYS {
                pulls.clear();
            }
            for key in [format!("principal:{principal}"), format!("repository:{repository}")] {
                let rate = pulls.entry(key.clone()).or_default();
                let limit = |baseline: f64| (self.config.pull_spike_factor * baseline).max(self.config.pull_spike_floor as f64);
                let (count, baseline) = rate.add(bucket, self.config.baseline_weight, limit);
                let threshold = limit(baseline);
                if !rate.alerted && count as f64 > threshold {
                    rate.alerted = true;
                    alerts.push(Alert {
                        kind: AlertKind::PullSpike,
                        subject: key.clone(),
                        principal: principal.to_string(),
                        client_ip: String::new(),
                        repository: if key.starts_with("repository:") { repository.to_string() } else { String::new() },
                        summary: format!(
                            "{count} pulls for {key} within {} s, against a baseline of {baseline:.1} per {} s",
                            self.bucket.as_secs(),
                            self.bucket.as_secs()
                        ),
                        data: json!({"count": count, "baseline": baseline, "threshold": threshold, "bucket_seconds": self.bucket.as_secs()}),
                    });
                }
            }
        }
        if principal != "anonymous" {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.len() >= MAX_KEYS {
                seen.clear();
            }
            let (repositories, first_pulls) = seen.entry(principal.to_string()).or_default();
            if repositories.len() < MAX_SEEN_REPOSITORIES && repositories.insert(repository.to_string()) {
                let (count, _) = first_pulls.add(bucket, self.config.baseline_weight, |_| f64::MAX);
                if !first_pulls.alerted && count as usize > self.config.sweep_repositories {
                    first_pulls.alerted = true;
                    alerts.push(Alert {
                        kind: AlertKind::RepositorySweep,
                        subject: format!("principal:{principal}"),
                        principal: principal.to_string(),
                        client_ip: String::new(),
                        repository: String::new(),
                        summary: format!(
                            "{principal} pulled {count} repositories it had not pulled before within {} s (latest: {repository})",
                            self.bucket.as_secs()
                        ),
                        data: json!({"count": count, "latest": repository}),
                    });
                }
            }
        }
        alerts
    }

    /// A request answered 401 or 403, from `ip`, claiming `principal` (empty when it claimed none).
    pub fn refused(&self, ip: &str, principal: &str, now: Instant) -> Vec<Alert> {
        let bucket = self.bucket_of(now);
        let mut refusals = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        if refusals.len() >= MAX_KEYS {
            refusals.clear();
        }
        let mut keys = vec![format!("ip:{ip}")];
        if !principal.is_empty() && principal != "anonymous" {
            keys.push(format!("principal:{principal}"));
        }
        let mut alerts = Vec::new();
        for key in keys {
            let rate = refusals.entry(key.clone()).or_default();
            let (count, _) = rate.add(bucket, self.config.baseline_weight, |_| f64::MAX);
            if !rate.alerted && count > self.config.auth_failure_burst {
                rate.alerted = true;
                alerts.push(Alert {
                    kind: AlertKind::AuthFailures,
                    subject: key.clone(),
                    principal: principal.to_string(),
                    client_ip: ip.to_string(),
                    repository: String::new(),
                    summary: format!("{count} refused requests (401/403) for {key} within {} s", self.bucket.as_secs()),
                    data: json!({"count": count, "bucket_seconds": self.bucket.as_secs()}),
                });
            }
        }
        alerts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detector() -> Detector {
        Detector::new(&AnomalyConfig {
            bucket: "1s".into(),
            pull_spike_floor: 20,
            sweep_repositories: 5,
            auth_failure_burst: 10,
            ..AnomalyConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn a_steady_rate_is_quiet_and_twenty_times_it_alerts_once() {
        let d = detector();
        let t0 = d.epoch;
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        for second in 0..60 {
            for i in 0..5 {
                assert!(d.pull("ci", "team/app", at(second * 1000 + i * 100)).is_empty(), "second {second}");
            }
        }
        let mut alerts = Vec::new();
        for i in 0..100 {
            alerts.extend(d.pull("ci", "team/app", at(60_000 + i * 5)));
        }
        let kinds: Vec<_> = alerts.iter().map(|a| (a.kind, a.subject.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (AlertKind::PullSpike, "principal:ci"),
                (AlertKind::PullSpike, "repository:team/app")
            ]
        );
        assert!(alerts[0].data["baseline"].as_f64().unwrap() > 4.0);
    }

    #[test]
    fn a_quiet_repository_s_first_pulls_stay_under_the_floor() {
        let d = detector();
        for i in 0..20 {
            assert!(d.pull("ci", "team/new", d.epoch + Duration::from_millis(i)).is_empty());
        }
    }

    #[test]
    fn sweeps_and_refusal_bursts_alert() {
        let d = detector();
        let now = d.epoch;
        let sweep: Vec<_> = (0..6).flat_map(|i| d.pull("ci", &format!("team/r{i}"), now)).collect();
        assert_eq!(sweep.len(), 1);
        assert_eq!(sweep[0].kind, AlertKind::RepositorySweep);
        let burst: Vec<_> = (0..11).flat_map(|_| d.refused("192.0.2.7", "sp1", now)).collect();
        assert_eq!(
            burst.iter().map(|a| a.subject.as_str()).collect::<Vec<_>>(),
            ["ip:192.0.2.7", "principal:sp1"]
        );
        assert!(
            d.refused("192.0.2.7", "sp1", now + Duration::from_secs(1)).is_empty(),
            "a new bucket counts afresh"
        );
    }
}

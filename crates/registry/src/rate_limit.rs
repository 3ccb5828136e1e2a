//! Request rate limits: token buckets per principal and per client address, with tighter (or looser) limits
//! for repositories matching a pattern. A request over a limit is answered `429 TOOMANYREQUESTS` with
//! `Retry-After` before it is served.
//!
//! The first refusal of a run writes one audit record; the rest only count in `rate_limited_requests`, and the
//! next allowed request's record says how many were refused meanwhile, so a flood cannot grow the audit log
//! (the same rule as the unauthenticated audit budget).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use globset::GlobMatcher;
use serde::Deserialize;

/// Buckets tracked at once; past it full (idle) buckets are dropped first, then all.
const MAX_BUCKETS: usize = 50_000;

/// One limit: `rate` requests per second on average, `burst` at once. A rate of 0 turns it off.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Sustained requests per second.
    pub rate: f64,
    /// Requests allowed at once after a quiet period.
    pub burst: f64,
}

/// Limits for repositories matching `repositories` (`[[rate_limits.repository]]`), checked besides the
/// global ones.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryLimits {
    /// Exact names or globs.
    pub repositories: Vec<String>,
    /// Per principal on these repositories.
    #[serde(default)]
    pub principal: Option<Limit>,
    /// Per client address on these repositories.
    #[serde(default)]
    pub ip: Option<Limit>,
}

/// `[rate_limits]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Per authenticated principal, every API request.
    #[serde(default = "default_principal")]
    pub principal: Limit,
    /// Per client address, every API request.
    #[serde(default = "default_ip")]
    pub ip: Limit,
    /// Per repository pattern; the first matching entry applies.
    #[serde(default)]
    pub repository: Vec<RepositoryLimits>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            principal: default_principal(),
            ip: default_ip(),
            repository: Vec::new(),
        }
    }
}

// A push of a ten-layer image is about 25 requests; these leave room for parallel pipelines behind one address.
fn default_principal() -> Limit {
    Limit { rate: 100.0, burst: 500.0 }
}
fn default_ip() -> Limit {
    Limit {
        rate: 200.0,
        burst: 1000.0,
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
    refused: u64,
}

/// What [`RateLimiter::admit`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Serve it; `refused_before` requests of this caller were refused since its last allowed one.
    Allowed {
        /// Refused meanwhile.
        refused_before: u64,
    },
    /// Refuse it with 429.
    Refused {
        /// Which limit: `principal`, `ip`, or either with ` on PATTERN`.
        limit: String,
        /// Seconds until a request would be allowed.
        retry_after: u64,
        /// The first refusal of a run (write one record for the run).
        first: bool,
    },
}

/// The token buckets of one registry process.
pub struct RateLimiter {
    config: RateLimitConfig,
    matchers: Vec<Vec<GlobMatcher>>,
    /// Per repository rule, how a refusal names its two limits.
    labels: Vec<(String, String)>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Limits from `[rate_limits]`; an error names the bad pattern or value.
    pub fn new(config: RateLimitConfig) -> Result<RateLimiter, String> {
        let mut all = vec![("principal".to_string(), config.principal), ("ip".to_string(), config.ip)];
        for rule in &config.repository {
            all.extend(rule.principal.map(|l| ("repository principal".to_string(), l)));
            all.extend(rule.ip.map(|l| ("repository ip".to_string(), l)));
        }
        for (what, limit) in all {
            if !(limit.rate >= 0.0 && limit.rate.is_finite() && limit.burst >= 1.0 && limit.burst.is_finite()) {
                return Err(format!("[rate_limits] {what}: rate must be 0 (off) or more and burst at least 1"));
            }
        }
        let matchers = config
            .repository
            .iter()
            .map(|rule| crate::access::repository_matchers(&rule.repositories).map_err(|e| format!("[rate_limits] {e}")))
            .collect::<Result<_, _>>()?;
        let labels = config
            .repository
            .iter()
            .map(|rule| {
                let pattern = rule.repositories.join(",");
                (format!("principal on {pattern}"), format!("ip on {pattern}"))
            })
            .collect();
        Ok(RateLimiter {
            config,
            matchers,
            labels,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one request of `principal` (`None`: anonymous) from `ip` on `repository` (empty: none) at `now`.
    pub fn admit(&self, principal: Option<&str>, ip: IpAddr, repository: &str, now: Instant) -> Decision {
        let mut checks: Vec<(String, String, Limit)> = Vec::with_capacity(4);
        if let Some(name) = principal {
            checks.push((format!("p:{name}"), "principal".into(), self.config.principal));
        }
        checks.push((format!("i:{ip}"), "ip".into(), self.config.ip));
        if !repository.is_empty()
            && let Some(index) = self.matchers.iter().position(|m| m.iter().any(|g| g.is_match(repository)))
        {
            let rule = &self.config.repository[index];
            let (principal_label, ip_label) = &self.labels[index];
            if let (Some(name), Some(limit)) = (principal, rule.principal) {
                checks.push((format!("r{index}:p:{name}"), principal_label.clone(), limit));
            }
            if let Some(limit) = rule.ip {
                checks.push((format!("r{index}:i:{ip}"), ip_label.clone(), limit));
            }
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, b| b.refused > 0 || now.duration_since(b.at).as_secs() < 60);
            if buckets.len() >= MAX_BUCKETS {
                buckets.clear();
            }
        }
        // The first key names the caller for the refusal count (its principal, else its address).
        let caller = checks[0].0.clone();
        for (key, name, limit) in &checks {
            if limit.rate == 0.0 {
                continue;
            }
            let bucket = buckets.entry(key.clone()).or_insert(Bucket {
                tokens: limit.burst,
                at: now,
                refused: 0,
            });
            let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * limit.rate).min(limit.burst);
            bucket.at = now;
            if bucket.tokens < 1.0 {
                let retry_after = ((1.0 - bucket.tokens) / limit.rate).ceil().max(1.0) as u64;
                let counted = buckets.entry(caller.clone()).or_insert(Bucket {
                    tokens: 0.0,
                    at: now,
                    refused: 0,
                });
                counted.refused += 1;
                return Decision::Refused {
                    limit: name.clone(),
                    retry_after,
                    first: counted.refused == 1,
                };
            }
        }
        for (key, _, limit) in &checks {
            if limit.rate > 0.0
                && let Some(bucket) = buckets.get_mut(key)
            {
                bucket.tokens -= 1.0;
            }
        }
        let refused_before = buckets.get_mut(&caller).map_or(0, |b| std::mem::take(&mut b.refused));
        Decision::Allowed { refused_before }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limiter(toml_text: &str) -> RateLimiter {
        RateLimiter::new(toml::from_str(toml_text).unwrap()).unwrap()
    }

    #[test]
    fn a_burst_then_the_rate_and_each_caller_its_own_bucket() {
        let l = limiter("principal = { rate = 2, burst = 3 }\nip = { rate = 0, burst = 1 }");
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.admit(Some("ci"), ip, "app", t), Decision::Allowed { refused_before: 0 });
        }
        assert_eq!(
            l.admit(Some("ci"), ip, "app", t),
            Decision::Refused {
                limit: "principal".into(),
                retry_after: 1,
                first: true
            }
        );
        assert!(matches!(l.admit(Some("ci"), ip, "app", t), Decision::Refused { first: false, .. }));
        // Another principal behind the same address is not held back.
        assert_eq!(l.admit(Some("other"), ip, "app", t), Decision::Allowed { refused_before: 0 });
        // Half a second refills one request at 2/s; the allowed one reports the two refused.
        let later = t + Duration::from_millis(500);
        assert_eq!(l.admit(Some("ci"), ip, "app", later), Decision::Allowed { refused_before: 2 });
        assert!(matches!(
            l.admit(Some("ci"), ip, "app", later),
            Decision::Refused { first: true, .. }
        ));
    }

    #[test]
    fn repository_patterns_add_their_own_limits() {
        let l = limiter(
            "principal = { rate = 100, burst = 100 }\nip = { rate = 100, burst = 100 }\n\
             [[repository]]\nrepositories = [\"mirror/**\"]\nprincipal = { rate = 1, burst = 2 }",
        );
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t = Instant::now();
        assert!(matches!(l.admit(Some("ci"), ip, "mirror/debian", t), Decision::Allowed { .. }));
        assert!(matches!(l.admit(Some("ci"), ip, "mirror/alpine", t), Decision::Allowed { .. }));
        match l.admit(Some("ci"), ip, "mirror/debian", t) {
            Decision::Refused { limit, .. } => assert_eq!(limit, "principal on mirror/**"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(l.admit(Some("ci"), ip, "app/one", t), Decision::Allowed { .. }));
        // Anonymous callers are limited by address.
        let anon = limiter("ip = { rate = 1, burst = 1 }");
        assert!(matches!(anon.admit(None, ip, "", t), Decision::Allowed { .. }));
        assert!(matches!(anon.admit(None, ip, "", t), Decision::Refused { limit, .. } if limit == "ip"));
    }

    #[test]
    fn bad_limits_are_named() {
        for bad in ["principal = { rate = -1, burst = 5 }", "ip = { rate = 1, burst = 0 }"] {
            let err = RateLimiter::new(toml::from_str(bad).unwrap()).err().unwrap();
            assert!(err.starts_with("[rate_limits]"), "{err}");
        }
        let err = RateLimiter::new(toml::from_str("[[repository]]\nrepositories = [\"a/[\"]").unwrap())
            .err()
            .unwrap();
        assert!(err.contains("a/["), "{err}");
    }

    #[test]
    fn a_spray_of_addresses_keeps_memory_bounded() {
        let l = limiter("ip = { rate = 1, burst = 1 }");
        let t = Instant::now();
        for i in 0..(MAX_BUCKETS as u32 + 1000) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(i));
            l.admit(None, ip, "", t);
        }
        assert!(l.buckets.lock().unwrap().len() <= MAX_BUCKETS);
    }
}

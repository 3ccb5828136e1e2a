//! How much a client without valid credentials may make the audit log grow: a byte budget per address (a token
//! bucket that refills at `[audit] unauthenticated_bytes_per_minute`). Every request is still audited; once an
//! address has spent its budget, its unauthenticated requests are refused (429 with `Retry-After`) before they
//! are served, and one record says so. The next record it is allowed says how many were refused meanwhile.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked at once; past it idle (full) buckets are dropped first, then all.
const MAX_ADDRESSES: usize = 20_000;

struct Bucket {
    /// Bytes that may still be written (negative after a large record: the debt is paid before the next).
    bytes: f64,
    at: Instant,
    /// Requests refused since the last one allowed.
    refused: u64,
}

/// What [`AuditBudget::admit`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Serve it; `refused_before` requests from the address were refused since its last allowed one.
    Allowed {
        /// Refused meanwhile (to say in the allowed request's record).
        refused_before: u64,
    },
    /// Refuse it with 429; `first` when this starts a run of refusals (write one record for the run).
    Refused {
        /// Seconds until the budget allows a record again.
        retry_after: u64,
        /// The first refusal since the address was last allowed.
        first: bool,
    },
}

/// The byte budgets of addresses.
pub struct AuditBudget {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl AuditBudget {
    /// A budget of `per_minute` bytes per address, with a burst of the same size; 0 turns it off.
    pub fn new(per_minute: u64) -> AuditBudget {
        AuditBudget {
            per_second: per_minute as f64 / 60.0,
            burst: per_minute as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.bytes = (bucket.bytes + elapsed * self.per_second).min(self.burst);
        bucket.at = now;
    }

    /// Whether an unauthenticated request from `ip` may be served and audited now.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Admission {
        if self.burst == 0.0 {
            return Admission::Allowed { refused_before: 0 };
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_ADDRESSES && !buckets.contains_key(&ip) {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, b| b.bytes + now.duration_since(b.at).as_secs_f64() * per_second < burst);
            if buckets.len() >= MAX_ADDRESSES {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            bytes: self.burst,
            at: now,
            refused: 0,
        });
        self.refill(bucket, now);
        if bucket.bytes > 0.0 {
            return Admission::Allowed {
                refused_before: std::mem::take(&mut bucket.refused),
            };
        }
        bucket.refused += 1;
        let wait = (1.0 - bucket.bytes) / self.per_second;
        Admission::Refused {
            retry_after: Duration::from_secs_f64(wait.clamp(1.0, 3600.0)).as_secs(),
            first: bucket.refused == 1,
        }
    }

    /// Charges `bytes` written for an unauthenticated request from `ip`.
    pub fn charge(&self, ip: IpAddr, bytes: usize, now: Instant) {
        if self.burst == 0.0 {
            return;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bucket) = buckets.get_mut(&ip) {
            self.refill(bucket, now);
            bucket.bytes -= bytes as f64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_that_spent_its_budget_waits_for_it_to_refill() {
        let budget = AuditBudget::new(6000);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..6 {
            assert_eq!(budget.admit(ip, t0), Admission::Allowed { refused_before: 0 });
            budget.charge(ip, 1000, t0);
        }
        assert_eq!(
            budget.admit(ip, t0),
            Admission::Refused {
                retry_after: 1,
                first: true
            }
        );
        assert!(matches!(budget.admit(ip, t0), Admission::Refused { first: false, .. }));
        assert_eq!(budget.admit(other, t0), Admission::Allowed { refused_before: 0 }, "per address");
        // 100 bytes per second refill: after 2 s the address may write again, and learns of the 2 refusals.
        assert_eq!(
            budget.admit(ip, t0 + Duration::from_secs(2)),
            Admission::Allowed { refused_before: 2 }
        );
    }

    #[test]
    fn a_large_record_is_a_debt_and_zero_turns_it_off() {
        let budget = AuditBudget::new(600);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        assert!(matches!(budget.admit(ip, t0), Admission::Allowed { .. }));
        budget.charge(ip, 1800, t0);
        match budget.admit(ip, t0 + Duration::from_secs(60)) {
            Admission::Refused { retry_after, .. } => assert!((59..=61).contains(&retry_after), "{retry_after}"),
            other => panic!("{other:?}"),
        }
        let off = AuditBudget::new(0);
        for _ in 0..1000 {
            off.charge(ip, 1 << 20, t0);
            assert_eq!(off.admit(ip, t0), Admission::Allowed { refused_before: 0 });
        }
    }
}

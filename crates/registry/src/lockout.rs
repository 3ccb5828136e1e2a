//! Lockout after repeated failed logins, per claimed principal and per client IP.
//!
//! Failures are counted in memory over a sliding window (`[lockout] window`); the lock itself is a row in the
//! metadata database (`lockouts`), so `principal list` shows it, `principal unlock` lifts it from another
//! process and replicas on one database share it. A locked login is refused before any password hash is
//! computed (429 with `Retry-After`), and attempts while locked do not extend the lock.
//!
//! How an attacker is kept from locking a pipeline out: a principal lock applies only to addresses that have
//! not logged in as that principal within `known_ip_days`, nor are in `exempt_networks` (the CI runners'
//! network). The pipeline keeps logging in from where it always does while the attacker's new addresses are
//! refused; the attacker's own address is locked on its own after `ip_failures`. Unknown names are counted and
//! locked like existing ones, so a lockout does not tell which names exist.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use ipnet::IpNet;
use serde::Deserialize;
use sqlx::Row;
use time::OffsetDateTime;

use crate::meta::{MetaError, MetaStore, ctx};

/// Failure counters kept at once; past it the oldest are dropped (a spray of random names cannot grow memory).
const MAX_COUNTERS: usize = 50_000;

/// `[lockout]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockoutConfig {
    /// Failed logins for one principal name within `window` that lock it (for addresses it is not known at).
    #[serde(default = "default_principal_failures")]
    pub principal_failures: u32,
    /// Failed logins from one client IP within `window` that lock that address (for every principal).
    #[serde(default = "default_ip_failures")]
    pub ip_failures: u32,
    /// The counting window (`10m`).
    #[serde(default = "default_window")]
    pub window: String,
    /// How long a lock lasts (`15m`).
    #[serde(default = "default_cooldown")]
    pub cooldown: String,
    /// A principal's successful logins from an address make it known there for this many days.
    #[serde(default = "default_known_ip_days")]
    pub known_ip_days: i64,
    /// Networks (CIDR) a principal lock never applies to, such as the CI runners' network.
    #[serde(default)]
    pub exempt_networks: Vec<String>,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        LockoutConfig {
            principal_failures: default_principal_failures(),
            ip_failures: default_ip_failures(),
            window: default_window(),
            cooldown: default_cooldown(),
            known_ip_days: default_known_ip_days(),
            exempt_networks: Vec::new(),
        }
    }
}
fn default_principal_failures() -> u32 {
    10
}
fn default_ip_failures() -> u32 {
    30
}
fn default_window() -> String {
    "10m".into()
}
fn default_cooldown() -> String {
    "15m".into()
}
fn default_known_ip_days() -> i64 {
    30
}

/// What a lock is on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LockSubject {
    /// A principal name (existing or not), for addresses it is not known at.
    Principal(String),
    /// A client address, for every principal.
    Ip(IpAddr),
}

impl LockSubject {
    /// The key stored in `lockouts.subject`: `principal:NAME` or `ip:ADDR`.
    pub fn key(&self) -> String {
        match self {
            LockSubject::Principal(name) => format!("principal:{name}"),
            LockSubject::Ip(ip) => format!("ip:{ip}"),
        }
    }
}

/// A lock in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    /// What is locked.
    pub subject: LockSubject,
    /// Until when.
    pub until: OffsetDateTime,
    /// Failures that tripped it.
    pub failures: u32,
}

/// A lock as stored, for listings.
#[derive(Clone, Debug)]
pub struct LockRow {
    /// `principal:NAME` or `ip:ADDR`.
    pub subject: String,
    /// RFC 3339.
    pub locked_at: String,
    /// RFC 3339.
    pub locked_until: String,
    /// Failures that tripped it.
    pub failures: i64,
}

/// Failures of one subject within the window.
#[derive(Default)]
struct Counter {
    times: std::collections::VecDeque<OffsetDateTime>,
}

/// The lockout state of one registry process.
pub struct Lockout {
    meta: MetaStore,
    principal_failures: u32,
    ip_failures: u32,
    window: time::Duration,
    cooldown: time::Duration,
    known_for: time::Duration,
    exempt: Vec<IpNet>,
    counters: Mutex<HashMap<LockSubject, Counter>>,
}

/// The `lockouts` and `principal_ips` tables (created with the rest of the schema).
pub(crate) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS lockouts (subject TEXT PRIMARY KEY, locked_at TEXT NOT NULL,
        locked_until TEXT NOT NULL, failures BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS principal_ips (principal TEXT NOT NULL, ip TEXT NOT NULL, last_login TEXT NOT NULL,
        PRIMARY KEY (principal, ip))",
];

impl Lockout {
    /// Checks `config`; an error names the setting.
    pub fn new(config: &LockoutConfig, meta: MetaStore) -> Result<Lockout, String> {
        let span = |name: &str, value: &str| {
            crate::protect::parse_age(value)
                .map_err(|e| format!("[lockout] {name} {e}"))
                .and_then(|d| {
                    if d.is_positive() {
                        Ok(d)
                    } else {
                        Err(format!("[lockout] {name}: must be positive"))
                    }
                })
        };
        if config.principal_failures == 0 || config.ip_failures == 0 {
            return Err("[lockout] principal_failures and ip_failures must be at least 1".into());
        }
        let exempt = config
            .exempt_networks
            .iter()
            .map(|n| {
                n.parse::<IpNet>()
                    .or_else(|_| n.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("[lockout] exempt_networks: `{n}` is not a network (10.0.0.0/8) or an address"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Lockout {
            meta,
            principal_failures: config.principal_failures,
            ip_failures: config.ip_failures,
            window: span("window", &config.window)?,
            cooldown: span("cooldown", &config.cooldown)?,
            known_for: time::Duration::days(config.known_ip_days.max(0)),
            exempt,
            counters: Mutex::new(HashMap::new()),
        })
    }

    /// The lock that refuses a login of `name` from `ip` now, if any: the address's own lock, or the
    /// principal's when `ip` is neither exempt nor an address it logged in from recently.
    pub async fn refusing(&self, name: &str, ip: IpAddr, now: OffsetDateTime) -> Result<Option<Lock>, MetaError> {
        let principal = LockSubject::Principal(name.to_string());
        let address = LockSubject::Ip(ip);
        let rows = sqlx::query("SELECT subject, locked_until, failures FROM lockouts WHERE subject IN ($1, $2)")
            .bind(principal.key())
            .bind(address.key())
            .fetch_all(self.meta.pool())
            .await
            .map_err(ctx("reading lockouts"))?;
        let mut principal_lock = None;
        for row in rows {
            let until = parse_time(&row.get::<String, _>("locked_until"));
            if until <= now {
                continue;
            }
            let failures = row.get::<i64, _>("failures") as u32;
            if row.get::<String, _>("subject") == address.key() {
                return Ok(Some(Lock {
                    subject: address,
                    until,
                    failures,
                }));
            }
            principal_lock = Some(Lock {
                subject: principal.clone(),
                until,
                failures,
            });
        }
        match principal_lock {
            Some(lock) if !self.trusted(name, ip, now).await? => Ok(Some(lock)),
            _ => Ok(None),
        }
    }

    /// Whether `ip` is exempt or `name` logged in from it within `known_ip_days`.
    async fn trusted(&self, name: &str, ip: IpAddr, now: OffsetDateTime) -> Result<bool, MetaError> {
        if self.exempt.iter().any(|n| n.contains(&ip)) {
            return Ok(true);
        }
        let since = crate::clock::format(now - self.known_for);
        let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM principal_ips WHERE principal = $1 AND ip = $2 AND last_login >= $3")
            .bind(name)
            .bind(ip.to_string())
            .bind(since)
            .fetch_optional(self.meta.pool())
            .await
            .map_err(ctx("reading known addresses"))?;
        Ok(known.is_some())
    }

    /// Counts a failed login of `name` from `ip`; returns the locks it tripped (stored before returning).
    pub async fn failed(&self, name: &str, ip: IpAddr, now: OffsetDateTime) -> Result<Vec<Lock>, MetaError> {
        let mut tripped = Vec::new();
        {
            let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
            if counters.len() >= MAX_COUNTERS {
                let horizon = now - self.window;
                counters.retain(|_, c| c.times.back().is_some_and(|t| *t > horizon));
                if counters.len() >= MAX_COUNTERS {
                    counters.clear();
                }
            }
            let mut subjects = vec![(LockSubject::Ip(ip), self.ip_failures)];
            if !name.is_empty() {
                subjects.push((LockSubject::Principal(name.to_string()), self.principal_failures));
            }
            for (subject, limit) in subjects {
                let counter = counters.entry(subject.clone()).or_default();
                while counter.times.front().is_some_and(|t| *t <= now - self.window) {
                    counter.times.pop_front();
                }
                counter.times.push_back(now);
                if counter.times.len() as u32 >= limit {
                    // The lock carries on in the database; a fresh count starts after it ends or is lifted.
                    let failures = counter.times.len() as u32;
                    counter.times.clear();
                    tripped.push(Lock {
                        subject,
                        until: now + self.cooldown,
                        failures,
                    });
                }
            }
        }
        for lock in &tripped {
            sqlx::query("DELETE FROM lockouts WHERE locked_until < $1")
                .bind(crate::clock::format(now))
                .execute(self.meta.pool())
                .await
                .map_err(ctx("clearing expired lockouts"))?;
            sqlx::query(
                "INSERT INTO lockouts (subject, locked_at, locked_until, failures) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (subject) DO UPDATE SET locked_at = excluded.locked_at,
                 locked_until = excluded.locked_until, failures = excluded.failures",
            )
            .bind(lock.subject.key())
            .bind(crate::clock::format(now))
            .bind(crate::clock::format(lock.until))
            .bind(i64::from(lock.failures))
            .execute(self.meta.pool())
            .await
            .map_err(ctx("storing a lockout"))?;
        }
        Ok(tripped)
    }

    /// Notes a successful login of `name` from `ip`; `Some(known_elsewhere)` when the address is new for it
    /// (`true` when it had logged in from other addresses before: a service principal used from somewhere new).
    pub async fn succeeded(&self, name: &str, ip: IpAddr, now: OffsetDateTime) -> Result<Option<bool>, MetaError> {
        let updated = sqlx::query("UPDATE principal_ips SET last_login = $3 WHERE principal = $1 AND ip = $2")
            .bind(name)
            .bind(ip.to_string())
            .bind(crate::clock::format(now))
            .execute(self.meta.pool())
            .await
            .map_err(ctx("noting a login address"))?;
        if updated.rows_affected() > 0 {
            return Ok(None);
        }
        let others: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM principal_ips WHERE principal = $1")
            .bind(name)
            .fetch_one(self.meta.pool())
            .await
            .map_err(ctx("reading login addresses"))?;
        sqlx::query("INSERT INTO principal_ips (principal, ip, last_login) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(name)
            .bind(ip.to_string())
            .bind(crate::clock::format(now))
            .execute(self.meta.pool())
            .await
            .map_err(ctx("noting a login address"))?;
        Ok(Some(others > 0))
    }
}

fn parse_time(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Locks in force at `now`, for `principal list` and `lockouts`.
pub async fn locks(meta: &MetaStore, now: OffsetDateTime) -> Result<Vec<LockRow>, MetaError> {
    let rows = sqlx::query("SELECT * FROM lockouts WHERE locked_until > $1 ORDER BY subject")
        .bind(crate::clock::format(now))
        .fetch_all(meta.pool())
        .await
        .map_err(ctx("listing lockouts"))?;
    Ok(rows
        .into_iter()
        .map(|r| LockRow {
            subject: r.get("subject"),
            locked_at: r.get("locked_at"),
            locked_until: r.get("locked_until"),
            failures: r.get("failures"),
        })
        .collect())
}

/// Lifts the lock on `subject` (a [`LockSubject::key`]); `false` when there was none.
pub async fn unlock(meta: &MetaStore, subject: &str) -> Result<bool, MetaError> {
    let done = sqlx::query("DELETE FROM lockouts WHERE subject = $1")
        .bind(subject)
        .execute(meta.pool())
        .await
        .map_err(ctx("lifting a lockout"))?;
    Ok(done.rows_affected() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lockout(config: LockoutConfig) -> (tempfile::TempDir, Lockout) {
        let dir = tempfile::tempdir().unwrap();
        let meta = MetaStore::open(&dir.path().join("r.db")).await.unwrap();
        (dir, Lockout::new(&config, meta).unwrap())
    }

    fn config() -> LockoutConfig {
        LockoutConfig {
            principal_failures: 3,
            ip_failures: 5,
            window: "1m".into(),
            cooldown: "10m".into(),
            exempt_networks: vec!["10.1.0.0/16".into()],
            ..LockoutConfig::default()
        }
    }

    #[tokio::test]
    async fn a_principal_lock_spares_its_known_and_exempt_addresses_and_ends() {
        let (_dir, l) = lockout(config()).await;
        let t0 = OffsetDateTime::now_utc();
        let (pipeline, attacker, runner) = (
            "192.0.2.1".parse().unwrap(),
            "198.51.100.7".parse().unwrap(),
            "10.1.4.4".parse().unwrap(),
        );
        assert_eq!(l.succeeded("sp1", pipeline, t0).await.unwrap(), Some(false), "first address");
        assert_eq!(l.succeeded("sp1", pipeline, t0).await.unwrap(), None, "known now");
        assert!(l.failed("sp1", attacker, t0).await.unwrap().is_empty());
        assert!(l.failed("sp1", attacker, t0).await.unwrap().is_empty());
        let tripped = l.failed("sp1", attacker, t0).await.unwrap();
        assert_eq!(tripped.len(), 1);
        assert_eq!(tripped[0].subject, LockSubject::Principal("sp1".into()));
        let refused = l.refusing("sp1", attacker, t0).await.unwrap().expect("locked for the attacker");
        assert_eq!(refused.until, t0 + time::Duration::minutes(10));
        assert_eq!(l.refusing("sp1", pipeline, t0).await.unwrap(), None, "known address");
        assert_eq!(l.refusing("sp1", runner, t0).await.unwrap(), None, "exempt network");
        assert_eq!(l.refusing("sp2", attacker, t0).await.unwrap(), None, "other principals");
        let later = t0 + time::Duration::minutes(11);
        assert_eq!(l.refusing("sp1", attacker, later).await.unwrap(), None, "cooldown over");
        assert!(l.failed("sp1", attacker, later).await.unwrap().is_empty(), "a fresh count");
    }

    #[tokio::test]
    async fn an_address_lock_covers_every_name_and_unlock_lifts_it() {
        let (_dir, l) = lockout(config()).await;
        let t0 = OffsetDateTime::now_utc();
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let mut trips = Vec::new();
        for i in 0..5 {
            trips.extend(l.failed(&format!("name{i}"), ip, t0).await.unwrap());
        }
        assert_eq!(trips.len(), 1, "{trips:?}");
        assert_eq!(trips[0].subject, LockSubject::Ip(ip));
        assert!(l.refusing("anyone", ip, t0).await.unwrap().is_some());
        assert_eq!(locks(&l.meta, t0).await.unwrap().len(), 1);
        assert!(unlock(&l.meta, &format!("ip:{ip}")).await.unwrap());
        assert!(l.refusing("anyone", ip, t0).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn failures_outside_the_window_do_not_count() {
        let (_dir, l) = lockout(config()).await;
        let t0 = OffsetDateTime::now_utc();
        let ip: IpAddr = "203.0.113.10".parse().unwrap();
        for i in 0..6 {
            let at = t0 + time::Duration::seconds(40 * i);
            assert!(
                l.failed("sp1", ip, at).await.unwrap().is_empty(),
                "failure {i}: at most two in a minute"
            );
        }
    }

    #[test]
    fn bad_settings_are_named() {
        let meta = || {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(MetaStore::open(&tempfile::tempdir().unwrap().keep().join("r.db")))
                .unwrap()
        };
        let bad = LockoutConfig {
            exempt_networks: vec!["10.0.0.0/33".into()],
            ..LockoutConfig::default()
        };
        assert!(Lockout::new(&bad, meta()).err().unwrap().contains("exempt_networks"));
        let bad = LockoutConfig {
            cooldown: "0m".into(),
            ..LockoutConfig::default()
        };
        assert!(Lockout::new(&bad, meta()).err().unwrap().contains("cooldown"));
    }
}

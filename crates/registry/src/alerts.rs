//! Alerts: what the registry raises when something looks like an attack or a leak — a lockout, a burst of
//! refused requests, a pull spike, a service principal used from a new address, a principal sweeping
//! repositories it never pulled.
//!
//! An alert is three things at once: an audit record (action `alert.KIND`, result `alert`), a webhook event
//! (`alert.KIND`, signed like every delivery) and a metric (`customs_registry_alerts_total{kind}`); it is also
//! kept in the `alerts` table (90 days) for `customs registry alerts`. The same kind and subject alert once per
//! [`QUIET`], so a sustained attack is one alert, not thousands.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Row;

use crate::audit::AuditEvent;
use crate::meta::{MetaError, MetaStore, ctx};
use crate::metrics::KindLabels;
use crate::server::Registry;

/// How long the same kind and subject stay quiet after an alert.
pub const QUIET: Duration = Duration::from_secs(300);
/// How long alerts are kept in the table (the audit log keeps them for good).
const KEEP_DAYS: i64 = 90;

/// The kinds of alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// A principal or an address was locked after repeated failed logins.
    Lockout,
    /// A burst of 401/403 answers for one address or one claimed principal.
    AuthFailures,
    /// Pulls by a principal or of a repository far above their usual rate.
    PullSpike,
    /// A service principal logged in from an address it never used.
    NewClientIp,
    /// A principal pulled many repositories it had never pulled.
    RepositorySweep,
}

impl AlertKind {
    /// Every kind.
    pub const ALL: [AlertKind; 5] = [
        AlertKind::Lockout,
        AlertKind::AuthFailures,
        AlertKind::PullSpike,
        AlertKind::NewClientIp,
        AlertKind::RepositorySweep,
    ];

    /// The short name (metric label, `alerts` column).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Lockout => "lockout",
            AlertKind::AuthFailures => "auth_failures",
            AlertKind::PullSpike => "pull_spike",
            AlertKind::NewClientIp => "new_client_ip",
            AlertKind::RepositorySweep => "repository_sweep",
        }
    }

    /// The webhook event type and audit action: `alert.KIND`.
    pub fn event_type(self) -> &'static str {
        match self {
            AlertKind::Lockout => "alert.lockout",
            AlertKind::AuthFailures => "alert.auth_failures",
            AlertKind::PullSpike => "alert.pull_spike",
            AlertKind::NewClientIp => "alert.new_client_ip",
            AlertKind::RepositorySweep => "alert.repository_sweep",
        }
    }
}

/// One alert to raise.
#[derive(Clone, Debug)]
pub struct Alert {
    /// What kind.
    pub kind: AlertKind,
    /// Who or what it is about (`principal:NAME`, `ip:ADDR`, `repository:NAME`): the quiet period is per subject.
    pub subject: String,
    /// The principal involved, if any.
    pub principal: String,
    /// The client address involved, if any.
    pub client_ip: String,
    /// The repository involved, if any (webhooks with repository filters get alerts without one too).
    pub repository: String,
    /// One line for people.
    pub summary: String,
    /// Figures behind it (counts, thresholds, baseline).
    pub data: Value,
}

/// An alert as stored.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AlertRow {
    /// RFC 3339.
    pub time: String,
    /// [`AlertKind::as_str`].
    pub kind: String,
    /// What it is about.
    pub subject: String,
    /// The repository, or empty.
    pub repository: String,
    /// One line.
    pub summary: String,
    /// Figures.
    pub data: Value,
}

/// The `alerts` table (created with the rest of the schema).
pub(crate) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS alerts (id TEXT PRIMARY KEY, time TEXT NOT NULL, kind TEXT NOT NULL,
        subject TEXT NOT NULL, repository TEXT NOT NULL, summary TEXT NOT NULL, data TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (time)",
];

/// When each (kind, subject) last alerted.
#[derive(Default)]
pub struct QuietPeriods {
    last: Mutex<HashMap<(AlertKind, String), Instant>>,
}

impl QuietPeriods {
    /// Whether an alert of `kind` about `subject` may be raised now (and notes it when so).
    fn admit(&self, kind: AlertKind, subject: &str) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.len() > 10_000 {
            last.retain(|_, at| at.elapsed() < QUIET);
        }
        match last.get(&(kind, subject.to_string())) {
            Some(at) if at.elapsed() < QUIET => false,
            _ => {
                last.insert((kind, subject.to_string()), Instant::now());
                true
            }
        }
    }
}

impl Registry {
    /// Raises `alert` (audit record, metric, table row, webhook event) unless its kind and subject alerted
    /// within [`QUIET`].
    pub(crate) async fn raise(&self, alert: Alert) {
        if !self.quiet.admit(alert.kind, &alert.subject) {
            return;
        }
        tracing::warn!("alert {}: {}", alert.kind.as_str(), alert.summary);
        self.metrics.alerts.get_or_create(&KindLabels { kind: alert.kind.as_str() }).inc();
        self.record(AuditEvent {
            client_ip: alert.client_ip.clone(),
            principal: if alert.principal.is_empty() {
                "registry".into()
            } else {
                alert.principal.clone()
            },
            action: alert.kind.event_type().into(),
            repository: alert.repository.clone(),
            result: "alert".into(),
            status: 0,
            detail: alert.summary.clone(),
            ..AuditEvent::default()
        });
        let time = self.clock.now_rfc3339();
        if let Err(e) = store(&self.meta, &alert, &time, self.clock.now()).await {
            tracing::error!("alert {} not stored for `customs registry alerts`: {e}", alert.kind.as_str());
        }
        let mut data = alert.data.clone();
        data["summary"] = json!(alert.summary);
        data["principal"] = json!(alert.principal);
        data["client_ip"] = json!(alert.client_ip);
        self.emit(crate::webhooks::Event::about(
            crate::webhooks::EventKind::Alert(alert.kind),
            &alert.repository,
            alert.subject.clone(),
            data,
            (
                format!("customs registry alert: {}", alert.kind.as_str()),
                alert.summary.clone(),
                false,
            ),
            time,
        ))
        .await;
    }
}

async fn store(meta: &MetaStore, alert: &Alert, time: &str, now: time::OffsetDateTime) -> Result<(), MetaError> {
    sqlx::query("DELETE FROM alerts WHERE time < $1")
        .bind(crate::clock::format(now - time::Duration::days(KEEP_DAYS)))
        .execute(meta.pool())
        .await
        .map_err(ctx("pruning alerts"))?;
    sqlx::query("INSERT INTO alerts (id, time, kind, subject, repository, summary, data) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(time)
        .bind(alert.kind.as_str())
        .bind(&alert.subject)
        .bind(&alert.repository)
        .bind(&alert.summary)
        .bind(alert.data.to_string())
        .execute(meta.pool())
        .await
        .map_err(ctx("storing an alert"))?;
    Ok(())
}

/// Alerts at or after `since` (RFC 3339), newest first, at most `limit`.
pub async fn recent(meta: &MetaStore, since: &str, limit: i64) -> Result<Vec<AlertRow>, MetaError> {
    let rows = sqlx::query("SELECT * FROM alerts WHERE time >= $1 ORDER BY time DESC LIMIT $2")
        .bind(since)
        .bind(limit)
        .fetch_all(meta.pool())
        .await
        .map_err(ctx("listing alerts"))?;
    Ok(rows
        .into_iter()
        .map(|r| AlertRow {
            time: r.get("time"),
            kind: r.get("kind"),
            subject: r.get("subject"),
            repository: r.get("repository"),
            summary: r.get("summary"),
            data: serde_json::from_str(&r.get::<String, _>("data")).unwrap_or(Value::Null),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_alert_per_kind_and_subject_per_quiet_period() {
        let quiet = QuietPeriods::default();
        assert!(quiet.admit(AlertKind::Lockout, "principal:sp1"));
        assert!(!quiet.admit(AlertKind::Lockout, "principal:sp1"));
        assert!(quiet.admit(AlertKind::Lockout, "ip:192.0.2.1"));
        assert!(quiet.admit(AlertKind::PullSpike, "principal:sp1"));
    }

    #[tokio::test]
    async fn stored_alerts_list_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let meta = MetaStore::open(&dir.path().join("r.db")).await.unwrap();
        let now = time::OffsetDateTime::now_utc();
        for (i, kind) in [AlertKind::Lockout, AlertKind::PullSpike].into_iter().enumerate() {
            let alert = Alert {
                kind,
                subject: format!("principal:sp{i}"),
                principal: format!("sp{i}"),
                client_ip: String::new(),
                repository: String::new(),
                summary: format!("alert {i}"),
                data: json!({"n": i}),
            };
            store(&meta, &alert, &crate::clock::format(now + time::Duration::seconds(i as i64)), now)
                .await
                .unwrap();
        }
        let rows = recent(&meta, &crate::clock::format(now - time::Duration::hours(1)), 10)
            .await
            .unwrap();
        assert_eq!(rows.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(), ["pull_spike", "lockout"]);
        assert_eq!(rows[0].data["n"], 1);
    }
}

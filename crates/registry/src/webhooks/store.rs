//! Webhook deliveries in the metadata database: a durable queue (one row per webhook and event, so an event is
//! never queued twice for a webhook) that is also the delivery log the API lists.
//!
//! Portable SQL, claimed like scan jobs: one `UPDATE … WHERE id = (SELECT …) RETURNING` statement.

use sqlx::Row;

use crate::meta::{MetaError, MetaStore, ctx};

type Result<T> = std::result::Result<T, MetaError>;

/// A delivery as a sender claims it.
#[derive(Clone, Debug)]
pub struct Claimed {
    /// Delivery id.
    pub id: String,
    /// The webhook's name.
    pub webhook: String,
    /// The event's id (the `webhook-id` header).
    pub event_id: String,
    /// The exact body to send.
    pub body: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
}

/// A delivery as the log shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DeliveryRow {
    /// Delivery id.
    pub id: String,
    /// Webhook name.
    pub webhook: String,
    /// Event id.
    pub event_id: String,
    /// Event kind (`verdict.changed`).
    pub event: String,
    /// The repository the event is about.
    pub repository: String,
    /// `queued`, `sending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due (while queued).
    pub next_attempt_at: String,
    /// The receiver's last HTTP status.
    pub last_status: Option<i64>,
    /// The last error (status text or connection error).
    pub last_error: Option<String>,
    /// When the event was queued.
    pub created_at: String,
    /// When the receiver accepted it.
    pub delivered_at: Option<String>,
}

/// The deliveries table.
#[derive(Clone)]
pub struct DeliveryStore {
    meta: MetaStore,
}

const COLUMNS: &str = "id, webhook, event_id, event_type, repository, state, attempts, next_attempt_at, last_status, \
                       last_error, created_at, delivered_at";

impl DeliveryStore {
    /// The table in `meta`'s database.
    pub fn new(meta: MetaStore) -> DeliveryStore {
        DeliveryStore { meta }
    }

    /// Queues an event's body for a webhook, due now; an event already queued for it is left alone.
    pub async fn enqueue(&self, webhook: &str, event_id: &str, event: &str, repository: &str, body: &str, now: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, webhook, event_id, event_type, repository, body, state, attempts,
                 next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'queued', 0, $7, $7) ON CONFLICT (webhook, event_id) DO NOTHING",
        )
        .bind(uuid::Uuid::new_v4().simple().to_string())
        .bind(webhook)
        .bind(event_id)
        .bind(event)
        .bind(repository)
        .bind(body)
        .bind(now)
        .execute(self.meta.pool())
        .await
        .map_err(ctx("queueing a webhook delivery"))?;
        Ok(())
    }

    /// Takes the delivery due longest, leasing it until `lease_until`.
    pub async fn claim(&self, now: &str, lease_until: &str) -> Result<Option<Claimed>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_deliveries SET state = 'sending', attempts = attempts + 1, lease_until = $2
             WHERE id = (SELECT id FROM webhook_deliveries WHERE state = 'queued' AND next_attempt_at <= $1
                         ORDER BY next_attempt_at, id LIMIT 1{})
               AND state = 'queued'
             RETURNING id, webhook, event_id, body, attempts",
            self.meta.engine().skip_locked()
        )))
        .bind(now)
        .bind(lease_until)
        .fetch_optional(self.meta.pool())
        .await
        .map_err(ctx("claiming a webhook delivery"))?;
        Ok(row.map(|r| Claimed {
            id: r.get(0),
            webhook: r.get(1),
            event_id: r.get(2),
            body: r.get(3),
            attempts: r.get(4),
        }))
    }

    /// When the next queued delivery is due, if any.
    pub async fn next_due(&self) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE state = 'queued'")
            .fetch_one(self.meta.pool())
            .await
            .map_err(ctx("reading webhook deliveries"))
    }

    /// Puts back deliveries a stopped process was sending (all at start-up, or those whose lease ran out).
    pub async fn requeue_abandoned(&self, now: Option<&str>) -> Result<u64> {
        let done = match now {
            None => {
                sqlx::query("UPDATE webhook_deliveries SET state = 'queued' WHERE state = 'sending'")
                    .execute(self.meta.pool())
                    .await
            }
            Some(now) => {
                sqlx::query("UPDATE webhook_deliveries SET state = 'queued' WHERE state = 'sending' AND lease_until < $1")
                    .bind(now)
                    .execute(self.meta.pool())
                    .await
            }
        }
        .map_err(ctx("requeueing webhook deliveries"))?;
        Ok(done.rows_affected())
    }

    /// Records an attempt: `next` is when to try again (`None`: delivered when `delivered`, else given up).
    pub async fn record_attempt(
        &self,
        id: &str,
        status: Option<u16>,
        error: Option<&str>,
        delivered: bool,
        next: Option<&str>,
        now: &str,
    ) -> Result<()> {
        let state = match (delivered, next) {
            (true, _) => "delivered",
            (false, Some(_)) => "queued",
            (false, None) => "failed",
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $1, last_status = $2, last_error = $3,
                 next_attempt_at = COALESCE($4, next_attempt_at), delivered_at = $5, lease_until = NULL
             WHERE id = $6",
        )
        .bind(state)
        .bind(status.map(i64::from))
        .bind(error)
        .bind(next)
        .bind(delivered.then_some(now))
        .bind(id)
        .execute(self.meta.pool())
        .await
        .map_err(ctx("recording a webhook delivery"))?;
        Ok(())
    }

    /// Queues a delivery again (a redelivery asked for by an admin), due now; false when there is no such
    /// delivery or it is being sent.
    pub async fn redeliver(&self, id: &str, now: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET state = 'queued', attempts = 0, next_attempt_at = $1
             WHERE id = $2 AND state <> 'sending'",
        )
        .bind(now)
        .bind(id)
        .execute(self.meta.pool())
        .await
        .map_err(ctx("requeueing a webhook delivery"))?;
        Ok(done.rows_affected() > 0)
    }

    /// One delivery.
    pub async fn get(&self, id: &str) -> Result<Option<DeliveryRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM webhook_deliveries WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.meta.pool())
        .await
        .map_err(ctx("reading a webhook delivery"))?;
        Ok(row.as_ref().map(delivery_row))
    }

    /// The log, newest first; `webhook`, `state` and `event` narrow it.
    pub async fn list(&self, webhook: Option<&str>, state: Option<&str>, event: Option<&str>, limit: i64) -> Result<Vec<DeliveryRow>> {
        // Empty strings stand for "any": one statement for every combination.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM webhook_deliveries
             WHERE ($1 = '' OR webhook = $1) AND ($2 = '' OR state = $2) AND ($3 = '' OR event_type = $3)
             ORDER BY created_at DESC, id LIMIT $4"
        )))
        .bind(webhook.unwrap_or_default())
        .bind(state.unwrap_or_default())
        .bind(event.unwrap_or_default())
        .bind(limit)
        .fetch_all(self.meta.pool())
        .await
        .map_err(ctx("listing webhook deliveries"))?;
        Ok(rows.iter().map(delivery_row).collect())
    }
}

fn delivery_row(r: &sqlx::any::AnyRow) -> DeliveryRow {
    DeliveryRow {
        id: r.get(0),
        webhook: r.get(1),
        event_id: r.get(2),
        event: r.get(3),
        repository: r.get(4),
        state: r.get(5),
        attempts: r.get(6),
        next_attempt_at: r.get(7),
        last_status: r.get(8),
        last_error: r.get(9),
        created_at: r.get(10),
        delivered_at: r.get(11),
    }
}

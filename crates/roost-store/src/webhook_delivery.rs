//! The webhook delivery worker's queries: which endpoints are due, the lease that keeps one
//! delivery in flight per endpoint across replicas, the events after an endpoint's cursor, and the
//! outcome of an attempt (logged, and the cursor or retry state moved, in one transaction).

use roost_domain::IdKind;
use roost_domain::ledger::EventType;
use serde_json::json;

use crate::events::{event_from, insert_event};
use crate::scope::{Cross, Owner, Scope};
use crate::webhooks::{Webhook, webhook_cols, webhook_from};
use crate::{EventRow, Result, Store};

/// One delivery attempt as it happened.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub event_id: String,
    /// 1 for the first attempt of this event.
    pub attempt: i64,
    pub at: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// What follows an attempt.
#[derive(Debug, Clone)]
pub enum AfterAttempt {
    /// The event arrived: the cursor moves past it and it counts against the month's quota
    /// (`month_start`: the first millisecond of the month, UTC).
    Delivered { month_start: i64 },
    /// Failed: the next attempt is due at `next_at`.
    Retry { next_at: i64 },
    /// The last retry failed: the endpoint is disabled and `webhook.disabled` is written.
    Disable,
}

impl Store {
    /// Endpoints that are enabled, due at `now`, not leased at `wall` (leases run on the wall
    /// clock), and have events after their cursor.
    pub async fn webhooks_due(&self, now: i64, wall: i64, limit: i64) -> Result<Vec<String>> {
        // Across orgs: through `roost_webhooks_due` on PostgreSQL.
        let ids = sqlx::query_scalar(self.cross(Cross::WebhooksDue))
            .bind(now)
            .bind(wall)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(ids)
    }

    /// Takes the endpoint's lease for `owner` until `until` (wall clock) if it is enabled, due at
    /// `now` and not leased by anyone at `wall`. The conditional `UPDATE` is the lock: on
    /// PostgreSQL a second replica's `UPDATE` waits for the first to commit, then finds the lease
    /// taken and changes nothing.
    pub async fn claim_webhook(
        &self,
        id: &str,
        owner: &str,
        now: i64,
        wall: i64,
        until: i64,
    ) -> Result<Option<Webhook>> {
        let mut tx = self.write_in(Scope::Of(Owner::Webhook, id)).await?;
        let took = sqlx::query(
            "UPDATE webhooks SET lease_owner = $2, lease_until = $5 \
             WHERE id = $1 AND enabled = 1 AND next_at <= $3 AND lease_until <= $4",
        )
        .bind(id)
        .bind(owner)
        .bind(now)
        .bind(wall)
        .bind(until)
        .execute(&mut *tx)
        .await?;
        if took.rows_affected() == 0 {
            return Ok(None);
        }
        let row = sqlx::query(concat!("SELECT ", webhook_cols!(), " FROM webhooks WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let w = row.as_ref().map(webhook_from).transpose()?;
        tx.commit().await?;
        Ok(w)
    }

    /// Gives the lease back (only if `owner` still holds it).
    pub async fn release_webhook(&self, id: &str, owner: &str) -> Result<()> {
        let mut c = self.scoped(Scope::Of(Owner::Webhook, id)).await?;
        sqlx::query("UPDATE webhooks SET lease_owner = NULL, lease_until = 0 WHERE id = $1 AND lease_owner = $2")
            .bind(id)
            .bind(owner)
            .execute(&mut *c)
            .await?;
        c.done().await?;
        Ok(())
    }

    /// Forgets every lease: for a backend where one process is the only deliverer (SQLite), at
    /// startup, so a process killed mid-delivery does not hold its endpoints until the lease ends.
    pub async fn clear_webhook_leases(&self) -> Result<()> {
        // Across orgs: through `roost_clear_webhook_leases` on PostgreSQL.
        sqlx::query(self.cross(Cross::ClearWebhookLeases)).execute(&self.pool).await?;
        Ok(())
    }

    /// The org's events after `after` and before `before` (both ids), oldest first.
    pub async fn events_after(&self, org_id: &str, after: &str, before: &str, limit: i64) -> Result<Vec<EventRow>> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let rows = sqlx::query(
            "SELECT org_id, id, type, workspace_id, data, created_at FROM events \
             WHERE org_id = $1 AND id > $2 AND id < $3 ORDER BY id LIMIT $4",
        )
        .bind(org_id)
        .bind(after)
        .bind(before)
        .bind(limit)
        .fetch_all(&mut *c)
        .await?;
        c.done().await?;
        Ok(rows.iter().map(event_from).collect::<Result<Vec<_>, _>>()?)
    }

    /// Moves the cursor past events the endpoint does not receive (while `owner` holds the lease).
    pub async fn skip_webhook_events(&self, id: &str, owner: &str, cursor: &str, lease_until: i64) -> Result<()> {
        let mut c = self.scoped(Scope::Of(Owner::Webhook, id)).await?;
        sqlx::query("UPDATE webhooks SET cursor = $3, lease_until = $4 WHERE id = $1 AND lease_owner = $2")
            .bind(id)
            .bind(owner)
            .bind(cursor)
            .bind(lease_until)
            .execute(&mut *c)
            .await?;
        c.done().await?;
        Ok(())
    }

    /// Events handed to the org's endpoints in the month starting at `month_start`.
    pub async fn webhook_usage(&self, org_id: &str, month_start: i64) -> Result<i64> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let n: Option<i64> =
            sqlx::query_scalar("SELECT delivered FROM webhook_usage WHERE org_id = $1 AND month_start = $2")
                .bind(org_id)
                .bind(month_start)
                .fetch_optional(&mut *c)
                .await?;
        c.done().await?;
        Ok(n.unwrap_or(0))
    }

    /// Holds the endpoint back until `next_at` (the plan's monthly quota is used up).
    pub async fn defer_webhook(&self, id: &str, owner: &str, next_at: i64) -> Result<()> {
        let mut c = self.scoped(Scope::Of(Owner::Webhook, id)).await?;
        sqlx::query("UPDATE webhooks SET next_at = $3 WHERE id = $1 AND lease_owner = $2")
            .bind(id)
            .bind(owner)
            .bind(next_at)
            .execute(&mut *c)
            .await?;
        c.done().await?;
        Ok(())
    }

    /// Logs an attempt and applies what follows it, in one transaction. A `webhook.test` attempt
    /// (`w` = `None`) is only logged. Returns whether `owner` still held the lease.
    pub async fn finish_attempt(
        &self,
        webhook_id: &str,
        org_id: &str,
        owner: &str,
        a: &Attempt,
        after: Option<AfterAttempt>,
        lease_until: i64,
    ) -> Result<bool> {
        let mut tx = self.write_in(Scope::Org(org_id)).await?;
        if matches!(after, Some(AfterAttempt::Disable)) {
            // The event is written under the org's lock, like every other writer's.
            self.lock_org(&mut tx, org_id).await?;
        }
        // An endpoint deleted while this attempt was in flight gets no log row (it has no log).
        sqlx::query(
            "INSERT INTO webhook_deliveries (webhook_id, id, event_id, attempt, at, status_code, error, duration_ms) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = $1)",
        )
        .bind(webhook_id)
        .bind(IdKind::Event.generate())
        .bind(&a.event_id)
        .bind(a.attempt)
        .bind(a.at)
        .bind(a.status_code)
        .bind(a.error.as_deref())
        .bind(a.duration_ms)
        .execute(&mut *tx)
        .await?;
        let held = match after {
            None => true,
            Some(AfterAttempt::Delivered { month_start }) => {
                let moved = sqlx::query(
                    "UPDATE webhooks SET cursor = $3, attempt = 0, next_at = 0, lease_until = $4 \
                     WHERE id = $1 AND lease_owner = $2",
                )
                .bind(webhook_id)
                .bind(owner)
                .bind(&a.event_id)
                .bind(lease_until)
                .execute(&mut *tx)
                .await?;
                // Counted once per event: only by the holder whose delivery moved the cursor.
                let held = moved.rows_affected() == 1;
                if held {
                    sqlx::query(
                        "INSERT INTO webhook_usage (org_id, month_start, delivered) VALUES ($1, $2, 1) \
                         ON CONFLICT (org_id, month_start) DO UPDATE SET delivered = webhook_usage.delivered + 1",
                    )
                    .bind(org_id)
                    .bind(month_start)
                    .execute(&mut *tx)
                    .await?;
                }
                held
            }
            Some(AfterAttempt::Retry { next_at }) => {
                let moved =
                    sqlx::query("UPDATE webhooks SET attempt = $3, next_at = $4 WHERE id = $1 AND lease_owner = $2")
                        .bind(webhook_id)
                        .bind(owner)
                        .bind(a.attempt)
                        .bind(next_at)
                        .execute(&mut *tx)
                        .await?;
                moved.rows_affected() == 1
            }
            Some(AfterAttempt::Disable) => {
                let moved = sqlx::query(
                    "UPDATE webhooks SET enabled = 0, attempt = $3 WHERE id = $1 AND lease_owner = $2 AND enabled = 1",
                )
                .bind(webhook_id)
                .bind(owner)
                .bind(a.attempt)
                .execute(&mut *tx)
                .await?;
                if moved.rows_affected() == 1 {
                    let data = json!({"webhook_id": webhook_id, "event_id": a.event_id, "attempts": a.attempt});
                    insert_event(&mut tx, org_id, EventType::WebhookDisabled, None, data, a.at).await?;
                }
                moved.rows_affected() == 1
            }
        };
        tx.commit().await?;
        Ok(held)
    }
}

//! Webhook endpoints (API.md "Events and webhooks"): their settings, secrets and delivery log.
//! The delivery worker's own queries are in `webhook_delivery.rs`.

use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{Entry, record};
use crate::scope::{Owner, Scope};
use crate::{Ctx, Page, Result, Store, StoreError, finish_page, flag, page};

/// A webhook endpoint of an org, with the secrets that sign its deliveries.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub org_id: String,
    pub url: String,
    /// Event types it receives, or `["*"]` for all.
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// `whsec_…`, as issued.
    pub secret: String,
    /// The secret before the last rotation, signing alongside until `old_secret_until`.
    pub old_secret: Option<String>,
    pub old_secret_until: Option<i64>,
    pub created_at: i64,
    /// The id of the last event handed over or skipped; the next delivery is after it.
    pub cursor: String,
    /// Failed attempts of the event after `cursor`.
    pub attempt: i64,
    /// When the next attempt is due (ms; 0: as soon as there is something to send).
    pub next_at: i64,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("enabled", &self.enabled)
            .field("secret", &"***")
            .field("cursor", &self.cursor)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// Whether this endpoint receives events of type `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == kind)
    }
}

/// The columns [`webhook_from`] reads.
macro_rules! webhook_cols {
    () => {
        "id, org_id, url, events, description, enabled, secret, old_secret, old_secret_until, created_at, cursor, attempt, next_at"
    };
}
pub(crate) use webhook_cols;

pub(crate) fn webhook_from(r: &AnyRow) -> Result<Webhook, sqlx::Error> {
    let events: String = r.try_get("events")?;
    Ok(Webhook {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        url: r.try_get("url")?,
        events: serde_json::from_str(&events)
            .map_err(|e| sqlx::Error::Decode(format!("webhooks.events: {e}").into()))?,
        description: r.try_get("description")?,
        enabled: flag(r, "enabled")?,
        secret: r.try_get("secret")?,
        old_secret: r.try_get("old_secret")?,
        old_secret_until: r.try_get("old_secret_until")?,
        created_at: r.try_get("created_at")?,
        cursor: r.try_get("cursor")?,
        attempt: r.try_get("attempt")?,
        next_at: r.try_get("next_at")?,
    })
}

/// One logged delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub attempt: i64,
    pub at: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// What `PATCH /v1/webhooks/{id}` changes.
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

fn audit_detail(w: &Webhook) -> serde_json::Value {
    json!({"url": w.url, "events": w.events, "enabled": w.enabled})
}

impl Store {
    /// Stores a new endpoint. It receives the events written from now on: its cursor starts at
    /// `w.cursor` (the caller passes an event id made now).
    pub async fn create_webhook(&self, w: &Webhook, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(&w.org_id)).await?;
        self.lock_org(&mut tx, &w.org_id).await?;
        sqlx::query(
            "INSERT INTO webhooks (id, org_id, url, events, description, enabled, secret, created_at, cursor) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8)",
        )
        .bind(&w.id)
        .bind(&w.org_id)
        .bind(&w.url)
        .bind(json!(w.events).to_string())
        .bind(w.description.as_deref())
        .bind(&w.secret)
        .bind(w.created_at)
        .bind(&w.cursor)
        .execute(&mut *tx)
        .await?;
        let e = Entry {
            org_id: &w.org_id,
            action: "webhook.created",
            workspace_id: None,
            target: Some(("webhook", &w.id)),
            detail: audit_detail(w),
        };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The org's endpoints, by id.
    pub async fn list_webhooks(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> Result<Page<Webhook>> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let (fetch, after) = page(limit, cursor);
        let rows = sqlx::query(concat!(
            "SELECT ",
            webhook_cols!(),
            " FROM webhooks WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(org_id)
        .bind(after)
        .bind(fetch)
        .fetch_all(&mut *c)
        .await?;
        c.done().await?;
        let items = rows.iter().map(webhook_from).collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, fetch, |w| w.id.clone()))
    }

    /// An endpoint by id.
    pub async fn webhook_by_id(&self, id: &str) -> Result<Option<Webhook>> {
        let mut c = self.scoped(Scope::Of(Owner::Webhook, id)).await?;
        let row = sqlx::query(concat!("SELECT ", webhook_cols!(), " FROM webhooks WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
        c.done().await?;
        Ok(row.as_ref().map(webhook_from).transpose()?)
    }

    /// Changes an endpoint. Enabling a disabled one starts its retries afresh, from the event
    /// that failed. Returns the endpoint as changed.
    pub async fn update_webhook(&self, id: &str, p: &WebhookPatch, ctx: &Ctx) -> Result<Webhook> {
        let mut tx = self.write_in(Scope::Of(Owner::Webhook, id)).await?;
        let row = sqlx::query(concat!("SELECT ", webhook_cols!(), " FROM webhooks WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let mut w = row.as_ref().map(webhook_from).transpose()?.ok_or(StoreError::NotFound)?;
        // Audited: the org lock before the webhook's row, as every writer of its audit chain takes it.
        self.lock_org(&mut tx, &w.org_id).await?;
        let re_enabled = p.enabled == Some(true) && !w.enabled;
        if let Some(u) = &p.url {
            w.url.clone_from(u);
        }
        if let Some(e) = &p.events {
            w.events.clone_from(e);
        }
        if let Some(e) = p.enabled {
            w.enabled = e;
        }
        sqlx::query(
            "UPDATE webhooks SET url = $2, events = $3, enabled = $4, \
             attempt = CASE WHEN $5 = 1 THEN 0 ELSE attempt END, next_at = CASE WHEN $5 = 1 THEN 0 ELSE next_at END \
             WHERE id = $1",
        )
        .bind(id)
        .bind(&w.url)
        .bind(json!(w.events).to_string())
        .bind(i64::from(w.enabled))
        .bind(i64::from(re_enabled))
        .execute(&mut *tx)
        .await?;
        if re_enabled {
            w.attempt = 0;
        }
        let e = Entry {
            org_id: &w.org_id,
            action: "webhook.updated",
            workspace_id: None,
            target: Some(("webhook", &w.id)),
            detail: audit_detail(&w),
        };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(w)
    }

    /// Deletes an endpoint and its delivery log.
    pub async fn delete_webhook(&self, w: &Webhook, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(&w.org_id)).await?;
        // Audited: the org lock first, as every writer of its audit chain takes it.
        self.lock_org(&mut tx, &w.org_id).await?;
        let gone = sqlx::query("DELETE FROM webhooks WHERE id = $1").bind(&w.id).execute(&mut *tx).await?;
        if gone.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1").bind(&w.id).execute(&mut *tx).await?;
        let e = Entry {
            org_id: &w.org_id,
            action: "webhook.deleted",
            workspace_id: None,
            target: Some(("webhook", &w.id)),
            detail: json!({"url": w.url}),
        };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives an endpoint a new secret; the current one keeps signing alongside until `old_until`.
    pub async fn rotate_webhook_secret(&self, w: &Webhook, secret: &str, old_until: i64, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(&w.org_id)).await?;
        // Audited: the org lock first, as every writer of its audit chain takes it.
        self.lock_org(&mut tx, &w.org_id).await?;
        // The current secret is read in the statement itself: two rotations in a row leave the
        // second-to-last secret signing, never a stale one.
        let done =
            sqlx::query("UPDATE webhooks SET old_secret = secret, old_secret_until = $3, secret = $2 WHERE id = $1")
                .bind(&w.id)
                .bind(secret)
                .bind(old_until)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let e = Entry {
            org_id: &w.org_id,
            action: "webhook.secret_rotated",
            workspace_id: None,
            target: Some(("webhook", &w.id)),
            detail: json!({"old_secret_until": old_until}),
        };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// An endpoint's delivery attempts, newest first.
    pub async fn list_deliveries(&self, webhook_id: &str, limit: u32, cursor: Option<&str>) -> Result<Page<Delivery>> {
        let mut c = self.scoped(Scope::Of(Owner::Webhook, webhook_id)).await?;
        let (fetch, _) = page(limit, cursor);
        let rows = sqlx::query(
            "SELECT id, event_id, attempt, at, status_code, error, duration_ms FROM webhook_deliveries \
             WHERE webhook_id = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(webhook_id)
        .bind(cursor.unwrap_or(""))
        .bind(fetch)
        .fetch_all(&mut *c)
        .await?;
        c.done().await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(Delivery {
                    id: r.try_get("id")?,
                    event_id: r.try_get("event_id")?,
                    attempt: r.try_get("attempt")?,
                    at: r.try_get("at")?,
                    status_code: r.try_get("status_code")?,
                    error: r.try_get("error")?,
                    duration_ms: r.try_get("duration_ms")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(finish_page(items, fetch, |d| d.id.clone()))
    }
}

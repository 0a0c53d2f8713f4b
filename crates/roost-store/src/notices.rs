//! Notices by mail that follow from something other than a request's own change: a sign-in from
//! somewhere new, and the alert events (low balance, budgets) that the alert mailer reads past a
//! stored cursor and turns into mails, each queued once per event and recipient.

use roost_domain::tokens;
use sqlx::{AnyConnection, Row};

use crate::events::event_from;
use crate::mail::NewMail;
use crate::scope::{Cross, Scope};
use crate::sessions::{SessionMeta, insert_session};
use crate::{EventRow, Result, Store};

/// Someone an org's alerts are mailed to: its owner and billing members.
#[derive(Debug, Clone)]
pub struct AlertRecipient {
    pub user_id: String,
    pub email: String,
    pub name: String,
}

/// A mail for the alert mailer to queue, once for `key`.
#[derive(Debug, Clone)]
pub struct KeyedMail {
    pub key: String,
    pub mail: NewMail,
}

/// Where a session was opened from, as one key: SHA-256 of the IP address and user agent.
fn device_key(meta: &SessionMeta) -> String {
    tokens::hash(&format!("{}\n{}", meta.ip.as_deref().unwrap_or("-"), meta.user_agent.as_deref().unwrap_or("-")))
}

/// Records that the user signed in from `meta`'s IP address and user agent; answers whether that
/// combination is new *and* the user had signed in from somewhere before (so a notice is due).
pub(crate) async fn note_device(tx: &mut AnyConnection, user_id: &str, meta: &SessionMeta, now: i64) -> Result<bool> {
    let device = device_key(meta);
    let updated = sqlx::query("UPDATE sign_in_devices SET last_seen_at = $3 WHERE user_id = $1 AND device = $2")
        .bind(user_id)
        .bind(&device)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    if updated.rows_affected() > 0 {
        return Ok(false);
    }
    let known: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sign_in_devices WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
    // Two sign-ins from one new place at once: only the one whose row lands is new.
    let inserted = sqlx::query(
        "INSERT INTO sign_in_devices (user_id, device, first_seen_at, last_seen_at) VALUES ($1, $2, $3, $3) \
         ON CONFLICT (user_id, device) DO NOTHING",
    )
    .bind(user_id)
    .bind(&device)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(inserted.rows_affected() > 0 && known > 0)
}

/// Queues `mail` unless a mail with `key` was ever queued; answers whether it was queued now.
pub(crate) async fn enqueue_once(tx: &mut AnyConnection, key: &str, mail: &NewMail, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO mail_outbox (id, kind, to_addr, subject, text_body, html_body, status, attempts, next_attempt_at, created_at, dedupe_key) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7, $8) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(&mail.id)
    .bind(&mail.kind)
    .bind(&mail.to)
    .bind(&mail.subject)
    .bind(&mail.text)
    .bind(&mail.html)
    .bind(now)
    .bind(key)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

impl Store {
    /// Opens a session like [`Store::open_session`] and, in the same transaction, queues `notice`
    /// when the session comes from an IP address and user agent the user never signed in from
    /// before — but not at their first sign-in. Answers whether the notice was queued.
    pub async fn open_session_with_notice(
        &self,
        token_hash: &str,
        user_id: &str,
        now: i64,
        expires_at: i64,
        meta: &SessionMeta,
        notice: &NewMail,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        insert_session(&mut tx, token_hash, user_id, now, expires_at, meta).await?;
        let new = note_device(&mut tx, user_id, meta, now).await?;
        if new {
            crate::mail::enqueue(&mut tx, notice, false, now).await?;
        }
        tx.commit().await?;
        Ok(new)
    }

    /// The id of the last event the reader `name` handled; `None` before its first run.
    pub async fn event_cursor(&self, name: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT cursor FROM event_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Starts the reader `name` at `cursor`, unless it has started already; answers its cursor.
    pub async fn start_event_cursor(&self, name: &str, cursor: &str) -> Result<String> {
        sqlx::query("INSERT INTO event_cursors (name, cursor) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(cursor)
            .execute(&self.pool)
            .await?;
        Ok(self.event_cursor(name).await?.unwrap_or_else(|| cursor.to_string()))
    }

    /// Alert events (of every org) after `after` and before `before` (both ids), oldest first.
    pub async fn alert_events_after(&self, after: &str, before: &str, limit: i64) -> Result<Vec<EventRow>> {
        // Across orgs: through `roost_alert_events` on PostgreSQL.
        let rows = sqlx::query(self.cross(Cross::AlertEvents))
            .bind(after)
            .bind(before)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(event_from).collect::<Result<Vec<_>, _>>()?)
    }

    /// The org's name and the people its alerts go to (owners and billing members), oldest first.
    pub async fn alert_recipients(&self, org_id: &str) -> Result<Option<(String, Vec<AlertRecipient>)>> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let name: Option<String> =
            sqlx::query_scalar("SELECT name FROM orgs WHERE id = $1").bind(org_id).fetch_optional(&mut *c).await?;
        let Some(name) = name else { return Ok(None) };
        let rows = sqlx::query(
            "SELECT u.id, u.email, u.name FROM org_members m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1 AND m.role IN ('owner', 'billing') ORDER BY m.created_at, u.id",
        )
        .bind(org_id)
        .fetch_all(&mut *c)
        .await?;
        c.done().await?;
        let people = rows
            .iter()
            .map(|r| {
                Ok(AlertRecipient { user_id: r.try_get("id")?, email: r.try_get("email")?, name: r.try_get("name")? })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Some((name, people)))
    }

    /// Queues `mails` (each once for its key) and moves the reader `name` to `cursor` (never
    /// backwards), in one transaction; answers how many mails were queued now.
    pub async fn queue_event_mails(&self, name: &str, cursor: &str, mails: &[KeyedMail], now: i64) -> Result<usize> {
        let mut tx = self.write().await?;
        let mut queued = 0;
        for m in mails {
            if enqueue_once(&mut tx, &m.key, &m.mail, now).await? {
                queued += 1;
            }
        }
        sqlx::query("UPDATE event_cursors SET cursor = $2 WHERE name = $1 AND cursor < $2")
            .bind(name)
            .bind(cursor)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(queued)
    }
}

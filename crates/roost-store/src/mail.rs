//! The mail outbox: mails are written in the transaction of the change that causes them, and a
//! background sender claims, sends and settles them after that transaction commits.

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::{Result, Store};

/// A mail to queue, rendered by the caller.
#[derive(Debug, Clone)]
pub struct NewMail {
    pub id: String,
    /// What the mail is about (`invitation`, `email_verification`, …), for operators.
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A queued mail the sender has claimed.
#[derive(Debug, Clone)]
pub struct OutboxMail {
    pub id: String,
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// Where one mail stands in the outbox, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailStatus {
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// Queues `mail` inside the caller's transaction: it is sent only if that transaction commits.
/// A `suppressed` mail is recorded but never sent (see [`Store::enqueue_mail`]).
pub(crate) async fn enqueue(tx: &mut AnyConnection, mail: &NewMail, suppressed: bool, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO mail_outbox (id, kind, to_addr, subject, text_body, html_body, status, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8)",
    )
    .bind(&mail.id)
    .bind(&mail.kind)
    .bind(&mail.to)
    .bind(&mail.subject)
    .bind(&mail.text)
    .bind(&mail.html)
    .bind(if suppressed { "suppressed" } else { "pending" })
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl Store {
    /// Claims up to `limit` pending mails that are due at `now`, hiding them from other senders
    /// until `lease_until` (a sender that dies mid-send leaves them to be retried then).
    pub async fn claim_mail(&self, now: i64, lease_until: i64, limit: u32) -> Result<Vec<OutboxMail>> {
        let mut tx = self.write().await?;
        // On PostgreSQL a second sender waits on the row lock, then re-checks the WHERE clause and
        // skips what the first one claimed.
        let sql = format!(
            "SELECT id, kind, to_addr, subject, text_body, html_body, attempts FROM mail_outbox \
             WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2{}",
            self.dialect.row_lock()
        );
        // The only interpolation is the dialect's fixed row-lock clause.
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(now).bind(i64::from(limit)).fetch_all(&mut *tx).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = r.try_get("id")?;
            sqlx::query("UPDATE mail_outbox SET next_attempt_at = $1 WHERE id = $2")
                .bind(lease_until)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            out.push(OutboxMail {
                id,
                kind: r.try_get("kind")?,
                to: r.try_get("to_addr")?,
                subject: r.try_get("subject")?,
                text: r.try_get("text_body")?,
                html: r.try_get("html_body")?,
                attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Records a delivered mail and forgets its bodies (they may hold single-use links).
    pub async fn mail_sent(&self, id: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE mail_outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1, text_body = '', html_body = '', last_error = NULL WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a failed attempt: retried at `retry_at`, or given up for good when `None`.
    pub async fn mail_failed(&self, id: &str, error: &str, retry_at: Option<i64>) -> Result<()> {
        let (status, next) = match retry_at {
            Some(at) => ("pending", at),
            None => ("failed", 0),
        };
        sqlx::query(
            "UPDATE mail_outbox SET status = $1, next_attempt_at = $2, attempts = attempts + 1, last_error = $3 WHERE id = $4",
        )
        .bind(status)
        .bind(next)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Queues a mail on its own (for causes that change nothing else in the database).
    pub async fn enqueue_mail(&self, mail: &NewMail, now: i64) -> Result<()> {
        let mut tx = self.write().await?;
        enqueue(&mut tx, mail, false, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Where a mail stands, by id.
    pub async fn mail_status(&self, id: &str) -> Result<Option<MailStatus>> {
        let row = sqlx::query("SELECT status, attempts, last_error FROM mail_outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(MailStatus {
                status: r.try_get("status")?,
                attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
                last_error: r.try_get("last_error")?,
            })
        })
        .transpose()
    }

    /// The ids of the mails to `to`, oldest first (for operators and tests).
    pub async fn mails_to(&self, to: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT id FROM mail_outbox WHERE to_addr = $1 ORDER BY created_at, id")
            .bind(to)
            .fetch_all(&self.pool)
            .await?)
    }
}

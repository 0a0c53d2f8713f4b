//! Sessions as their owner sees them: an id (never the token), when and where from they were
//! opened and last used, and ending one, or all but one.

use roost_domain::IdKind;
use sqlx::{AnyConnection, Row};

use crate::models::user_cols;
use crate::{Page, Result, Store, StoreError, User, finish_page, page};

/// What a new session records besides its token: an id to name it by, and where it came from.
#[derive(Debug, Clone)]
pub struct SessionMeta {
    pub id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl SessionMeta {
    /// A fresh session id, origin unknown.
    pub fn new() -> Self {
        Self { id: IdKind::Session.generate(), ip: None, user_agent: None }
    }
}

impl Default for SessionMeta {
    fn default() -> Self {
        Self::new()
    }
}

/// One live session of a user.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The user behind a session token, and the session's id and last use.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub user: User,
    pub session_id: String,
    pub last_used_at: i64,
}

pub(crate) async fn insert_session(
    tx: &mut AnyConnection,
    token_hash: &str,
    user_id: &str,
    now: i64,
    expires_at: i64,
    meta: &SessionMeta,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, id, last_used_at, ip, user_agent) \
         VALUES ($1, $2, $3, $4, $5, $3, $6, $7)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(now)
    .bind(expires_at)
    .bind(&meta.id)
    .bind(&meta.ip)
    .bind(&meta.user_agent)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl Store {
    /// Opens a session for a user, described by `meta` (its IP address and user agent are known
    /// places of the user from then on).
    pub async fn open_session(
        &self,
        token_hash: &str,
        user_id: &str,
        now: i64,
        expires_at: i64,
        meta: &SessionMeta,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        insert_session(&mut tx, token_hash, user_id, now, expires_at, meta).await?;
        // Known from now on, so a later sign-in from here mails no "new sign-in" notice.
        crate::notices::note_device(&mut tx, user_id, meta, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user behind a session token that has not expired and was last used after `idle_after`.
    pub async fn session_by_token(&self, token_hash: &str, now: i64, idle_after: i64) -> Result<Option<SessionUser>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            ", s.id AS session_id, s.last_used_at FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.last_used_at > $3"
        ))
        .bind(token_hash)
        .bind(now)
        .bind(idle_after)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SessionUser {
                user: User::from_row(&r)?,
                session_id: r.try_get("session_id")?,
                last_used_at: r.try_get("last_used_at")?,
            })
        })
        .transpose()
    }

    /// Records that a session was used at `now` (never moving its last use backwards).
    pub async fn touch_session(&self, id: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id = $2 AND last_used_at < $1")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The user's live sessions (not expired, used after `idle_after`), by id.
    pub async fn list_sessions(
        &self,
        user_id: &str,
        now: i64,
        idle_after: i64,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Session>> {
        let (fetch, after) = page(limit, cursor);
        let rows = sqlx::query(
            "SELECT id, created_at, last_used_at, expires_at, ip, user_agent FROM sessions \
             WHERE user_id = $1 AND expires_at > $2 AND last_used_at > $3 AND id > $4 ORDER BY id LIMIT $5",
        )
        .bind(user_id)
        .bind(now)
        .bind(idle_after)
        .bind(after)
        .bind(fetch)
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(Session {
                    id: r.try_get("id")?,
                    created_at: r.try_get("created_at")?,
                    last_used_at: r.try_get("last_used_at")?,
                    expires_at: r.try_get("expires_at")?,
                    ip: r.try_get("ip")?,
                    user_agent: r.try_get("user_agent")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(finish_page(items, fetch, |s| s.id.clone()))
    }

    /// Ends one of the user's sessions; someone else's, or none, is [`StoreError::NotFound`].
    pub async fn end_session(&self, user_id: &str, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id = $2")
            .bind(user_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Sets a new password hash and ends every session of the user but `keep`; returns how many
    /// sessions ended.
    pub async fn change_password(&self, user_id: &str, password_hash: &str, keep: &str) -> Result<u64> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let ended = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
            .bind(user_id)
            .bind(keep)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(ended)
    }
}

//! Email verification and password reset: single-use, expiring tokens (stored hashed), each issued
//! in one transaction with the mail that carries it.

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::mail::{NewMail, enqueue};
use crate::{Result, Rule, Store};

/// How many links of one kind (reset, verification) one address is sent in an hour.
pub const LINKS_PER_HOUR: i64 = 5;

/// What a user token proves when it comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// The user receives mail at the address (`rsv_`).
    VerifyEmail,
    /// The user may set a new password (`rsr_`).
    PasswordReset,
}

impl TokenPurpose {
    fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::PasswordReset => "password_reset",
        }
    }
}

/// A token to issue, as the caller decided it.
#[derive(Debug, Clone)]
pub struct NewUserToken {
    pub token_hash: String,
    pub purpose: TokenPurpose,
    /// `None` for a reset asked for an unknown email: recorded, never usable, its mail never sent.
    pub user_id: Option<String>,
    pub email: String,
    pub expires_at: i64,
}

/// Takes a live token of `purpose` (marks it used) and returns `(user_id, email)`; any other
/// token — unknown, used, expired, for nobody, or sent to an address the user no longer has — is
/// [`Rule::TokenInvalid`].
async fn take(
    store: &Store,
    tx: &mut AnyConnection,
    token_hash: &str,
    purpose: TokenPurpose,
    now: i64,
) -> Result<(String, String)> {
    let sql = format!(
        "SELECT t.user_id, t.email FROM user_tokens t JOIN users u ON u.id = t.user_id AND u.email = t.email \
         WHERE t.token_hash = $1 AND t.purpose = $2 AND t.used_at IS NULL AND t.expires_at > $3{}",
        store.dialect.row_lock()
    );
    // The only interpolation is the dialect's fixed row-lock clause.
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(token_hash)
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Rule::TokenInvalid)?;
    let (user_id, email): (String, String) = (row.try_get("user_id")?, row.try_get("email")?);
    // Single use: this token, and every other live one of the same purpose for this user.
    sqlx::query("UPDATE user_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL")
        .bind(now)
        .bind(&user_id)
        .bind(purpose.as_str())
        .execute(&mut *tx)
        .await?;
    // Either token came by mail to this address: it is proven.
    sqlx::query("UPDATE users SET email_verified_at = $1 WHERE id = $2 AND email_verified_at IS NULL")
        .bind(now)
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
    Ok((user_id, email))
}

impl Store {
    /// Records a token and queues the mail that carries it, in one transaction. A token for nobody
    /// (`user_id: None`) has its mail recorded as suppressed: the same writes, nothing sent.
    pub async fn issue_user_token(&self, t: &NewUserToken, mail: &NewMail, now: i64) -> Result<()> {
        let mut tx = self.write().await?;
        // At most `LINKS_PER_HOUR` links of one kind to one address an hour (found by review:
        // anyone could flood an inbox with reset mails). Past it the request is answered and
        // recorded the same way; only its mail is suppressed, so the answer tells nothing.
        let recent: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM user_tokens WHERE email = $1 AND purpose = $2 AND created_at > $3",
        )
        .bind(&t.email)
        .bind(t.purpose.as_str())
        .bind(now - 3_600_000)
        .fetch_one(&mut *tx)
        .await?;
        let flooded = recent >= LINKS_PER_HOUR;
        sqlx::query(
            "INSERT INTO user_tokens (token_hash, purpose, user_id, email, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&t.token_hash)
        .bind(t.purpose.as_str())
        .bind(&t.user_id)
        .bind(&t.email)
        .bind(now)
        .bind(t.expires_at)
        .execute(&mut *tx)
        .await?;
        enqueue(&mut tx, mail, t.user_id.is_none() || flooded, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Confirms an email address with a verification token; returns the user's id.
    pub async fn confirm_email(&self, token_hash: &str, now: i64) -> Result<String> {
        let mut tx = self.write().await?;
        let (user_id, _) = take(self, &mut tx, token_hash, TokenPurpose::VerifyEmail, now).await?;
        tx.commit().await?;
        Ok(user_id)
    }

    /// Sets a new password with a reset token and ends every session of the user; returns their id.
    pub async fn reset_password(&self, token_hash: &str, password_hash: &str, now: i64) -> Result<String> {
        let mut tx = self.write().await?;
        let (user_id, _) = take(self, &mut tx, token_hash, TokenPurpose::PasswordReset, now).await?;
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(&user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(&user_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(user_id)
    }
}

//! Two-factor (TOTP): enrolment, the last accepted time step (so no code works twice), single-use
//! recovery codes stored hashed, and the org setting that requires two-factor of members.

use serde_json::json;
use sqlx::Row;

use crate::audit::{Entry, record};
use crate::mail::{NewMail, enqueue};
use crate::scope::Scope;
use crate::{Ctx, Result, Rule, Store};

/// A user's two-factor state.
#[derive(Debug, Clone)]
pub struct TotpState {
    /// The secret, once enrolment started (base32).
    pub secret: Option<String>,
    /// Whether two-factor is on (enrolment confirmed).
    pub enabled: bool,
    /// The last time step a code was accepted for.
    pub last_step: i64,
}

impl Store {
    /// The user's two-factor state.
    pub async fn totp_state(&self, user_id: &str) -> Result<TotpState> {
        let r = sqlx::query("SELECT totp_secret, totp_enabled_at, totp_last_step FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(TotpState {
            secret: r.try_get("totp_secret")?,
            enabled: r.try_get::<Option<i64>, _>("totp_enabled_at")?.is_some(),
            last_step: r.try_get("totp_last_step")?,
        })
    }

    /// Starts (or restarts) enrolment with a new secret; refused while two-factor is on.
    pub async fn start_totp(&self, user_id: &str, secret: &str) -> Result<()> {
        let done = sqlx::query("UPDATE users SET totp_secret = $1 WHERE id = $2 AND totp_enabled_at IS NULL")
            .bind(secret)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Rule::TotpEnabled.into());
        }
        Ok(())
    }

    /// Accepts a code's time step once: false if that step or a later one was already used.
    pub async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool> {
        let done = sqlx::query("UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1")
            .bind(step)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Spends a recovery code (by hash): false if it is not one of the user's unused ones.
    pub async fn use_recovery_code(&self, user_id: &str, code_hash: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .bind(code_hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Turns two-factor on with the first code's step, replacing any recovery codes with
    /// `code_hashes`, and queues the notice. Refused (`totp_not_started`) without an enrolment, and
    /// (`false`) when the step was already used.
    pub async fn enable_totp(
        &self,
        user_id: &str,
        step: i64,
        code_hashes: &[String],
        notice: &NewMail,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let state = sqlx::query(
            "SELECT totp_last_step FROM users WHERE id = $1 AND totp_secret IS NOT NULL AND totp_enabled_at IS NULL",
        )
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Rule::TotpNotStarted)?;
        if state.try_get::<i64, _>("totp_last_step")? >= step {
            return Ok(false);
        }
        sqlx::query("UPDATE users SET totp_enabled_at = $1, totp_last_step = $2 WHERE id = $3")
            .bind(now)
            .bind(step)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        for h in code_hashes {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                .bind(user_id)
                .bind(h)
                .execute(&mut *tx)
                .await?;
        }
        enqueue(&mut tx, notice, false, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Turns two-factor off: forgets the secret and the recovery codes, and queues the notice.
    pub async fn disable_totp(&self, user_id: &str, notice: &NewMail, now: i64) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE users SET totp_secret = NULL, totp_enabled_at = NULL WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        enqueue(&mut tx, notice, false, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets whether the org requires two-factor of its members (audited as `org.updated`).
    pub async fn set_require_2fa(&self, org_id: &str, on: bool, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(org_id)).await?;
        // Audited: the org lock first, as every writer of its audit chain takes it.
        self.lock_org(&mut tx, org_id).await?;
        sqlx::query("UPDATE orgs SET require_2fa = $1 WHERE id = $2")
            .bind(i64::from(on))
            .bind(org_id)
            .execute(&mut *tx)
            .await?;
        let detail = json!({"require_2fa": on});
        let e = Entry { org_id, action: "org.updated", workspace_id: None, target: Some(("org", org_id)), detail };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(())
    }
}

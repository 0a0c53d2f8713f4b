//! Single sign-on (OpenID Connect): the sign-ins started at a provider (their `state`, nonce and
//! PKCE verifier, single use), accounts found or made for the email a provider vouches for, and
//! the one-time codes that finished sign-ins hand to their clients, exchanged once for a session.

use serde_json::json;
use sqlx::Row;

use crate::audit::{Entry, record};
use crate::models::user_cols;
use crate::scope::Scope;
use crate::sessions::{SessionMeta, insert_session};
use crate::users::insert_account;
use crate::{Actor, Ctx, NewSignup, Result, Rule, Store, StoreError, User};

/// How long finished rows are kept before a new sign-in sweeps them away.
const KEEP_MS: i64 = 86_400_000;

/// A sign-in sent to a provider, as the server decided it.
#[derive(Debug, Clone)]
pub struct OidcLogin {
    pub state_hash: String,
    pub provider: String,
    pub nonce: String,
    pub code_verifier: String,
    pub redirect_uri: String,
    pub expires_at: i64,
}

impl Store {
    /// Records a sign-in sent to a provider (and sweeps away long-finished ones).
    pub async fn oidc_begin(&self, l: &OidcLogin, now: i64) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM oidc_logins WHERE expires_at < $1").bind(now - KEEP_MS).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM oidc_codes WHERE expires_at < $1").bind(now - KEEP_MS).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO oidc_logins (state_hash, provider, nonce, code_verifier, redirect_uri, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&l.state_hash)
        .bind(&l.provider)
        .bind(&l.nonce)
        .bind(&l.code_verifier)
        .bind(&l.redirect_uri)
        .bind(now)
        .bind(l.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes the live sign-in with this state for `provider` (it cannot be taken again); unknown,
    /// used, expired or another provider's: [`Rule::TokenInvalid`].
    pub async fn oidc_take_login(&self, state_hash: &str, provider: &str, now: i64) -> Result<OidcLogin> {
        let row = sqlx::query(
            "UPDATE oidc_logins SET used_at = $1 WHERE state_hash = $2 AND provider = $3 AND used_at IS NULL \
             AND expires_at > $1 RETURNING nonce, code_verifier, redirect_uri, expires_at",
        )
        .bind(now)
        .bind(state_hash)
        .bind(provider)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Rule::TokenInvalid)?;
        Ok(OidcLogin {
            state_hash: state_hash.to_string(),
            provider: provider.to_string(),
            nonce: row.try_get("nonce")?,
            code_verifier: row.try_get("code_verifier")?,
            redirect_uri: row.try_get("redirect_uri")?,
            expires_at: row.try_get("expires_at")?,
        })
    }

    /// The user with `account.email`, whose address a provider has just vouched for (so it is
    /// marked verified; if it was not yet, its sessions end and its password becomes
    /// `account.password_hash`, an unusable one), or, when there is none, a new account made from `account` (a personal org
    /// with its workspace, as at signup; the session fields are not used). Returns the user and
    /// whether it was made now.
    pub async fn oidc_account(&self, account: &NewSignup, ctx: &Ctx) -> Result<(User, bool)> {
        for _ in 0..2 {
            // Scoped to the personal org it may make.
            let mut tx = self.write_in(Scope::Org(&account.org_id)).await?;
            let found: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
                .bind(&account.email)
                .fetch_optional(&mut *tx)
                .await?;
            let (id, created) = match found {
                Some(id) => {
                    // An account whose address was never proven may have been made by someone
                    // else with this person's email: the provider's word is the first proof, so
                    // — as a password reset does — every session ends and the password stops
                    // working (the owner sets one by reset). Found by review.
                    let unproven: Option<String> =
                        sqlx::query_scalar("SELECT id FROM users WHERE id = $1 AND email_verified_at IS NULL")
                            .bind(&id)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if unproven.is_some() {
                        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                            .bind(&account.password_hash)
                            .bind(&id)
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(&id).execute(&mut *tx).await?;
                    }
                    (id, false)
                }
                None => match insert_account(&mut tx, account, ctx).await {
                    Ok(()) => (account.user_id.clone(), true),
                    // Made by a sign-in running at the same moment: found on the next round.
                    Err(StoreError::Rule(Rule::EmailTaken)) => continue,
                    Err(e) => return Err(e),
                },
            };
            sqlx::query("UPDATE users SET email_verified_at = $1 WHERE id = $2 AND email_verified_at IS NULL")
                .bind(ctx.now)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query(concat!("SELECT ", user_cols!(), " FROM users u WHERE u.id = $1"))
                .bind(&id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok((User::from_row(&row)?, created));
        }
        Err(StoreError::Rule(Rule::EmailTaken))
    }

    /// Records a one-time code (by hash) that signs `user_id` in once, until `expires_at`.
    pub async fn oidc_issue_code(
        &self,
        code_hash: &str,
        user_id: &str,
        provider: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO oidc_codes (code_hash, user_id, provider, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(code_hash)
        .bind(user_id)
        .bind(provider)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Exchanges a one-time code for a session (`token_hash`), in one transaction with the audit
    /// entry `user.signed_in` in the user's personal org (from `ip`, at `now`). A code that is
    /// unknown, used or expired: [`Rule::TokenInvalid`].
    pub async fn oidc_exchange(
        &self,
        code_hash: &str,
        token_hash: &str,
        session_expires_at: i64,
        meta: &SessionMeta,
        ip: Option<String>,
        now: i64,
    ) -> Result<User> {
        let mut tx = self.write().await?;
        let row = sqlx::query(
            "UPDATE oidc_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1 \
             RETURNING user_id, provider",
        )
        .bind(now)
        .bind(code_hash)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Rule::TokenInvalid)?;
        let (user_id, provider): (String, String) = (row.try_get("user_id")?, row.try_get("provider")?);
        insert_session(&mut tx, token_hash, &user_id, now, session_expires_at, meta).await?;
        let ctx = Ctx { actor: Actor::user(&user_id), ip, now };
        let personal: Option<String> =
            sqlx::query_scalar("SELECT id FROM orgs WHERE owner_id = $1 AND kind = 'personal' AND deleted_at IS NULL")
                .bind(&user_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(org_id) = personal {
            // The audit entry goes to the personal org, known only now.
            self.rescope(&mut tx, Scope::Org(&org_id)).await?;
            let entry = Entry {
                org_id: &org_id,
                action: "user.signed_in",
                workspace_id: None,
                target: Some(("user", &user_id)),
                detail: json!({"method": "oidc", "provider": provider, "session_id": meta.id}),
            };
            record(&mut tx, &ctx, entry).await?;
        }
        let row = sqlx::query(concat!("SELECT ", user_cols!(), " FROM users u WHERE u.id = $1"))
            .bind(&user_id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(User::from_row(&row)?)
    }
}

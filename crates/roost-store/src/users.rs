//! Users, sessions, signup and the active workspace.

use serde_json::json;
use sqlx::Row;

use crate::audit::{Entry, record};
use crate::models::{org_cols, user_cols, ws_cols};
use crate::scope::Scope;
use crate::sessions::{SessionMeta, insert_session};
use crate::{Ctx, Org, Result, Rule, Store, StoreError, User, Workspace};

/// Everything signup creates, decided by the caller (ids, hashes, names, plan).
#[derive(Debug, Clone)]
pub struct NewSignup {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub org_id: String,
    pub org_name: String,
    pub plan: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub token_hash: String,
    pub session_expires_at: i64,
}

/// One org a user belongs to, with their role there.
#[derive(Debug, Clone)]
pub struct Membership {
    pub org: Org,
    pub role: String,
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl Store {
    /// Creates a user with their personal org, its one workspace (made active) and a session.
    pub async fn signup(&self, s: &NewSignup, ctx: &Ctx) -> Result<()> {
        self.signup_with_session(s, &SessionMeta::new(), ctx).await
    }

    /// [`Store::signup`], describing the session it opens.
    pub async fn signup_with_session(&self, s: &NewSignup, meta: &SessionMeta, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(&s.org_id)).await?;
        insert_account(&mut tx, s, ctx).await?;
        insert_session(&mut tx, &s.token_hash, &s.user_id, ctx.now, s.session_expires_at, meta).await?;
        // The first place the person signs in from: never worth a "new sign-in" notice.
        crate::notices::note_device(&mut tx, &s.user_id, meta, ctx.now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user with this (lowercased) email.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let row = sqlx::query(concat!("SELECT ", user_cols!(), " FROM users u WHERE u.email = $1"))
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(User::from_row).transpose()?)
    }

    /// The user with this id.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>> {
        let row = sqlx::query(concat!("SELECT ", user_cols!(), " FROM users u WHERE u.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(User::from_row).transpose()?)
    }

    /// Opens a session for a user.
    pub async fn create_session(&self, token_hash: &str, user_id: &str, now: i64, expires_at: i64) -> Result<()> {
        self.open_session(token_hash, user_id, now, expires_at, &SessionMeta::new()).await
    }

    /// Ends a session; the token stops working at once.
    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(&self.pool).await?;
        Ok(())
    }

    /// The user behind a live session token (by hash).
    pub async fn session_user(&self, token_hash: &str, now: i64) -> Result<Option<User>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(User::from_row).transpose()?)
    }

    /// Every live org the user belongs to, oldest membership first.
    pub async fn memberships(&self, user_id: &str) -> Result<Vec<Membership>> {
        let mut c = self.scoped(Scope::UserOrgs(user_id)).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            org_cols!(),
            ", m.role FROM org_members m JOIN orgs o ON o.id = m.org_id WHERE m.user_id = $1 AND o.deleted_at IS NULL ORDER BY m.created_at, o.id"
        ))
        .bind(user_id)
        .fetch_all(&mut *c)
        .await?;
        c.done().await?;
        rows.iter().map(|r| Ok(Membership { org: Org::from_row(r)?, role: r.try_get("role")? })).collect()
    }

    /// The workspaces a user can enter, with their own role there if they were added to it.
    /// Org owners, admins and billing members see every workspace of their org.
    pub async fn visible_workspaces(&self, user_id: &str) -> Result<Vec<(Workspace, Option<String>)>> {
        let mut c = self.scoped(Scope::UserOrgs(user_id)).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            ws_cols!(),
            ", wm.role AS ws_role FROM org_members m \
             JOIN orgs o ON o.id = m.org_id AND o.deleted_at IS NULL \
             JOIN workspaces w ON w.org_id = m.org_id \
             LEFT JOIN workspace_members wm ON wm.workspace_id = w.id AND wm.user_id = m.user_id \
             WHERE m.user_id = $1 AND (m.role IN ('owner', 'admin', 'billing') OR wm.role IS NOT NULL) \
             ORDER BY w.org_id, w.id"
        ))
        .bind(user_id)
        .fetch_all(&mut *c)
        .await?;
        c.done().await?;
        rows.iter().map(|r| Ok((Workspace::from_row(r)?, r.try_get("ws_role")?))).collect()
    }

    /// The id of the user's personal workspace, where they land by default.
    pub async fn personal_workspace(&self, user_id: &str) -> Result<Option<String>> {
        let mut c = self.scoped(Scope::UserOrgs(user_id)).await?;
        let id = sqlx::query_scalar(
            "SELECT w.id FROM workspaces w JOIN orgs o ON o.id = w.org_id \
             WHERE o.owner_id = $1 AND o.kind = 'personal' AND w.is_personal = 1",
        )
        .bind(user_id)
        .fetch_optional(&mut *c)
        .await?;
        c.done().await?;
        Ok(id)
    }

    /// Changes a user's display name.
    pub async fn rename_user(&self, user_id: &str, name: &str) -> Result<()> {
        let done = sqlx::query("UPDATE users SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Makes a workspace the user's active one.
    pub async fn set_active_workspace(&self, user_id: &str, workspace_id: &str) -> Result<()> {
        let done = sqlx::query("UPDATE users SET active_workspace_id = $1 WHERE id = $2")
            .bind(workspace_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

/// Creates a user with their personal org and its one workspace (made active), inside `tx`: what
/// signup does, without the session. A taken email is [`Rule::EmailTaken`].
pub(crate) async fn insert_account(tx: &mut sqlx::AnyConnection, s: &NewSignup, ctx: &Ctx) -> Result<()> {
    let now = ctx.now;
    let inserted = sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, active_workspace_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&s.user_id)
    .bind(&s.email)
    .bind(&s.name)
    .bind(&s.password_hash)
    .bind(&s.workspace_id)
    .bind(now)
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(e) if is_unique_violation(&e) => return Err(Rule::EmailTaken.into()),
        other => other?,
    };
    sqlx::query(
        "INSERT INTO orgs (id, name, kind, plan, owner_id, trial_used, plan_started_at, created_at) VALUES ($1, $2, 'personal', $3, $4, 0, $5, $5)",
    )
    .bind(&s.org_id)
    .bind(&s.org_name)
    .bind(&s.plan)
    .bind(&s.user_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO org_members (org_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)")
        .bind(&s.org_id)
        .bind(&s.user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    insert_workspace(tx, &s.org_id, &s.workspace_id, &s.workspace_name, true, true, &s.user_id, now).await?;
    let org = Entry {
        org_id: &s.org_id,
        action: "org.created",
        workspace_id: Some(&s.workspace_id),
        target: Some(("org", &s.org_id)),
        detail: json!({"kind": "personal", "plan": s.plan}),
    };
    record(tx, ctx, org).await?;
    Ok(())
}

/// Inserts a workspace and makes `creator` its admin.
#[expect(clippy::too_many_arguments, reason = "one row's columns")]
pub(crate) async fn insert_workspace(
    tx: &mut sqlx::AnyConnection,
    org_id: &str,
    id: &str,
    name: &str,
    primary: bool,
    personal: bool,
    creator: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO workspaces (org_id, id, name, is_primary, is_personal, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(org_id)
    .bind(id)
    .bind(name)
    .bind(i64::from(primary))
    .bind(i64::from(personal))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO workspace_members (org_id, workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, 'admin', $4)")
        .bind(org_id)
        .bind(id)
        .bind(creator)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

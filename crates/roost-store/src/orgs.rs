//! Organizations: creating, reading, renaming and deleting them.

use serde_json::json;
use sqlx::Row;

use crate::audit::{Entry, record};
use crate::members::reset_active_workspace;
use crate::models::org_cols;
use crate::scope::Scope;
use crate::users::{Membership, insert_workspace};
use crate::{Ctx, Org, Page, Result, Store, finish_page, page};

/// A new org, as the caller decided it.
#[derive(Debug, Clone)]
pub struct NewOrg {
    pub id: String,
    pub name: String,
    pub plan: String,
    pub owner_id: String,
    pub trial_ends_at: Option<i64>,
    pub workspace_id: String,
    pub workspace_name: String,
}

impl Store {
    /// Creates an org with its owner and its primary workspace.
    pub async fn create_org(&self, o: &NewOrg, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(&o.id)).await?;
        sqlx::query(
            "INSERT INTO orgs (id, name, kind, plan, owner_id, trial_used, trial_ends_at, plan_started_at, created_at) \
             VALUES ($1, $2, 'org', $3, $4, $5, $6, $7, $7)",
        )
        .bind(&o.id)
        .bind(&o.name)
        .bind(&o.plan)
        .bind(&o.owner_id)
        .bind(i64::from(o.trial_ends_at.is_some()))
        .bind(o.trial_ends_at)
        .bind(ctx.now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO org_members (org_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)")
            .bind(&o.id)
            .bind(&o.owner_id)
            .bind(ctx.now)
            .execute(&mut *tx)
            .await?;
        insert_workspace(&mut tx, &o.id, &o.workspace_id, &o.workspace_name, true, false, &o.owner_id, ctx.now).await?;
        let detail = json!({"name": o.name, "plan": o.plan, "trial": o.trial_ends_at.is_some()});
        record(
            &mut tx,
            ctx,
            Entry { org_id: &o.id, action: "org.created", workspace_id: None, target: Some(("org", &o.id)), detail },
        )
        .await?;
        let detail = json!({"name": o.workspace_name, "primary": true});
        let target = Some(("workspace", o.workspace_id.as_str()));
        record(
            &mut tx,
            ctx,
            Entry { org_id: &o.id, action: "workspace.created", workspace_id: Some(&o.workspace_id), target, detail },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The live orgs a user belongs to, by id.
    pub async fn list_orgs(&self, user_id: &str, limit: u32, cursor: Option<&str>) -> Result<Page<Membership>> {
        let mut c = self.scoped(Scope::UserOrgs(user_id)).await?;
        let (fetch, after) = page(limit, cursor);
        let rows = sqlx::query(concat!(
            "SELECT ",
            org_cols!(),
            ", m.role FROM org_members m JOIN orgs o ON o.id = m.org_id \
             WHERE m.user_id = $1 AND o.deleted_at IS NULL AND o.id > $2 ORDER BY o.id LIMIT $3"
        ))
        .bind(user_id)
        .bind(after)
        .bind(fetch)
        .fetch_all(&mut *c)
        .await?;
        c.done().await?;
        let items = rows
            .iter()
            .map(|r| Ok(Membership { org: Org::from_row(r)?, role: r.try_get("role")? }))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(finish_page(items, fetch, |m| m.org.id.clone()))
    }

    /// The org and the user's role in it, if the org is live and the user a member.
    pub async fn org_access(&self, org_id: &str, user_id: &str) -> Result<Option<Membership>> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            org_cols!(),
            ", m.role FROM orgs o JOIN org_members m ON m.org_id = o.id AND m.user_id = $2 \
             WHERE o.id = $1 AND o.deleted_at IS NULL"
        ))
        .bind(org_id)
        .bind(user_id)
        .fetch_optional(&mut *c)
        .await?;
        c.done().await?;
        row.map(|r| Ok(Membership { org: Org::from_row(&r)?, role: r.try_get("role")? })).transpose()
    }

    /// A live org by id.
    pub async fn org_by_id(&self, org_id: &str) -> Result<Option<Org>> {
        let row = sqlx::query(concat!("SELECT ", org_cols!(), " FROM orgs o WHERE o.id = $1 AND o.deleted_at IS NULL"))
            .bind(org_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(Org::from_row).transpose()?)
    }

    /// Renames an org.
    pub async fn rename_org(&self, org_id: &str, name: &str, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(org_id)).await?;
        // Audited: the org lock first, as every writer of its audit chain takes it.
        self.lock_org(&mut tx, org_id).await?;
        sqlx::query("UPDATE orgs SET name = $1 WHERE id = $2").bind(name).bind(org_id).execute(&mut *tx).await?;
        let detail = json!({"name": name});
        record(
            &mut tx,
            ctx,
            Entry { org_id, action: "org.updated", workspace_id: None, target: Some(("org", org_id)), detail },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes an org: every membership ends, every key is revoked, pending invitations are
    /// revoked. The org row and its audit log stay. Returns the ids of the revoked keys.
    pub async fn delete_org(&self, org_id: &str, ctx: &Ctx) -> Result<Vec<String>> {
        let mut tx = self.write_in(Scope::Org(org_id)).await?;
        self.lock_org(&mut tx, org_id).await?;
        let members: Vec<String> = sqlx::query_scalar("SELECT user_id FROM org_members WHERE org_id = $1")
            .bind(org_id)
            .fetch_all(&mut *tx)
            .await?;
        let revoked: Vec<String> =
            sqlx::query_scalar("SELECT id FROM api_keys WHERE org_id = $1 AND revoked_at IS NULL")
                .bind(org_id)
                .fetch_all(&mut *tx)
                .await?;
        let revoked = self.revoke_keys(&mut tx, org_id, &revoked, ctx).await?;
        for user in &members {
            reset_active_workspace(self, &mut tx, org_id, user).await?;
        }
        for sql in ["DELETE FROM workspace_members WHERE org_id = $1", "DELETE FROM org_members WHERE org_id = $1"] {
            sqlx::query(sql).bind(org_id).execute(&mut *tx).await?;
        }
        sqlx::query(
            "UPDATE invitations SET status = 'revoked', closed_at = $1 WHERE org_id = $2 AND status = 'pending'",
        )
        .bind(ctx.now)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE orgs SET deleted_at = $1 WHERE id = $2")
            .bind(ctx.now)
            .bind(org_id)
            .execute(&mut *tx)
            .await?;
        let detail = json!({"members": members.len(), "keys_revoked": revoked.len()});
        record(
            &mut tx,
            ctx,
            Entry { org_id, action: "org.deleted", workspace_id: None, target: Some(("org", org_id)), detail },
        )
        .await?;
        tx.commit().await?;
        Ok(revoked)
    }
}

//! Workspaces and their members.

use serde_json::json;
use sqlx::Row;

use crate::audit::{Entry, record};
use crate::members::member_role;
use crate::models::{org_cols, ws_cols};
use crate::plans::plan_in_tx;
use crate::scope::{Cross, Owner, Scope};
use crate::users::insert_workspace;
use roost_domain::Catalog;
use sqlx::AssertSqlSafe;

use crate::{
    Ctx, Limit, Member, Org, Page, Result, Rule, Store, StoreError, Workspace, WorkspaceAccess, count, finish_page,
    page,
};

impl Store {
    /// A workspace, its org, and what `user_id` is in both; `None` unless the user is a member of
    /// the (live) org.
    pub async fn workspace_access(&self, workspace_id: &str, user_id: &str) -> Result<Option<WorkspaceAccess>> {
        let mut c = self.scoped(Scope::Of(Owner::Workspace, workspace_id)).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            ws_cols!(),
            ", ",
            org_cols!(),
            ", m.role AS org_role, wm.role AS ws_role FROM workspaces w \
             JOIN orgs o ON o.id = w.org_id AND o.deleted_at IS NULL \
             JOIN org_members m ON m.org_id = w.org_id AND m.user_id = $2 \
             LEFT JOIN workspace_members wm ON wm.workspace_id = w.id AND wm.user_id = $2 \
             WHERE w.id = $1"
        ))
        .bind(workspace_id)
        .bind(user_id)
        .fetch_optional(&mut *c)
        .await?;
        c.done().await?;
        row.map(|r| {
            Ok(WorkspaceAccess {
                workspace: Workspace::from_row(&r)?,
                org: Org::from_row(&r)?,
                org_role: r.try_get("org_role")?,
                ws_role: r.try_get("ws_role")?,
            })
        })
        .transpose()
    }

    /// A workspace and its live org.
    pub async fn workspace_by_id(&self, workspace_id: &str) -> Result<Option<(Workspace, Org)>> {
        let mut c = self.scoped(Scope::Of(Owner::Workspace, workspace_id)).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            ws_cols!(),
            ", ",
            org_cols!(),
            " FROM workspaces w JOIN orgs o ON o.id = w.org_id AND o.deleted_at IS NULL WHERE w.id = $1"
        ))
        .bind(workspace_id)
        .fetch_optional(&mut *c)
        .await?;
        c.done().await?;
        row.map(|r| Ok((Workspace::from_row(&r)?, Org::from_row(&r)?))).transpose()
    }

    /// Creates a workspace unless the org already has as many as its plan allows; the creator
    /// becomes its admin.
    pub async fn create_workspace(
        &self,
        org_id: &str,
        id: &str,
        name: &str,
        catalog: &Catalog,
        ctx: &Ctx,
    ) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(org_id)).await?;
        self.lock_org(&mut tx, org_id).await?;
        let max = plan_in_tx(&mut tx, org_id, catalog).await?.max_workspaces;
        let n = count(&mut tx, "SELECT COUNT(*) FROM workspaces WHERE org_id = $1", org_id).await?;
        if max.is_some_and(|m| n >= m) {
            return Err(StoreError::Limit(Limit::MaxWorkspaces));
        }
        insert_workspace(&mut tx, org_id, id, name, false, false, &ctx.actor.id, ctx.now).await?;
        let detail = json!({"name": name});
        let e = Entry {
            org_id,
            action: "workspace.created",
            workspace_id: Some(id),
            target: Some(("workspace", id)),
            detail,
        };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// An org's workspaces, by id; with `member`, only the ones that user was added to.
    pub async fn list_workspaces(
        &self,
        org_id: &str,
        member: Option<&str>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Workspace>> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let (fetch, after) = page(limit, cursor);
        let rows = sqlx::query(concat!(
            "SELECT ",
            ws_cols!(),
            " FROM workspaces w WHERE w.org_id = $1 AND w.id > $2 \
             AND ($3 = '' OR EXISTS (SELECT 1 FROM workspace_members wm WHERE wm.workspace_id = w.id AND wm.user_id = $3)) \
             ORDER BY w.id LIMIT $4"
        ))
        .bind(org_id)
        .bind(after)
        .bind(member.unwrap_or(""))
        .bind(fetch)
        .fetch_all(&mut *c)
        .await?;
        c.done().await?;
        let items = rows.iter().map(Workspace::from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, fetch, |w| w.id.clone()))
    }

    /// Renames a workspace.
    pub async fn rename_workspace(&self, ws: &Workspace, name: &str, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(&ws.org_id)).await?;
        // Audited: the org lock first, as every writer of its audit chain takes it.
        self.lock_org(&mut tx, &ws.org_id).await?;
        sqlx::query("UPDATE workspaces SET name = $1 WHERE org_id = $2 AND id = $3")
            .bind(name)
            .bind(&ws.org_id)
            .bind(&ws.id)
            .execute(&mut *tx)
            .await?;
        let detail = json!({"from": ws.name, "to": name});
        let e = Entry {
            org_id: &ws.org_id,
            action: "workspace.updated",
            workspace_id: Some(&ws.id),
            target: Some(("workspace", &ws.id)),
            detail,
        };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a workspace with its members and resources, revoking its keys. The primary and
    /// personal workspaces are protected. Returns the revoked key ids.
    pub async fn delete_workspace(&self, ws: &Workspace, ctx: &Ctx) -> Result<Vec<String>> {
        if ws.primary || ws.personal {
            return Err(Rule::WorkspaceProtected.into());
        }
        let (org_id, id) = (ws.org_id.as_str(), ws.id.as_str());
        let mut tx = self.write_in(Scope::Org(org_id)).await?;
        self.lock_org(&mut tx, org_id).await?;
        let revoked: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM api_keys WHERE org_id = $1 AND workspace_id = $2 AND revoked_at IS NULL",
        )
        .bind(org_id)
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let revoked = self.revoke_keys(&mut tx, org_id, &revoked, ctx).await?;
        // Whoever was working in it lands in their personal workspace.
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE users SET active_workspace_id = {} WHERE active_workspace_id = $1",
            self.cross(Cross::PersonalWorkspace)
        )))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        for sql in [
            "DELETE FROM workspace_members WHERE org_id = $1 AND workspace_id = $2",
            "DELETE FROM resources WHERE org_id = $1 AND workspace_id = $2",
            "DELETE FROM workspaces WHERE org_id = $1 AND id = $2",
        ] {
            sqlx::query(sql).bind(org_id).bind(id).execute(&mut *tx).await?;
        }
        let detail = json!({"name": ws.name, "keys_revoked": revoked});
        let e = Entry {
            org_id,
            action: "workspace.deleted",
            workspace_id: Some(id),
            target: Some(("workspace", id)),
            detail,
        };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// A workspace's members, by user id.
    pub async fn list_ws_members(&self, workspace_id: &str, limit: u32, cursor: Option<&str>) -> Result<Page<Member>> {
        let mut c = self.scoped(Scope::Of(Owner::Workspace, workspace_id)).await?;
        let (fetch, after) = page(limit, cursor);
        let rows = sqlx::query(
            "SELECT wm.user_id, u.email, u.name, wm.role FROM workspace_members wm JOIN users u ON u.id = wm.user_id \
             WHERE wm.workspace_id = $1 AND wm.user_id > $2 ORDER BY wm.user_id LIMIT $3",
        )
        .bind(workspace_id)
        .bind(after)
        .bind(fetch)
        .fetch_all(&mut *c)
        .await?;
        c.done().await?;
        let items = rows.iter().map(Member::from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, fetch, |m| m.user_id.clone()))
    }

    /// Adds an org member to a workspace, or changes their role there.
    /// A member demoted to viewer loses the keys they made here; returns their ids.
    pub async fn put_ws_member(&self, ws: &Workspace, user_id: &str, role: &str, ctx: &Ctx) -> Result<Vec<String>> {
        let mut tx = self.write_in(Scope::Org(&ws.org_id)).await?;
        self.lock_org(&mut tx, &ws.org_id).await?;
        member_role(&mut tx, &ws.org_id, user_id).await?.ok_or(Rule::NotOrgMember)?;
        workspace_exists(&mut tx, &ws.org_id, &ws.id).await?;
        let old: Option<String> =
            sqlx::query_scalar("SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2")
                .bind(&ws.id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        sqlx::query(
            "INSERT INTO workspace_members (org_id, workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (org_id, workspace_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(&ws.org_id)
        .bind(&ws.id)
        .bind(user_id)
        .bind(role)
        .bind(ctx.now)
        .execute(&mut *tx)
        .await?;
        let detail = json!({"from": old, "to": role, "scope": "workspace"});
        let e = Entry {
            org_id: &ws.org_id,
            action: "member.role_changed",
            workspace_id: Some(&ws.id),
            target: Some(("user", user_id)),
            detail,
        };
        record(&mut tx, ctx, e).await?;
        let revoked = self.revoke_lost_keys(&mut tx, &ws.org_id, user_id, ctx).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// Takes a user out of a workspace (they stay in the org). Unless their org role still lets
    /// them in, the keys they created there are revoked; returns those key ids.
    pub async fn delete_ws_member(&self, ws: &Workspace, user_id: &str, ctx: &Ctx) -> Result<Vec<String>> {
        let mut tx = self.write_in(Scope::Org(&ws.org_id)).await?;
        self.lock_org(&mut tx, &ws.org_id).await?;
        let done =
            sqlx::query("DELETE FROM workspace_members WHERE org_id = $1 AND workspace_id = $2 AND user_id = $3")
                .bind(&ws.org_id)
                .bind(&ws.id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let revoked = self.revoke_lost_keys(&mut tx, &ws.org_id, user_id, ctx).await?;
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE users SET active_workspace_id = {} WHERE id = $1 AND active_workspace_id = $2",
            self.cross(Cross::PersonalWorkspace)
        )))
        .bind(user_id)
        .bind(&ws.id)
        .execute(&mut *tx)
        .await?;
        let e = Entry {
            org_id: &ws.org_id,
            action: "member.removed",
            workspace_id: Some(&ws.id),
            target: Some(("user", user_id)),
            detail: json!({"scope": "workspace", "keys_revoked": revoked}),
        };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(revoked)
    }
}

/// NotFound unless the workspace still exists (call under the org lock, so it cannot be deleted
/// before the change commits).
pub(crate) async fn workspace_exists(tx: &mut sqlx::AnyConnection, org_id: &str, id: &str) -> Result<()> {
    let found: Option<String> = sqlx::query_scalar("SELECT id FROM workspaces WHERE org_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    found.map(|_| ()).ok_or(StoreError::NotFound)
}

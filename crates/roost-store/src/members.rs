//! An org's members: their roles, their removal and the org's ownership.

use crate::events::insert_event;
use crate::scope::{Cross, Scope};
use roost_domain::ledger::EventType;
use serde_json::json;
use sqlx::AnyConnection;

use crate::audit::{Entry, record};
use crate::{Ctx, Member, Page, Result, Rule, Store, StoreError, finish_page, page};

impl Store {
    /// The org's members, by user id.
    pub async fn list_members(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> Result<Page<Member>> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let (fetch, after) = page(limit, cursor);
        let rows = sqlx::query(
            "SELECT m.user_id, u.email, u.name, m.role FROM org_members m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1 AND m.user_id > $2 ORDER BY m.user_id LIMIT $3",
        )
        .bind(org_id)
        .bind(after)
        .bind(fetch)
        .fetch_all(&mut *c)
        .await?;
        c.done().await?;
        let items = rows.iter().map(Member::from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, fetch, |m| m.user_id.clone()))
    }

    /// One member of the org.
    pub async fn org_member(&self, org_id: &str, user_id: &str) -> Result<Option<Member>> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let row = sqlx::query(
            "SELECT m.user_id, u.email, u.name, m.role FROM org_members m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1 AND m.user_id = $2",
        )
        .bind(org_id)
        .bind(user_id)
        .fetch_optional(&mut *c)
        .await?;
        c.done().await?;
        Ok(row.as_ref().map(Member::from_row).transpose()?)
    }

    /// Changes a member's org role. The owner's role is changed only by a transfer; only the owner
    /// grants or takes away admin and billing. The acting user's own role is read under the lock, so
    /// someone demoted meanwhile cannot act on their old role. Keys the member can no longer use
    /// are revoked; returns their ids.
    pub async fn set_member_role(&self, org_id: &str, user_id: &str, role: &str, ctx: &Ctx) -> Result<Vec<String>> {
        let mut tx = self.write_in(Scope::Org(org_id)).await?;
        self.lock_org(&mut tx, org_id).await?;
        let old = member_role(&mut tx, org_id, user_id).await?.ok_or(StoreError::NotFound)?;
        if old == "owner" {
            return Err(Rule::OwnerCannotBeRemoved.into());
        }
        let by_owner = actor_manages_members(&mut tx, org_id, ctx).await?;
        if !by_owner && (matches!(old.as_str(), "admin" | "billing") || matches!(role, "admin" | "billing")) {
            return Err(Rule::NotOwner.into());
        }
        sqlx::query("UPDATE org_members SET role = $1 WHERE org_id = $2 AND user_id = $3")
            .bind(role)
            .bind(org_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let detail = json!({"from": old, "to": role});
        let e = Entry {
            org_id,
            action: "member.role_changed",
            workspace_id: None,
            target: Some(("user", user_id)),
            detail,
        };
        record(&mut tx, ctx, e).await?;
        let revoked = self.revoke_lost_keys(&mut tx, org_id, user_id, ctx).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// Removes a member (or lets one leave): their workspace memberships end and the keys they
    /// created in this org are revoked. Only the owner removes admins and billing members; the
    /// acting user's own role is read under the lock. Returns the revoked key ids.
    pub async fn remove_member(&self, org_id: &str, user_id: &str, ctx: &Ctx) -> Result<Vec<String>> {
        let mut tx = self.write_in(Scope::Org(org_id)).await?;
        self.lock_org(&mut tx, org_id).await?;
        let role = member_role(&mut tx, org_id, user_id).await?.ok_or(StoreError::NotFound)?;
        if role == "owner" {
            return Err(Rule::OwnerCannotBeRemoved.into());
        }
        let leaving = ctx.actor.id == user_id;
        let by_owner = leaving || actor_manages_members(&mut tx, org_id, ctx).await?;
        if !by_owner && !leaving && matches!(role.as_str(), "admin" | "billing") {
            return Err(Rule::NotOwner.into());
        }
        reset_active_workspace(self, &mut tx, org_id, user_id).await?;
        for sql in [
            "DELETE FROM workspace_members WHERE org_id = $1 AND user_id = $2",
            "DELETE FROM org_members WHERE org_id = $1 AND user_id = $2",
        ] {
            sqlx::query(sql).bind(org_id).bind(user_id).execute(&mut *tx).await?;
        }
        let revoked = self.revoke_lost_keys(&mut tx, org_id, user_id, ctx).await?;
        let detail = json!({"role": role, "keys_revoked": revoked, "left": leaving});
        let e = Entry { org_id, action: "member.removed", workspace_id: None, target: Some(("user", user_id)), detail };
        record(&mut tx, ctx, e).await?;
        let data = json!({"user_id": user_id, "role": role, "left": leaving});
        insert_event(&mut tx, org_id, EventType::MemberRemoved, None, data, ctx.now).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// Hands ownership to another member; the old owner becomes an admin.
    pub async fn transfer_ownership(&self, org_id: &str, to: &str, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(org_id)).await?;
        self.lock_org(&mut tx, org_id).await?;
        let old_owner: String =
            sqlx::query_scalar("SELECT owner_id FROM orgs WHERE id = $1").bind(org_id).fetch_one(&mut *tx).await?;
        // Checked under the lock: of several concurrent transfers, only the first is the owner's.
        if old_owner != ctx.actor.id {
            return Err(Rule::NotOwner.into());
        }
        member_role(&mut tx, org_id, to).await?.ok_or(Rule::NotOrgMember)?;
        if old_owner == to {
            return Ok(());
        }
        for (user, role) in [(old_owner.as_str(), "admin"), (to, "owner")] {
            sqlx::query("UPDATE org_members SET role = $1 WHERE org_id = $2 AND user_id = $3")
                .bind(role)
                .bind(org_id)
                .bind(user)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE orgs SET owner_id = $1 WHERE id = $2").bind(to).bind(org_id).execute(&mut *tx).await?;
        let detail = json!({"from": old_owner, "to": to});
        let e =
            Entry { org_id, action: "ownership.transferred", workspace_id: None, target: Some(("user", to)), detail };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(())
    }
}

pub(crate) async fn member_role(tx: &mut AnyConnection, org_id: &str, user_id: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT role FROM org_members WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?)
}

/// Whether the acting user is the owner (`true`) or an admin (`false`), read under the org lock;
/// anyone else may not manage members (their role may have changed since the request began).
async fn actor_manages_members(tx: &mut AnyConnection, org_id: &str, ctx: &Ctx) -> Result<bool> {
    match member_role(tx, org_id, &ctx.actor.id).await?.as_deref() {
        Some("owner") => Ok(true),
        Some("admin") => Ok(false),
        _ => Err(Rule::NotAllowed.into()),
    }
}

/// Sends a user whose active workspace is in `org_id` back to their personal workspace.
pub(crate) async fn reset_active_workspace(
    store: &Store,
    tx: &mut AnyConnection,
    org_id: &str,
    user_id: &str,
) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE users SET active_workspace_id = {} WHERE id = $1 AND active_workspace_id IN (SELECT id FROM workspaces WHERE org_id = $2)",
        store.cross(Cross::PersonalWorkspace)
    )))
    .bind(user_id)
    .bind(org_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

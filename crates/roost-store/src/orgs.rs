//! Organizations, their members, plans and ownership.

use serde_json::json;
use sqlx::AnyConnection;
use sqlx::Row;

use crate::audit::{Entry, record};
use crate::models::{org_cols, personal_ws_of_user};
use crate::users::{Membership, insert_workspace};
use crate::{Ctx, Limit, Member, Org, Page, Result, Rule, Store, StoreError, count, finish_page, page};
use roost_domain::plans::Usage;
use roost_domain::{Catalog, Plan};

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
        let mut tx = self.write().await?;
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
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|r| Ok(Membership { org: Org::from_row(r)?, role: r.try_get("role")? }))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(finish_page(items, fetch, |m| m.org.id.clone()))
    }

    /// The org and the user's role in it, if the org is live and the user a member.
    pub async fn org_access(&self, org_id: &str, user_id: &str) -> Result<Option<Membership>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            org_cols!(),
            ", m.role FROM orgs o JOIN org_members m ON m.org_id = o.id AND m.user_id = $2 \
             WHERE o.id = $1 AND o.deleted_at IS NULL"
        ))
        .bind(org_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
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
        let mut tx = self.write().await?;
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

    /// Moves an org to `plan`, refusing if what the org uses now exceeds the plan's limits.
    /// With `trial_ends_at`, the plan starts as the org's one trial.
    pub async fn change_plan(&self, org_id: &str, plan: &Plan, trial_ends_at: Option<i64>, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write().await?;
        self.lock_org(&mut tx, org_id).await?;
        if trial_ends_at.is_some() {
            let used: i64 = sqlx::query_scalar("SELECT trial_used FROM orgs WHERE id = $1")
                .bind(org_id)
                .fetch_one(&mut *tx)
                .await?;
            if used != 0 {
                return Err(Rule::TrialUsed.into());
            }
        }
        let old: String =
            sqlx::query_scalar("SELECT plan FROM orgs WHERE id = $1").bind(org_id).fetch_one(&mut *tx).await?;
        let usage = usage(&mut tx, org_id).await?;
        if let Some(limit) = plan.exceeded_by(&usage) {
            return Err(StoreError::Limit(limit));
        }
        sqlx::query(
            // The plan start always moves forward, so the ledger sees every change as a new cycle
            // anchor, even two changes within one millisecond.
            "UPDATE orgs SET plan = $1, \
             plan_started_at = CASE WHEN $2 > plan_started_at THEN $2 ELSE plan_started_at + 1 END, \
             trial_ends_at = $3, trial_used = CASE WHEN $3 IS NULL THEN trial_used ELSE 1 END WHERE id = $4",
        )
        .bind(&plan.id)
        .bind(ctx.now)
        .bind(trial_ends_at)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
        let detail = json!({"from": old, "to": plan.id, "trial_ends_at": trial_ends_at});
        record(
            &mut tx,
            ctx,
            Entry { org_id, action: "plan.changed", workspace_id: None, target: Some(("org", org_id)), detail },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes an org: every membership ends, every key is revoked, pending invitations are
    /// revoked. The org row and its audit log stay. Returns the ids of the revoked keys.
    pub async fn delete_org(&self, org_id: &str, ctx: &Ctx) -> Result<Vec<String>> {
        let mut tx = self.write().await?;
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
            reset_active_workspace(&mut tx, org_id, user).await?;
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

    /// The org's members, by user id.
    pub async fn list_members(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> Result<Page<Member>> {
        let (fetch, after) = page(limit, cursor);
        let rows = sqlx::query(
            "SELECT m.user_id, u.email, u.name, m.role FROM org_members m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1 AND m.user_id > $2 ORDER BY m.user_id LIMIT $3",
        )
        .bind(org_id)
        .bind(after)
        .bind(fetch)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(Member::from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, fetch, |m| m.user_id.clone()))
    }

    /// One member of the org.
    pub async fn org_member(&self, org_id: &str, user_id: &str) -> Result<Option<Member>> {
        let row = sqlx::query(
            "SELECT m.user_id, u.email, u.name, m.role FROM org_members m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1 AND m.user_id = $2",
        )
        .bind(org_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(Member::from_row).transpose()?)
    }

    /// Changes a member's org role. The owner's role is changed only by a transfer; only the owner
    /// grants or takes away admin and billing. The acting user's own role is read under the lock, so
    /// someone demoted meanwhile cannot act on their old role. Keys the member can no longer use
    /// are revoked; returns their ids.
    pub async fn set_member_role(&self, org_id: &str, user_id: &str, role: &str, ctx: &Ctx) -> Result<Vec<String>> {
        let mut tx = self.write().await?;
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
        let mut tx = self.write().await?;
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
        reset_active_workspace(&mut tx, org_id, user_id).await?;
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
        tx.commit().await?;
        Ok(revoked)
    }

    /// Hands ownership to another member; the old owner becomes an admin.
    pub async fn transfer_ownership(&self, org_id: &str, to: &str, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write().await?;
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

    /// What an org uses now: members, workspaces, resources per kind.
    pub async fn org_usage(&self, org_id: &str) -> Result<Usage> {
        let mut conn = self.pool.acquire().await?;
        usage(&mut conn, org_id).await
    }
}

pub(crate) async fn member_role(tx: &mut AnyConnection, org_id: &str, user_id: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT role FROM org_members WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?)
}

pub(crate) async fn usage(tx: &mut AnyConnection, org_id: &str) -> Result<Usage> {
    let members = count(tx, "SELECT COUNT(*) FROM org_members WHERE org_id = $1", org_id).await?;
    let workspaces = count(tx, "SELECT COUNT(*) FROM workspaces WHERE org_id = $1", org_id).await?;
    let rows = sqlx::query("SELECT kind, COUNT(*) AS n FROM resources WHERE org_id = $1 GROUP BY kind")
        .bind(org_id)
        .fetch_all(&mut *tx)
        .await?;
    let mut resources = std::collections::BTreeMap::new();
    for r in rows {
        let n: i64 = r.try_get("n")?;
        resources.insert(r.try_get("kind")?, u32::try_from(n).unwrap_or(u32::MAX));
    }
    Ok(Usage { members, workspaces, resources })
}

/// The org's plan as of this transaction (call after `lock_org`, so no plan change can slip in).
pub(crate) async fn plan_in_tx<'c>(tx: &mut AnyConnection, org_id: &str, catalog: &'c Catalog) -> Result<&'c Plan> {
    let plan: Option<String> = sqlx::query_scalar("SELECT plan FROM orgs WHERE id = $1 AND deleted_at IS NULL")
        .bind(org_id)
        .fetch_optional(&mut *tx)
        .await?;
    let plan = plan.ok_or(StoreError::NotFound)?;
    catalog.get(&plan).ok_or_else(|| StoreError::Setup(format!("org {org_id} is on unknown plan {plan}")))
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

/// Checks that one more member fits the org's plan.
pub(crate) fn check_seat(plan: &Plan, members: u32) -> Result<()> {
    if plan.seat_available(members) { Ok(()) } else { Err(StoreError::Limit(Limit::MaxSeats)) }
}

/// Sends a user whose active workspace is in `org_id` back to their personal workspace.
pub(crate) async fn reset_active_workspace(tx: &mut AnyConnection, org_id: &str, user_id: &str) -> Result<()> {
    sqlx::query(concat!(
        "UPDATE users SET active_workspace_id = ",
        personal_ws_of_user!(),
        " WHERE id = $1 AND active_workspace_id IN (SELECT id FROM workspaces WHERE org_id = $2)"
    ))
    .bind(user_id)
    .bind(org_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl Store {
    /// Revokes keys and forgets their secrets, auditing each key actually revoked here (a key
    /// revoked concurrently is skipped). Returns the ids revoked.
    pub(crate) async fn revoke_keys(
        &self,
        tx: &mut AnyConnection,
        org_id: &str,
        ids: &[String],
        ctx: &Ctx,
    ) -> Result<Vec<String>> {
        let mut revoked = Vec::new();
        for id in ids {
            let workspace: Option<String> = sqlx::query_scalar(
                "UPDATE api_keys SET revoked_at = $1 WHERE org_id = $2 AND id = $3 AND revoked_at IS NULL RETURNING workspace_id",
            )
            .bind(ctx.now)
            .bind(org_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(workspace) = workspace else { continue };
            sqlx::query("DELETE FROM api_key_secrets WHERE key_id = $1").bind(id).execute(&mut *tx).await?;
            self.notify_key_change(tx, id).await?;
            let e = Entry {
                org_id,
                action: "key.revoked",
                workspace_id: Some(&workspace),
                target: Some(("key", id)),
                detail: json!({}),
            };
            record(tx, ctx, e).await?;
            revoked.push(id.clone());
        }
        Ok(revoked)
    }

    /// Revokes the keys `user_id` created in workspaces of `org_id` they may no longer use: a key
    /// acts with its creator's standing, so it must not outlive it. Returns the ids revoked.
    pub(crate) async fn revoke_lost_keys(
        &self,
        tx: &mut AnyConnection,
        org_id: &str,
        user_id: &str,
        ctx: &Ctx,
    ) -> Result<Vec<String>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT k.id FROM api_keys k WHERE k.org_id = $1 AND k.created_by = $2 AND k.revoked_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM org_members m WHERE m.org_id = k.org_id AND m.user_id = $2 AND m.role IN ('owner', 'admin')) \
             AND NOT EXISTS (SELECT 1 FROM workspace_members wm WHERE wm.org_id = k.org_id AND wm.workspace_id = k.workspace_id \
                             AND wm.user_id = $2 AND wm.role IN ('admin', 'member'))",
        )
        .bind(org_id)
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        self.revoke_keys(tx, org_id, &ids, ctx).await
    }

    /// Queues the cross-process notice that a key changed (PostgreSQL), inside `tx`.
    pub(crate) async fn notify_key_change(&self, tx: &mut AnyConnection, key_id: &str) -> Result<()> {
        if let Some(sql) = self.dialect.notify_key_change() {
            sqlx::query(sql).bind(key_id).execute(&mut *tx).await?;
        }
        Ok(())
    }
}

//! Invitations: claim tokens that let one email address join an org.

use crate::events::insert_event;
use crate::scope::{Owner, Scope};
use roost_domain::ledger::EventType;
use serde_json::json;

use crate::audit::{Entry, record};
use crate::members::member_role;
use crate::plans::{check_seat, plan_in_tx};
use crate::{Ctx, Invitation, NewMail, Page, Result, Rule, Store, StoreError, count, finish_page, page};
use roost_domain::Catalog;

/// A new invitation, as the caller decided it.
#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub role: String,
    /// `[{"workspace_id": …, "role": …}]` as JSON; the caller checked the workspaces.
    pub workspaces: String,
    pub token_hash: String,
    pub expires_at: i64,
}

/// What accepting an invitation did.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub org_id: String,
    pub workspace_ids: Vec<String>,
    /// Keys of the user revoked because a grant lowered their role.
    pub revoked_keys: Vec<String>,
}

impl Store {
    /// Records an invitation unless the org's seats are already full.
    pub async fn create_invitation(&self, inv: &NewInvitation, catalog: &Catalog, ctx: &Ctx) -> Result<()> {
        self.create_invitation_with_mail(inv, None, catalog, ctx).await
    }

    /// [`Store::create_invitation`], queueing the invitation's mail in the same transaction: the
    /// mail goes out only if the invitation exists.
    pub async fn create_invitation_with_mail(
        &self,
        inv: &NewInvitation,
        mail: Option<&NewMail>,
        catalog: &Catalog,
        ctx: &Ctx,
    ) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(&inv.org_id)).await?;
        self.lock_org(&mut tx, &inv.org_id).await?;
        seat_check(&mut tx, &inv.org_id, catalog).await?;
        sqlx::query(
            "INSERT INTO invitations (org_id, id, email, role, workspaces, token_hash, invited_by, status, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9)",
        )
        .bind(&inv.org_id)
        .bind(&inv.id)
        .bind(&inv.email)
        .bind(&inv.role)
        .bind(&inv.workspaces)
        .bind(&inv.token_hash)
        .bind(&ctx.actor.id)
        .bind(ctx.now)
        .bind(inv.expires_at)
        .execute(&mut *tx)
        .await?;
        let detail = json!({"email": inv.email, "role": inv.role, "invitation_id": inv.id});
        let e = Entry {
            org_id: &inv.org_id,
            action: "member.invited",
            workspace_id: None,
            target: Some(("invitation", &inv.id)),
            detail,
        };
        record(&mut tx, ctx, e).await?;
        if let Some(m) = mail {
            crate::mail::enqueue(&mut tx, m, false, ctx.now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The org's invitations that are still pending, by id.
    pub async fn list_invitations(
        &self,
        org_id: &str,
        now: i64,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Invitation>> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let (fetch, after) = page(limit, cursor);
        let sql = "SELECT id, org_id, email, role, workspaces, invited_by, status, created_at, expires_at FROM invitations \
                   WHERE org_id = $1 AND status = 'pending' AND expires_at > $2 AND id > $3 ORDER BY id LIMIT $4";
        let rows = sqlx::query(sql).bind(org_id).bind(now).bind(after).bind(fetch).fetch_all(&mut *c).await?;
        c.done().await?;
        let items = rows.iter().map(Invitation::from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, fetch, |i| i.id.clone()))
    }

    /// Revokes a pending invitation.
    pub async fn revoke_invitation(&self, org_id: &str, id: &str, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(org_id)).await?;
        // Audited: the org lock first, as every writer of its audit chain takes it.
        self.lock_org(&mut tx, org_id).await?;
        let done = sqlx::query(
            "UPDATE invitations SET status = 'revoked', closed_at = $1 WHERE org_id = $2 AND id = $3 AND status = 'pending'",
        )
        .bind(ctx.now)
        .bind(org_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let e = Entry {
            org_id,
            action: "invitation.revoked",
            workspace_id: None,
            target: Some(("invitation", id)),
            detail: json!({}),
        };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Accepts an invitation for the user `user_id` whose email is `email`: one use only, before
    /// it expires, by the address it was sent to, and only while a seat is free.
    pub async fn accept_invitation(
        &self,
        token_hash: &str,
        user_id: &str,
        email: &str,
        catalog: &Catalog,
        ctx: &Ctx,
    ) -> Result<Accepted> {
        let mut tx = self.write_in(Scope::Of(Owner::InvitationToken, token_hash)).await?;
        let row = sqlx::query(
            "SELECT i.id, i.org_id, i.email, i.role, i.workspaces, i.invited_by, i.status, i.created_at, i.expires_at \
             FROM invitations i JOIN orgs o ON o.id = i.org_id AND o.deleted_at IS NULL WHERE i.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let inv = row.as_ref().map(Invitation::from_row).transpose()?.ok_or(Rule::InvitationInvalid)?;
        self.lock_org(&mut tx, &inv.org_id).await?;
        // Re-read under the lock: a concurrent accept of the same token must lose.
        let status: String = sqlx::query_scalar("SELECT status FROM invitations WHERE id = $1")
            .bind(&inv.id)
            .fetch_one(&mut *tx)
            .await?;
        if status != "pending" || inv.expires_at <= ctx.now {
            return Err(Rule::InvitationInvalid.into());
        }
        if inv.email != email {
            return Err(Rule::InvitationEmailMismatch.into());
        }
        let already = member_role(&mut tx, &inv.org_id, user_id).await?.is_some();
        if !already {
            seat_check(&mut tx, &inv.org_id, catalog).await?;
            sqlx::query("INSERT INTO org_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&inv.org_id)
                .bind(user_id)
                .bind(&inv.role)
                .bind(ctx.now)
                .execute(&mut *tx)
                .await?;
        }
        let grants: Vec<serde_json::Value> = serde_json::from_str(&inv.workspaces).unwrap_or_default();
        let mut workspace_ids = Vec::new();
        for g in &grants {
            let (Some(ws), Some(role)) = (g["workspace_id"].as_str(), g["role"].as_str()) else { continue };
            // A workspace deleted since the invitation was sent is skipped.
            let added = sqlx::query(
                "INSERT INTO workspace_members (org_id, workspace_id, user_id, role, created_at) \
                 SELECT org_id, id, $1, $2, $3 FROM workspaces WHERE org_id = $4 AND id = $5 \
                 ON CONFLICT (org_id, workspace_id, user_id) DO UPDATE SET role = excluded.role",
            )
            .bind(user_id)
            .bind(role)
            .bind(ctx.now)
            .bind(&inv.org_id)
            .bind(ws)
            .execute(&mut *tx)
            .await?;
            if added.rows_affected() > 0 {
                workspace_ids.push(ws.to_string());
            }
        }
        sqlx::query("UPDATE invitations SET status = 'accepted', closed_at = $1 WHERE id = $2")
            .bind(ctx.now)
            .bind(&inv.id)
            .execute(&mut *tx)
            .await?;
        // A grant may have lowered a role the user already had (say, member → viewer).
        let revoked = self.revoke_lost_keys(&mut tx, &inv.org_id, user_id, ctx).await?;
        let detail = json!({"role": inv.role, "invitation_id": inv.id, "workspace_ids": workspace_ids});
        let e = Entry {
            org_id: &inv.org_id,
            action: "member.joined",
            workspace_id: None,
            target: Some(("user", user_id)),
            detail,
        };
        record(&mut tx, ctx, e).await?;
        let data = json!({"user_id": user_id, "role": inv.role, "workspace_ids": workspace_ids});
        insert_event(&mut tx, &inv.org_id, EventType::MemberJoined, None, data, ctx.now).await?;
        tx.commit().await?;
        Ok(Accepted { org_id: inv.org_id, workspace_ids, revoked_keys: revoked })
    }
}

pub(crate) async fn seat_check(tx: &mut sqlx::AnyConnection, org_id: &str, catalog: &Catalog) -> Result<()> {
    let plan = plan_in_tx(tx, org_id, catalog).await?;
    let members = count(tx, "SELECT COUNT(*) FROM org_members WHERE org_id = $1", org_id).await?;
    check_seat(plan, members)
}

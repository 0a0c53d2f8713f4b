//! Verified domains: an org's claims on mail domains, their verification, and people joining an
//! org (or seeing it suggested) because their verified address is at one of its domains.

use roost_domain::Catalog;
use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::audit::{Entry, record};
use crate::invitations::seat_check;
use crate::scope::Scope;
use crate::{Ctx, Org, Page, Result, Rule, Store, StoreError, finish_page, page};

/// An org's claim on a mail domain.
#[derive(Debug, Clone)]
pub struct OrgDomain {
    pub id: String,
    pub org_id: String,
    pub domain: String,
    /// `auto_join` or `suggest`.
    pub mode: String,
    /// The org role people join with.
    pub role: String,
    /// The value the TXT record must carry (see `roost_domain::domains`).
    pub token: String,
    pub verified_at: Option<i64>,
    pub created_at: i64,
}

impl OrgDomain {
    fn from_row(r: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            org_id: r.try_get("org_id")?,
            domain: r.try_get("domain")?,
            mode: r.try_get("mode")?,
            role: r.try_get("role")?,
            token: r.try_get("token")?,
            verified_at: r.try_get("verified_at")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

const COLS: &str = "d.id, d.org_id, d.domain, d.mode, d.role, d.token, d.verified_at, d.created_at";

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Adds `user_id` to `org_id` with `role` if a seat is free (audited `member.joined` with `via`).
#[expect(clippy::too_many_arguments, reason = "one membership's parts and its audit context")]
async fn join(
    store: &Store,
    tx: &mut AnyConnection,
    org_id: &str,
    user_id: &str,
    role: &str,
    via: serde_json::Value,
    catalog: &Catalog,
    ctx: &Ctx,
) -> Result<()> {
    store.lock_org(tx, org_id).await?;
    seat_check(tx, org_id, catalog).await?;
    sqlx::query("INSERT INTO org_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
        .bind(org_id)
        .bind(user_id)
        .bind(role)
        .bind(ctx.now)
        .execute(&mut *tx)
        .await?;
    let detail = json!({"role": role, "via": via});
    let e = Entry { org_id, action: "member.joined", workspace_id: None, target: Some(("user", user_id)), detail };
    record(tx, ctx, e).await
}

impl Store {
    /// Records a domain claim (unverified). The same domain twice in one org: `domain_taken`.
    pub async fn add_domain(&self, d: &OrgDomain, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(&d.org_id)).await?;
        // Audited: the org lock first, as every writer of its audit chain takes it.
        self.lock_org(&mut tx, &d.org_id).await?;
        let inserted = sqlx::query(
            "INSERT INTO org_domains (id, org_id, domain, mode, role, token, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&d.id)
        .bind(&d.org_id)
        .bind(&d.domain)
        .bind(&d.mode)
        .bind(&d.role)
        .bind(&d.token)
        .bind(ctx.now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(Rule::DomainTaken.into()),
            other => other?,
        };
        let detail = json!({"domain": d.domain, "mode": d.mode, "role": d.role});
        let e = Entry {
            org_id: &d.org_id,
            action: "domain.added",
            workspace_id: None,
            target: Some(("domain", &d.id)),
            detail,
        };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One of the org's domain claims.
    pub async fn domain(&self, org_id: &str, id: &str) -> Result<Option<OrgDomain>> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let sql = format!("SELECT {COLS} FROM org_domains d WHERE d.org_id = $1 AND d.id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(org_id).bind(id).fetch_optional(&mut *c).await?;
        c.done().await?;
        Ok(row.as_ref().map(OrgDomain::from_row).transpose()?)
    }

    /// The org's domain claims, by id.
    pub async fn list_domains(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> Result<Page<OrgDomain>> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let (fetch, after) = page(limit, cursor);
        let sql = format!("SELECT {COLS} FROM org_domains d WHERE d.org_id = $1 AND d.id > $2 ORDER BY d.id LIMIT $3");
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(org_id).bind(after).bind(fetch).fetch_all(&mut *c).await?;
        c.done().await?;
        let items = rows.iter().map(OrgDomain::from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, fetch, |d| d.id.clone()))
    }

    /// Marks a claim verified (after its TXT record was seen). Verified for another org already:
    /// `domain_taken`.
    pub async fn mark_domain_verified(&self, org_id: &str, id: &str, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(org_id)).await?;
        // Audited: the org lock first, as every writer of its audit chain takes it.
        self.lock_org(&mut tx, org_id).await?;
        let done = sqlx::query(
            "UPDATE org_domains SET verified_at = $1 WHERE org_id = $2 AND id = $3 AND verified_at IS NULL",
        )
        .bind(ctx.now)
        .bind(org_id)
        .bind(id)
        .execute(&mut *tx)
        .await;
        match done {
            Err(e) if is_unique_violation(&e) => return Err(Rule::DomainTaken.into()),
            Ok(d) if d.rows_affected() == 0 => return Ok(()),
            other => other?,
        };
        let e = Entry {
            org_id,
            action: "domain.verified",
            workspace_id: None,
            target: Some(("domain", id)),
            detail: json!({}),
        };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a claim.
    pub async fn remove_domain(&self, org_id: &str, id: &str, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(org_id)).await?;
        // Audited: the org lock first, as every writer of its audit chain takes it.
        self.lock_org(&mut tx, org_id).await?;
        let done = sqlx::query("DELETE FROM org_domains WHERE org_id = $1 AND id = $2")
            .bind(org_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let e = Entry {
            org_id,
            action: "domain.removed",
            workspace_id: None,
            target: Some(("domain", id)),
            detail: json!({}),
        };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Live orgs with a verified claim on `domain` that `user_id` is not a member of, with the claim.
    pub async fn orgs_for_domain(&self, domain: &str, user_id: &str) -> Result<Vec<(Org, OrgDomain)>> {
        let mut c = self.scoped(Scope::DomainOrgs(domain)).await?;
        let sql = format!(
            "SELECT {}, d.id AS dom_id, d.domain, d.mode, d.role, d.token, d.verified_at, d.created_at AS dom_created_at \
             FROM org_domains d JOIN orgs o ON o.id = d.org_id AND o.deleted_at IS NULL \
             WHERE d.domain = $1 AND d.verified_at IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM org_members m WHERE m.org_id = d.org_id AND m.user_id = $2) ORDER BY o.id",
            crate::models::org_cols!()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(domain).bind(user_id).fetch_all(&mut *c).await?;
        c.done().await?;
        rows.iter()
            .map(|r| {
                let org = Org::from_row(r)?;
                let d = OrgDomain {
                    id: r.try_get("dom_id")?,
                    org_id: org.id.clone(),
                    domain: r.try_get("domain")?,
                    mode: r.try_get("mode")?,
                    role: r.try_get("role")?,
                    token: r.try_get("token")?,
                    verified_at: r.try_get("verified_at")?,
                    created_at: r.try_get("dom_created_at")?,
                };
                Ok((org, d))
            })
            .collect()
    }

    /// Claims the one-time domain match of a user: true the first time only.
    pub async fn claim_domain_match(&self, user_id: &str, now: i64) -> Result<bool> {
        let done = sqlx::query("UPDATE users SET domains_matched_at = $1 WHERE id = $2 AND domains_matched_at IS NULL")
            .bind(now)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Joins `user_id` to `org_id` with `role` because of a verified domain (`via` says how, for
    /// the audit log); a full org is [`crate::Limit::MaxSeats`], a member already `NotAllowed`.
    pub async fn join_by_domain(
        &self,
        org_id: &str,
        user_id: &str,
        role: &str,
        via: serde_json::Value,
        catalog: &Catalog,
        ctx: &Ctx,
    ) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(org_id)).await?;
        let member: Option<String> =
            sqlx::query_scalar("SELECT role FROM org_members WHERE org_id = $1 AND user_id = $2")
                .bind(org_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        if member.is_some() {
            return Err(Rule::NotAllowed.into());
        }
        join(self, &mut tx, org_id, user_id, role, via, catalog, ctx).await?;
        tx.commit().await?;
        Ok(())
    }
}

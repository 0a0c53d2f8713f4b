//! An org's plan: changing it, and what the org uses against the plan's limits (seats included).

use crate::events::insert_event;
use crate::scope::Scope;
use roost_domain::ledger::EventType;
use serde_json::json;
use sqlx::AnyConnection;
use sqlx::Row;

use crate::audit::{Entry, record};
use crate::{Ctx, Limit, Result, Rule, Store, StoreError, count};
use roost_domain::plans::Usage;
use roost_domain::{Catalog, Plan};

impl Store {
    /// Every plan some org is on, with how many orgs are on it: start-up checks that the catalog
    /// still offers each.
    pub async fn plans_in_use(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT plan, COUNT(*) AS n FROM orgs GROUP BY plan ORDER BY plan")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get::<String, _>("plan")?, r.try_get::<i64, _>("n")?))).collect()
    }

    /// Moves an org to `plan`, refusing if what the org uses now exceeds the plan's limits.
    /// With `trial_ends_at`, the plan starts as the org's one trial.
    pub async fn change_plan(&self, org_id: &str, plan: &Plan, trial_ends_at: Option<i64>, ctx: &Ctx) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(org_id)).await?;
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
        insert_event(&mut tx, org_id, EventType::PlanChanged, None, detail.clone(), ctx.now).await?;
        record(
            &mut tx,
            ctx,
            Entry { org_id, action: "plan.changed", workspace_id: None, target: Some(("org", org_id)), detail },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// What an org uses now: members, workspaces, resources per kind.
    pub async fn org_usage(&self, org_id: &str) -> Result<Usage> {
        let mut conn = self.scoped(Scope::Org(org_id)).await?;
        let u = usage(&mut conn, org_id).await?;
        conn.done().await?;
        Ok(u)
    }
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

/// Checks that one more member fits the org's plan.
pub(crate) fn check_seat(plan: &Plan, members: u32) -> Result<()> {
    if plan.seat_available(members) { Ok(()) } else { Err(StoreError::Limit(Limit::MaxSeats)) }
}

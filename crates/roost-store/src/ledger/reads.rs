//! What the API reads back of the ledger: wallets, holds, budgets, the journal, usage.

use std::collections::HashMap;

use roost_domain::ledger::{BudgetScope, UsageGroup};
use sqlx::{AssertSqlSafe, Row};

use super::rows::{
    BUDGET_COLS, BudgetRow, ENTRY_COLS, EntryRow, GRANT_COLS, GrantRow, HOLD_COLS, HoldRow, WALLET_COLS, WalletRow,
    budget_from, entry_from, grant_from, hold_from, wallet_from,
};
use crate::scope::{Cross, Owner, Scope};
use crate::{Page, Result, Store};

/// What `GET …/usage` reports for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageSum {
    pub key: String,
    pub amount: i64,
    pub count: i64,
}

/// Filters of the transaction list.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    pub workspace_id: Option<String>,
    pub actor_id: Option<String>,
}

const HOUR_MS: i64 = 3_600_000;

impl Store {
    /// The org's wallets and their live grants, as last committed (one snapshot for both).
    pub async fn wallets_of(&self, org_id: &str) -> Result<(Vec<WalletRow>, Vec<GrantRow>)> {
        let mut tx = self.snapshot_in(Scope::Org(org_id)).await?;
        let w =
            sqlx::query(AssertSqlSafe(format!("SELECT {WALLET_COLS} FROM wallets WHERE org_id = $1 ORDER BY kind")))
                .bind(org_id)
                .fetch_all(&mut *tx)
                .await?;
        let g = sqlx::query(AssertSqlSafe(format!(
            "SELECT {GRANT_COLS} FROM grants WHERE org_id = $1 AND (remaining > 0 OR reserved > 0) ORDER BY created_at, id"
        )))
        .bind(org_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.rollback().await?;
        Ok((w.iter().map(wallet_from).collect::<Result<_, _>>()?, g.iter().map(grant_from).collect::<Result<_, _>>()?))
    }

    /// When the org's ledger next has something due (`None`: nothing, or never touched).
    pub async fn ledger_next_event(&self, org_id: &str) -> Result<Option<Option<i64>>> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let r = sqlx::query("SELECT next_event_at FROM ledger_heads WHERE org_id = $1")
            .bind(org_id)
            .fetch_optional(&mut *c)
            .await?;
        c.done().await?;
        Ok(match r {
            Some(r) => Some(r.try_get("next_event_at")?),
            None => None,
        })
    }

    /// Orgs whose ledger has something due at `now`, for the background job.
    pub async fn ledger_due(&self, now: i64, limit: i64) -> Result<Vec<String>> {
        // Across orgs: through `roost_ledger_due` on PostgreSQL.
        Ok(sqlx::query_scalar(self.cross(Cross::LedgerDue)).bind(now).bind(limit).fetch_all(&self.pool).await?)
    }

    /// Forgets idempotency records made before `before`: deletes the table's rows, and moves the
    /// horizon before which charges' keys on their journal entries are no longer looked up (it
    /// only moves forward).
    pub async fn purge_idempotency(&self, before: i64) -> Result<u64> {
        sqlx::query("UPDATE idempotency_horizon SET forget_before = $1 WHERE id = 1 AND forget_before < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        // Across orgs: through `roost_purge_idempotency` on PostgreSQL, which answers the count.
        let purge = sqlx::query(self.cross(Cross::PurgeIdempotency)).bind(before);
        if self.dialect.row_security() {
            let n: i64 = purge.fetch_one(&self.pool).await?.try_get(0)?;
            Ok(u64::try_from(n).unwrap_or(0))
        } else {
            Ok(purge.execute(&self.pool).await?.rows_affected())
        }
    }

    /// A hold by id, whatever its org (the caller checks access).
    pub async fn hold(&self, id: &str) -> Result<Option<HoldRow>> {
        let mut c = self.scoped(Scope::Of(Owner::Hold, id)).await?;
        let r = sqlx::query(AssertSqlSafe(format!("SELECT {HOLD_COLS} FROM holds WHERE id = $1")))
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
        c.done().await?;
        Ok(r.as_ref().map(hold_from).transpose()?)
    }

    /// The ids of a workspace's open holds (expired ones included: releasing them is harmless).
    pub async fn open_holds_of_workspace(&self, org_id: &str, workspace_id: &str) -> Result<Vec<String>> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let ids = sqlx::query_scalar(
            "SELECT id FROM holds WHERE org_id = $1 AND workspace_id = $2 AND status = 'open' ORDER BY id",
        )
        .bind(org_id)
        .bind(workspace_id)
        .fetch_all(&mut *c)
        .await?;
        c.done().await?;
        Ok(ids)
    }

    /// A budget and what its subject used in the period starting at `period_start`.
    pub async fn budget(
        &self,
        org_id: &str,
        scope: BudgetScope,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<Option<BudgetRow>> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let r = sqlx::query(AssertSqlSafe(format!(
            "SELECT {BUDGET_COLS} FROM budgets WHERE org_id = $1 AND scope = $2 AND workspace_id = $3 AND user_id = $4"
        )))
        .bind(org_id)
        .bind(scope.as_str())
        .bind(workspace_id)
        .bind(user_id)
        .fetch_optional(&mut *c)
        .await?;
        c.done().await?;
        Ok(r.as_ref().map(budget_from).transpose()?)
    }

    /// What a budget subject drew in a period.
    pub async fn budget_used(&self, org_id: &str, scope: BudgetScope, subject: &str, period_start: i64) -> Result<i64> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT used FROM budget_usage WHERE org_id = $1 AND scope = $2 AND subject = $3 AND period_start = $4",
        )
        .bind(org_id)
        .bind(scope.as_str())
        .bind(subject)
        .bind(period_start)
        .fetch_optional(&mut *c)
        .await?;
        c.done().await?;
        Ok(v.unwrap_or(0))
    }

    /// The journal of an org (or one workspace of it), newest first (in the order applied). The
    /// cursor is the last entry's sequence number.
    pub async fn list_entries(
        &self,
        org_id: &str,
        f: &EntryFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<EntryRow>> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let fetch = i64::from(limit.clamp(1, 500)) + 1;
        let before = cursor.and_then(|c| c.parse::<i64>().ok()).unwrap_or(i64::MAX);
        let mut sql = format!("SELECT {ENTRY_COLS} FROM ledger_entries WHERE org_id = $1");
        let mut n = 1;
        let mut binds: Vec<String> = vec![org_id.to_string()];
        if let Some(ws) = &f.workspace_id {
            n += 1;
            sql.push_str(&format!(" AND workspace_id = ${n}"));
            binds.push(ws.clone());
        }
        if let Some(a) = &f.actor_id {
            n += 1;
            sql.push_str(&format!(" AND actor_id = ${n}"));
            binds.push(a.clone());
        }
        sql.push_str(&format!(" AND seq < ${} ORDER BY seq DESC LIMIT ${}", n + 1, n + 2));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for b in &binds {
            q = q.bind(b.as_str());
        }
        let rows = q.bind(before).bind(fetch).fetch_all(&mut *c).await?;
        c.done().await?;
        let items = rows.iter().map(entry_from).collect::<Result<Vec<_>, _>>()?;
        Ok(crate::finish_page(items, fetch, |e| e.seq.to_string()))
    }

    /// Usage of an org's wallet in `[from, to)`, grouped by `group` (`workspace`, `member`, `key`,
    /// `action`): whole hours from the rollups, the partial hours at either end from the journal.
    pub async fn usage(
        &self,
        org_id: &str,
        wallet_id: &str,
        from: i64,
        to: i64,
        group: UsageGroup,
    ) -> Result<Vec<UsageSum>> {
        let col = match group {
            UsageGroup::Workspace => "workspace_id",
            UsageGroup::Member => "member_id",
            UsageGroup::Key => "key_id",
            UsageGroup::Action => "action",
        };
        let mut sums: HashMap<String, (i64, i64)> = HashMap::new();
        if to <= from {
            return Ok(Vec::new());
        }
        let first_full = from.div_euclid(HOUR_MS) * HOUR_MS + if from.rem_euclid(HOUR_MS) == 0 { 0 } else { HOUR_MS };
        let last_full_end = to.div_euclid(HOUR_MS) * HOUR_MS;
        let mut edges: Vec<(i64, i64)> = Vec::new();
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        if first_full < last_full_end {
            let sql = format!(
                "SELECT {col} AS g, CAST(SUM(amount) AS BIGINT) AS a, CAST(SUM(count) AS BIGINT) AS c FROM usage_rollups \
                 WHERE org_id = $1 AND wallet_id = $2 AND hour >= $3 AND hour < $4 GROUP BY {col}"
            );
            let rows = sqlx::query(AssertSqlSafe(sql))
                .bind(org_id)
                .bind(wallet_id)
                .bind(first_full)
                .bind(last_full_end)
                .fetch_all(&mut *c)
                .await?;
            for r in rows {
                let e = sums.entry(r.try_get("g")?).or_default();
                e.0 += r.try_get::<i64, _>("a")?;
                e.1 += r.try_get::<i64, _>("c")?;
            }
            if from < first_full {
                edges.push((from, first_full));
            }
            if last_full_end < to {
                edges.push((last_full_end, to));
            }
        } else {
            edges.push((from, to));
        }
        for (a, b) in edges {
            let sql = format!(
                "SELECT {col} AS g, CAST(SUM(amount) AS BIGINT) AS a, COUNT(*) AS c FROM ledger_entries \
                 WHERE org_id = $1 AND wallet_id = $2 AND type = 'charge' AND at >= $3 AND at < $4 GROUP BY {col}"
            );
            let rows =
                sqlx::query(AssertSqlSafe(sql)).bind(org_id).bind(wallet_id).bind(a).bind(b).fetch_all(&mut *c).await?;
            for r in rows {
                let e = sums.entry(r.try_get("g")?).or_default();
                e.0 += r.try_get::<i64, _>("a")?;
                e.1 += r.try_get::<i64, _>("c")?;
            }
        }
        c.done().await?;
        let mut out: Vec<UsageSum> =
            sums.into_iter().map(|(key, (amount, count))| UsageSum { key, amount, count }).collect();
        out.sort_by(|a, b| b.amount.cmp(&a.amount).then_with(|| a.key.cmp(&b.key)));
        Ok(out)
    }
}

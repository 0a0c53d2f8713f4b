//! A ledger batch's transaction: the org lock, and what the engine reads under it.

use std::collections::HashMap;

use roost_domain::ledger::BudgetScope;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row, Transaction};

use super::bulk::in_list;
use super::rows::{
    BUDGET_COLS, BudgetRow, ENTRY_COLS, EntryRow, GRANT_COLS, GrantRow, HOLD_COLS, HoldRow, LedgerOrg, WALLET_COLS,
    WalletRow, budget_from, entry_from, grant_from, hold_from, wallet_from,
};
use crate::scope::Scope;
use crate::{Dialect, Result, Store};

/// A user's org role and workspace role in a workspace (`$1` org, `$2` workspace, `$3` user).
pub(super) const CHARGE_ROLES_SQL: &str = "SELECT m.role AS org_role, wm.role AS ws_role FROM workspaces w \
     JOIN org_members m ON m.org_id = w.org_id AND m.user_id = $3 \
     LEFT JOIN workspace_members wm ON wm.org_id = w.org_id AND wm.workspace_id = w.id AND wm.user_id = $3 \
     WHERE w.org_id = $1 AND w.id = $2";

/// What the ledger needs of one org (`$1`), where the write transaction already holds the lock.
pub(super) const ORG_SQL: &str = "SELECT o.id, o.kind, o.plan, o.plan_started_at, o.trial_ends_at, o.deleted_at, \
     h.version FROM orgs o LEFT JOIN ledger_heads h ON h.org_id = o.id WHERE o.id = $1";

/// One ledger batch's transaction, holding the write lock of its orgs.
pub struct LedgerTx {
    pub(super) tx: Transaction<'static, sqlx::Any>,
    pub(super) dialect: &'static dyn Dialect,
    /// Journal entries that [`LedgerTx::idempotency`] found by their key: `(org, id)` → entry.
    pub(super) found: HashMap<(String, String), EntryRow>,
    /// The orgs [`LedgerTx::lock_orgs`] locked.
    locked: Vec<String>,
    /// Heads whose version [`LedgerTx::lock_orgs`] already bumped: org → (version, next_event_at).
    pub(super) bumped: HashMap<String, (i64, Option<i64>)>,
}

impl Store {
    /// Opens a ledger batch transaction over `orgs` (the scope of row-level security, set in the
    /// statement that opens it).
    pub async fn ledger_begin(&self, orgs: &[String]) -> Result<LedgerTx> {
        Ok(LedgerTx {
            tx: self.write_in(Scope::Orgs(orgs)).await?,
            dialect: self.dialect,
            found: HashMap::new(),
            locked: Vec::new(),
            bumped: HashMap::new(),
        })
    }

    /// Opens a read-only snapshot of the ledger of `orgs`, to prepare a batch before its lock is
    /// taken (the batch's own transaction then checks, under the lock, that nothing it read has
    /// changed).
    pub async fn ledger_read(&self, orgs: &[String]) -> Result<LedgerTx> {
        Ok(LedgerTx {
            tx: self.snapshot_in(Scope::Orgs(orgs)).await?,
            dialect: self.dialect,
            found: HashMap::new(),
            locked: Vec::new(),
            bumped: HashMap::new(),
        })
    }

    /// Whether the database has one write lock for everything, so that parallel ledger writers
    /// would only queue for it.
    pub fn single_writer(&self) -> bool {
        self.dialect.single_writer()
    }
}

impl LedgerTx {
    /// Locks the orgs (in id order, so batches never deadlock) and reads what the ledger needs of
    /// them. Missing orgs are absent from the answer.
    pub async fn lock_orgs(&mut self, org_ids: &[String]) -> Result<Vec<LedgerOrg>> {
        let mut out = Vec::with_capacity(org_ids.len());
        for chunk in org_ids.chunks(1000) {
            let lock = self.dialect.row_lock();
            let ids = in_list(1, chunk.len());
            let sql = if lock.is_empty() {
                // The transaction holds the database's only write lock: just read.
                format!(
                    "SELECT o.id, o.kind, o.plan, o.plan_started_at, o.trial_ends_at, o.deleted_at, h.version, \
                     h.next_event_at FROM orgs o LEFT JOIN ledger_heads h ON h.org_id = o.id WHERE o.id IN ({ids}) \
                     ORDER BY o.id"
                )
            } else {
                // One statement locks the orgs and bumps their versions. A locked row is returned as
                // it is after the wait, and an UPDATE of a head another batch changed meanwhile
                // updates its newest committed version, so `version - 1` is the version every batch
                // before this one left. (A plain join of ledger_heads would read it as of the
                // statement's start, before the wait: the bug this replaced.) A head inserted after
                // the statement started is invisible to it: those orgs are bumped by a second
                // statement below, which starts after the lock. Heads are only ever locked by
                // holders of their org's lock: no new deadlock. `write` then leaves the version.
                format!(
                    "WITH l AS (SELECT id, kind, plan, plan_started_at, trial_ends_at, deleted_at FROM orgs \
                     WHERE id IN ({ids}) ORDER BY id{lock}), \
                     h AS (UPDATE ledger_heads SET version = version + 1 WHERE org_id IN (SELECT id FROM l) \
                     RETURNING org_id, version, next_event_at) \
                     SELECT l.id, l.kind, l.plan, l.plan_started_at, l.trial_ends_at, l.deleted_at, \
                     h.version - 1 AS version, h.next_event_at, h.version AS bumped \
                     FROM l LEFT JOIN h ON h.org_id = l.id ORDER BY l.id"
                )
            };
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id.as_str());
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                self.locked.push(r.try_get("id")?);
                if !lock.is_empty()
                    && let Some(v) = r.try_get::<Option<i64>, _>("bumped")?
                {
                    self.bumped.insert(r.try_get("id")?, (v, r.try_get("next_event_at")?));
                }
                out.push(LedgerOrg {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    plan: r.try_get("plan")?,
                    plan_started_at: r.try_get("plan_started_at")?,
                    trial_ends_at: r.try_get("trial_ends_at")?,
                    deleted: r.try_get::<Option<i64>, _>("deleted_at")?.is_some(),
                    version: r.try_get("version")?,
                });
            }
        }
        if !self.dialect.row_lock().is_empty() {
            self.bump_new_heads(&mut out).await?;
        }
        Ok(out)
    }

    /// Bumps (or creates) the heads `lock_orgs` did not find: orgs before their first batch, or
    /// whose first batch committed while this one waited for the lock. This statement starts
    /// after the lock, so it sees such a head, and the upsert bumps it.
    async fn bump_new_heads(&mut self, orgs: &mut [LedgerOrg]) -> Result<()> {
        let missing: Vec<String> =
            orgs.iter().filter(|o| !self.bumped.contains_key(&o.id)).map(|o| o.id.clone()).collect();
        for chunk in missing.chunks(1000) {
            let sql = format!(
                "INSERT INTO ledger_heads (org_id, version) SELECT id, 1 FROM orgs WHERE id IN ({}) ORDER BY id \
                 ON CONFLICT (org_id) DO UPDATE SET version = ledger_heads.version + 1 \
                 RETURNING org_id, version, next_event_at",
                in_list(1, chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id.as_str());
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                let (id, v): (String, i64) = (r.try_get("org_id")?, r.try_get("version")?);
                if let Some(o) = orgs.iter_mut().find(|o| o.id == id) {
                    o.version = (v > 1).then_some(v - 1);
                }
                self.bumped.insert(id, (v, r.try_get("next_event_at")?));
            }
        }
        Ok(())
    }

    /// Reads what the ledger needs of the orgs without locking them (in a snapshot from
    /// [`Store::ledger_read`]). Missing orgs are absent from the answer.
    pub async fn read_orgs(&mut self, org_ids: &[String]) -> Result<Vec<LedgerOrg>> {
        let mut out = Vec::with_capacity(org_ids.len());
        for chunk in org_ids.chunks(1000) {
            out.extend(self.select_orgs(chunk).await?);
        }
        Ok(out)
    }

    async fn select_orgs(&mut self, chunk: &[String]) -> Result<Vec<LedgerOrg>> {
        let sql = format!(
            "SELECT o.id, o.kind, o.plan, o.plan_started_at, o.trial_ends_at, o.deleted_at, h.version \
             FROM orgs o LEFT JOIN ledger_heads h ON h.org_id = o.id WHERE o.id IN ({}) ORDER BY o.id",
            in_list(1, chunk.len()),
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(id.as_str());
        }
        let mut out = Vec::with_capacity(chunk.len());
        for r in q.fetch_all(&mut *self.tx).await? {
            out.push(LedgerOrg {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                plan: r.try_get("plan")?,
                plan_started_at: r.try_get("plan_started_at")?,
                trial_ends_at: r.try_get("trial_ends_at")?,
                deleted: r.try_get::<Option<i64>, _>("deleted_at")?.is_some(),
                version: r.try_get("version")?,
            });
        }
        Ok(out)
    }

    async fn select_in<T>(
        &mut self,
        sql_head: &str,
        sql_tail: &str,
        first: &[&str],
        ids: &[String],
        map: fn(&AnyRow) -> Result<T, sqlx::Error>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        if ids.is_empty() {
            return Ok(out);
        }
        for chunk in ids.chunks(1000) {
            let sql = format!("{sql_head} ({}) {sql_tail}", in_list(first.len() + 1, chunk.len()));
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for f in first {
                q = q.bind(*f);
            }
            for id in chunk {
                q = q.bind(id.as_str());
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                out.push(map(&r)?);
            }
        }
        Ok(out)
    }

    /// The orgs' wallets.
    pub async fn wallets(&mut self, org_ids: &[String]) -> Result<Vec<WalletRow>> {
        let head = format!("SELECT {WALLET_COLS} FROM wallets WHERE org_id IN");
        self.select_in(&head, "", &[], org_ids, wallet_from).await
    }

    /// The orgs' grants that still have credits left or reserved.
    pub async fn live_grants(&mut self, org_ids: &[String]) -> Result<Vec<GrantRow>> {
        let head = format!("SELECT {GRANT_COLS} FROM grants WHERE org_id IN");
        self.select_in(&head, "AND (remaining > 0 OR reserved > 0)", &[], org_ids, grant_from).await
    }

    /// The orgs' budgets.
    pub async fn budgets(&mut self, org_ids: &[String]) -> Result<Vec<BudgetRow>> {
        let head = format!("SELECT {BUDGET_COLS} FROM budgets WHERE org_id IN");
        self.select_in(&head, "", &[], org_ids, budget_from).await
    }

    /// `(scope, subject, used)` of one org's budget counters for one period.
    pub async fn usage_counters(&mut self, org_id: &str, period_start: i64) -> Result<Vec<(BudgetScope, String, i64)>> {
        let rows = self.period_rows("SELECT scope, subject, used FROM budget_usage", org_id, period_start).await?;
        rows.iter().map(|r| Ok((scope_of(r)?, r.try_get("subject")?, r.try_get("used")?))).collect()
    }

    /// The budgets `(scope, subject)` of one org that sent `budget.exceeded` in the period.
    pub async fn exceeded(&mut self, org_id: &str, period_start: i64) -> Result<Vec<(BudgetScope, String)>> {
        let rows = self.period_rows("SELECT scope, subject FROM budget_exceeded", org_id, period_start).await?;
        rows.iter().map(|r| Ok((scope_of(r)?, r.try_get("subject")?))).collect()
    }

    /// The rows of `select` (a per-period budget table) for one org and period.
    async fn period_rows(&mut self, select: &'static str, org_id: &str, period_start: i64) -> Result<Vec<AnyRow>> {
        let sql = format!("{select} WHERE org_id = $1 AND period_start = $2");
        Ok(sqlx::query(AssertSqlSafe(sql)).bind(org_id).bind(period_start).fetch_all(&mut *self.tx).await?)
    }

    /// Holds by id, of the orgs `org_ids` (the caller checks the org): read through the primary
    /// key (org_id, id).
    pub async fn holds(&mut self, org_ids: &[String], ids: &[String]) -> Result<Vec<HoldRow>> {
        let mut out = Vec::new();
        for orgs in org_ids.chunks(100) {
            let head = format!("SELECT {HOLD_COLS} FROM holds WHERE org_id IN ({}) AND id IN", in_list(1, orgs.len()));
            let orgs: Vec<&str> = orgs.iter().map(String::as_str).collect();
            out.extend(self.select_in(&head, "", &orgs, ids, hold_from).await?);
        }
        Ok(out)
    }

    /// The org's open holds that expired by `now`.
    pub async fn due_holds(&mut self, org_id: &str, now: i64) -> Result<Vec<HoldRow>> {
        let sql = format!(
            "SELECT {HOLD_COLS} FROM holds WHERE org_id = $1 AND status = 'open' AND expires_at <= $2 ORDER BY expires_at, id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(org_id).bind(now).fetch_all(&mut *self.tx).await?;
        Ok(rows.iter().map(hold_from).collect::<Result<_, _>>()?)
    }

    /// When the org's next open hold expires after `after`.
    pub async fn next_hold_expiry(&mut self, org_id: &str, after: i64) -> Result<Option<i64>> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(expires_at) FROM holds WHERE org_id = $1 AND status = 'open' AND expires_at > $2",
        )
        .bind(org_id)
        .bind(after)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(v)
    }

    /// Journal entries by `(org, id)` (those [`LedgerTx::idempotency`] found are not read again).
    pub async fn entries(&mut self, refs: &[(String, String)]) -> Result<Vec<EntryRow>> {
        let mut out = Vec::new();
        let mut rest = Vec::new();
        for r in refs {
            match self.found.get(r) {
                Some(e) => out.push(e.clone()),
                None => rest.push(r),
            }
        }
        for chunk in rest.chunks(1000) {
            let cond = (0..chunk.len())
                .map(|i| format!("(org_id = ${} AND id = ${})", 2 * i + 1, 2 * i + 2))
                .collect::<Vec<_>>()
                .join(" OR ");
            let mut q = sqlx::query(AssertSqlSafe(format!("SELECT {ENTRY_COLS} FROM ledger_entries WHERE {cond}")))
                .persistent(false);
            for (o, id) in chunk {
                q = q.bind(o.as_str()).bind(id.as_str());
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                out.push(entry_from(&r)?);
            }
        }
        Ok(out)
    }

    /// Whether a user may still charge in a workspace: org role and workspace role, read under the
    /// org's lock. `None` if the workspace is gone or the user is not in the org.
    pub async fn charge_roles(
        &mut self,
        org_id: &str,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<Option<(String, Option<String>)>> {
        let r = sqlx::query(CHARGE_ROLES_SQL)
            .bind(org_id)
            .bind(workspace_id)
            .bind(user_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(match r {
            Some(r) => Some((r.try_get("org_role")?, r.try_get("ws_role")?)),
            None => None,
        })
    }

    /// Ends a transaction that wrote nothing.
    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }

    /// Commits the batch: one durable commit for all of it.
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

/// A row's budget `scope`, which must be one of the vocabulary's names.
fn scope_of(r: &AnyRow) -> Result<BudgetScope, sqlx::Error> {
    let scope: String = r.try_get("scope")?;
    BudgetScope::parse(&scope).ok_or_else(|| sqlx::Error::Decode(format!("scope: unknown value {scope:?}").into()))
}

//! The ledger's tables: what the engine (`roost-ledger`) reads and writes inside one transaction
//! per batch, and what the API reads back. The engine decides; this module only moves rows, with
//! multi-row statements.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row, Transaction};

use crate::{Dialect, Page, Result, Store};

/// An org as the ledger sees it, read under its lock.
#[derive(Debug, Clone)]
pub struct LedgerOrg {
    pub id: String,
    pub kind: String,
    pub plan: String,
    pub plan_started_at: i64,
    pub trial_ends_at: Option<i64>,
    pub deleted: bool,
    /// The ledger version (`None` before the first batch).
    pub version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletRow {
    pub org_id: String,
    pub id: String,
    pub kind: String,
    pub balance: i64,
    pub held: i64,
    pub granted: i64,
    pub charged: i64,
    pub expired: i64,
    pub anchor_at: i64,
    pub cycle: i64,
    /// The monthly allowance the current cycle's allocation was measured against.
    pub allowance: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    pub org_id: String,
    pub id: String,
    pub wallet_id: String,
    pub source: String,
    pub amount: i64,
    pub remaining: i64,
    pub reserved: i64,
    pub expired: i64,
    pub effective_at: i64,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub cycle_key: Option<String>,
    pub reason: Option<String>,
    pub actor_type: String,
    pub actor_id: String,
}

/// One journal line: a charge (`charge`, also settlements), a debit `adjustment`, a `grant`, or an
/// `expiry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRow {
    pub org_id: String,
    pub id: String,
    pub kind: String,
    pub wallet_id: String,
    /// Empty for org-level entries (grants, expiries).
    pub workspace_id: String,
    pub actor_type: String,
    pub actor_id: String,
    /// The member the entry is attributed to (a key's creator for key charges); may be empty.
    pub member_id: String,
    pub key_id: String,
    pub amount: i64,
    pub action: String,
    pub metadata: Option<String>,
    /// `grt_…:n,grt_…:m`
    pub splits: String,
    pub hold_id: Option<String>,
    pub balance_after: i64,
    pub at: i64,
    /// Order of application within the org (set by the engine when it writes the batch).
    pub seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRow {
    pub org_id: String,
    pub id: String,
    pub wallet_id: String,
    pub workspace_id: String,
    pub actor_type: String,
    pub actor_id: String,
    pub member_id: String,
    pub key_id: String,
    pub action: String,
    pub amount: i64,
    pub splits: String,
    /// `open`, `settled`, `released`, `expired`.
    pub status: String,
    pub period_start: i64,
    pub expires_at: i64,
    pub created_at: i64,
    pub closed_at: Option<i64>,
    pub charge_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetRow {
    pub org_id: String,
    /// `workspace` or `member`.
    pub scope: String,
    pub workspace_id: String,
    /// Empty for a workspace budget.
    pub user_id: String,
    pub limit: i64,
    /// Comma-separated percentages.
    pub alert_percents: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdemRow {
    pub org_id: String,
    pub key: String,
    pub fingerprint: String,
    pub status: i64,
    pub response: String,
    pub created_at: i64,
}

/// An audit event written by the engine.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub org_id: String,
    pub id: String,
    pub at: i64,
    pub actor_type: String,
    pub actor_id: String,
    pub action: String,
    pub workspace_id: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub detail: String,
}

/// Key of a budget counter: `(org, scope, subject, period_start)`.
pub type UsageKey = (String, &'static str, String, i64);
/// Key of an hourly rollup: `(org, hour, wallet, workspace, member, key, action)`.
pub type RollupKey = (String, i64, String, String, String, String, String);

/// Everything one batch writes.
#[derive(Debug, Default)]
pub struct LedgerWrites {
    /// `(org, new version, next_event_at)`.
    pub heads: Vec<(String, i64, Option<i64>)>,
    pub wallets: Vec<WalletRow>,
    pub grants: Vec<GrantRow>,
    pub entries: Vec<EntryRow>,
    pub holds: Vec<HoldRow>,
    pub budgets: Vec<BudgetRow>,
    /// `(org, scope, workspace, user)` budgets to remove.
    pub budgets_removed: Vec<(String, String, String, String)>,
    /// Added to `budget_usage.used`.
    pub usage: HashMap<UsageKey, i64>,
    /// Added to `usage_rollups` `(amount, count)`.
    pub rollups: HashMap<RollupKey, (i64, i64)>,
    pub idempotency: Vec<IdemRow>,
    pub audit: Vec<AuditRow>,
}

/// A bindable value.
enum V<'a> {
    I(i64),
    OI(Option<i64>),
    T(&'a str),
    OT(Option<&'a str>),
}

/// `$from, $from+1, …` (n of them).
fn in_list(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The writes of a batch, each `head SELECT … tail` with its rows as ONE JSON parameter (an array
/// of arrays) that the database unpacks ([`Dialect::json_rows`]). A statement's text does not depend
/// on its number of rows, so each backend parses and plans it once per connection, with one bind
/// instead of one per value. Where the backend allows it (PostgreSQL), all of a batch's writes go in
/// one statement (data-modifying CTEs): one round trip.
struct Bulk {
    dialect: &'static dyn Dialect,
    /// `(statement with `$P` for its parameter, JSON rows)`
    parts: Vec<(String, String)>,
}

impl Bulk {
    fn add<T>(&mut self, head: &str, tail: &str, rows: &[T], vals: impl Fn(&T) -> Vec<V<'_>>) {
        let Some(first) = rows.first() else { return };
        let kinds: Vec<bool> = vals(first).iter().map(|v| matches!(v, V::I(_) | V::OI(_))).collect();
        let exprs = kinds.iter().enumerate().map(|(i, int)| self.dialect.json_column(i, *int)).collect::<Vec<_>>();
        let sql = format!("{head} SELECT {} FROM {} {tail}", exprs.join(", "), self.dialect.json_rows());
        let mut json = String::with_capacity(rows.len() * 256);
        json.push('[');
        for (n, r) in rows.iter().enumerate() {
            if n > 0 {
                json.push(',');
            }
            json.push('[');
            for (i, v) in vals(r).into_iter().enumerate() {
                if i > 0 {
                    json.push(',');
                }
                match v {
                    V::I(x) | V::OI(Some(x)) => json.push_str(&x.to_string()),
                    V::T(t) | V::OT(Some(t)) => json.push_str(&serde_json::Value::from(t).to_string()),
                    V::OI(None) | V::OT(None) => json.push_str("null"),
                }
            }
            json.push(']');
        }
        json.push(']');
        self.parts.push((sql, json));
    }

    async fn run(self, tx: &mut sqlx::AnyConnection) -> Result<()> {
        if self.dialect.writes_in_one_statement() && self.parts.len() > 1 {
            let ctes = self
                .parts
                .iter()
                .enumerate()
                .map(|(i, (sql, _))| format!("w{i} AS ({})", sql.replace("$P", &format!("${}", i + 1))))
                .collect::<Vec<_>>()
                .join(", ");
            let mut q = sqlx::query(AssertSqlSafe(format!("WITH {ctes} SELECT 1")));
            for (_, json) in &self.parts {
                q = q.bind(json.as_str());
            }
            q.execute(&mut *tx).await?;
            return Ok(());
        }
        for (sql, json) in &self.parts {
            sqlx::query(AssertSqlSafe(sql.replace("$P", "$1"))).bind(json.as_str()).execute(&mut *tx).await?;
        }
        Ok(())
    }
}

fn wallet_from(r: &AnyRow) -> Result<WalletRow, sqlx::Error> {
    Ok(WalletRow {
        org_id: r.try_get("org_id")?,
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        balance: r.try_get("balance")?,
        held: r.try_get("held")?,
        granted: r.try_get("granted")?,
        charged: r.try_get("charged")?,
        expired: r.try_get("expired")?,
        anchor_at: r.try_get("anchor_at")?,
        cycle: r.try_get("cycle")?,
        allowance: r.try_get("allowance")?,
        created_at: r.try_get("created_at")?,
    })
}

fn grant_from(r: &AnyRow) -> Result<GrantRow, sqlx::Error> {
    Ok(GrantRow {
        org_id: r.try_get("org_id")?,
        id: r.try_get("id")?,
        wallet_id: r.try_get("wallet_id")?,
        source: r.try_get("source")?,
        amount: r.try_get("amount")?,
        remaining: r.try_get("remaining")?,
        reserved: r.try_get("reserved")?,
        expired: r.try_get("expired")?,
        effective_at: r.try_get("effective_at")?,
        expires_at: r.try_get("expires_at")?,
        created_at: r.try_get("created_at")?,
        cycle_key: r.try_get("cycle_key")?,
        reason: r.try_get("reason")?,
        actor_type: r.try_get("actor_type")?,
        actor_id: r.try_get("actor_id")?,
    })
}

fn hold_from(r: &AnyRow) -> Result<HoldRow, sqlx::Error> {
    Ok(HoldRow {
        org_id: r.try_get("org_id")?,
        id: r.try_get("id")?,
        wallet_id: r.try_get("wallet_id")?,
        workspace_id: r.try_get("workspace_id")?,
        actor_type: r.try_get("actor_type")?,
        actor_id: r.try_get("actor_id")?,
        member_id: r.try_get("member_id")?,
        key_id: r.try_get("key_id")?,
        action: r.try_get("action")?,
        amount: r.try_get("amount")?,
        splits: r.try_get("splits")?,
        status: r.try_get("status")?,
        period_start: r.try_get("period_start")?,
        expires_at: r.try_get("expires_at")?,
        created_at: r.try_get("created_at")?,
        closed_at: r.try_get("closed_at")?,
        charge_id: r.try_get("charge_id")?,
    })
}

fn entry_from(r: &AnyRow) -> Result<EntryRow, sqlx::Error> {
    Ok(EntryRow {
        org_id: r.try_get("org_id")?,
        id: r.try_get("id")?,
        kind: r.try_get("type")?,
        wallet_id: r.try_get("wallet_id")?,
        workspace_id: r.try_get("workspace_id")?,
        actor_type: r.try_get("actor_type")?,
        actor_id: r.try_get("actor_id")?,
        member_id: r.try_get("member_id")?,
        key_id: r.try_get("key_id")?,
        amount: r.try_get("amount")?,
        action: r.try_get("action")?,
        metadata: r.try_get("metadata")?,
        splits: r.try_get("splits")?,
        hold_id: r.try_get("hold_id")?,
        balance_after: r.try_get("balance_after")?,
        at: r.try_get("at")?,
        seq: r.try_get("seq")?,
    })
}

fn budget_from(r: &AnyRow) -> Result<BudgetRow, sqlx::Error> {
    Ok(BudgetRow {
        org_id: r.try_get("org_id")?,
        scope: r.try_get("scope")?,
        workspace_id: r.try_get("workspace_id")?,
        user_id: r.try_get("user_id")?,
        limit: r.try_get("amount_limit")?,
        alert_percents: r.try_get("alert_percents")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const WALLET_COLS: &str =
    "org_id, id, kind, balance, held, granted, charged, expired, anchor_at, cycle, allowance, created_at";
const GRANT_COLS: &str = "org_id, id, wallet_id, source, amount, remaining, reserved, expired, effective_at, expires_at, created_at, cycle_key, reason, actor_type, actor_id";
const HOLD_COLS: &str = "org_id, id, wallet_id, workspace_id, actor_type, actor_id, member_id, key_id, action, amount, splits, status, period_start, expires_at, created_at, closed_at, charge_id";
const ENTRY_COLS: &str = "org_id, id, type, wallet_id, workspace_id, actor_type, actor_id, member_id, key_id, amount, action, metadata, splits, hold_id, balance_after, at, seq";

/// One ledger batch's transaction, holding the write lock of its orgs.
pub struct LedgerTx {
    tx: Transaction<'static, sqlx::Any>,
    dialect: &'static dyn Dialect,
}

impl Store {
    /// Opens a ledger batch transaction.
    pub async fn ledger_begin(&self) -> Result<LedgerTx> {
        Ok(LedgerTx { tx: self.write().await?, dialect: self.dialect })
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
            if !lock.is_empty() {
                // Lock first, read after: under READ COMMITTED a statement that waits for a row
                // lock still returns the other rows (the ledger version) as they were when it
                // started, so the version must be read by a statement that starts after the wait.
                let sql = format!("SELECT id FROM orgs WHERE id IN ({}) ORDER BY id{lock}", in_list(1, chunk.len()));
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for id in chunk {
                    q = q.bind(id.as_str());
                }
                q.fetch_all(&mut *self.tx).await?;
            }
            let sql = format!(
                "SELECT o.id, o.kind, o.plan, o.plan_started_at, o.trial_ends_at, o.deleted_at, h.version \
                 FROM orgs o LEFT JOIN ledger_heads h ON h.org_id = o.id WHERE o.id IN ({}) ORDER BY o.id",
                in_list(1, chunk.len()),
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id.as_str());
            }
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
        let head = "SELECT org_id, scope, workspace_id, user_id, amount_limit, alert_percents, updated_at FROM budgets WHERE org_id IN";
        self.select_in(head, "", &[], org_ids, budget_from).await
    }

    /// Budget counters of one org for one period.
    pub async fn usage_counters(&mut self, org_id: &str, period_start: i64) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query("SELECT scope, subject, used FROM budget_usage WHERE org_id = $1 AND period_start = $2")
            .bind(org_id)
            .bind(period_start)
            .fetch_all(&mut *self.tx)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push((r.try_get("scope")?, r.try_get("subject")?, r.try_get("used")?));
        }
        Ok(out)
    }

    /// Holds by id (any org among those locked; the caller checks the org).
    pub async fn holds(&mut self, ids: &[String]) -> Result<Vec<HoldRow>> {
        let head = format!("SELECT {HOLD_COLS} FROM holds WHERE id IN");
        self.select_in(&head, "", &[], ids, hold_from).await
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

    /// Stored idempotency records for `(org, key)` pairs.
    pub async fn idempotency(&mut self, pairs: &[(String, String)]) -> Result<Vec<IdemRow>> {
        let mut out = Vec::new();
        for chunk in pairs.chunks(1000) {
            // One statement for every org of the batch, answered from the primary key (org_id,
            // key); pairs that cross (another org's key) are dropped below.
            let mut orgs: Vec<&str> = chunk.iter().map(|(o, _)| o.as_str()).collect();
            orgs.sort_unstable();
            orgs.dedup();
            let sql = format!(
                "SELECT org_id, key, fingerprint, status, response, created_at FROM idempotency \
                 WHERE org_id IN ({}) AND key IN ({})",
                in_list(1, orgs.len()),
                in_list(orgs.len() + 1, chunk.len())
            );
            // Planned afresh each time: a generic plan made while the table was small could keep
            // scanning it whole once it is large.
            let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(false);
            for o in &orgs {
                q = q.bind(*o);
            }
            for (_, k) in chunk {
                q = q.bind(k.as_str());
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                let org_id: String = r.try_get("org_id")?;
                let key: String = r.try_get("key")?;
                if !chunk.iter().any(|(o, k)| *o == org_id && *k == key) {
                    continue;
                }
                out.push(IdemRow {
                    org_id,
                    key,
                    fingerprint: r.try_get("fingerprint")?,
                    status: r.try_get("status")?,
                    response: r.try_get("response")?,
                    created_at: r.try_get("created_at")?,
                });
            }
        }
        Ok(out)
    }

    /// Journal entries by `(org, id)`.
    pub async fn entries(&mut self, refs: &[(String, String)]) -> Result<Vec<EntryRow>> {
        let mut out = Vec::new();
        for chunk in refs.chunks(1000) {
            if chunk.is_empty() {
                continue;
            }
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
        let r = sqlx::query(
            "SELECT m.role AS org_role, wm.role AS ws_role FROM workspaces w \
             JOIN org_members m ON m.org_id = w.org_id AND m.user_id = $3 \
             LEFT JOIN workspace_members wm ON wm.org_id = w.org_id AND wm.workspace_id = w.id AND wm.user_id = $3 \
             WHERE w.org_id = $1 AND w.id = $2",
        )
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

    /// Writes everything a batch decided, with multi-row statements.
    pub async fn write(&mut self, w: &LedgerWrites) -> Result<()> {
        let tx = &mut *self.tx;
        let mut bulk = Bulk { dialect: self.dialect, parts: Vec::new() };
        bulk.add(
            "INSERT INTO ledger_heads (org_id, version, next_event_at)",
            "ON CONFLICT (org_id) DO UPDATE SET version = excluded.version, next_event_at = excluded.next_event_at",
            &w.heads,
            |h| vec![V::T(&h.0), V::I(h.1), V::OI(h.2)],
        );
        bulk.add(
            &format!("INSERT INTO wallets ({WALLET_COLS})"),
            "ON CONFLICT (org_id, id) DO UPDATE SET balance = excluded.balance, held = excluded.held, \
             granted = excluded.granted, charged = excluded.charged, expired = excluded.expired, \
             anchor_at = excluded.anchor_at, cycle = excluded.cycle, allowance = excluded.allowance",
            &w.wallets,
            |x| {
                vec![
                    V::T(&x.org_id),
                    V::T(&x.id),
                    V::T(&x.kind),
                    V::I(x.balance),
                    V::I(x.held),
                    V::I(x.granted),
                    V::I(x.charged),
                    V::I(x.expired),
                    V::I(x.anchor_at),
                    V::I(x.cycle),
                    V::I(x.allowance),
                    V::I(x.created_at),
                ]
            },
        );
        bulk.add(
            &format!("INSERT INTO grants ({GRANT_COLS})"),
            "ON CONFLICT (org_id, id) DO UPDATE SET remaining = excluded.remaining, reserved = excluded.reserved, \
             expired = excluded.expired, expires_at = excluded.expires_at",
            &w.grants,
            |g| {
                vec![
                    V::T(&g.org_id),
                    V::T(&g.id),
                    V::T(&g.wallet_id),
                    V::T(&g.source),
                    V::I(g.amount),
                    V::I(g.remaining),
                    V::I(g.reserved),
                    V::I(g.expired),
                    V::I(g.effective_at),
                    V::OI(g.expires_at),
                    V::I(g.created_at),
                    V::OT(g.cycle_key.as_deref()),
                    V::OT(g.reason.as_deref()),
                    V::T(&g.actor_type),
                    V::T(&g.actor_id),
                ]
            },
        );
        bulk.add(&format!("INSERT INTO ledger_entries ({ENTRY_COLS})"), "", &w.entries, |e| {
            vec![
                V::T(&e.org_id),
                V::T(&e.id),
                V::T(&e.kind),
                V::T(&e.wallet_id),
                V::T(&e.workspace_id),
                V::T(&e.actor_type),
                V::T(&e.actor_id),
                V::T(&e.member_id),
                V::T(&e.key_id),
                V::I(e.amount),
                V::T(&e.action),
                V::OT(e.metadata.as_deref()),
                V::T(&e.splits),
                V::OT(e.hold_id.as_deref()),
                V::I(e.balance_after),
                V::I(e.at),
                V::I(e.seq),
            ]
        });
        bulk.add(
            &format!("INSERT INTO holds ({HOLD_COLS})"),
            "ON CONFLICT (org_id, id) DO UPDATE SET status = excluded.status, closed_at = excluded.closed_at, \
             charge_id = excluded.charge_id",
            &w.holds,
            |h| {
                vec![
                    V::T(&h.org_id),
                    V::T(&h.id),
                    V::T(&h.wallet_id),
                    V::T(&h.workspace_id),
                    V::T(&h.actor_type),
                    V::T(&h.actor_id),
                    V::T(&h.member_id),
                    V::T(&h.key_id),
                    V::T(&h.action),
                    V::I(h.amount),
                    V::T(&h.splits),
                    V::T(&h.status),
                    V::I(h.period_start),
                    V::I(h.expires_at),
                    V::I(h.created_at),
                    V::OI(h.closed_at),
                    V::OT(h.charge_id.as_deref()),
                ]
            },
        );
        for (org, scope, ws, user) in &w.budgets_removed {
            sqlx::query("DELETE FROM budgets WHERE org_id = $1 AND scope = $2 AND workspace_id = $3 AND user_id = $4")
                .bind(org)
                .bind(scope)
                .bind(ws)
                .bind(user)
                .execute(&mut *tx)
                .await?;
        }
        bulk.add(
            "INSERT INTO budgets (org_id, scope, workspace_id, user_id, amount_limit, alert_percents, updated_at)",
            "ON CONFLICT (org_id, scope, workspace_id, user_id) DO UPDATE SET amount_limit = excluded.amount_limit, \
             alert_percents = excluded.alert_percents, updated_at = excluded.updated_at",
            &w.budgets,
            |b| {
                vec![
                    V::T(&b.org_id),
                    V::T(&b.scope),
                    V::T(&b.workspace_id),
                    V::T(&b.user_id),
                    V::I(b.limit),
                    V::T(&b.alert_percents),
                    V::I(b.updated_at),
                ]
            },
        );
        let usage: Vec<_> = w.usage.iter().filter(|(_, d)| **d != 0).collect();
        bulk.add(
            "INSERT INTO budget_usage (org_id, scope, subject, period_start, used)",
            "ON CONFLICT (org_id, scope, subject, period_start) DO UPDATE SET used = budget_usage.used + excluded.used",
            &usage,
            |(k, d)| vec![V::T(&k.0), V::T(k.1), V::T(&k.2), V::I(k.3), V::I(**d)],
        );
        let rollups: Vec<_> = w.rollups.iter().collect();
        bulk.add(
            "INSERT INTO usage_rollups (org_id, hour, wallet_id, workspace_id, member_id, key_id, action, amount, count)",
            "ON CONFLICT (org_id, hour, wallet_id, workspace_id, member_id, key_id, action) DO UPDATE SET \
             amount = usage_rollups.amount + excluded.amount, count = usage_rollups.count + excluded.count",
            &rollups,
            |(k, (a, c))| {
                vec![V::T(&k.0), V::I(k.1), V::T(&k.2), V::T(&k.3), V::T(&k.4), V::T(&k.5), V::T(&k.6), V::I(*a), V::I(*c)]
            },
        );
        bulk.add(
            "INSERT INTO idempotency (org_id, key, fingerprint, status, response, created_at)",
            "",
            &w.idempotency,
            |r| {
                vec![
                    V::T(&r.org_id),
                    V::T(&r.key),
                    V::T(&r.fingerprint),
                    V::I(r.status),
                    V::T(&r.response),
                    V::I(r.created_at),
                ]
            },
        );
        bulk.add(
            "INSERT INTO audit_events (org_id, id, at, actor_type, actor_id, action, workspace_id, target_type, target_id, ip, detail)",
            "",
            &w.audit,
            |a| {
                vec![
                    V::T(&a.org_id),
                    V::T(&a.id),
                    V::I(a.at),
                    V::T(&a.actor_type),
                    V::T(&a.actor_id),
                    V::T(&a.action),
                    V::OT(a.workspace_id.as_deref()),
                    V::OT(a.target_type.as_deref()),
                    V::OT(a.target_id.as_deref()),
                    V::OT(a.ip.as_deref()),
                    V::T(&a.detail),
                ]
            },
        );
        bulk.run(tx).await
    }

    /// Commits the batch: one durable commit for all of it.
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

/// What `GET …/usage` reports for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageGroup {
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
        let mut tx = self.pool.begin_with(self.dialect.begin_snapshot()).await?;
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
        let r = sqlx::query("SELECT next_event_at FROM ledger_heads WHERE org_id = $1")
            .bind(org_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match r {
            Some(r) => Some(r.try_get("next_event_at")?),
            None => None,
        })
    }

    /// Orgs whose ledger has something due at `now`, for the background job.
    pub async fn ledger_due(&self, now: i64, limit: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT org_id FROM ledger_heads WHERE next_event_at <= $1 ORDER BY next_event_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Forgets idempotency records made before `before`.
    pub async fn purge_idempotency(&self, before: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM idempotency WHERE created_at < $1").bind(before).execute(&self.pool).await?;
        Ok(r.rows_affected())
    }

    /// A hold by id, whatever its org (the caller checks access).
    pub async fn hold(&self, id: &str) -> Result<Option<HoldRow>> {
        let r = sqlx::query(AssertSqlSafe(format!("SELECT {HOLD_COLS} FROM holds WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.as_ref().map(hold_from).transpose()?)
    }

    /// A budget and what its subject used in the period starting at `period_start`.
    pub async fn budget(
        &self,
        org_id: &str,
        scope: &str,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<Option<BudgetRow>> {
        let r = sqlx::query(
            "SELECT org_id, scope, workspace_id, user_id, amount_limit, alert_percents, updated_at FROM budgets \
             WHERE org_id = $1 AND scope = $2 AND workspace_id = $3 AND user_id = $4",
        )
        .bind(org_id)
        .bind(scope)
        .bind(workspace_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.as_ref().map(budget_from).transpose()?)
    }

    /// What a budget subject drew in a period.
    pub async fn budget_used(&self, org_id: &str, scope: &str, subject: &str, period_start: i64) -> Result<i64> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT used FROM budget_usage WHERE org_id = $1 AND scope = $2 AND subject = $3 AND period_start = $4",
        )
        .bind(org_id)
        .bind(scope)
        .bind(subject)
        .bind(period_start)
        .fetch_optional(&self.pool)
        .await?;
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
        let rows = q.bind(before).bind(fetch).fetch_all(&self.pool).await?;
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
        group: &str,
    ) -> Result<Vec<UsageGroup>> {
        let col = match group {
            "workspace" => "workspace_id",
            "member" => "member_id",
            "key" => "key_id",
            _ => "action",
        };
        let mut sums: HashMap<String, (i64, i64)> = HashMap::new();
        if to <= from {
            return Ok(Vec::new());
        }
        let first_full = from.div_euclid(HOUR_MS) * HOUR_MS + if from.rem_euclid(HOUR_MS) == 0 { 0 } else { HOUR_MS };
        let last_full_end = to.div_euclid(HOUR_MS) * HOUR_MS;
        let mut edges: Vec<(i64, i64)> = Vec::new();
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
                .fetch_all(&self.pool)
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
            let rows = sqlx::query(AssertSqlSafe(sql))
                .bind(org_id)
                .bind(wallet_id)
                .bind(a)
                .bind(b)
                .fetch_all(&self.pool)
                .await?;
            for r in rows {
                let e = sums.entry(r.try_get("g")?).or_default();
                e.0 += r.try_get::<i64, _>("a")?;
                e.1 += r.try_get::<i64, _>("c")?;
            }
        }
        let mut out: Vec<UsageGroup> =
            sums.into_iter().map(|(key, (amount, count))| UsageGroup { key, amount, count }).collect();
        out.sort_by(|a, b| b.amount.cmp(&a.amount).then_with(|| a.key.cmp(&b.key)));
        Ok(out)
    }
}

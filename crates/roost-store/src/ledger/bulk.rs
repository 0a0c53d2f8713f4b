//! A batch's writes: every table's rows as one JSON parameter per statement, and on PostgreSQL all
//! of them in one statement.

use sqlx::AssertSqlSafe;

use super::rows::{BUDGET_COLS, ENTRY_COLS, GRANT_COLS, HOLD_COLS, LedgerWrites, WALLET_COLS, encode_percents};
use super::tx::LedgerTx;
use crate::{Dialect, Result};

/// The retention bucket of a charge's idempotency key on its entry (`idem_day`): one day.
const IDEM_DAY_MS: i64 = 86_400_000;

/// A bindable value.
enum V<'a> {
    I(i64),
    OI(Option<i64>),
    T(&'a str),
    OT(Option<&'a str>),
    /// Text made for this row (an encoded list).
    S(String),
}

/// `$from, $from+1, …` (n of them).
pub(super) fn in_list(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The writes of a batch, each `head SELECT … tail` with its rows as ONE JSON parameter (an array
/// of arrays) that the database unpacks ([`Dialect::json_rows`]). A statement's text does not depend
/// on its number of rows, so each backend parses and plans it once per connection, with one bind
/// instead of one per value. Where the backend allows it (PostgreSQL), all of a batch's writes go in
/// one statement (data-modifying CTEs): one round trip.
struct Bulk {
    dialect: &'static dyn Dialect,
    /// `(statements with `$P` for their parameter and `$U` for the one before, JSON rows)`
    parts: Vec<(Vec<String>, String)>,
}

/// The rows as a JSON array of arrays, and which of their columns are integers.
fn encode<T>(rows: &[T], vals: impl Fn(&T) -> Vec<V<'_>>) -> Option<(Vec<bool>, String)> {
    let first = rows.first()?;
    let kinds: Vec<bool> = vals(first).iter().map(|v| matches!(v, V::I(_) | V::OI(_))).collect();
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
                V::S(t) => json.push_str(&serde_json::Value::from(t).to_string()),
                V::OI(None) | V::OT(None) => json.push_str("null"),
            }
        }
        json.push(']');
    }
    json.push(']');
    Some((kinds, json))
}

impl Bulk {
    fn add<T>(&mut self, head: &str, tail: &str, rows: &[T], vals: impl Fn(&T) -> Vec<V<'_>>) {
        let Some((kinds, json)) = encode(rows, vals) else { return };
        let exprs = kinds.iter().enumerate().map(|(i, int)| self.dialect.json_column(i, *int)).collect::<Vec<_>>();
        let sql = format!("{head} SELECT {} FROM {} {tail}", exprs.join(", "), self.dialect.json_rows());
        self.parts.push((vec![sql], json));
    }

    /// Writes rows keyed by their first `keys` columns of `cols`: a row that exists gets the `set`
    /// columns (`true`: added to the stored value, else replaced), the others are inserted. Where
    /// an upsert that hits a row costs more than an update ([`Dialect::update_before_insert`]), a
    /// plain `UPDATE` of the rows that exist, then an `INSERT` of the rows it did not find: exact,
    /// because every writer of these rows holds the org's lock, so no other transaction can insert
    /// them in between.
    fn merge<T>(
        &mut self,
        table: &str,
        cols: &str,
        keys: usize,
        set: &[(&str, bool)],
        rows: &[T],
        vals: impl Fn(&T) -> Vec<V<'_>>,
    ) {
        let Some((kinds, json)) = encode(rows, vals) else { return };
        let d = self.dialect;
        let names: Vec<&str> = cols.split(", ").collect();
        let col = |name: &str| {
            let i = names.iter().position(|n| *n == name).unwrap_or_else(|| panic!("{table} has no column {name}"));
            d.json_column(i, kinds[i])
        };
        let exprs = names.iter().map(|n| col(n)).collect::<Vec<_>>().join(", ");
        let key_names = &names[..keys];
        if d.update_before_insert() && d.writes_in_one_statement() {
            let sets = set
                .iter()
                .map(|(c, add)| if *add { format!("{c} = t.{c} + {}", col(c)) } else { format!("{c} = {}", col(c)) })
                .collect::<Vec<_>>()
                .join(", ");
            let on =
                |t: &str| key_names.iter().map(|k| format!("{t}.{k} = {}", col(k))).collect::<Vec<_>>().join(" AND ");
            let returning = key_names.iter().map(|k| format!("t.{k}")).collect::<Vec<_>>().join(", ");
            let rows = d.json_rows();
            let update = format!("UPDATE {table} AS t SET {sets} FROM {rows} WHERE {} RETURNING {returning}", on("t"));
            let insert = format!(
                "INSERT INTO {table} ({cols}) SELECT {exprs} FROM {rows} WHERE NOT EXISTS (SELECT 1 FROM $U AS u WHERE {})",
                on("u")
            );
            self.parts.push((vec![update, insert], json));
        } else {
            let sets = set
                .iter()
                .map(
                    |(c, add)| {
                        if *add { format!("{c} = {table}.{c} + excluded.{c}") } else { format!("{c} = excluded.{c}") }
                    },
                )
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO {table} ({cols}) SELECT {exprs} FROM {} ON CONFLICT ({}) DO UPDATE SET {sets}",
                d.json_rows(),
                key_names.join(", ")
            );
            self.parts.push((vec![sql], json));
        }
    }

    async fn run(self, tx: &mut sqlx::AnyConnection) -> Result<()> {
        let statements: usize = self.parts.iter().map(|(s, _)| s.len()).sum();
        if self.dialect.writes_in_one_statement() && statements > 1 {
            let mut ctes = Vec::with_capacity(statements);
            for (i, (sqls, _)) in self.parts.iter().enumerate() {
                for (j, sql) in sqls.iter().enumerate() {
                    let sql =
                        sql.replace("$P", &format!("${}", i + 1)).replace("$U", &format!("w{i}_{}", j.max(1) - 1));
                    ctes.push(format!("w{i}_{j} AS ({sql})"));
                }
            }
            let mut q = sqlx::query(AssertSqlSafe(format!("WITH {} SELECT 1", ctes.join(", "))));
            for (_, json) in &self.parts {
                q = q.bind(json.as_str());
            }
            q.execute(&mut *tx).await?;
            return Ok(());
        }
        for (sqls, json) in &self.parts {
            for sql in sqls {
                sqlx::query(AssertSqlSafe(sql.replace("$P", "$1"))).bind(json.as_str()).execute(&mut *tx).await?;
            }
        }
        Ok(())
    }
}

impl LedgerTx {
    /// Writes everything a batch decided, with multi-row statements.
    pub async fn write(&mut self, w: &LedgerWrites) -> Result<()> {
        // A head whose version the lock already bumped to this one changes only if its next event did.
        let heads: Vec<_> =
            w.heads.iter().filter(|h| self.bumped.get(&h.org_id) != Some(&(h.version, h.next_event_at))).collect();
        let set: &[_] = if heads.iter().all(|h| self.bumped.get(&h.org_id).is_some_and(|b| b.0 == h.version)) {
            &[("next_event_at", false)]
        } else {
            &[("version", false), ("next_event_at", false)]
        };
        let tx = &mut *self.tx;
        let mut bulk = Bulk { dialect: self.dialect, parts: Vec::new() };
        bulk.merge("ledger_heads", "org_id, version, next_event_at", 1, set, &heads, |h| {
            vec![V::T(&h.org_id), V::I(h.version), V::OI(h.next_event_at)]
        });
        let set = ["balance", "held", "granted", "charged", "expired", "anchor_at", "cycle", "allowance"];
        bulk.merge("wallets", WALLET_COLS, 2, &set.map(|c| (c, false)), &w.wallets, |x| {
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
        });
        let set = ["remaining", "reserved", "expired", "expires_at"];
        bulk.merge("grants", GRANT_COLS, 2, &set.map(|c| (c, false)), &w.grants, |g| {
            vec![
                V::T(&g.org_id),
                V::T(&g.id),
                V::T(&g.wallet_id),
                V::T(g.source.as_str()),
                V::I(g.amount),
                V::I(g.remaining),
                V::I(g.reserved),
                V::I(g.expired),
                V::I(g.effective_at),
                V::OI(g.expires_at),
                V::I(g.created_at),
                V::OT(g.cycle_key.as_deref()),
                V::OT(g.reason.as_deref()),
                V::T(g.actor_type.as_str()),
                V::T(&g.actor_id),
            ]
        });
        bulk.add(
            &format!("INSERT INTO ledger_entries ({ENTRY_COLS}, idem_key, idem_fp, idem_day)"),
            "",
            &w.entries,
            |e| {
                vec![
                    V::T(&e.org_id),
                    V::T(&e.id),
                    V::T(e.kind.as_str()),
                    V::T(&e.wallet_id),
                    V::T(&e.workspace_id),
                    V::T(e.actor_type.as_str()),
                    V::T(&e.actor_id),
                    V::T(&e.member_id),
                    V::T(&e.key_id),
                    V::I(e.amount),
                    V::T(&e.action),
                    V::OT(e.metadata.as_deref()),
                    V::S(e.splits.encode()),
                    V::OT(e.hold_id.as_deref()),
                    V::I(e.balance_after),
                    V::I(e.at),
                    V::I(e.seq),
                    V::OT(e.idem_key.as_deref()),
                    V::OT(e.idem_fp.as_deref()),
                    V::OI(e.idem_key.as_ref().map(|_| e.at.div_euclid(IDEM_DAY_MS))),
                ]
            },
        );
        let set = ["status", "closed_at", "charge_id"];
        bulk.merge("holds", HOLD_COLS, 2, &set.map(|c| (c, false)), &w.holds, |h| {
            vec![
                V::T(&h.org_id),
                V::T(&h.id),
                V::T(&h.wallet_id),
                V::T(&h.workspace_id),
                V::T(h.actor_type.as_str()),
                V::T(&h.actor_id),
                V::T(&h.member_id),
                V::T(&h.key_id),
                V::T(&h.action),
                V::I(h.amount),
                V::S(h.splits.encode()),
                V::T(h.status.as_str()),
                V::I(h.period_start),
                V::I(h.expires_at),
                V::I(h.created_at),
                V::OI(h.closed_at),
                V::OT(h.charge_id.as_deref()),
            ]
        });
        for (org, scope, ws, user) in &w.budgets_removed {
            sqlx::query("DELETE FROM budgets WHERE org_id = $1 AND scope = $2 AND workspace_id = $3 AND user_id = $4")
                .bind(org)
                .bind(scope.as_str())
                .bind(ws)
                .bind(user)
                .execute(&mut *tx)
                .await?;
        }
        let set = ["amount_limit", "alert_percents", "updated_at"];
        bulk.merge("budgets", BUDGET_COLS, 4, &set.map(|c| (c, false)), &w.budgets, |b| {
            vec![
                V::T(&b.org_id),
                V::T(b.scope.as_str()),
                V::T(&b.workspace_id),
                V::T(&b.user_id),
                V::I(b.limit),
                V::S(encode_percents(&b.alert_percents)),
                V::I(b.updated_at),
            ]
        });
        let usage: Vec<_> = w.usage.iter().filter(|(_, d)| **d != 0).collect();
        bulk.merge(
            "budget_usage",
            "org_id, scope, subject, period_start, used",
            4,
            &[("used", true)],
            &usage,
            |(k, d)| vec![V::T(&k.0), V::T(k.1.as_str()), V::T(&k.2), V::I(k.3), V::I(**d)],
        );
        let rollups: Vec<_> = w.rollups.iter().collect();
        bulk.merge(
            "usage_rollups",
            "org_id, hour, wallet_id, workspace_id, member_id, key_id, action, amount, count",
            7,
            &[("amount", true), ("count", true)],
            &rollups,
            |(k, (a, c))| {
                vec![
                    V::T(&k.0),
                    V::I(k.1),
                    V::T(&k.2),
                    V::T(&k.3),
                    V::T(&k.4),
                    V::T(&k.5),
                    V::T(&k.6),
                    V::I(*a),
                    V::I(*c),
                ]
            },
        );
        bulk.add(
            "INSERT INTO idempotency (org_id, key, fingerprint, status, response, created_at)",
            "",
            &w.idempotency,
            |r| vec![V::T(&r.org_id), V::T(&r.key), V::T(&r.fingerprint), V::I(0), V::T(&r.record), V::I(r.created_at)],
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
                    V::T(a.actor_type.as_str()),
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
}

//! A batch's writes through sqlx: every table's rows as one JSON parameter per statement, and on
//! PostgreSQL all of them in one statement.

use sqlx::{AssertSqlSafe, Row};

use super::plan::{Op, V, plan};
use super::rows::LedgerWrites;
use super::tx::LedgerTx;
use crate::audit_chain::{Chain, Heads, chain_rows, orgs_of};
use crate::{Dialect, Result};

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
fn encode(rows: &[Vec<V<'_>>]) -> Option<(Vec<bool>, String)> {
    let first = rows.first()?;
    let kinds: Vec<bool> = first.iter().map(V::is_int).collect();
    let mut json = String::with_capacity(rows.len() * 256);
    json.push('[');
    for (n, r) in rows.iter().enumerate() {
        if n > 0 {
            json.push(',');
        }
        json.push('[');
        for (i, v) in r.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            match v {
                V::I(x) | V::OI(Some(x)) => json.push_str(&x.to_string()),
                V::T(t) | V::OT(Some(t)) => json.push_str(&serde_json::Value::from(*t).to_string()),
                V::S(t) => json.push_str(&serde_json::Value::from(t.as_str()).to_string()),
                V::OI(None) | V::OT(None) => json.push_str("null"),
            }
        }
        json.push(']');
    }
    json.push(']');
    Some((kinds, json))
}

impl Bulk {
    fn add(&mut self, head: &str, tail: &str, rows: &[Vec<V<'_>>]) {
        let Some((kinds, json)) = encode(rows) else { return };
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
    fn merge(&mut self, table: &str, cols: &str, keys: usize, set: &[(&str, bool)], rows: &[Vec<V<'_>>]) {
        let Some((kinds, json)) = encode(rows) else { return };
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
        let chain = self.audit_chain(w).await?;
        let tx = &mut *self.tx;
        let mut bulk = Bulk { dialect: self.dialect, parts: Vec::new() };
        for part in plan(w, &self.bumped, &chain) {
            match &part.op {
                Op::Delete => {
                    let names = part.names();
                    let cond = names.iter().enumerate().map(|(i, c)| format!("{c} = ${}", i + 1)).collect::<Vec<_>>();
                    let sql = format!("DELETE FROM {} WHERE {}", part.table, cond.join(" AND "));
                    for row in &part.rows {
                        let mut q = sqlx::query(AssertSqlSafe(sql.as_str()));
                        for v in row {
                            q = match v {
                                V::I(x) => q.bind(*x),
                                V::OI(x) => q.bind(*x),
                                V::T(t) => q.bind(*t),
                                V::OT(t) => q.bind(*t),
                                V::S(t) => q.bind(t.as_str()),
                            };
                        }
                        q.execute(&mut *tx).await?;
                    }
                }
                Op::Insert => bulk.add(&format!("INSERT INTO {} ({})", part.table, part.cols), "", &part.rows),
                Op::Merge { keys, set } => bulk.merge(part.table, &part.cols, *keys, set, &part.rows),
            }
        }
        bulk.run(tx).await
    }
}

impl LedgerTx {
    /// Chains the batch's audit events after their orgs' newest links, read under the orgs' lock.
    async fn audit_chain(&mut self, w: &LedgerWrites) -> Result<Chain> {
        if w.audit.is_empty() {
            return Ok(Chain::default());
        }
        let orgs = orgs_of(&w.audit);
        let mut heads = Heads::new();
        for chunk in orgs.chunks(1000) {
            let sql =
                format!("SELECT org_id, seq, hash FROM audit_heads WHERE org_id IN ({})", in_list(1, chunk.len()));
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for o in chunk {
                q = q.bind(*o);
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                heads.insert(r.try_get("org_id")?, (r.try_get("seq")?, r.try_get("hash")?));
            }
        }
        Ok(chain_rows(heads, &w.audit))
    }
}

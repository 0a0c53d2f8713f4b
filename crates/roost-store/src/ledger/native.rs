//! SQLite's ledger writer of its own: one connection on a thread of its own, with cached prepared
//! statements, that commits the engine's batches one after another. Through sqlx every statement
//! hops to the driver's worker thread and the rows of a batch travel as JSON that SQLite unpacks
//! with `json_extract`; here each row is bound straight into a statement prepared once. Checkpoints
//! stay off this path: the store runs them in the background ([`crate::Dialect::background_checkpoint`]).

use std::collections::HashMap;
use std::sync::mpsc;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, ToSql, params_from_iter};
use tokio::sync::oneshot;

use super::commit::{Batch, Committed, Phases};
use super::plan::{Op, Part, V, plan};
use super::rows::LedgerOrg;
use super::tx::{CHARGE_ROLES_SQL, ORG_SQL};
use crate::audit_chain::{Heads, chain_rows, orgs_of};
use crate::{Result, StoreError};

impl ToSql for V<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            V::I(x) | V::OI(Some(x)) => ValueRef::Integer(*x),
            V::T(t) | V::OT(Some(t)) => ValueRef::Text(t.as_bytes()),
            V::S(t) => ValueRef::Text(t.as_bytes()),
            V::OI(None) | V::OT(None) => ValueRef::Null,
        }))
    }
}

/// A batch and where its outcome goes.
struct Request {
    batch: Batch,
    reply: oneshot::Sender<Result<Committed>>,
}

/// The handle of the writer thread; the thread ends when the last handle is dropped.
pub(crate) struct Writer {
    requests: mpsc::Sender<Request>,
    thread: std::thread::JoinHandle<()>,
}

impl Writer {
    /// Starts the writer of the database file at `path`; its connection opens at the first batch
    /// (after the migrations), with the same settings as the pool's (`setup`).
    pub(crate) fn start(path: String, setup: &'static str) -> Result<Self> {
        let (requests, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("roost-ledger-writer".into())
            .spawn(move || run(&path, setup, &rx))
            .map_err(|e| StoreError::Setup(format!("cannot start the SQLite ledger writer: {e}")))?;
        Ok(Self { requests, thread })
    }

    /// Whether the writer thread still runs (it ends only if it panicked).
    pub(crate) fn running(&self) -> bool {
        !self.thread.is_finished()
    }

    /// Commits `batch` on the writer thread.
    pub(crate) async fn commit(&self, batch: Batch) -> Result<Committed> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Setup("the SQLite ledger writer has stopped".into());
        self.requests.send(Request { batch, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The database file of a `sqlite:` URL, unless the database lives in memory (where a second
/// connection would see another database).
pub(crate) fn file_of(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let memory = path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory");
    (!memory).then(|| path.to_string())
}

fn run(path: &str, setup: &'static str, requests: &mpsc::Receiver<Request>) {
    let mut conn: Option<Connection> = None;
    while let Ok(Request { batch, reply }) = requests.recv() {
        let outcome = open(&mut conn, path, setup).and_then(|c| {
            let outcome = commit(c, batch);
            if outcome.is_err() && !c.is_autocommit() {
                // Leave the connection clean for the next batch, whatever failed.
                if let Err(e) = c.execute_batch("ROLLBACK") {
                    tracing::warn!(error = %e, "the SQLite ledger writer could not roll back; reconnecting");
                    return Err(e);
                }
            }
            outcome
        });
        if outcome.is_err() && conn.as_ref().is_some_and(|c| !c.is_autocommit()) {
            conn = None;
        }
        let _ = reply.send(outcome.map_err(StoreError::from));
    }
}

fn open<'c>(conn: &'c mut Option<Connection>, path: &str, setup: &str) -> rusqlite::Result<&'c mut Connection> {
    if conn.is_none() {
        let c = Connection::open(path)?;
        c.execute_batch(setup)?;
        c.set_prepared_statement_cache_capacity(64);
        *conn = Some(c);
    }
    conn.as_mut().ok_or(rusqlite::Error::InvalidQuery)
}

fn commit(c: &mut Connection, batch: Batch) -> rusqlite::Result<Committed> {
    let mut phases = Phases::start();
    c.execute_batch("BEGIN IMMEDIATE")?;
    // The transaction holds the database's only write lock: reading the orgs is locking them.
    let mut orgs = Vec::with_capacity(batch.orgs.len());
    let mut stmt = c.prepare_cached(&ORG_SQL.replace('$', "?"))?;
    for id in &batch.orgs {
        if let Some(o) = stmt.query_row([id], org_from).optional()? {
            orgs.push(o);
        }
    }
    drop(stmt);
    let mut roles = Vec::with_capacity(batch.roles.len());
    let mut stmt = c.prepare_cached(&CHARGE_ROLES_SQL.replace('$', "?"))?;
    for (org, ws, user) in &batch.roles {
        roles.push(stmt.query_row([org, ws, user], |r| Ok((r.get(0)?, r.get(1)?))).optional()?);
    }
    drop(stmt);
    if !(batch.check)(&orgs, &roles) {
        c.execute_batch("ROLLBACK")?;
        return Ok(phases.done(false));
    }
    phases.mark("lock and check");
    let mut heads = Heads::new();
    let mut stmt = c.prepare_cached("SELECT seq, hash FROM audit_heads WHERE org_id = ?1")?;
    for org in orgs_of(&batch.writes.audit) {
        if let Some(head) = stmt.query_row([org], |r| Ok((r.get(0)?, r.get(1)?))).optional()? {
            heads.insert(org.to_string(), head);
        }
    }
    drop(stmt);
    let chain = chain_rows(heads, &batch.writes.audit);
    for part in plan(&batch.writes, &HashMap::new(), &chain) {
        let mut stmt = c.prepare_cached(&row_sql(&part))?;
        for row in &part.rows {
            stmt.execute(params_from_iter(row.iter()))?;
        }
    }
    // Named apart from the pool writer's "write", so that traces of both tell them apart.
    phases.mark("write rows");
    c.execute_batch("COMMIT")?;
    phases.mark("commit");
    Ok(phases.done(true))
}

fn org_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<LedgerOrg> {
    Ok(LedgerOrg {
        id: r.get(0)?,
        kind: r.get(1)?,
        plan: r.get(2)?,
        plan_started_at: r.get(3)?,
        trial_ends_at: r.get(4)?,
        deleted: r.get::<_, Option<i64>>(5)?.is_some(),
        version: r.get(6)?,
    })
}

/// The statement that writes one row of `part`.
fn row_sql(part: &Part<'_>) -> String {
    let names = part.names();
    let params = (1..=names.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
    match &part.op {
        Op::Insert => format!("INSERT INTO {} ({}) VALUES ({params})", part.table, part.cols),
        Op::Merge { keys, set } => {
            let sets = set
                .iter()
                .map(|(c, add)| {
                    if *add {
                        format!("{c} = {}.{c} + excluded.{c}", part.table)
                    } else {
                        format!("{c} = excluded.{c}")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "INSERT INTO {} ({}) VALUES ({params}) ON CONFLICT ({}) DO UPDATE SET {sets}",
                part.table,
                part.cols,
                names[..*keys].join(", ")
            )
        }
        Op::Delete => {
            let cond = names.iter().enumerate().map(|(i, c)| format!("{c} = ?{}", i + 1)).collect::<Vec<_>>();
            format!("DELETE FROM {} WHERE {}", part.table, cond.join(" AND "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::file_of;

    #[test]
    fn only_files_get_a_writer_of_their_own() {
        assert_eq!(file_of("sqlite://data/roost.db?mode=rwc").as_deref(), Some("data/roost.db"));
        assert_eq!(file_of("sqlite:///tmp/x.db").as_deref(), Some("/tmp/x.db"));
        assert_eq!(file_of("sqlite:roost.db").as_deref(), Some("roost.db"));
        assert_eq!(file_of("sqlite::memory:"), None);
        assert_eq!(file_of("sqlite://x.db?mode=memory&cache=shared"), None);
        assert_eq!(file_of("postgres://localhost/x"), None);
    }
}

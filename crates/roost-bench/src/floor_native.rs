//! The floor on SQLite through a connection of its own on a thread of its own, with cached
//! statements: the same way the engine's SQLite writer reaches the database, so that the floor
//! is not slowed by the driver the engine no longer uses (it must not flatter the engine).

use std::collections::BTreeMap;
use std::sync::mpsc;

use rusqlite::{Connection, params_from_iter};
use tokio::sync::oneshot;

use crate::AMOUNT;

/// One batch for the floor's thread: `(wallet, idempotency key)` per charge.
type Work = (Vec<(String, String)>, oneshot::Sender<anyhow::Result<Vec<bool>>>);

/// The handle of the floor's SQLite thread; it ends when the handle is dropped.
pub(crate) struct NativeFloor {
    work: mpsc::Sender<Work>,
}

impl NativeFloor {
    /// Starts the floor's writer on the database file at `path`.
    pub(crate) fn start(path: std::path::PathBuf) -> anyhow::Result<Self> {
        let c = Connection::open(path)?;
        c.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0; PRAGMA busy_timeout = 10000;",
        )?;
        let (work, rx) = mpsc::channel::<Work>();
        std::thread::Builder::new().name("floor-writer".into()).spawn(move || {
            let mut c = c;
            while let Ok((charges, reply)) = rx.recv() {
                let done = commit(&mut c, &charges);
                if done.is_err() && !c.is_autocommit() {
                    let _ = c.execute_batch("ROLLBACK");
                }
                let _ = reply.send(done);
            }
        })?;
        Ok(Self { work })
    }

    /// Commits one batch; per charge, whether it was charged.
    pub(crate) async fn commit(&self, charges: Vec<(String, String)>) -> anyhow::Result<Vec<bool>> {
        let (reply, answer) = oneshot::channel();
        self.work.send((charges, reply)).map_err(|_| anyhow::anyhow!("the floor's SQLite thread stopped"))?;
        answer.await.map_err(|_| anyhow::anyhow!("the floor's SQLite thread stopped"))?
    }
}

/// One batch: one multi-row `INSERT` of the charges, one conditional `UPDATE` per wallet, one
/// commit (a wallet that cannot pay is left out and the batch redone, as in the pool's floor).
fn commit(c: &mut Connection, charges: &[(String, String)]) -> anyhow::Result<Vec<bool>> {
    let mut refused: Vec<&str> = Vec::new();
    loop {
        let live: Vec<&(String, String)> = charges.iter().filter(|(w, _)| !refused.contains(&w.as_str())).collect();
        if live.is_empty() {
            break;
        }
        let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
        for (w, _) in &live {
            *totals.entry(w.as_str()).or_default() += AMOUNT;
        }
        c.execute_batch("BEGIN IMMEDIATE")?;
        let rows = (0..live.len()).map(|i| format!("(?{}, ?{}, ?{})", 3 * i + 1, 3 * i + 2, 3 * i + 3));
        let sql = format!(
            "INSERT INTO floor_charges (idem_key, wallet_id, amount) VALUES {}",
            rows.collect::<Vec<_>>().join(", ")
        );
        let mut values: Vec<rusqlite::types::Value> = Vec::with_capacity(3 * live.len());
        for (w, idem) in &live {
            values.push(idem.clone().into());
            values.push(w.clone().into());
            values.push(AMOUNT.into());
        }
        c.prepare_cached(&sql)?.execute(params_from_iter(values))?;
        let mut short = None;
        {
            let mut update =
                c.prepare_cached("UPDATE floor_wallets SET balance = balance - ?1 WHERE id = ?2 AND balance >= ?1")?;
            for (wallet, total) in &totals {
                if update.execute(rusqlite::params![total, wallet])? != 1 {
                    short = Some(*wallet);
                    break;
                }
            }
        }
        match short {
            Some(w) => {
                c.execute_batch("ROLLBACK")?;
                refused.push(w);
            }
            None => {
                c.execute_batch("COMMIT")?;
                break;
            }
        }
    }
    Ok(charges.iter().map(|(w, _)| !refused.contains(&w.as_str())).collect())
}

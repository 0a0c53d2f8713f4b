//! The floor's runs: the least durable work a batched charge needs, in batches of the engine's size.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use roost_store::Store;
use sqlx::AssertSqlSafe;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use crate::AMOUNT;
use crate::clients::{drive, pick};
use crate::floor_native::NativeFloor;
use crate::report::Run;
use crate::setup::Target;

/// A charge waiting for the floor's collector.
struct FloorReq {
    wallet: String,
    idem: String,
    reply: oneshot::Sender<anyhow::Result<bool>>,
}

/// The floor's writers, shaped like the engine's: `writers` of them, each owning the wallets whose
/// id hashes to it (the engine's partition of orgs), each with a collector that groups its charges
/// into batches of exactly `batch` and commits each batch in one transaction, answering every
/// charge after its batch committed. On PostgreSQL a writer may have two batches in flight (the
/// engine, too, applies its next batch while one commits); SQLite has one writer and one batch.
/// A collector sends a smaller batch only when it has nothing committing and no charge has come
/// for 5 ms (closed-loop clients spread over several writers could otherwise all be waiting in
/// partial batches), or once the clients are told to stop; the measured mean batch size is reported.
pub(crate) async fn run_floor(
    store: &Store,
    sqlite_file: Option<&std::path::Path>,
    targets: &[Target],
    clients: usize,
    secs: f64,
    batch: usize,
    writers: usize,
) -> anyhow::Result<Run> {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let (stop_tx, stop_rx) = watch::channel(false);
    let batches = Arc::new(AtomicU64::new(0));
    let commands = Arc::new(AtomicU64::new(0));
    let sqlite = store.backend() == "sqlite";
    let begin = if sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" };
    let depth = if sqlite { 1 } else { 2 };
    let mut senders = Vec::new();
    let mut collectors = Vec::new();
    for _ in 0..writers.max(1) {
        let (tx, rx) = mpsc::unbounded_channel::<FloorReq>();
        senders.push(tx);
        let db = match sqlite_file {
            // As the engine's SQLite writer does: a connection of its own on a thread of its own.
            Some(path) => FloorDb::Native(Arc::new(NativeFloor::start(path.to_path_buf())?)),
            None => FloorDb::Pool(store.pool().clone(), begin),
        };
        let (nb, nc) = (batches.clone(), commands.clone());
        collectors.push(tokio::spawn(collect(rx, stop_rx.clone(), db, batch, depth, nb, nc)));
    }
    let targets = Arc::new(targets.to_vec());
    let senders = Arc::new(senders);
    let mut r = drive(
        clients,
        secs,
        move |c, i| {
            let senders = senders.clone();
            let targets = targets.clone();
            async move {
                let (t, _) = pick(&targets, clients, c, i);
                let mut h = std::collections::hash_map::DefaultHasher::new();
                t.org.hash(&mut h);
                let w = usize::try_from(h.finish() % senders.len() as u64).unwrap_or(0);
                let (reply, answer) = oneshot::channel();
                senders[w]
                    .send(FloorReq { wallet: t.org.clone(), idem: format!("fl-{run}-{c}-{i}"), reply })
                    .map_err(|_| anyhow::anyhow!("the floor's collector stopped"))?;
                answer.await.map_err(|_| anyhow::anyhow!("the floor's batch was dropped"))?
            }
        },
        move || {
            let _ = stop_tx.send(true);
        },
    )
    .await;
    for c in collectors {
        let _ = c.await;
    }
    #[expect(clippy::cast_precision_loss, reason = "a mean for people")]
    let mean = commands.load(Ordering::Relaxed) as f64 / batches.load(Ordering::Relaxed).max(1) as f64;
    r.batch = mean;
    Ok(r)
}

/// How the floor reaches its database.
#[derive(Clone)]
enum FloorDb {
    /// Through the pool (sqlx), with this `BEGIN`.
    Pool(sqlx::AnyPool, &'static str),
    /// SQLite through a connection of its own on a thread of its own.
    Native(Arc<NativeFloor>),
}

impl FloorDb {
    async fn commit(&self, insert: &Arc<str>, reqs: &[FloorReq]) -> anyhow::Result<Vec<bool>> {
        match self {
            Self::Pool(pool, begin) => commit_floor(pool, begin, insert, reqs).await,
            Self::Native(n) => n.commit(reqs.iter().map(|r| (r.wallet.clone(), r.idem.clone())).collect()).await,
        }
    }
}

/// One floor writer: see [`run_floor`].
async fn collect(
    mut rx: mpsc::UnboundedReceiver<FloorReq>,
    mut stop: watch::Receiver<bool>,
    db: FloorDb,
    batch: usize,
    depth: usize,
    batches: Arc<AtomicU64>,
    commands: Arc<AtomicU64>,
) {
    let gate = Arc::new(Semaphore::new(depth));
    let mut inserts: BTreeMap<usize, Arc<str>> = BTreeMap::new();
    let mut draining = false;
    loop {
        let mut reqs = Vec::with_capacity(batch);
        while reqs.len() < batch {
            if draining {
                match rx.try_recv() {
                    Ok(r) => reqs.push(r),
                    Err(mpsc::error::TryRecvError::Empty) if !reqs.is_empty() => break,
                    Err(mpsc::error::TryRecvError::Empty) => match rx.recv().await {
                        Some(r) => reqs.push(r),
                        None => break,
                    },
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                }
                continue;
            }
            let stall = tokio::time::sleep(Duration::from_millis(if reqs.is_empty() { 3_600_000 } else { 5 }));
            tokio::select! {
                r = rx.recv() => match r {
                    Some(r) => reqs.push(r),
                    None => break,
                },
                // Nothing came for 5 ms and this writer has nothing committing: the clients may all
                // be waiting in partial batches.
                () = stall => if gate.available_permits() == depth { break },
                _ = stop.changed() => draining = true,
            }
        }
        if reqs.is_empty() {
            break;
        }
        let n = reqs.len();
        let sql = inserts.entry(n).or_insert_with(|| insert_sql(n).into()).clone();
        let Ok(permit) = gate.clone().acquire_owned().await else { break };
        let db = db.clone();
        let (nb, nc) = (batches.clone(), commands.clone());
        tokio::spawn(async move {
            let answers = db.commit(&sql, &reqs).await;
            drop(permit);
            match answers {
                Ok(ok) => {
                    nb.fetch_add(1, Ordering::Relaxed);
                    nc.fetch_add(n as u64, Ordering::Relaxed);
                    for (r, ok) in reqs.into_iter().zip(ok) {
                        let _ = r.reply.send(Ok(ok));
                    }
                }
                Err(e) => {
                    for r in reqs {
                        let _ = r.reply.send(Err(anyhow::anyhow!("floor batch failed: {e:#}")));
                    }
                }
            }
        });
    }
    // The last batches.
    let _ = gate.acquire_many(u32::try_from(depth).unwrap_or(1)).await;
}

/// The floor's multi-row insert of `n` charges.
fn insert_sql(n: usize) -> String {
    let rows: Vec<String> = (0..n).map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3)).collect();
    format!("INSERT INTO floor_charges (idem_key, wallet_id, amount) VALUES {}", rows.join(", "))
}

/// One floor batch: the charges in one multi-row `INSERT`, then one conditional `UPDATE` per
/// wallet (in id order, so concurrent batches cannot deadlock), one commit. A wallet that cannot
/// pay its share is left out and the batch redone without it (never the case here: the wallets
/// hold far more than a run charges). Returns, per request, whether it was charged.
async fn commit_floor(
    pool: &sqlx::AnyPool,
    begin: &'static str,
    insert: &Arc<str>,
    reqs: &[FloorReq],
) -> anyhow::Result<Vec<bool>> {
    let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
    for r in reqs {
        *totals.entry(r.wallet.as_str()).or_default() += AMOUNT;
    }
    let mut refused: Vec<&str> = Vec::new();
    loop {
        let live: Vec<&FloorReq> = reqs.iter().filter(|r| !refused.contains(&r.wallet.as_str())).collect();
        if live.is_empty() {
            break;
        }
        let mut tx = pool.begin_with(begin).await?;
        let mut q = if live.len() == reqs.len() {
            sqlx::query(AssertSqlSafe(insert.clone()))
        } else {
            sqlx::query(AssertSqlSafe(insert_sql(live.len())))
        };
        for r in &live {
            q = q.bind(r.idem.as_str()).bind(r.wallet.as_str()).bind(AMOUNT);
        }
        q.execute(&mut *tx).await?;
        let mut short = None;
        for (wallet, total) in totals.iter().filter(|(w, _)| !refused.contains(*w)) {
            let n = sqlx::query("UPDATE floor_wallets SET balance = balance - $1 WHERE id = $2 AND balance >= $1")
                .bind(*total)
                .bind(*wallet)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                short = Some(*wallet);
                break;
            }
        }
        match short {
            Some(w) => {
                tx.rollback().await?;
                refused.push(w);
            }
            None => {
                tx.commit().await?;
                break;
            }
        }
    }
    Ok(reqs.iter().map(|r| !refused.contains(&r.wallet.as_str())).collect())
}

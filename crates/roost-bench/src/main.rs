//! `roost-bench`: charges from closed-loop clients (each waits for its answer before sending the
//! next) against one hot wallet and against many wallets, on SQLite and (with `--postgres`)
//! PostgreSQL, durable commits on (SQLite WAL with `synchronous=FULL`; PostgreSQL's defaults).
//! Each run measures three things on the same database, with the same clients:
//!
//! - the **naive baseline**: one transaction per charge, a conditional
//!   `UPDATE … SET balance = balance - $1 WHERE id = $2 AND balance >= $1` plus the `INSERT` of the
//!   charge row;
//! - the **engine**: roost's batching ledger (`roost_ledger::Ledger`), with everything it writes;
//! - the **floor**: the least durable work a batched charge needs: one transaction per batch with
//!   one multi-row `INSERT` of the batch's charges (idempotency key as primary key) and one
//!   conditional `UPDATE` per wallet of the batch, in batches of the engine's measured mean batch
//!   size in that run.
//!
//! Charges are spread over 8 workspaces and 64 API keys per org. After each run the books are
//! checked (engine, baseline and floor). Prints charges/s, p50/p99, the mean batch size, and
//! engine ÷ baseline and engine ÷ floor.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use roost_domain::{Catalog, IdKind};
use roost_ledger::{ActorRef, Answer, Command, Idem, Ledger, LedgerConfig, LedgerError, Op, Source};
use roost_store::{Actor, ApiKey, Ctx, NewOrg, NewSignup, Store};
use sqlx::AssertSqlSafe;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

#[derive(Debug, Parser)]
#[command(name = "roost-bench", about = "roost's ledger engine between the naive baseline and the batched floor")]
struct Args {
    /// Closed-loop client counts to run with.
    #[arg(long, value_delimiter = ',', default_value = "64,256")]
    clients: Vec<usize>,
    /// Wallet counts to run against (one org, hence one wallet, each) [default: 1,1000; 1,20 with --quick].
    #[arg(long, value_delimiter = ',')]
    wallets: Option<Vec<usize>>,
    /// Seconds each measured run lasts [default: 8; 2 with --quick].
    #[arg(long)]
    seconds: Option<f64>,
    /// Seconds of warm-up before each measured run, not counted [default: 1; 0.3 with --quick].
    #[arg(long)]
    warmup: Option<f64>,
    /// A smoke run: short runs and 20 wallets instead of 1,000 unless given.
    #[arg(long)]
    quick: bool,
    /// Also run on PostgreSQL: an admin URL ending in a database name (a fresh database is made
    /// next to it, and dropped afterwards).
    #[arg(long)]
    postgres: Option<String>,
    /// Skip SQLite.
    #[arg(long)]
    no_sqlite: bool,
    /// Ledger writers on PostgreSQL (SQLite has one); the floor runs as many batches at once.
    #[arg(long, default_value_t = 4)]
    shards: usize,
    /// Workspaces per org the charges are spread over.
    #[arg(long, default_value_t = 8)]
    workspaces: usize,
    /// API keys per org the charges are spread over (round-robin over the workspaces).
    #[arg(long, default_value_t = 64)]
    keys: usize,
}

/// The one place that reads the engine's answer: did the command take effect?
fn accepted(r: &Answer) -> bool {
    r.is_ok()
}

/// What one measured run saw.
struct Run {
    ok: u64,
    rejected: u64,
    secs: f64,
    latencies_us: Vec<u32>,
    /// Commands per committed transaction.
    batch: f64,
}

impl Run {
    #[expect(clippy::cast_precision_loss, reason = "a rate for people")]
    fn rate(&self) -> f64 {
        self.ok as f64 / self.secs
    }
    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "an index"
    )]
    fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

const AMOUNT: i64 = 1;
const FUNDS: i64 = 1_000_000_000_000;

#[expect(clippy::disallowed_methods, reason = "the benchmark stamps its own runs; it is not the server")]
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One funded org: its wallet, workspaces and keys.
#[derive(Clone)]
struct Target {
    org: String,
    /// `(key id, its workspace)`.
    keys: Vec<(String, String)>,
    owner: String,
}

/// A database made for one set of runs, removed by [`Db::remove`].
struct Db {
    store: Store,
    backend: &'static str,
    /// SQLite: the directory holding the file; PostgreSQL: `(admin URL, database name)`.
    sqlite_dir: Option<std::path::PathBuf>,
    pg: Option<(String, String)>,
}

async fn fresh_db(backend: &'static str, pg_admin: Option<&str>) -> anyhow::Result<Db> {
    let (url, sqlite_dir, pg) = match backend {
        "sqlite" => {
            let dir =
                std::env::temp_dir().join(format!("roost-bench-{}-{}", std::process::id(), IdKind::Org.generate()));
            std::fs::create_dir_all(&dir)?;
            (format!("sqlite://{}", dir.join("bench.db").display()), Some(dir), None)
        }
        _ => {
            let admin = pg_admin.context("--postgres URL")?;
            let name = format!("roost_bench_{}", IdKind::Org.generate().trim_start_matches("org_")).to_lowercase();
            let a = Store::connect(admin).await?;
            sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(a.pool()).await?;
            a.close().await;
            let (prefix, _) = admin.rsplit_once('/').context("the URL must end in /DBNAME")?;
            (format!("{prefix}/{name}"), None, Some((admin.to_string(), name)))
        }
    };
    let store = match Store::connect(&url).await {
        Ok(s) => s,
        Err(e) => {
            remove_files(sqlite_dir.as_deref(), pg.as_ref()).await;
            return Err(e.into());
        }
    };
    let db = Db { store, backend, sqlite_dir, pg };
    let made: anyhow::Result<()> = async {
        db.store.migrate().await?;
        sqlx::raw_sql(
            "CREATE TABLE naive_wallets (id TEXT PRIMARY KEY, balance BIGINT NOT NULL); \
             CREATE TABLE naive_charges (id TEXT PRIMARY KEY, wallet_id TEXT NOT NULL, amount BIGINT NOT NULL, at BIGINT NOT NULL); \
             CREATE TABLE floor_wallets (id TEXT PRIMARY KEY, balance BIGINT NOT NULL); \
             CREATE TABLE floor_charges (idem_key TEXT PRIMARY KEY, wallet_id TEXT NOT NULL, amount BIGINT NOT NULL);",
        )
        .execute(db.store.pool())
        .await?;
        Ok(())
    }
    .await;
    if let Err(e) = made {
        db.remove().await;
        return Err(e);
    }
    Ok(db)
}

impl Db {
    /// Closes the pool and drops the database (PostgreSQL) or deletes its files (SQLite).
    async fn remove(self) {
        self.store.close().await;
        remove_files(self.sqlite_dir.as_deref(), self.pg.as_ref()).await;
    }
}

async fn remove_files(sqlite_dir: Option<&std::path::Path>, pg: Option<&(String, String)>) {
    if let Some(dir) = sqlite_dir
        && let Err(e) = std::fs::remove_dir_all(dir)
    {
        eprintln!("could not remove {}: {e}", dir.display());
    }
    if let Some((admin, name)) = pg {
        let dropped = async {
            let a = Store::connect(admin).await?;
            let r = sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .execute(a.pool())
                .await;
            a.close().await;
            r.map(|_| ()).map_err(anyhow::Error::from)
        }
        .await;
        if let Err(e) = dropped {
            eprintln!("could not drop database {name}: {e:#}");
        }
    }
}

/// Makes `n` business orgs owned by one user, each with `workspaces` workspaces and `keys` API
/// keys (through the store calls the server uses), funds their wallets through the engine and the
/// baseline's and floor's tables alike.
async fn setup(db: &Db, ledger: &Ledger, n: usize, workspaces: usize, keys: usize) -> anyhow::Result<Vec<Target>> {
    let store = &db.store;
    let now = now_ms();
    let s = NewSignup {
        user_id: IdKind::User.generate(),
        email: format!("bench-{}@example.com", IdKind::User.generate()),
        name: "bench".into(),
        password_hash: "x".into(),
        org_id: IdKind::Org.generate(),
        org_name: "bench".into(),
        plan: "free".into(),
        workspace_id: IdKind::Workspace.generate(),
        workspace_name: "bench".into(),
        token_hash: IdKind::Org.generate(),
        session_expires_at: now + 86_400_000,
    };
    let owner = s.user_id.clone();
    store.signup(&s, &Ctx { actor: Actor::user(&owner), ip: None, now }).await?;
    // SQLite has one writer: in parallel, its setup would only wait on the lock.
    let parallel = if db.backend == "sqlite" { 1 } else { 8 };
    let gate = Arc::new(Semaphore::new(parallel));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let (store, ledger, owner, gate) = (store.clone(), ledger.clone(), owner.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            one_org(&store, &ledger, &owner, workspaces, keys).await
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await??);
    }
    for table in ["naive_wallets", "floor_wallets"] {
        for chunk in out.chunks(200) {
            let values: Vec<String> = (0..chunk.len()).map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2)).collect();
            let sql = format!("INSERT INTO {table} (id, balance) VALUES {}", values.join(", "));
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for t in chunk {
                q = q.bind(t.org.clone()).bind(FUNDS);
            }
            q.execute(store.pool()).await?;
        }
    }
    Ok(out)
}

async fn one_org(
    store: &Store,
    ledger: &Ledger,
    owner: &str,
    workspaces: usize,
    keys: usize,
) -> anyhow::Result<Target> {
    let catalog = Catalog::builtin();
    let now = now_ms();
    let ctx = Ctx { actor: Actor::user(owner), ip: None, now };
    let o = NewOrg {
        id: IdKind::Org.generate(),
        name: "bench".into(),
        plan: "business".into(),
        owner_id: owner.into(),
        trial_ends_at: None,
        workspace_id: IdKind::Workspace.generate(),
        workspace_name: "ws 0".into(),
    };
    store.create_org(&o, &ctx).await?;
    let mut ws = vec![o.workspace_id.clone()];
    for i in 1..workspaces.max(1) {
        let id = IdKind::Workspace.generate();
        store.create_workspace(&o.id, &id, &format!("ws {i}"), &catalog, &ctx).await?;
        ws.push(id);
    }
    let mut key_ids = Vec::with_capacity(keys);
    for i in 0..keys.max(1) {
        let k = ApiKey {
            id: IdKind::Key.generate(),
            org_id: o.id.clone(),
            workspace_id: ws[i % ws.len()].clone(),
            name: format!("bench {i}"),
            prefix: "rsk_bench".into(),
            created_by: owner.into(),
            created_at: now,
            expires_at: None,
            spend_limit: None,
            revoked_at: None,
        };
        // A secret's hash is only looked up by authentication, which the benchmark does not do.
        store.create_key(&k, &format!("bench-{}-{}", k.id, IdKind::Key.generate()), &ctx).await?;
        key_ids.push((k.id, k.workspace_id));
    }
    let cmd = Command {
        org_id: o.id.clone(),
        actor: ActorRef::user(owner, None),
        op: Op::Grant {
            wallet: "credits".into(),
            source: Source::Topup,
            amount: FUNDS,
            expires_at: None,
            reason: None,
        },
        idem: None,
    };
    anyhow::ensure!(submit(ledger, cmd).await?, "funding {} was refused", o.id);
    Ok(Target { org: o.id, keys: key_ids, owner: owner.into() })
}

async fn submit(ledger: &Ledger, cmd: Command) -> anyhow::Result<bool> {
    ledger.submit(cmd).await.map(|r| accepted(&r)).map_err(|e: LedgerError| anyhow::anyhow!("{e}"))
}

/// Which org and key client `c` charges on its `i`th request: the orgs in turn, and client `c`
/// always with key `c mod keys` of that org.
fn pick(targets: &[Target], clients: usize, c: usize, i: u64) -> (&Target, usize) {
    let i = usize::try_from(i).unwrap_or(usize::MAX);
    let t = &targets[c.wrapping_add(i.wrapping_mul(clients)) % targets.len()];
    (t, c % t.keys.len())
}

/// Runs `clients` loops for `secs`, each calling `one(client, i)`; `Ok(true)` counts as a charge.
/// `stopped` is called when the clients are told to stop (they finish the request in hand).
async fn drive<F, Fut>(clients: usize, secs: f64, one: F, stopped: impl FnOnce()) -> Run
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<bool>> + Send,
{
    let one = Arc::new(one);
    let stop = Arc::new(AtomicBool::new(false));
    let rejected = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (one, stop, rejected) = (one.clone(), stop.clone(), rejected.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(16_384);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match one(c, i).await {
                    Ok(true) => lat.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX)),
                    Ok(false) => {
                        rejected.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("client {c}: {e:#}");
                        rejected.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += 1;
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    stopped();
    let mut all = Vec::new();
    for t in tasks {
        if let Ok(l) = t.await {
            all.extend(l);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    Run { ok: all.len() as u64, rejected: rejected.load(Ordering::Relaxed), secs, latencies_us: all, batch: 1.0 }
}

async fn run_engine(ledger: &Ledger, targets: &[Target], clients: usize, secs: f64) -> Run {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let before = ledger.stats();
    let l = ledger.clone();
    let targets = Arc::new(targets.to_vec());
    let mut r = drive(
        clients,
        secs,
        move |c, i| {
            let ledger = l.clone();
            let targets = targets.clone();
            async move {
                let (t, k) = pick(&targets, clients, c, i);
                let (key, ws) = &t.keys[k];
                let cmd = Command {
                    org_id: t.org.clone(),
                    actor: ActorRef::key(key, &t.owner, None, None),
                    op: Op::Charge {
                        workspace_id: ws.clone(),
                        wallet: "credits".into(),
                        amount: AMOUNT,
                        action: "bench".into(),
                        metadata: None,
                    },
                    idem: Some(Idem { key: format!("b-{run}-{c}-{i}"), fingerprint: format!("f-{c}-{i}") }),
                };
                submit(&ledger, cmd).await
            }
        },
        || {},
    )
    .await;
    let after = ledger.stats();
    let delta = roost_ledger::LedgerStats {
        batches: after.batches - before.batches,
        commands: after.commands - before.commands,
        ..after
    };
    r.batch = delta.mean_batch();
    r
}

async fn run_naive(store: &Store, targets: &[Target], clients: usize, secs: f64) -> Run {
    let pool = store.pool().clone();
    let begin = if store.backend() == "sqlite" { "BEGIN IMMEDIATE" } else { "BEGIN" };
    let targets = Arc::new(targets.to_vec());
    drive(
        clients,
        secs,
        move |c, i| {
            let pool = pool.clone();
            let targets = targets.clone();
            async move {
                let (t, _) = pick(&targets, clients, c, i);
                let mut tx = pool.begin_with(begin).await?;
                let done =
                    sqlx::query("UPDATE naive_wallets SET balance = balance - $1 WHERE id = $2 AND balance >= $1")
                        .bind(AMOUNT)
                        .bind(t.org.as_str())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                        == 1;
                if done {
                    sqlx::query("INSERT INTO naive_charges (id, wallet_id, amount, at) VALUES ($1, $2, $3, $4)")
                        .bind(IdKind::Charge.generate())
                        .bind(t.org.as_str())
                        .bind(AMOUNT)
                        .bind(now_ms())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(done)
            }
        },
        || {},
    )
    .await
}

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
async fn run_floor(store: &Store, targets: &[Target], clients: usize, secs: f64, batch: usize, writers: usize) -> Run {
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
        let pool = store.pool().clone();
        let (nb, nc) = (batches.clone(), commands.clone());
        collectors.push(tokio::spawn(collect(rx, stop_rx.clone(), pool, begin, batch, depth, nb, nc)));
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
    r
}

/// One floor writer: see [`run_floor`].
#[expect(clippy::too_many_arguments, reason = "one writer's settings")]
async fn collect(
    mut rx: mpsc::UnboundedReceiver<FloorReq>,
    mut stop: watch::Receiver<bool>,
    pool: sqlx::AnyPool,
    begin: &'static str,
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
        let pool = pool.clone();
        let (nb, nc) = (batches.clone(), commands.clone());
        tokio::spawn(async move {
            let answers = commit_floor(&pool, begin, &sql, &reqs).await;
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

/// Checks the engine's books after the runs: every wallet's balance equals what its grants hold
/// and what the journal says was charged, and the charged total is what was acknowledged.
async fn verify_engine(store: &Store, targets: &[Target], charged: u64) -> anyhow::Result<()> {
    let mut total = 0i64;
    for t in targets {
        let org = &t.org;
        let (wallets, grants) = store.wallets_of(org).await?;
        for w in &wallets {
            let held: i64 = grants.iter().filter(|g| g.wallet_id == w.id).map(|g| g.remaining + g.reserved).sum();
            anyhow::ensure!(w.granted - w.charged - w.expired == w.balance, "wallet totals disagree in {org}");
            anyhow::ensure!(held == w.balance, "grants disagree with the balance in {org}");
            total += w.charged;
        }
    }
    let acked = i64::try_from(charged)? * AMOUNT;
    anyhow::ensure!(total == acked, "engine: charged {total}, acknowledged {acked}");
    Ok(())
}

/// Checks the baseline's or the floor's books: the balances fell by exactly the charge rows, which
/// are exactly the acknowledged charges.
async fn verify_table(store: &Store, wallets: &str, charges: &str, n: usize, charged: u64) -> anyhow::Result<()> {
    let left: i64 =
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM {wallets}")))
            .fetch_one(store.pool())
            .await?;
    let rows: i64 =
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM {charges}")))
            .fetch_one(store.pool())
            .await?;
    let spent = i64::try_from(n)? * FUNDS - left;
    let acked = i64::try_from(charged)? * AMOUNT;
    anyhow::ensure!(
        spent == rows && rows == acked,
        "{charges}: balances fell by {spent}, rows {rows}, acknowledged {acked}"
    );
    Ok(())
}

fn ratio(a: f64, b: f64) -> String {
    format!("{:.2}×", a / b.max(1e-9))
}

fn line(what: &str, o: &Run, vs_base: &str, vs_floor: &str) {
    println!(
        "| {what:<48} | {:>9.0} | {:>7.2} | {:>7.2} | {:>8} | {:>6.1} | {vs_base:>8} | {vs_floor:>8} |",
        o.rate(),
        o.pct(0.50),
        o.pct(0.99),
        o.rejected,
        o.batch,
    );
}

/// All client counts against one fresh database with `n` wallets.
async fn runs_on(db: &Db, args: &Args, n: usize, secs: f64, warm: f64) -> anyhow::Result<()> {
    let store = &db.store;
    let cfg = LedgerConfig { shards: args.shards, ..LedgerConfig::default() };
    let ledger = Ledger::start(store.clone(), cfg, Arc::new(now_ms));
    let writers = ledger.config().shards;
    let t0 = Instant::now();
    let targets = setup(db, &ledger, n, args.workspaces, args.keys).await?;
    eprintln!(
        "{}: {n} org(s) × {} workspaces × {} keys set up in {:.1} s",
        db.backend,
        args.workspaces,
        args.keys,
        t0.elapsed().as_secs_f64()
    );
    let (mut engine_acked, mut naive_acked, mut floor_acked) = (0u64, 0u64, 0u64);
    let mut analyzed = false;
    for &clients in &args.clients {
        let w = run_naive(store, &targets, clients, warm).await;
        let base = run_naive(store, &targets, clients, secs).await;
        naive_acked += w.ok + base.ok;

        let w = run_engine(&ledger, &targets, clients, warm).await;
        engine_acked += w.ok;
        if !analyzed {
            // Table statistics, as autovacuum keeps them in a running database (fresh tables
            // have none, and PostgreSQL then plans lookups as scans).
            sqlx::raw_sql("ANALYZE").execute(store.pool()).await?;
            analyzed = true;
        }
        let eng = run_engine(&ledger, &targets, clients, secs).await;
        engine_acked += eng.ok;

        #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a batch size")]
        let batch = (eng.batch.round() as usize).clamp(1, clients);
        let w = run_floor(store, &targets, clients, warm, batch, writers).await;
        let floor = run_floor(store, &targets, clients, secs, batch, writers).await;
        floor_acked += w.ok + floor.ok;

        verify_engine(store, &targets, engine_acked).await?;
        verify_table(store, "naive_wallets", "naive_charges", n, naive_acked).await?;
        verify_table(store, "floor_wallets", "floor_charges", n, floor_acked).await?;

        let label = format!("{}, {n} wallet{}, {clients} clients", db.backend, if n == 1 { "" } else { "s" });
        line(&format!("{label}: naive baseline"), &base, "—", "—");
        line(&format!("{label}: **engine**"), &eng, &ratio(eng.rate(), base.rate()), &ratio(eng.rate(), floor.rate()));
        line(&format!("{label}: floor"), &floor, &ratio(floor.rate(), base.rate()), "—");
    }
    drop(ledger);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let secs = args.seconds.unwrap_or(if args.quick { 2.0 } else { 8.0 });
    let warm = args.warmup.unwrap_or(if args.quick { 0.3 } else { 1.0 });
    let wallets = args.wallets.clone().unwrap_or_else(|| if args.quick { vec![1, 20] } else { vec![1, 1000] });
    anyhow::ensure!(args.clients.iter().all(|&c| c > 0) && wallets.iter().all(|&w| w > 0), "counts must be ≥ 1");
    let mut backends = Vec::new();
    if !args.no_sqlite {
        backends.push("sqlite");
    }
    if args.postgres.is_some() {
        backends.push("postgres");
    }
    println!(
        "{secs:.0} s per run after {warm} s of warm-up; amount {AMOUNT}; {} workspaces and {} API keys per org; \
         durable commits (SQLite WAL synchronous=FULL; PostgreSQL fsync on)",
        args.workspaces, args.keys
    );
    println!(
        "| run                                              | charges/s | p50 ms  | p99 ms  | rejected | batch  | ÷ base   | ÷ floor  |"
    );
    println!(
        "|--------------------------------------------------|----------:|--------:|--------:|---------:|-------:|---------:|---------:|"
    );
    for backend in backends {
        for &n in &wallets {
            let db = fresh_db(backend, args.postgres.as_deref()).await?;
            let done = runs_on(&db, &args, n, secs, warm).await;
            db.remove().await;
            done?;
        }
    }
    Ok(())
}

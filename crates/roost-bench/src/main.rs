//! `roost-bench ledger`: drives charges from concurrent clients through roost's ledger engine and,
//! in the same run and on the same database, through the naive baseline (one transaction per
//! charge: a conditional `UPDATE … WHERE balance >= amount` plus the `INSERT` of the charge row),
//! against one hot wallet and against many wallets, on SQLite and (with `--postgres`) PostgreSQL.
//! Durable commits stay on (SQLite WAL with `synchronous=FULL`; PostgreSQL's defaults).
//! Prints charges/s, p50/p99 latency and the engine/baseline ratio.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use roost_domain::IdKind;
use roost_ledger::{ActorRef, Command, Idem, Ledger, LedgerConfig, Op, Source};
use roost_store::{Actor, Ctx, NewSignup, Store};

#[derive(Debug, Parser)]
#[command(name = "roost-bench", about = "Benchmarks roost's ledger engine against the naive baseline")]
struct Args {
    /// Concurrent clients (each waits for its answer before sending the next charge).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds each run lasts.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Wallet counts to run against (one org, hence one wallet, each).
    #[arg(long, value_delimiter = ',', default_value = "1,1000")]
    wallets: Vec<usize>,
    /// Also run on PostgreSQL: an admin URL ending in a database name (a fresh database is made).
    #[arg(long)]
    postgres: Option<String>,
    /// Skip SQLite.
    #[arg(long)]
    no_sqlite: bool,
    /// Ledger writers on PostgreSQL.
    #[arg(long, default_value_t = 4)]
    shards: usize,
    /// Skip the baseline.
    #[arg(long)]
    no_baseline: bool,
}

/// What one run measured.
struct Outcome {
    ok: u64,
    rejected: u64,
    secs: f64,
    latencies_us: Vec<u32>,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.secs
    }
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
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

async fn fresh_db(backend: &str, pg_admin: Option<&str>) -> anyhow::Result<(Store, String)> {
    let url = match backend {
        "sqlite" => {
            let dir = std::env::temp_dir().join("roost-bench");
            std::fs::create_dir_all(&dir)?;
            format!("sqlite://{}", dir.join(format!("{}.db", IdKind::Org.generate())).display())
        }
        _ => {
            let admin = pg_admin.context("--postgres URL")?;
            let name = format!("roost_bench_{}", IdKind::Org.generate().trim_start_matches("org_"));
            let a = Store::connect(admin).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(a.pool()).await?;
            a.close().await;
            let (prefix, _) = admin.rsplit_once('/').context("the URL must end in /DBNAME")?;
            format!("{prefix}/{name}")
        }
    };
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    sqlx::raw_sql(
        "CREATE TABLE naive_wallets (id TEXT PRIMARY KEY, balance BIGINT NOT NULL); \
         CREATE TABLE naive_charges (id TEXT PRIMARY KEY, wallet_id TEXT NOT NULL, amount BIGINT NOT NULL, at BIGINT NOT NULL);",
    )
    .execute(store.pool())
    .await?;
    Ok((store, url))
}

/// Makes `n` orgs (personal orgs of fresh users), funds their wallets through the engine and the
/// baseline's table alike; returns `(org, workspace)` pairs.
async fn setup(store: &Store, ledger: &Ledger, n: usize) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::with_capacity(n);
    let now = now_ms();
    for i in 0..n {
        let s = NewSignup {
            user_id: IdKind::User.generate(),
            email: format!("bench-{i}-{}@example.com", IdKind::User.generate()),
            name: format!("bench {i}"),
            password_hash: "x".into(),
            org_id: IdKind::Org.generate(),
            org_name: "bench".into(),
            plan: "free".into(),
            workspace_id: IdKind::Workspace.generate(),
            workspace_name: "bench".into(),
            token_hash: IdKind::Org.generate(),
            session_expires_at: now + 86_400_000,
        };
        store.signup(&s, &Ctx { actor: Actor::user(&s.user_id), ip: None, now }).await?;
        let cmd = Command {
            org_id: s.org_id.clone(),
            actor: ActorRef::user(&s.user_id, None),
            op: Op::Grant {
                wallet: "credits".into(),
                source: Source::Topup,
                amount: FUNDS,
                expires_at: None,
                reason: None,
            },
            idem: None,
        };
        let r = ledger.submit(cmd).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(r.is_ok(), "funding failed: {r:?}");
        sqlx::query("INSERT INTO naive_wallets (id, balance) VALUES ($1, $2)")
            .bind(&s.org_id)
            .bind(FUNDS)
            .execute(store.pool())
            .await?;
        out.push((s.org_id, s.workspace_id));
    }
    Ok(out)
}

/// Runs `clients` loops for `secs`, each calling `one(client, i)`; `Ok(true)` counts as a charge.
async fn drive<F, Fut>(clients: usize, secs: f64, one: F) -> Outcome
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
            let mut lat = Vec::with_capacity(100_000);
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
    let mut all = Vec::new();
    for t in tasks {
        if let Ok(l) = t.await {
            all.extend(l);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    Outcome { ok: all.len() as u64, rejected: rejected.load(Ordering::Relaxed), secs, latencies_us: all }
}

async fn run_engine(ledger: &Ledger, targets: &[(String, String)], clients: usize, secs: f64) -> Outcome {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let ledger = ledger.clone();
    let targets = Arc::new(targets.to_vec());
    let actors: Arc<Vec<ActorRef>> =
        Arc::new((0..clients).map(|c| ActorRef::key(&format!("key_bench{c:03}"), "usr_bench", None, None)).collect());
    drive(clients, secs, move |c, i| {
        let ledger = ledger.clone();
        let targets = targets.clone();
        let actors = actors.clone();
        async move {
            let run = run;
            let (org, ws) = &targets[(c + i as usize * clients) % targets.len()];
            let cmd = Command {
                org_id: org.clone(),
                actor: actors[c].clone(),
                op: Op::Charge {
                    workspace_id: ws.clone(),
                    wallet: "credits".into(),
                    amount: AMOUNT,
                    action: "bench".into(),
                    metadata: None,
                },
                idem: Some(Idem { key: format!("b-{run}-{c}-{i}"), fingerprint: format!("f-{c}-{i}") }),
            };
            let r = ledger.submit(cmd).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(r.is_ok())
        }
    })
    .await
}

async fn run_naive(store: &Store, targets: &[(String, String)], clients: usize, secs: f64) -> Outcome {
    let pool = store.pool().clone();
    let begin = if store.backend() == "sqlite" { "BEGIN IMMEDIATE" } else { "BEGIN" };
    let targets = Arc::new(targets.to_vec());
    drive(clients, secs, move |c, i| {
        let pool = pool.clone();
        let targets = targets.clone();
        async move {
            let (org, _) = &targets[(c + i as usize * clients) % targets.len()];
            let mut tx = pool.begin_with(begin).await?;
            let done = sqlx::query("UPDATE naive_wallets SET balance = balance - $1 WHERE id = $2 AND balance >= $1")
                .bind(AMOUNT)
                .bind(org.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if done {
                sqlx::query("INSERT INTO naive_charges (id, wallet_id, amount, at) VALUES ($1, $2, $3, $4)")
                    .bind(IdKind::Charge.generate())
                    .bind(org.as_str())
                    .bind(AMOUNT)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(done)
        }
    })
    .await
}

/// Checks the engine's books after a run: every wallet's balance equals what its grants hold and
/// what the journal says was charged.
async fn verify(store: &Store, targets: &[(String, String)], charged: u64) -> anyhow::Result<()> {
    let mut total = 0i64;
    for (org, _) in targets {
        let (wallets, grants) = store.wallets_of(org).await?;
        for w in &wallets {
            let held: i64 = grants.iter().filter(|g| g.wallet_id == w.id).map(|g| g.remaining + g.reserved).sum();
            anyhow::ensure!(w.granted - w.charged - w.expired == w.balance, "wallet totals disagree in {org}");
            anyhow::ensure!(held == w.balance, "grants disagree with the balance in {org}");
            total += w.charged;
        }
    }
    anyhow::ensure!(total == charged as i64 * AMOUNT, "charged {total}, acknowledged {charged}");
    Ok(())
}

fn line(what: &str, o: &Outcome, base: Option<&Outcome>) {
    let ratio = base.map_or(String::from("—"), |b| format!("{:.1}×", o.rate() / b.rate().max(1e-9)));
    println!(
        "| {what:<34} | {:>10.0} | {:>8.2} | {:>8.2} | {:>8} | {ratio:>7} |",
        o.rate(),
        o.pct(0.50),
        o.pct(0.99),
        o.rejected
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut backends = Vec::new();
    if !args.no_sqlite {
        backends.push("sqlite");
    }
    if args.postgres.is_some() {
        backends.push("postgres");
    }
    println!(
        "{} clients, {:.0} s per run, amount {AMOUNT}, durable commits (SQLite WAL synchronous=FULL; PostgreSQL fsync on)",
        args.clients, args.seconds
    );
    println!("| run                                | charges/s  | p50 ms   | p99 ms   | rejected | vs base |");
    println!("|------------------------------------|-----------:|---------:|---------:|---------:|--------:|");
    for backend in backends {
        for &n in &args.wallets {
            let (store, url) = fresh_db(backend, args.postgres.as_deref()).await?;
            let cfg = LedgerConfig { shards: args.shards, ..LedgerConfig::default() };
            let ledger = Ledger::start(store.clone(), cfg, Arc::new(now_ms));
            let targets = setup(&store, &ledger, n).await?;
            let base = if args.no_baseline {
                None
            } else {
                Some(run_naive(&store, &targets, args.clients, args.seconds).await)
            };
            // Steady state: a warm-up, then table statistics as autovacuum keeps them in a running
            // database (a fresh table has none, and PostgreSQL then plans lookups as scans).
            let warm = run_engine(&ledger, &targets, args.clients, 1.0).await;
            sqlx::raw_sql("ANALYZE").execute(store.pool()).await?;
            let mut eng = run_engine(&ledger, &targets, args.clients, args.seconds).await;
            verify(&store, &targets, eng.ok + warm.ok).await?;
            eng.rejected += warm.rejected;
            let label = if n == 1 { "1 hot wallet".to_string() } else { format!("{n} wallets") };
            if let Some(b) = &base {
                line(&format!("{backend} {label}: naive baseline"), b, None);
            }
            line(&format!("{backend} {label}: roost engine"), &eng, base.as_ref());
            drop(ledger);
            store.close().await;
            if backend == "sqlite" {
                let path = url.trim_start_matches("sqlite://");
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
            }
        }
    }
    Ok(())
}

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

mod clients;
mod engine;
mod floor;
mod floor_native;
mod naive;
mod report;
mod setup;
mod verify;

use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use roost_ledger::{Ledger, LedgerConfig};

use engine::run_engine;
use floor::run_floor;
use naive::run_naive;
use report::{line, ratio};
use setup::{Db, fresh_db, setup};
use verify::{verify_engine, verify_table};

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

pub(crate) const AMOUNT: i64 = 1;
pub(crate) const FUNDS: i64 = 1_000_000_000_000;

#[expect(clippy::disallowed_methods, reason = "the benchmark stamps its own runs; it is not the server")]
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// All client counts against one fresh database with `n` wallets.
async fn runs_on(db: &Db, args: &Args, n: usize, secs: f64, warm: f64) -> anyhow::Result<()> {
    let store = &db.store;
    let cfg = LedgerConfig { shards: args.shards, ..LedgerConfig::default() };
    let ledger = Ledger::start(store.clone(), cfg.clone(), Arc::new(now_ms));
    // The same engine without pipelining (a batch is prepared only once the previous one is
    // committed), to show in the same run what pipelining buys.
    let serial = Ledger::start(store.clone(), LedgerConfig { pipeline: 1, ..cfg.clone() }, Arc::new(now_ms));
    // On SQLite, the same engine committing through the pool (sqlx) instead of its writer of its
    // own, to show in the same run what that writer buys.
    let pooled =
        (db.backend == "sqlite").then(|| Ledger::start(store.clone().with_pool_writer(), cfg, Arc::new(now_ms)));
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
        let w = run_engine(&serial, &targets, clients, warm).await;
        let one = run_engine(&serial, &targets, clients, secs).await;
        engine_acked += w.ok + one.ok;
        let mut via_pool = None;
        if let Some(p) = &pooled {
            let w = run_engine(p, &targets, clients, warm).await;
            let r = run_engine(p, &targets, clients, secs).await;
            engine_acked += w.ok + r.ok;
            via_pool = Some(r);
        }

        #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a batch size")]
        let batch = (eng.batch.round() as usize).clamp(1, clients);
        let file = db.sqlite_file();
        let w = run_floor(store, file.as_deref(), &targets, clients, warm, batch, writers).await?;
        let floor = run_floor(store, file.as_deref(), &targets, clients, secs, batch, writers).await?;
        floor_acked += w.ok + floor.ok;

        verify_engine(store, &targets, engine_acked).await?;
        verify_table(store, "naive_wallets", "naive_charges", n, naive_acked).await?;
        verify_table(store, "floor_wallets", "floor_charges", n, floor_acked).await?;

        let label = format!("{}, {n} wallet{}, {clients} clients", db.backend, if n == 1 { "" } else { "s" });
        line(&format!("{label}: naive baseline"), &base, "—", "—");
        line(&format!("{label}: **engine**"), &eng, &ratio(eng.rate(), base.rate()), &ratio(eng.rate(), floor.rate()));
        line(&format!("{label}: floor"), &floor, &ratio(floor.rate(), base.rate()), "—");
        line(
            &format!("{label}: engine, unpipelined"),
            &one,
            &ratio(one.rate(), base.rate()),
            &ratio(one.rate(), floor.rate()),
        );
        if let Some(r) = &via_pool {
            let (b, f) = (ratio(r.rate(), base.rate()), ratio(r.rate(), floor.rate()));
            line(&format!("{label}: engine, sqlx writer"), r, &b, &f);
        }
    }
    drop(ledger);
    drop(serial);
    drop(pooled);
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

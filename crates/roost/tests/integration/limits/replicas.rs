//! Three real `roost serve` processes on one PostgreSQL and one Redis: a key's `rpm` holds across
//! all of them together, not once per process.

use std::time::Instant;

use roost_test_kit::TestServer;
use roost_test_kit::process::Roost;

use super::{REDIS_URL, delete_redis_keys, get, key_with_rpm, unique_prefix};

const RPM: u64 = 600;
/// Requests sent through each process: each alone would let all of them through.
const PER_PROCESS: usize = 400;
/// Requests in flight per process.
const CONCURRENCY: usize = 8;

async fn key_rpm_holds_across_processes(s: TestServer) {
    if !super::redis_up().await {
        return;
    }
    let prefix = unique_prefix();
    let extra = format!("redis_url = \"{REDIS_URL}\"\nredis_key_prefix = \"{prefix}\"");
    let mut procs = Vec::new();
    for _ in 0..3 {
        procs.push(Roost::start_configured(crate::ROOST, &s.database_url, "warn", &extra).await);
    }
    let (owner, _) = s.signup("Owner").await;
    // `business` allows 3000 per minute: the key's own 600 is the tightest limit.
    let (_, ws) = s.org(&owner, "Acme", "business").await;
    let (_, secret) = key_with_rpm(&owner, &ws, Some(RPM as i64)).await;

    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for p in &procs {
        for _ in 0..CONCURRENCY {
            let (http, base, secret) = (http.clone(), p.base.clone(), secret.clone());
            tasks.spawn(async move {
                let (mut ok, mut refused) = (0u64, 0u64);
                for _ in 0..PER_PROCESS / CONCURRENCY {
                    let r = get(&http, &base, "/v1/me", &secret).await;
                    match r.status {
                        200 => ok += 1,
                        429 => {
                            assert_eq!(r.body["limit_source"], "key", "{r:?}");
                            refused += 1;
                        }
                        other => panic!("unexpected {other}: {r:?}"),
                    }
                    assert_eq!(r.limit, Some(RPM), "{r:?}");
                }
                (ok, refused)
            });
        }
    }
    let (mut ok, mut refused) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (o, r) = done.expect("requests");
        ok += o;
        refused += r;
    }
    let secs = started.elapsed().as_secs_f64();
    // The burst of 600, plus what the minute refilled meanwhile (10 a second), with 1% slack.
    let most = RPM as f64 + secs * RPM as f64 / 60.0;
    println!("{ok} passed and {refused} refused in {secs:.1}s over 3 processes (at most {most:.0} allowed)");
    assert_eq!(ok + refused, (PER_PROCESS / CONCURRENCY * CONCURRENCY * 3) as u64);
    assert!(ok as f64 <= most * 1.01 + 1.0, "{ok} requests passed; the shared limit allows {most:.0}");
    assert!(ok >= RPM, "only {ok} passed: the limit refused requests it should have let through");
    assert!(refused > 0, "nothing was refused");
    for p in &mut procs {
        assert!(p.running(), "the roost process at {} died; log: {}", p.base, p.log.display());
        p.kill().await;
    }
    delete_redis_keys(&prefix).await;
}

// Replicas run only on PostgreSQL (SQLite is embedded in one process).
postgres_only!(key_rpm_holds_across_processes);

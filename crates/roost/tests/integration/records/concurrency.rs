//! Concurrent conditional writers on one key: exactly one wins each version and the rest get 412,
//! and read-modify-write loops lose no update — on both backends in one process, and on
//! PostgreSQL across three `roost serve` processes.

use roost::Client;
use serde_json::json;

use crate::support::personal_ws;
use roost_test_kit::TestServer;
use roost_test_kit::process::Roost;

use super::{key_client, put, put_if, state_path};

const WRITERS: usize = 64;

/// `WRITERS` writers (spread over `clients`) all write over `version` at once: exactly one may win.
async fn one_round(clients: &[Client], ws: &str, key: &str, version: i64, round: usize) -> i64 {
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (c, ws, key) = (clients[w % clients.len()].clone(), ws.to_string(), key.to_string());
        tasks.push(tokio::spawn(
            async move { put_if(&c, &ws, &key, version, &json!({"round": round, "writer": w})).await },
        ));
    }
    let (mut won, mut lost) = (Vec::new(), 0);
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            200 => won.push(r.body),
            412 => {
                assert_eq!(r.code(), Some("version_conflict"), "{}", r.body);
                lost += 1;
            }
            other => panic!("a conditional writer got {other}: {}", r.body),
        }
    }
    assert_eq!(won.len(), 1, "round {round}: {} writers won version {version}: {won:?}", won.len());
    assert_eq!(lost, WRITERS - 1);
    let v = won[0]["version"].as_i64().unwrap();
    assert!(v > version);
    v
}

/// Every writer adds 1 to a counter `rounds` times by read, modify, conditional write, retrying on
/// 412: the counter must end at `WRITERS × rounds`.
async fn no_lost_update(clients: &[Client], ws: &str, key: &str, rounds: u64) {
    put(&clients[0], ws, key, &json!({"n": 0})).await;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (c, ws, key) = (clients[w % clients.len()].clone(), ws.to_string(), key.to_string());
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0u64;
            for _ in 0..rounds {
                loop {
                    let got = c.get(&state_path(&ws, &key)).await.unwrap();
                    assert_eq!(got.status, 200, "{}", got.body);
                    let v: i64 = got.etag.as_deref().unwrap().trim_matches('"').parse().unwrap();
                    let n = got.body["n"].as_u64().unwrap();
                    let r = put_if(&c, &ws, &key, v, &json!({"n": n + 1})).await;
                    match r.status {
                        200 => break,
                        412 => conflicts += 1,
                        other => panic!("{other}: {}", r.body),
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.unwrap();
    }
    let end = clients[0].get(&state_path(ws, key)).await.unwrap();
    assert_eq!(end.body["n"], WRITERS as u64 * rounds, "updates were lost ({conflicts} conflicts retried)");
}

async fn conditional_writers_one_wins_each_version(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let ws = personal_ws(&a);
    let key = key_client(&alice, &ws).await;
    let clients = [alice.clone(), key];
    let mut v = put(&alice, &ws, "hot", &json!({"round": 0})).await;
    for round in 1..=3 {
        v = one_round(&clients, &ws, "hot", v, round).await;
    }
    no_lost_update(&clients, &ws, "counter", 1).await;
}

async fn three_processes_one_key(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let ws = personal_ws(&a);
    let secret = key_client(&alice, &ws).await.token().unwrap().to_string();
    let mut procs = Vec::new();
    for _ in 0..3 {
        procs.push(Roost::start_configured(crate::ROOST, &s.database_url, "warn", "rate_limits = false").await);
    }
    let clients: Vec<Client> = procs.iter().map(|p| p.client.with_token(&secret)).collect();
    let mut v = put(&clients[0], &ws, "hot", &json!({"round": 0})).await;
    for round in 1..=3 {
        v = one_round(&clients, &ws, "hot", v, round).await;
    }
    no_lost_update(&clients, &ws, "counter", 1).await;
}

/// The writers' requests are many more than the free plan's 60 a minute: rate limits are not what
/// is tested here.
fn unlimited(s: &mut roost_server::Settings) {
    s.rate_limits = false;
}

both_backends_with!(conditional_writers_one_wins_each_version => super::unlimited);
postgres_only!(three_processes_one_key);

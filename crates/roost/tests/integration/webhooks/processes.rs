//! Real `roost serve` processes: one killed with SIGKILL mid-delivery and started again (every
//! event arrives, in order; a repeat only of the event in flight, with the same `webhook-id`), and
//! two processes on one PostgreSQL delivering each event once.

use std::sync::atomic::Ordering;
use std::time::Duration;

use roost::Client;
use serde_json::json;

use super::receiver::{Got, Receiver};
use crate::ROOST;
use crate::support::expect_status;
use roost_test_kit::process::Roost;
use roost_test_kit::{Backend, FreshDatabase};

const CONFIG: &str = "webhooks_allow_private = true\nwebhooks_poll_ms = 25\nwebhooks_settle_ms = 100\n\
webhooks_retry_schedule_ms = [200, 200, 200, 200, 200]\nwebhooks_timeout_ms = 3000\nwebhooks_lease_ms = 4000\n";

/// Signs up on `c`; returns `(client, org, workspace)`.
async fn owner(c: &Client) -> (Client, String, String) {
    let email = format!("w-{}@example.com", roost_domain::IdKind::User.generate());
    let r =
        c.post("/v1/signup", &json!({"email": email, "password": "correct horse battery", "name": "W"})).await.unwrap();
    expect_status(&r, 201);
    let org = r.body["personal"]["org_id"].as_str().unwrap().to_string();
    let ws = r.body["personal"]["workspace_id"].as_str().unwrap().to_string();
    (c.with_token(r.str("token")), org, ws)
}

/// The `key.created` events of the org, oldest first.
async fn key_events(c: &Client, org: &str) -> Vec<String> {
    let all = super::events(c, org).await;
    all.iter().filter(|e| e["type"] == "key.created").map(|e| e["id"].as_str().unwrap().to_string()).collect()
}

/// Waits (up to 60 s of real time) until `done` holds.
async fn wait_real(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1_200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The distinct ids accepted, in the order they were first accepted.
fn first_accepted(got: &[Got]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for g in got.iter().filter(|g| g.status < 300) {
        if !out.contains(&g.id) {
            out.push(g.id.clone());
        }
    }
    out
}

async fn killed_mid_delivery(db: FreshDatabase) {
    const N: usize = 20;
    let rx = Receiver::start().await;
    rx.inner.delay_ms.store(100, Ordering::SeqCst);
    let mut a = Roost::start_configured(ROOST, db.url(), "warn", CONFIG).await;
    let (user, org, ws) = owner(&a.client).await;
    let w = super::create(&user, &org, &rx.url, json!(["key.created"])).await;
    rx.know(w["secret"].as_str().unwrap());
    for i in 0..N {
        super::key_event(&user, &ws, &format!("k{i}")).await;
    }
    wait_real("a few deliveries", || rx.got().len() >= 4).await;
    a.kill().await;
    let before = rx.got().len();
    assert!(before < N, "killed mid-way ({before} delivered)");
    let b = Roost::start_configured(ROOST, db.url(), "warn", CONFIG).await;
    let user = b.client.with_token(user.token().unwrap());
    wait_real("every event after the restart", || first_accepted(&rx.got()).len() >= N).await;
    let written = key_events(&user, &org).await;
    assert_eq!(first_accepted(&rx.got()), written, "every event, in order");
    let got = rx.got();
    assert!(got.iter().all(|g| g.signed_by == vec![0]), "every signature verifies");
    // At least once: a repeat is only of what was in flight at the kill, under the same id.
    let repeats = got.len() - N;
    assert!(repeats <= 1, "{repeats} repeats: {:?}", got.iter().map(|g| &g.id).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_delivery_sqlite() {
    killed_mid_delivery(FreshDatabase::create(Backend::Sqlite).await.unwrap()).await;
}

pg_test! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_delivery_postgres() {
    match FreshDatabase::create(Backend::Postgres).await {
        Some(db) => killed_mid_delivery(db).await,
        None => eprintln!("{}", roost_test_kit::SKIPPED),
    }
}
}

pg_test! {
/// Two processes on one PostgreSQL: each event is delivered once, not once per process, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_deliver_once_postgres() {
    const N: usize = 30;
    let Some(db) = FreshDatabase::create(Backend::Postgres).await else {
        eprintln!("{}", roost_test_kit::SKIPPED);
        return;
    };
    let rx = Receiver::start().await;
    rx.inner.delay_ms.store(20, Ordering::SeqCst);
    let a = Roost::start_configured(ROOST, db.url(), "warn", CONFIG).await;
    let b = Roost::start_configured(ROOST, db.url(), "warn", CONFIG).await;
    let (on_a, org, ws) = owner(&a.client).await;
    let on_b = b.client.with_token(on_a.token().unwrap());
    let w = super::create(&on_a, &org, &rx.url, json!(["*"])).await;
    rx.know(w["secret"].as_str().unwrap());
    for i in 0..N {
        let c = if i % 2 == 0 { &on_a } else { &on_b };
        super::key_event(c, &ws, &format!("k{i}")).await;
    }
    wait_real("every event", || first_accepted(&rx.got()).len() >= N).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = rx.got();
    assert_eq!(got.len(), N, "each event once: {:?}", got.iter().map(|g| &g.id).collect::<Vec<_>>());
    assert_eq!(first_accepted(&got), key_events(&on_a, &org).await, "in order");
    assert!(got.iter().all(|g| g.signed_by == vec![0]));
}
}

//! Webhooks through HTTP and real processes (API.md "Events and webhooks"): a real receiver that
//! verifies every signature on its own, deliveries in order with retries on the (shrunk) backoff
//! schedule, disabling after the last retry, secret rotation, the test event, redirects not
//! followed, SSRF refusals, the monthly quota, events from outside the ledger, a server killed
//! mid-delivery, and two `roost serve` processes on one PostgreSQL.
mod cli;
mod errors;
mod flows;
mod lease;
mod processes;
pub(crate) mod receiver;

use std::time::Duration;

use roost::Client;
use serde_json::{Value, json};

use crate::support::expect_status;
use roost_test_kit::TestServer;

/// Fast delivery for tests: private targets allowed (the receiver is on 127.0.0.1), frequent
/// polls, a short settle time, and three retries 1 s apart on the server's (manual) clock.
pub(crate) fn fast(s: &mut roost_server::Settings) {
    s.webhooks_allow_private = true;
    s.webhooks_poll_ms = 25;
    s.webhooks_settle_ms = 50;
    s.webhooks_retry_schedule_ms = vec![1_000, 1_000, 1_000];
    s.webhooks_timeout_ms = 2_000;
    s.webhooks_lease_ms = 10_000;
}

/// Creates an endpoint; returns its body (with the secret).
pub(crate) async fn create(c: &Client, org: &str, url: &str, events: Value) -> Value {
    let r = c.post(&format!("/v1/orgs/{org}/webhooks"), &json!({"url": url, "events": events})).await.unwrap();
    expect_status(&r, 201);
    r.body
}

/// Makes a `key.created` event in `ws`; returns the key's id.
pub(crate) async fn key_event(c: &Client, ws: &str, name: &str) -> String {
    let r = c.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": name})).await.unwrap();
    expect_status(&r, 201);
    r.body["id"].as_str().unwrap().to_string()
}

/// The org's events, oldest first (all types).
pub(crate) async fn events(c: &Client, org: &str) -> Vec<Value> {
    let r = c.get(&format!("/v1/orgs/{org}/events?limit=500")).await.unwrap();
    expect_status(&r, 200);
    let mut out = r.body["items"].as_array().unwrap().clone();
    out.reverse();
    out
}

/// The endpoint's deliveries, oldest first.
pub(crate) async fn deliveries(c: &Client, id: &str) -> Vec<Value> {
    let r = c.get(&format!("/v1/webhooks/{id}/deliveries?limit=500")).await.unwrap();
    expect_status(&r, 200);
    let mut out = r.body["items"].as_array().unwrap().clone();
    out.reverse();
    out
}

/// Waits (up to 30 s) until `done` holds, moving the server's clock 500 ms every 50 ms so that
/// retries fall due.
pub(crate) async fn wait_for(s: &TestServer, what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..600 {
        if done().await {
            return;
        }
        s.clock.advance(500);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

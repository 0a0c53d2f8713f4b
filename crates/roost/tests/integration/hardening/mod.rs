//! Regression tests for defects found in review: membership changes racing key creation, demotions
//! that must take keys away, replica cache invalidation across a dropped `LISTEN` connection, plan
//! changes under concurrency, deletion racing creation, concurrent rotation and revocation, hostile
//! bytes in input, and 404s that must not tell another tenant's ids from missing ones.
//!
//! Races are made as likely as we can (many clients at once, several rounds), but every assertion
//! is about the final state and holds whatever the interleaving was.

mod input;
mod keys;
mod limits;
mod replicas;
mod visibility;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use roost::{Client, Response};
use serde_json::{Value, json};

use roost_test_kit::TestServer;

/// Creates a key in `ws`; returns the whole 201 body.
async fn create_key(c: &Client, ws: &str, name: &str) -> Value {
    let r = c.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": name})).await.unwrap();
    assert_eq!(r.status, 201, "create key in {ws}: {}", r.body);
    r.body
}

/// A client on `s` acting with the secret of a key body.
fn key_client(s: &TestServer, key: &Value) -> Client {
    s.client.with_token(key["secret"].as_str().expect("secret"))
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// Asserts that `c` authenticates as key `key_id`.
async fn assert_key_works(c: &Client, key_id: &str) {
    let me = c.get("/v1/me").await.unwrap();
    assert_eq!(me.status, 200, "key {key_id} should work: {}", me.body);
    assert_eq!(me.body["key"]["id"], key_id, "{}", me.body);
}

/// Waits until `counter` reaches `n`, for at most `within` (never fails: it only times a race).
async fn wait_for(counter: &AtomicUsize, n: usize, within: Duration) {
    let start = Instant::now();
    while counter.load(Ordering::SeqCst) < n && start.elapsed() < within {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Asserts an answer is a clean refusal: a 4xx problem document, never a 5xx.
#[track_caller]
fn expect_clean_refusal(r: &Response, what: &str) {
    assert!((400..500).contains(&r.status), "{what}: expected a 4xx refusal, got {}: {}", r.status, r.body);
    assert!(r.content_type.starts_with("application/problem+json"), "{what}: content type `{}`", r.content_type);
    assert_eq!(r.body["status"], r.status, "{what}: {}", r.body);
}

//! Scenarios: workspace API keys — creation, scope, revocation, rotation, expiry, and what
//! happens to a member's keys when they leave.

mod lifecycle;
mod standing;

use roost::Client;
use serde_json::{Value, json};

use crate::support::expect_problem;
use roost_test_kit::TestServer;

/// Creates a key in `ws`; returns the whole 201 body.
async fn create_key(c: &Client, ws: &str, name: &str) -> Value {
    let r = c.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": name})).await.unwrap();
    assert_eq!(r.status, 201, "create key: {:?}", r.body);
    r.body
}

/// A client acting with the secret of a key body.
fn key_client(s: &TestServer, key: &Value) -> Client {
    s.client.with_token(key["secret"].as_str().expect("secret"))
}

/// Asserts that `c` authenticates as key `key_id`.
async fn assert_key_works(c: &Client, key_id: &str) {
    let me = c.get("/v1/me").await.unwrap();
    assert_eq!(me.status, 200, "key should work: {:?}", me.body);
    assert_eq!(me.body["key"]["id"], key_id);
}

/// Asserts that `c` is refused as unauthenticated.
async fn assert_unauthenticated(c: &Client) {
    let me = c.get("/v1/me").await.unwrap();
    expect_problem(&me, 401, "unauthenticated");
}

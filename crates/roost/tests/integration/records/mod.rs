//! Scenarios: workspace records — state with versions and conditions, history, isolation between
//! workspaces and tenants, concurrent writers (in one process and in three), and the export.

mod cli;
mod concurrency;
mod export;
mod history;
mod isolation;
mod state;

use roost::{Client, Response};
use serde_json::{Value, json};

/// `/v1/workspaces/{ws}/state/{key}`.
fn state_path(ws: &str, key: &str) -> String {
    format!("/v1/workspaces/{ws}/state/{key}")
}

/// Stores `doc` under `key`; asserts 200 and returns the version.
async fn put(c: &Client, ws: &str, key: &str, doc: &Value) -> i64 {
    let r = c.put(&state_path(ws, key), doc).await.unwrap();
    assert_eq!(r.status, 200, "put {key}: {}", r.body);
    let v = r.body["version"].as_i64().expect("version");
    assert_eq!(r.etag.as_deref(), Some(format!("\"{v}\"").as_str()), "ETag of put {key}");
    v
}

/// A conditional write with `If-Match: "<version>"`.
async fn put_if(c: &Client, ws: &str, key: &str, version: i64, doc: &Value) -> Response {
    c.with_header("If-Match", &format!("\"{version}\"")).put(&state_path(ws, key), doc).await.unwrap()
}

/// Appends a history entry with a fresh idempotency key; asserts 201 and returns the entry.
async fn append(c: &Client, ws: &str, kind: &str, data: Value, r#ref: Option<&str>) -> Value {
    let key = roost_domain::IdKind::Event.generate();
    let r = c
        .post_idem(&format!("/v1/workspaces/{ws}/history"), &key, &json!({"kind": kind, "data": data, "ref": r#ref}))
        .await
        .unwrap();
    assert_eq!(r.status, 201, "append {kind}: {}", r.body);
    r.body
}

/// Makes an API key in `ws` as `owner`; returns a client acting with it.
async fn key_client(owner: &Client, ws: &str) -> Client {
    let r = owner.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "records"})).await.unwrap();
    assert_eq!(r.status, 201, "create key: {}", r.body);
    owner.with_token(r.str("secret"))
}

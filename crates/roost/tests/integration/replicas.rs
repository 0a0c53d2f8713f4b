//! Several roost processes on one database: a key revoked or rotated through one replica stops
//! working on the others, even where it was cached.

use std::time::{Duration, Instant};

use roost::Client;
use serde_json::json;

use roost_test_kit::TestServer;

/// Polls until `key` gets 401 on `server`, for at most `within`.
async fn rejected_within(server: &Client, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if server.get("/v1/me").await.unwrap().status == 401 {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

async fn revocation_reaches_every_replica(a: TestServer) {
    let b = a.replica().await;
    let (alice, body) = a.signup("Alice").await;
    let ws = body["personal"]["workspace_id"].as_str().unwrap();
    let created = alice.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "ci"})).await.unwrap();
    assert_eq!(created.status, 201, "{:?}", created.body);
    let (id, secret) = (created.str("id").to_string(), created.str("secret").to_string());

    // Warm replica B's cache with the key.
    let on_b = b.client.with_token(&secret);
    let me = on_b.get("/v1/me").await.unwrap();
    assert_eq!((me.status, me.body["key"]["id"].as_str()), (200, Some(id.as_str())));

    // Revoke through replica A; B hears of it.
    assert_eq!(alice.delete(&format!("/v1/keys/{id}")).await.unwrap().status, 204);
    let took = rejected_within(&on_b, Duration::from_secs(5)).await;
    assert!(took.is_some(), "replica B kept accepting a key revoked through replica A");
    let r = on_b.get("/v1/me").await.unwrap();
    assert_eq!(r.code(), Some("unauthenticated"));
}

async fn rotation_reaches_every_replica(a: TestServer) {
    let b = a.replica().await;
    let (alice, body) = a.signup("Alice").await;
    let ws = body["personal"]["workspace_id"].as_str().unwrap();
    let created = alice.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "ci"})).await.unwrap();
    let (id, old) = (created.str("id").to_string(), created.str("secret").to_string());
    let old_on_b = b.client.with_token(&old);
    assert_eq!(old_on_b.get("/v1/me").await.unwrap().status, 200);

    let rotated = alice.post(&format!("/v1/keys/{id}/rotate"), &json!({})).await.unwrap();
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let new_on_b = b.client.with_token(rotated.str("secret"));
    assert!(rejected_within(&old_on_b, Duration::from_secs(5)).await.is_some(), "old secret still accepted on B");
    assert_eq!(new_on_b.get("/v1/me").await.unwrap().body["key"]["id"], json!(id));
}

// SQLite is embedded in one process: replicas exist only on PostgreSQL.
postgres_only!(revocation_reaches_every_replica, rotation_reaches_every_replica);

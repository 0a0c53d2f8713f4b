//! Request bodies: the wrong shape, not JSON at all, too large.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::expect_problem;
use roost_test_kit::TestServer;

use super::{assert_invalid, org_count};

async fn bad_bodies_are_refused_cleanly(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let before = org_count(&alice).await;

    // Malformed JSON: 400.
    for raw in [
        &b"{not json"[..],
        b"{\"name\": \"x\"",
        b"",
        b"   ",
        b"{\"name\":\"x\",\"plan\":\"team\"} trailing",
        b"\xff\xfe",
        b"{\"name\": \"\\ud800\"}x",
    ] {
        let r = alice.send_raw(Method::POST, "/v1/orgs", raw.to_vec()).await.unwrap();
        expect_problem(&r, 400, "malformed_json");
    }
    // Valid JSON of the wrong shape: 422 naming a field.
    for (raw, field) in [
        (json!([]), None),
        (json!("a string"), None),
        (json!(42), None),
        (Value::Null, None),
        (json!({"plan": "team"}), Some("name")),
        (json!({"name": "x"}), Some("plan")),
        (json!({"name": 5, "plan": "team"}), Some("name")),
        (json!({"name": "x", "plan": ["team"]}), Some("plan")),
        (json!({"name": "x", "plan": "team", "trial": "yes"}), Some("trial")),
        (json!({"name": "x", "plan": "team", "owner_id": "usr_x"}), None),
        (json!({"name": "x", "plan": "team", "evil": {"$ne": 1}}), None),
        (json!({"name": "x", "plan": "no-such-plan"}), Some("plan")),
        (json!({"name": "", "plan": "team"}), Some("name")),
        (json!({"name": "   ", "plan": "team"}), Some("name")),
    ] {
        let r = alice.send_raw(Method::POST, "/v1/orgs", serde_json::to_vec(&raw).unwrap()).await.unwrap();
        assert_invalid(&r, field);
    }
    // Other endpoints classify the same way.
    let r = alice.send_raw(Method::POST, &format!("/v1/workspaces/{ws}/keys"), b"{\"name\":".to_vec()).await.unwrap();
    expect_problem(&r, 400, "malformed_json");
    let r = alice.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": ["a"]})).await.unwrap();
    assert_invalid(&r, Some("name"));
    let r =
        alice.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "a", "secret": "rsk_mine"})).await.unwrap();
    assert_invalid(&r, None);
    let r = alice.post(&format!("/v1/workspaces/{ws}/resources"), &json!({"kind": 1, "name": "a"})).await.unwrap();
    assert_invalid(&r, Some("kind"));
    let r = alice
        .post(&format!("/v1/workspaces/{ws}/resources"), &json!({"kind": "app", "name": "a", "workspace_id": ws}))
        .await
        .unwrap();
    assert_invalid(&r, None);
    let r = alice.patch(&format!("/v1/orgs/{org}"), &json!({"name": 42})).await.unwrap();
    assert_invalid(&r, Some("name"));
    let r = alice
        .post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": "a@example.com", "role": 3}))
        .await
        .unwrap();
    assert_invalid(&r, Some("role"));
    let r = alice.post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": "not an email"})).await.unwrap();
    assert_invalid(&r, Some("email"));
    let r = s
        .client
        .post("/v1/signup", &json!({"email": "x@example.com", "password": 1234567890, "name": "X"}))
        .await
        .unwrap();
    assert_invalid(&r, Some("password"));
    let r = s
        .client
        .post("/v1/signup", &json!({"email": "x@example.com", "password": "short", "name": "X"}))
        .await
        .unwrap();
    assert_invalid(&r, Some("password"));

    // Nothing was half-written.
    assert_eq!(org_count(&alice).await, before);
    let keys = alice.get(&format!("/v1/workspaces/{ws}/keys")).await.unwrap();
    assert_eq!(keys.body["items"].as_array().map(Vec::len), Some(0), "{:?}", keys.body);
    let res = alice.get(&format!("/v1/workspaces/{ws}/resources")).await.unwrap();
    assert_eq!(res.body["items"].as_array().map(Vec::len), Some(0), "{:?}", res.body);
    let inv = alice.get(&format!("/v1/orgs/{org}/invitations")).await.unwrap();
    assert_eq!(inv.body["items"].as_array().map(Vec::len), Some(0), "{:?}", inv.body);
    let login = s
        .client
        .post("/v1/sessions", &json!({"email": "x@example.com", "password": "correct horse battery"}))
        .await
        .unwrap();
    expect_problem(&login, 401, "invalid_credentials");
    let org_now = alice.get(&format!("/v1/orgs/{org}")).await.unwrap();
    assert_eq!(org_now.body["name"], "Acme");
}

/// A body that is not JSON at all is 400 even when what can be read of it also has the wrong
/// shape: syntax is judged on the whole body before shape.
async fn malformed_json_wins_over_wrong_shape(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let before = org_count(&alice).await;
    for raw in [
        &b"[1,2"[..],
        b"{\"name\": 5, \"plan\": ",
        b"{\"name\": \"x\", \"plan\": \"team\", \"evil\": 1",
        b"42 43",
        b"{\"nme\": \"x\"} }",
    ] {
        let r = alice.send_raw(Method::POST, "/v1/orgs", raw.to_vec()).await.unwrap();
        expect_problem(&r, 400, "malformed_json");
        let r = s.client.send_raw(Method::POST, "/v1/signup", raw.to_vec()).await.unwrap();
        expect_problem(&r, 400, "malformed_json");
    }
    assert_eq!(org_count(&alice).await, before);
}

async fn oversized_body_is_413_and_the_server_lives_on(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let before = org_count(&alice).await;
    let big = serde_json::to_vec(&json!({"name": "x".repeat(1024 * 1024 + 10), "plan": "team"})).unwrap();
    assert!(big.len() > 1024 * 1024);
    let r = alice.send_raw(Method::POST, "/v1/orgs", big.clone()).await.unwrap();
    expect_problem(&r, 413, "payload_too_large");
    // Just over the limit, and far over it.
    let mut just_over = b"{\"name\":\"".to_vec();
    just_over.resize(1024 * 1024 + 1 - 2, b'a');
    just_over.extend_from_slice(b"\"}");
    assert_eq!(just_over.len(), 1024 * 1024 + 1);
    let r = alice.send_raw(Method::POST, "/v1/orgs", just_over).await.unwrap();
    expect_problem(&r, 413, "payload_too_large");
    let huge = vec![b' '; 8 * 1024 * 1024];
    let r = alice.send_raw(Method::POST, "/v1/orgs", huge).await.unwrap();
    expect_problem(&r, 413, "payload_too_large");
    let r = s.client.send_raw(Method::POST, "/v1/signup", big).await.unwrap();
    assert!(r.status == 413 || r.status == 401, "{} {:?}", r.status, r.body);
    assert!(r.content_type.starts_with("application/problem+json"));

    // Just under the limit is parsed (and then refused for its content, not its size).
    let mut under = b"{\"name\":\"".to_vec();
    under.resize(1024 * 1024 - 100, b'a');
    under.extend_from_slice(b"\",\"plan\":\"team\"}");
    let r = alice.send_raw(Method::POST, "/v1/orgs", under).await.unwrap();
    assert_invalid(&r, Some("name"));

    let h = s.client.get("/healthz").await.unwrap();
    assert_eq!(h.status, 200, "{:?}", h.body);
    assert_eq!(org_count(&alice).await, before);
    let r = alice.post("/v1/orgs", &json!({"name": "After", "plan": "team"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
}

both_backends!(
    bad_bodies_are_refused_cleanly,
    malformed_json_wins_over_wrong_shape,
    oversized_body_is_413_and_the_server_lives_on,
);

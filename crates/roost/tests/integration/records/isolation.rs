//! Isolation: another workspace's records are 404 on every path — for members and keys of another
//! workspace of the same org, and for another org — viewers read but never write, a removed member
//! loses access at once, and a deleted workspace takes its records with it.

use roost::Client;
use serde_json::json;

use crate::support::{create_ws, expect_problem, personal_ws, set_ws_role, uid};
use roost_test_kit::TestServer;

use super::{append, key_client, put, state_path};

/// Every records call on workspace `ws`, as (method, path, body?, headers), for a document `key`.
fn every_path(ws: &str, key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("GET", state_path(ws, key)),
        ("PUT", state_path(ws, key)),
        ("PUT-IF", state_path(ws, key)),
        ("DELETE", state_path(ws, key)),
        ("GET", format!("/v1/workspaces/{ws}/state")),
        ("GET", format!("/v1/workspaces/{ws}/state?prefix=conv/")),
        ("POST", format!("/v1/workspaces/{ws}/history")),
        ("GET", format!("/v1/workspaces/{ws}/history")),
        ("GET", format!("/v1/workspaces/{ws}/history?kind=turn")),
        ("DELETE", format!("/v1/workspaces/{ws}/history?before=2100-01-01T00:00:00Z")),
        ("GET", format!("/v1/workspaces/{ws}/export")),
    ]
}

/// Sends one of [`every_path`]'s calls.
async fn call(c: &Client, method: &str, path: &str) -> roost::Response {
    match method {
        "GET" => c.get(path).await.unwrap(),
        "PUT" => c.put(path, &json!({"stolen": true})).await.unwrap(),
        "PUT-IF" => c.with_header("If-Match", "\"1\"").put(path, &json!({"stolen": true})).await.unwrap(),
        "DELETE" => c.delete(path).await.unwrap(),
        "POST" => c.post_idem(path, "x", &json!({"kind": "turn", "data": "stolen"})).await.unwrap(),
        other => panic!("{other}"),
    }
}

/// Asserts that `who` gets 404 `not_found` on every records path of `ws`.
async fn all_not_found(who: &Client, what: &str, ws: &str, key: &str) {
    for (m, p) in every_path(ws, key) {
        let r = call(who, m, &p).await;
        assert_eq!(r.status, 404, "{what}: {m} {p} answered {}: {}", r.status, r.body);
        assert_eq!(r.code(), Some("not_found"), "{what}: {m} {p}: {}", r.body);
    }
}

async fn other_workspaces_and_tenants_see_nothing(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws_a) = s.org(&alice, "Acme", "team").await;
    let ws_b = create_ws(&alice, &org, "B").await;
    // Bob works in A only; a key of A; Carol and her key in another org.
    let (bob, b) = s.signup("Bob").await;
    s.add_member(&alice, &org, &bob, &b, "member").await;
    set_ws_role(&alice, &ws_a, &uid(&b), "member").await;
    let key_a = key_client(&alice, &ws_a).await;
    let (carol, c) = s.signup("Carol").await;
    let key_c = key_client(&carol, &personal_ws(&c)).await;

    let v = put(&alice, &ws_b, "conv/secret", &json!({"secret": 42})).await;
    append(&alice, &ws_b, "turn", json!("private"), Some("conv-1")).await;
    put(&bob, &ws_a, "conv/mine", &json!(1)).await;

    for (who, what) in [(&bob, "a member of another workspace"), (&key_a, "a key of another workspace")] {
        all_not_found(who, what, &ws_b, "conv/secret").await;
    }
    for (who, what) in [(&carol, "another org's user"), (&key_c, "another org's key")] {
        all_not_found(who, what, &ws_b, "conv/secret").await;
        all_not_found(who, what, &ws_a, "conv/mine").await;
    }
    // A key names its workspace for good: Roost-Workspace cannot move it.
    let r = key_a.in_workspace(&ws_b).get(&state_path(&ws_b, "conv/secret")).await.unwrap();
    expect_problem(&r, 404, "not_found");
    // Nothing of it reached B; A's own document is as Bob wrote it.
    let got = alice.get(&state_path(&ws_b, "conv/secret")).await.unwrap();
    assert_eq!((got.body.clone(), got.etag.clone()), (json!({"secret": 42}), Some(format!("\"{v}\""))));
    let h = alice.get(&format!("/v1/workspaces/{ws_b}/history")).await.unwrap();
    assert_eq!(h.body["items"].as_array().map(Vec::len), Some(1), "{}", h.body);
    assert_eq!(h.body["items"][0]["data"], "private");
    let list = alice.get(&format!("/v1/workspaces/{ws_b}/state")).await.unwrap();
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1), "{}", list.body);
    assert_eq!(key_a.get(&state_path(&ws_a, "conv/mine")).await.unwrap().body, json!(1));
}

async fn viewers_read_and_removed_members_lose_access(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let (viewer, v) = s.signup("Viewer").await;
    s.add_member(&alice, &org, &viewer, &v, "member").await;
    set_ws_role(&alice, &ws, &uid(&v), "viewer").await;
    let (dave, d) = s.signup("Dave").await;
    s.add_member(&alice, &org, &dave, &d, "member").await;
    set_ws_role(&alice, &ws, &uid(&d), "member").await;
    put(&alice, &ws, "settings", &json!({"a": 1})).await;
    append(&alice, &ws, "turn", json!(1), None).await;

    // A viewer reads state and history, and writes nothing.
    assert_eq!(viewer.get(&state_path(&ws, "settings")).await.unwrap().body, json!({"a": 1}));
    assert_eq!(viewer.get(&format!("/v1/workspaces/{ws}/state")).await.unwrap().status, 200);
    assert_eq!(viewer.get(&format!("/v1/workspaces/{ws}/history")).await.unwrap().status, 200);
    for (m, p) in every_path(&ws, "settings") {
        if m == "GET" && !p.ends_with("/export") {
            continue;
        }
        expect_problem(&call(&viewer, m, &p).await, 403, "forbidden");
    }
    assert_eq!(alice.get(&state_path(&ws, "settings")).await.unwrap().body, json!({"a": 1}));
    let h = alice.get(&format!("/v1/workspaces/{ws}/history")).await.unwrap();
    assert_eq!(h.body["items"].as_array().map(Vec::len), Some(1), "a viewer appended: {}", h.body);

    // A member writes; removed from the workspace, the very next request is 404.
    put(&dave, &ws, "dave", &json!(1)).await;
    let r = alice.delete(&format!("/v1/workspaces/{ws}/members/{}", uid(&d))).await.unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    all_not_found(&dave, "a removed member", &ws, "dave").await;
    assert_eq!(alice.get(&state_path(&ws, "dave")).await.unwrap().body, json!(1));
}

async fn deleting_a_workspace_deletes_its_records(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, _) = s.org(&alice, "Acme", "team").await;
    let ws = create_ws(&alice, &org, "Doomed").await;
    put(&alice, &ws, "k", &json!(1)).await;
    append(&alice, &ws, "turn", json!(1), None).await;
    let r = alice.delete(&format!("/v1/workspaces/{ws}")).await.unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    expect_problem(&alice.get(&state_path(&ws, "k")).await.unwrap(), 404, "not_found");
    // As the owner, whom row-level security does not bind: nothing of the workspace is left anywhere.
    let store = roost_store::Store::connect(&s.admin_url).await.unwrap();
    assert!(store.state_export_chunk(&org, &ws, "", 10).await.unwrap().is_empty(), "state outlived its workspace");
    assert!(store.history_export_chunk(&org, &ws, "", 10).await.unwrap().is_empty(), "history outlived its workspace");
    assert_eq!(store.state_usage(&org, &ws).await.unwrap(), 0);
    store.close().await;
}

both_backends!(
    other_workspaces_and_tenants_see_nothing,
    viewers_read_and_removed_members_lose_access,
    deleting_a_workspace_deletes_its_records,
);

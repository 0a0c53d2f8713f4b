//! A key's life: creation and listing, its workspace scope, revocation, rotation (with and
//! without grace) and expiry.

use roost_domain::time::{parse_rfc3339, to_rfc3339};
use roost_server::Clock;
use serde_json::{Value, json};

use crate::support::{expect_invalid, expect_problem, uid};
use roost_test_kit::TestServer;

use super::{assert_key_works, assert_unauthenticated, create_key, key_client};

async fn key_create_list_and_me(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;

    let r = alice.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "ci"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let key = r.body.clone();
    let id = key["id"].as_str().expect("id");
    let secret = key["secret"].as_str().expect("secret");
    let prefix = key["prefix"].as_str().expect("prefix");
    assert!(id.starts_with("key_"), "{id}");
    assert!(secret.starts_with("rsk_") && secret.len() > 20, "{secret}");
    assert!(!prefix.is_empty() && secret.starts_with(prefix), "prefix {prefix:?} should begin the secret");
    assert!(prefix.len() < secret.len(), "the prefix must not be the whole secret");
    assert_eq!(key["name"], "ci");
    assert_eq!(key["workspace_id"], ws.as_str());
    assert_eq!(key["created_by"], uid(&a).as_str());
    assert!(key.get("expires_at").is_some_and(Value::is_null), "expires_at must be present and null: {key:?}");

    // A second key, to see the list hold both, in creation order.
    let second = create_key(&alice, &ws, "deploy").await;
    assert_ne!(second["secret"], key["secret"]);

    let list = alice.get(&format!("/v1/workspaces/{ws}/keys")).await.unwrap();
    assert_eq!(list.status, 200, "{:?}", list.body);
    let items = list.body["items"].as_array().expect("items");
    let ids: Vec<&str> = items.iter().filter_map(|k| k["id"].as_str()).collect();
    assert_eq!(ids, [id, second["id"].as_str().unwrap()]);
    assert!(list.body.get("next_cursor").is_some_and(Value::is_null), "{:?}", list.body);
    for k in items {
        assert!(k.get("secret").is_none(), "a listed key carries a secret: {k:?}");
        assert!(k["prefix"].as_str().is_some_and(|p| !p.is_empty()));
        assert_eq!(k["workspace_id"], ws.as_str());
    }
    let text = list.body.to_string();
    assert!(
        !text.contains(secret) && !text.contains(second["secret"].as_str().unwrap()),
        "a secret leaked in the list: {text}"
    );
    assert!(!text.contains("\"secret\""), "the list names a secret field: {text}");

    // The key authenticates and says who it is.
    let k = key_client(&s, &key);
    let me = k.get("/v1/me").await.unwrap();
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["key"]["id"], id);
    assert_eq!(me.body["key"]["name"], "ci");
    assert_eq!(me.body["key"]["workspace_id"], ws.as_str());
    assert_eq!(me.body["key"]["org_id"], org.as_str());
    assert!(me.body.get("user").is_none(), "a key is not a user: {:?}", me.body);

    // A key acts in its own workspace.
    let cur = k.get("/v1/workspaces/current").await.unwrap();
    assert_eq!(cur.status, 200, "{:?}", cur.body);
    assert_eq!(cur.body["id"], ws.as_str());
    let own = k.get(&format!("/v1/workspaces/{ws}")).await.unwrap();
    assert_eq!(own.status, 200, "a key reads its own workspace: {:?}", own.body);

    // Names are validated.
    let bad = alice.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": ""})).await.unwrap();
    expect_invalid(&bad, "name");
    let bad = alice.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "x", "spend_limit": -1})).await.unwrap();
    expect_invalid(&bad, "spend_limit");
    let bad = alice.post(&format!("/v1/workspaces/{ws}/keys"), &json!({})).await.unwrap();
    expect_invalid(&bad, "name");
    // The personal workspace takes keys too.
    let personal = a["personal"]["workspace_id"].as_str().unwrap();
    let pk = create_key(&alice, personal, "mine").await;
    assert_eq!(pk["workspace_id"], personal);
}

async fn key_stays_in_its_workspace(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws1) = s.org(&alice, "Acme", "team").await;
    let ws2 = alice.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": "Two"})).await.unwrap();
    assert_eq!(ws2.status, 201, "{:?}", ws2.body);
    let ws2 = ws2.str("id").to_string();
    let (bob, b) = s.signup("Bob").await;
    let (bob_org, bob_ws) = s.org(&bob, "Bobco", "team").await;
    let bob_personal = b["personal"]["workspace_id"].as_str().unwrap();
    let bob_res =
        bob.post(&format!("/v1/workspaces/{bob_ws}/resources"), &json!({"kind": "app", "name": "b"})).await.unwrap();
    assert_eq!(bob_res.status, 201, "{:?}", bob_res.body);
    let bob_key = create_key(&bob, &bob_ws, "bob").await;

    let key = create_key(&alice, &ws1, "ci").await;
    let k = key_client(&s, &key);
    assert_key_works(&k, key["id"].as_str().unwrap()).await;

    // Another workspace of the same org: not found.
    expect_problem(&k.get(&format!("/v1/workspaces/{ws2}")).await.unwrap(), 404, "not_found");
    expect_problem(&k.get(&format!("/v1/workspaces/{ws2}/resources")).await.unwrap(), 404, "not_found");
    let r = k.post(&format!("/v1/workspaces/{ws2}/resources"), &json!({"kind": "app", "name": "x"})).await.unwrap();
    expect_problem(&r, 404, "not_found");

    // Anything of another org: not found.
    for path in [
        format!("/v1/orgs/{bob_org}"),
        format!("/v1/orgs/{bob_org}/members"),
        format!("/v1/orgs/{bob_org}/workspaces"),
        format!("/v1/orgs/{bob_org}/audit"),
        format!("/v1/orgs/{bob_org}/invitations"),
        format!("/v1/workspaces/{bob_ws}"),
        format!("/v1/workspaces/{bob_ws}/members"),
        format!("/v1/workspaces/{bob_ws}/resources"),
        format!("/v1/workspaces/{bob_personal}"),
    ] {
        expect_problem(&k.get(&path).await.unwrap(), 404, "not_found");
    }
    let r = k.post(&format!("/v1/workspaces/{bob_ws}/resources"), &json!({"kind": "app", "name": "x"})).await.unwrap();
    expect_problem(&r, 404, "not_found");
    let r = k.delete(&format!("/v1/resources/{}", bob_res.str("id"))).await.unwrap();
    expect_problem(&r, 404, "not_found");
    // Keys may not revoke keys at all (403); for another org's key 404 is as good.
    let r = k.delete(&format!("/v1/keys/{}", bob_key["id"].as_str().unwrap())).await.unwrap();
    assert!(r.status == 404 || r.status == 403, "{} {:?}", r.status, r.body);
    assert_key_works(&key_client(&s, &bob_key), bob_key["id"].as_str().unwrap()).await;

    // Its own org's org-level endpoints: forbidden (rules.md).
    expect_problem(&k.get(&format!("/v1/orgs/{org}")).await.unwrap(), 403, "forbidden");
    expect_problem(&k.get(&format!("/v1/orgs/{org}/audit")).await.unwrap(), 403, "forbidden");
    let r = k.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": "Sneaky"})).await.unwrap();
    expect_problem(&r, 403, "forbidden");

    // The Roost-Workspace header cannot move a key: another workspace is 403, its own is fine.
    let r = k.in_workspace(&ws2).get("/v1/workspaces/current").await.unwrap();
    expect_problem(&r, 403, "forbidden");
    let r = k.in_workspace(&bob_ws).get("/v1/workspaces/current").await.unwrap();
    expect_problem(&r, 403, "forbidden");
    let r = k.in_workspace(&ws1).get("/v1/workspaces/current").await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["id"], ws1.as_str());

    // Within its own workspace a key may create resources.
    let r =
        k.post(&format!("/v1/workspaces/{ws1}/resources"), &json!({"kind": "app", "name": "by key"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["workspace_id"], ws1.as_str());

    // Nothing leaked into ws2 or bob's workspace.
    let l = alice.get(&format!("/v1/workspaces/{ws2}/resources")).await.unwrap();
    assert_eq!(l.body["items"].as_array().map(Vec::len), Some(0), "{:?}", l.body);
    let l = bob.get(&format!("/v1/workspaces/{bob_ws}/resources")).await.unwrap();
    assert_eq!(l.body["items"].as_array().map(Vec::len), Some(1), "{:?}", l.body);
}

async fn keys_cannot_manage_keys_or_act_as_users(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (_, ws) = s.org(&alice, "Acme", "team").await;
    let key = create_key(&alice, &ws, "ci").await;
    let id = key["id"].as_str().unwrap();
    let k = key_client(&s, &key);

    let r = k.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "child"})).await.unwrap();
    expect_problem(&r, 403, "forbidden");
    let r = k.post(&format!("/v1/keys/{id}/rotate"), &json!({})).await.unwrap();
    expect_problem(&r, 403, "forbidden");
    let r = k.delete(&format!("/v1/keys/{id}")).await.unwrap();
    expect_problem(&r, 403, "forbidden");
    let r = k.put("/v1/me/active-workspace", &json!({"workspace_id": ws})).await.unwrap();
    expect_problem(&r, 403, "forbidden");
    let r = k.post("/v1/invitations/accept", &json!({"token": "whatever"})).await.unwrap();
    expect_problem(&r, 403, "forbidden");
    let r = k.delete("/v1/sessions/current").await.unwrap();
    expect_problem(&r, 403, "forbidden");
    let r = k.post("/v1/orgs", &json!({"name": "Keyco", "plan": "team"})).await.unwrap();
    expect_problem(&r, 403, "forbidden");

    // None of that changed anything: one key, same secret still works.
    let list = alice.get(&format!("/v1/workspaces/{ws}/keys")).await.unwrap();
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1), "{:?}", list.body);
    assert_key_works(&k, id).await;
}

async fn revoked_key_fails_on_the_very_next_request(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (_, ws) = s.org(&alice, "Acme", "team").await;
    let key = create_key(&alice, &ws, "ci").await;
    let other = create_key(&alice, &ws, "other").await;
    let id = key["id"].as_str().unwrap();
    let k = key_client(&s, &key);
    // Used twice, so it is certainly in the in-memory cache.
    assert_key_works(&k, id).await;
    assert_key_works(&k, id).await;

    let r = alice.delete(&format!("/v1/keys/{id}")).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert!(r.body.is_null(), "204 has no body: {:?}", r.body);
    assert_unauthenticated(&k).await;
    let r = k.get(&format!("/v1/workspaces/{ws}/resources")).await.unwrap();
    expect_problem(&r, 401, "unauthenticated");

    // Gone from the list; the other key is untouched.
    let list = alice.get(&format!("/v1/workspaces/{ws}/keys")).await.unwrap();
    let ids: Vec<&str> =
        list.body["items"].as_array().expect("items").iter().filter_map(|k| k["id"].as_str()).collect();
    assert_eq!(ids, [other["id"].as_str().unwrap()]);
    assert_key_works(&key_client(&s, &other), other["id"].as_str().unwrap()).await;

    // A revoked key cannot be rotated back to life.
    let r = alice.post(&format!("/v1/keys/{id}/rotate"), &json!({})).await.unwrap();
    assert!(r.status == 404 || r.status == 409 || r.status == 410, "rotating a revoked key: {} {:?}", r.status, r.body);
    assert_unauthenticated(&k).await;
}

async fn rotate_with_grace_keeps_the_old_secret_for_a_while(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (_, ws) = s.org(&alice, "Acme", "team").await;
    let key = create_key(&alice, &ws, "ci").await;
    let id = key["id"].as_str().unwrap();
    let old = key_client(&s, &key);
    assert_key_works(&old, id).await;

    let r = alice.post(&format!("/v1/keys/{id}/rotate"), &json!({"grace_seconds": 60})).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    let secret = r.str("secret");
    assert!(secret.starts_with("rsk_"), "{:?}", r.body);
    assert_ne!(secret, key["secret"].as_str().unwrap());
    let new = s.client.with_token(secret);
    assert_key_works(&new, id).await;
    assert_key_works(&old, id).await;

    s.clock.advance(30_000);
    assert_key_works(&old, id).await;
    assert_key_works(&new, id).await;

    s.clock.advance(31_000);
    assert_unauthenticated(&old).await;
    assert_key_works(&new, id).await;

    // Still the same key: one item in the list.
    let list = alice.get(&format!("/v1/workspaces/{ws}/keys")).await.unwrap();
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1), "{:?}", list.body);

    // Revoking during a grace period ends both secrets at once.
    let r = alice.post(&format!("/v1/keys/{id}/rotate"), &json!({"grace_seconds": 3600})).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    let newest = s.client.with_token(r.str("secret"));
    assert_key_works(&new, id).await;
    assert_key_works(&newest, id).await;
    let r = alice.delete(&format!("/v1/keys/{id}")).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_unauthenticated(&new).await;
    assert_unauthenticated(&newest).await;
    assert_unauthenticated(&old).await;
}

async fn rotate_without_grace_cuts_the_old_secret_at_once(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (_, ws) = s.org(&alice, "Acme", "team").await;
    let key = create_key(&alice, &ws, "ci").await;
    let id = key["id"].as_str().unwrap();
    let old = key_client(&s, &key);
    assert_key_works(&old, id).await;
    assert_key_works(&old, id).await;

    let r = alice.post(&format!("/v1/keys/{id}/rotate"), &json!({})).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    let new = s.client.with_token(r.str("secret"));
    assert_unauthenticated(&old).await;
    assert_key_works(&new, id).await;

    // Rotating again with an explicit 0 cuts the second secret too.
    let r = alice.post(&format!("/v1/keys/{id}/rotate"), &json!({"grace_seconds": 0})).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    let newest = s.client.with_token(r.str("secret"));
    assert_unauthenticated(&new).await;
    assert_key_works(&newest, id).await;

    // grace_seconds is 0–2,592,000.
    for bad in [json!({"grace_seconds": -1}), json!({"grace_seconds": 2_592_001}), json!({"grace_seconds": "60"})] {
        let r = alice.post(&format!("/v1/keys/{id}/rotate"), &bad).await.unwrap();
        expect_invalid(&r, "grace_seconds");
    }
    let r = alice.post(&format!("/v1/keys/{id}/rotate"), &json!({"grace_seconds": 2_592_000})).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_key_works(&newest, id).await;
    s.clock.advance(2_592_001_000);
    assert_unauthenticated(&newest).await;
    assert_key_works(&s.client.with_token(r.str("secret")), id).await;
}

async fn key_expiry(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (_, ws) = s.org(&alice, "Acme", "team").await;
    let now = s.clock.now_ms();
    let path = format!("/v1/workspaces/{ws}/keys");

    let r = alice.post(&path, &json!({"name": "old", "expires_at": to_rfc3339(now - 1_000)})).await.unwrap();
    expect_invalid(&r, "expires_at");
    let r = alice.post(&path, &json!({"name": "now", "expires_at": to_rfc3339(now)})).await.unwrap();
    expect_invalid(&r, "expires_at");
    let r = alice.post(&path, &json!({"name": "bad", "expires_at": "tomorrow"})).await.unwrap();
    expect_invalid(&r, "expires_at");
    let list = alice.get(&path).await.unwrap();
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(0), "a refused key was stored: {:?}", list.body);

    let at = now + 3_600_000;
    let r = alice.post(&path, &json!({"name": "hour", "expires_at": to_rfc3339(at)})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["expires_at"].as_str().and_then(parse_rfc3339), Some(at), "{:?}", r.body);
    let id = r.str("id").to_string();
    let k = s.client.with_token(r.str("secret"));
    assert_key_works(&k, &id).await;
    s.clock.advance(3_500_000);
    assert_key_works(&k, &id).await;
    s.clock.advance(3_700_000);
    assert_unauthenticated(&k).await;
}

both_backends!(
    key_create_list_and_me,
    key_stays_in_its_workspace,
    keys_cannot_manage_keys_or_act_as_users,
    revoked_key_fails_on_the_very_next_request,
    rotate_with_grace_keeps_the_old_secret_for_a_while,
    rotate_without_grace_cuts_the_old_secret_at_once,
    key_expiry,
);

//! Keys must not outlive their creator's standing (removal racing creation, demotions, an
//! invitation that lowers a role), and concurrent rotations and revocations act once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use roost::Client;
use serde_json::{Value, json};

use crate::support::{create_ws, expect_problem, expect_status, list_all, set_ws_role, uid};
use roost_test_kit::TestServer;

use super::{assert_key_works, create_key, expect_clean_refusal, id_of, key_client, wait_for};

/// Asserts that `c` gets 401 `unauthenticated` on `GET /v1/me`.
async fn assert_unauthenticated(c: &Client, what: &str) {
    let me = c.get("/v1/me").await.unwrap();
    assert_eq!(me.status, 401, "{what}: GET /v1/me should be 401, got {}: {}", me.status, me.body);
    expect_problem(&me, 401, "unauthenticated");
}

/// Every `key.revoked` event of `org`, as `who` sees it.
async fn revoked_events(who: &Client, org: &str) -> Vec<Value> {
    list_all(who, &format!("/v1/orgs/{org}/audit?action=key.revoked"), 500).await
}

/// The `key.revoked` events whose target is `key_id`.
fn revocations_of<'a>(events: &'a [Value], key_id: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["target"]["type"] == "key" && e["target"]["id"] == key_id).collect()
}

// 1. ------------------------------------------------------------------------------------------------

/// A member removed from the org while they are creating keys keeps none that work: every key
/// they got back is 401 once the removal has returned, and cannot create resources.
async fn removal_racing_key_creation_leaves_no_working_key(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    for round in 0..3 {
        let (bob, b) = s.signup(&format!("Bob{round}")).await;
        let bob_id = uid(&b);
        s.add_member(&alice, &org, &bob, &b, "member").await;
        set_ws_role(&alice, &ws, &bob_id, "member").await;

        let created = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for t in 0..12 {
            let (bob, ws, created) = (bob.clone(), ws.clone(), created.clone());
            tasks.push(tokio::spawn(async move {
                let mut keys = Vec::new();
                for i in 0..20 {
                    let r = bob
                        .post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": format!("k{t}-{i}")}))
                        .await
                        .unwrap();
                    if r.status != 201 {
                        expect_clean_refusal(&r, "key creation after removal");
                        break;
                    }
                    created.fetch_add(1, Ordering::SeqCst);
                    keys.push(r.body);
                }
                keys
            }));
        }
        // Remove bob while his creations are in flight.
        wait_for(&created, 4, Duration::from_secs(10)).await;
        let r = alice.delete(&format!("/v1/orgs/{org}/members/{bob_id}")).await.unwrap();
        expect_status(&r, 204);

        let mut keys = Vec::new();
        for t in tasks {
            keys.extend(t.await.unwrap());
        }
        for k in &keys {
            let id = id_of(k);
            let c = key_client(&s, k);
            assert_unauthenticated(&c, &format!("round {round}: key {id} created by a removed member")).await;
            let r = c
                .post(&format!("/v1/workspaces/{ws}/resources"), &json!({"kind": "app", "name": "after removal"}))
                .await
                .unwrap();
            assert_eq!(r.status, 401, "round {round}: key {id} of a removed member created a resource: {}", r.body);
        }
        let listed = list_all(&alice, &format!("/v1/workspaces/{ws}/keys"), 500).await;
        let ids: Vec<String> = keys.iter().map(id_of).collect();
        let alive: Vec<&Value> = listed.iter().filter(|k| ids.iter().any(|id| k["id"] == id.as_str())).collect();
        assert!(alive.is_empty(), "round {round}: keys of a removed member are still listed: {alive:?}");
        let bobs: Vec<&Value> = listed.iter().filter(|k| k["created_by"] == bob_id.as_str()).collect();
        assert!(bobs.is_empty(), "round {round}: keys created by a removed member are still listed: {bobs:?}");
    }
}

// 2. ------------------------------------------------------------------------------------------------

/// An org admin demoted to `member` loses the keys they made in workspaces they can no longer
/// enter; keys where they are a workspace member or admin keep working.
async fn demoted_admin_loses_keys_where_they_lose_access(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, primary) = s.org(&alice, "Acme", "team").await;
    let ws_member = create_ws(&alice, &org, "Member here").await;
    let ws_admin = create_ws(&alice, &org, "Admin here").await;
    let (bob, b) = s.signup("Bob").await;
    let bob_id = uid(&b);
    s.add_member(&alice, &org, &bob, &b, "admin").await;
    set_ws_role(&alice, &ws_member, &bob_id, "member").await;
    set_ws_role(&alice, &ws_admin, &bob_id, "admin").await;

    // Bob was never added to the primary workspace: he entered it as an org admin only.
    let lost = create_key(&bob, &primary, "primary").await;
    let kept_member = create_key(&bob, &ws_member, "as member").await;
    let kept_admin = create_key(&bob, &ws_admin, "as admin").await;
    let alices = create_key(&alice, &primary, "alice's").await;
    for k in [&lost, &kept_member, &kept_admin, &alices] {
        // Twice: certainly cached.
        assert_key_works(&key_client(&s, k), &id_of(k)).await;
        assert_key_works(&key_client(&s, k), &id_of(k)).await;
    }

    let r = alice.patch(&format!("/v1/orgs/{org}/members/{bob_id}"), &json!({"role": "member"})).await.unwrap();
    assert!(r.is_success(), "demote: {} {}", r.status, r.body);
    expect_problem(&bob.get(&format!("/v1/workspaces/{primary}")).await.unwrap(), 404, "not_found");

    let lk = key_client(&s, &lost);
    assert_unauthenticated(&lk, "key in a workspace the demoted admin can no longer enter").await;
    let r = lk
        .post(&format!("/v1/workspaces/{primary}/resources"), &json!({"kind": "app", "name": "after demotion"}))
        .await
        .unwrap();
    expect_problem(&r, 401, "unauthenticated");
    assert_key_works(&key_client(&s, &kept_member), &id_of(&kept_member)).await;
    assert_key_works(&key_client(&s, &kept_admin), &id_of(&kept_admin)).await;
    assert_key_works(&key_client(&s, &alices), &id_of(&alices)).await;

    let events = revoked_events(&alice, &org).await;
    let of_lost = revocations_of(&events, &id_of(&lost));
    assert_eq!(of_lost.len(), 1, "one key.revoked for the lost key: {events:?}");
    assert_eq!(of_lost[0]["workspace_id"], primary.as_str(), "{:?}", of_lost[0]);
    for kept in [&kept_member, &kept_admin, &alices] {
        assert!(revocations_of(&events, &id_of(kept)).is_empty(), "a kept key was revoked: {events:?}");
    }
    let listed = list_all(&alice, &format!("/v1/workspaces/{primary}/keys"), 500).await;
    assert!(!listed.iter().any(|k| k["id"] == lost["id"]), "the revoked key is still listed: {listed:?}");
}

/// A workspace member (or admin) made `viewer` there loses the keys they created there: a viewer
/// may not create keys, so their keys may not act either. Keys elsewhere keep working.
async fn made_viewer_loses_keys_in_that_workspace(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, primary) = s.org(&alice, "Acme", "team").await;
    let ws2 = create_ws(&alice, &org, "Two").await;
    let (carol, c) = s.signup("Carol").await;
    let carol_id = uid(&c);
    s.add_member(&alice, &org, &carol, &c, "member").await;
    set_ws_role(&alice, &primary, &carol_id, "member").await;
    set_ws_role(&alice, &ws2, &carol_id, "member").await;
    let (dave, d) = s.signup("Dave").await;
    let dave_id = uid(&d);
    s.add_member(&alice, &org, &dave, &d, "member").await;
    set_ws_role(&alice, &ws2, &dave_id, "admin").await;

    let carol_primary = create_key(&carol, &primary, "carol primary").await;
    let carol_ws2 = create_key(&carol, &ws2, "carol two").await;
    let dave_ws2 = create_key(&dave, &ws2, "dave two").await;
    let alice_ws2 = create_key(&alice, &ws2, "alice two").await;
    for k in [&carol_primary, &carol_ws2, &dave_ws2, &alice_ws2] {
        assert_key_works(&key_client(&s, k), &id_of(k)).await;
        assert_key_works(&key_client(&s, k), &id_of(k)).await;
    }

    for user in [&carol_id, &dave_id] {
        let r = alice.put(&format!("/v1/workspaces/{ws2}/members/{user}"), &json!({"role": "viewer"})).await.unwrap();
        assert!(r.is_success(), "make viewer: {} {}", r.status, r.body);
    }
    assert_unauthenticated(&key_client(&s, &carol_ws2), "a member made viewer: her key there").await;
    assert_unauthenticated(&key_client(&s, &dave_ws2), "an admin made viewer: his key there").await;
    let r = key_client(&s, &carol_ws2)
        .post(&format!("/v1/workspaces/{ws2}/resources"), &json!({"kind": "app", "name": "as viewer"}))
        .await
        .unwrap();
    expect_problem(&r, 401, "unauthenticated");
    assert_key_works(&key_client(&s, &carol_primary), &id_of(&carol_primary)).await;
    assert_key_works(&key_client(&s, &alice_ws2), &id_of(&alice_ws2)).await;
    // Carol still reads the workspace, as a viewer, and may not make a new key there.
    expect_status(&carol.get(&format!("/v1/workspaces/{ws2}")).await.unwrap(), 200);
    let r = carol.post(&format!("/v1/workspaces/{ws2}/keys"), &json!({"name": "again"})).await.unwrap();
    expect_problem(&r, 403, "forbidden");

    let events = revoked_events(&alice, &org).await;
    for k in [&carol_ws2, &dave_ws2] {
        let of = revocations_of(&events, &id_of(k));
        assert_eq!(of.len(), 1, "one key.revoked for {}: {events:?}", id_of(k));
        assert_eq!(of[0]["workspace_id"], ws2.as_str(), "{:?}", of[0]);
    }
    for k in [&carol_primary, &alice_ws2] {
        assert!(revocations_of(&events, &id_of(k)).is_empty(), "a kept key was revoked: {events:?}");
    }

    // Made a member again, the old key stays dead.
    set_ws_role(&alice, &ws2, &carol_id, "member").await;
    assert_unauthenticated(&key_client(&s, &carol_ws2), "a revoked key after the role came back").await;
}

// 7. ------------------------------------------------------------------------------------------------

/// Concurrent rotations without grace leave exactly one working secret; the original is dead.
async fn concurrent_rotations_leave_one_secret(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (_, ws) = s.org(&alice, "Acme", "team").await;
    for round in 0..3 {
        let key = create_key(&alice, &ws, &format!("rotated {round}")).await;
        let id = id_of(&key);
        let original = key_client(&s, &key);
        assert_key_works(&original, &id).await;
        assert_key_works(&original, &id).await;

        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (c, id) = (alice.clone(), id.clone());
                let body = if i % 2 == 0 { json!({}) } else { json!({"grace_seconds": 0}) };
                tokio::spawn(async move { c.post(&format!("/v1/keys/{id}/rotate"), &body).await.unwrap() })
            })
            .collect();
        let mut secrets = Vec::new();
        for t in tasks {
            let r = t.await.unwrap();
            match r.status {
                200 => secrets.push(r.str("secret").to_string()),
                409 => assert!(r.content_type.starts_with("application/problem+json"), "{}", r.body),
                other => panic!("round {round}: concurrent rotation answered {other}: {}", r.body),
            }
        }
        assert!(!secrets.is_empty(), "round {round}: no rotation succeeded");
        let mut working = Vec::new();
        for secret in &secrets {
            let me = s.client.with_token(secret).get("/v1/me").await.unwrap();
            match me.status {
                200 => {
                    assert_eq!(me.body["key"]["id"], id.as_str(), "{}", me.body);
                    working.push(secret.clone());
                }
                _ => expect_problem(&me, 401, "unauthenticated"),
            }
        }
        assert_eq!(
            working.len(),
            1,
            "round {round}: {} of {} returned secrets work after concurrent rotations without grace",
            working.len(),
            secrets.len()
        );
        assert_unauthenticated(&original, &format!("round {round}: the original secret after rotation")).await;
        let listed = list_all(&alice, &format!("/v1/workspaces/{ws}/keys"), 500).await;
        assert_eq!(listed.iter().filter(|k| k["id"] == id.as_str()).count(), 1, "{listed:?}");
    }
}

// 8. ------------------------------------------------------------------------------------------------

/// Concurrent revocations of one key: one 204, the rest 404, and one `key.revoked` in the log.
async fn concurrent_revocations_revoke_once(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    for round in 0..4 {
        let key = create_key(&alice, &ws, &format!("revoked {round}")).await;
        let id = id_of(&key);
        assert_key_works(&key_client(&s, &key), &id).await;
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let (c, id) = (alice.clone(), id.clone());
                tokio::spawn(async move { c.delete(&format!("/v1/keys/{id}")).await.unwrap() })
            })
            .collect();
        let mut statuses = Vec::new();
        for t in tasks {
            let r = t.await.unwrap();
            if r.status != 204 {
                expect_problem(&r, 404, "not_found");
            }
            statuses.push(r.status);
        }
        statuses.sort_unstable();
        assert_eq!(statuses, [204, 404, 404], "round {round}: concurrent DELETE /v1/keys/{id}");
        assert_unauthenticated(&key_client(&s, &key), "a revoked key").await;
        let events = revoked_events(&alice, &org).await;
        let of = revocations_of(&events, &id);
        assert_eq!(of.len(), 1, "round {round}: key.revoked events for {id}: {of:?}");
        assert_eq!(of[0]["workspace_id"], ws.as_str(), "{:?}", of[0]);
    }
}

/// An invitation whose workspace grant lowers a member's role (member → viewer) ends the keys
/// they made there, like any other demotion.
async fn invitation_lowering_a_role_revokes_keys(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (bob, bob_s) = s.signup("Bob").await;
    let (org, _) = s.org(&alice, "Acme", "team").await;
    s.add_member(&alice, &org, &bob, &bob_s, "member").await;
    let ws2 = alice.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": "Two"})).await.unwrap();
    let ws2 = ws2.str("id").to_string();
    let bob_id = bob_s["user"]["id"].as_str().unwrap().to_string();
    let put = alice.put(&format!("/v1/workspaces/{ws2}/members/{bob_id}"), &json!({"role": "member"})).await.unwrap();
    assert_eq!(put.status, 200, "{}", put.body);
    let key = bob.post(&format!("/v1/workspaces/{ws2}/keys"), &json!({"name": "ci"})).await.unwrap();
    assert_eq!(key.status, 201, "{}", key.body);
    let as_key = s.client.with_token(key.str("secret"));
    assert_eq!(as_key.get("/v1/me").await.unwrap().status, 200);

    let email = bob_s["user"]["email"].as_str().unwrap();
    let inv = alice
        .post(
            &format!("/v1/orgs/{org}/invitations"),
            &json!({"email": email, "workspaces": [{"workspace_id": ws2, "role": "viewer"}]}),
        )
        .await
        .unwrap();
    assert_eq!(inv.status, 201, "{}", inv.body);
    let acc = bob.post("/v1/invitations/accept", &json!({"token": inv.str("token")})).await.unwrap();
    assert_eq!(acc.status, 200, "{}", acc.body);

    let me = as_key.get("/v1/me").await.unwrap();
    assert_eq!((me.status, me.code()), (401, Some("unauthenticated")), "the key of a new viewer must stop at once");
    let audit = alice.get(&format!("/v1/orgs/{org}/audit?action=key.revoked")).await.unwrap();
    let items = audit.body["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{}", audit.body);
    assert_eq!(items[0]["target"]["id"], key.body["id"]);
}

both_backends!(
    invitation_lowering_a_role_revokes_keys,
    removal_racing_key_creation_leaves_no_working_key,
    demoted_admin_loses_keys_where_they_lose_access,
    made_viewer_loses_keys_in_that_workspace,
    concurrent_rotations_leave_one_secret,
    concurrent_revocations_revoke_once,
);

//! A key acts with its creator's standing: who may create and manage keys, what a key may do, and
//! what happens to keys when their member leaves, is removed, or their workspace or org is deleted.

use roost::Client;
use serde_json::{Value, json};

use crate::support::{expect_problem, set_ws_role, uid};
use roost_test_kit::TestServer;

use super::{assert_key_works, assert_unauthenticated, create_key, key_client};

async fn audit_actions(c: &Client, org: &str, action: &str) -> Vec<Value> {
    let r = c.get(&format!("/v1/orgs/{org}/audit?action={action}&limit=500")).await.unwrap();
    assert_eq!(r.status, 200, "audit: {:?}", r.body);
    r.body["items"].as_array().expect("items").clone()
}

async fn removed_member_loses_their_keys_at_once(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let (bob, b) = s.signup("Bob").await;
    let bob_id = uid(&b);
    s.add_member(&alice, &org, &bob, &b, "member").await;
    set_ws_role(&alice, &ws, &bob_id, "member").await;

    let bob_key = create_key(&bob, &ws, "bob's").await;
    assert_eq!(bob_key["created_by"], bob_id.as_str());
    let bob_personal_key = create_key(&bob, b["personal"]["workspace_id"].as_str().unwrap(), "bob's own").await;
    let alice_key = create_key(&alice, &ws, "alice's").await;
    let bk = key_client(&s, &bob_key);
    let bob_key_id = bob_key["id"].as_str().unwrap();
    assert_key_works(&bk, bob_key_id).await;
    assert_key_works(&bk, bob_key_id).await;

    let r = alice.delete(&format!("/v1/orgs/{org}/members/{bob_id}")).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_unauthenticated(&bk).await;
    // Bob himself is out of the workspace; alice's key is untouched.
    expect_problem(&bob.get(&format!("/v1/workspaces/{ws}")).await.unwrap(), 404, "not_found");
    expect_problem(&bob.get(&format!("/v1/orgs/{org}")).await.unwrap(), 404, "not_found");
    assert_key_works(&key_client(&s, &alice_key), alice_key["id"].as_str().unwrap()).await;
    // Keys bob made elsewhere (his personal workspace) are none of this org's business.
    assert_key_works(&key_client(&s, &bob_personal_key), bob_personal_key["id"].as_str().unwrap()).await;

    let revoked = audit_actions(&alice, &org, "key.revoked").await;
    assert!(
        revoked.iter().any(|e| e["target"]["type"] == "key" && e["target"]["id"] == bob_key_id),
        "key.revoked for bob's key missing: {revoked:?}"
    );
    assert!(!revoked.iter().any(|e| e["target"]["id"] == alice_key["id"]), "alice's key was revoked: {revoked:?}");
    let alice_id = uid_of(&alice).await;
    let removed = audit_actions(&alice, &org, "member.removed").await;
    assert!(
        removed.iter().any(|e| e["target"]["type"] == "user"
            && e["target"]["id"] == bob_id.as_str()
            && e["actor"]["id"] == alice_id.as_str()),
        "member.removed for bob missing: {removed:?}"
    );
}

async fn uid_of(c: &Client) -> String {
    c.get("/v1/me").await.unwrap().body["user"]["id"].as_str().unwrap_or("").to_string()
}

async fn member_who_leaves_loses_their_keys(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let (bob, b) = s.signup("Bob").await;
    let bob_id = uid(&b);
    s.add_member(&alice, &org, &bob, &b, "member").await;
    set_ws_role(&alice, &ws, &bob_id, "admin").await;
    let bob_key = create_key(&bob, &ws, "bob's").await;
    let bk = key_client(&s, &bob_key);
    let bob_key_id = bob_key["id"].as_str().unwrap();
    assert_key_works(&bk, bob_key_id).await;

    let r = bob.delete(&format!("/v1/orgs/{org}/members/me")).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_unauthenticated(&bk).await;
    let revoked = audit_actions(&alice, &org, "key.revoked").await;
    assert!(revoked.iter().any(|e| e["target"]["id"] == bob_key_id), "key.revoked missing: {revoked:?}");
    let list = alice.get(&format!("/v1/workspaces/{ws}/keys")).await.unwrap();
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(0), "{:?}", list.body);
}

async fn who_may_create_and_manage_keys(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let (viewer, v) = s.signup("Viewer").await;
    s.add_member(&alice, &org, &viewer, &v, "member").await;
    set_ws_role(&alice, &ws, &uid(&v), "viewer").await;
    let (billing, bi) = s.signup("Billing").await;
    s.add_member(&alice, &org, &billing, &bi, "billing").await;
    let (outsider_member, o) = s.signup("Outside").await;
    s.add_member(&alice, &org, &outsider_member, &o, "member").await;
    let (dave, d) = s.signup("Dave").await;
    s.add_member(&alice, &org, &dave, &d, "member").await;
    set_ws_role(&alice, &ws, &uid(&d), "member").await;
    let (erin, e) = s.signup("Erin").await;
    s.add_member(&alice, &org, &erin, &e, "member").await;
    set_ws_role(&alice, &ws, &uid(&e), "member").await;
    let (wsadmin, wa) = s.signup("Wsadmin").await;
    s.add_member(&alice, &org, &wsadmin, &wa, "member").await;
    set_ws_role(&alice, &ws, &uid(&wa), "admin").await;

    let path = format!("/v1/workspaces/{ws}/keys");
    let r = viewer.post(&path, &json!({"name": "v"})).await.unwrap();
    expect_problem(&r, 403, "forbidden");
    let r = billing.post(&path, &json!({"name": "b"})).await.unwrap();
    expect_problem(&r, 403, "forbidden");
    // An org member outside the workspace cannot even see it.
    let r = outsider_member.post(&path, &json!({"name": "o"})).await.unwrap();
    expect_problem(&r, 404, "not_found");
    let list = alice.get(&path).await.unwrap();
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(0), "{:?}", list.body);

    // Members create keys; another plain member may neither rotate nor revoke them.
    let dk = create_key(&dave, &ws, "dave's").await;
    let dk_id = dk["id"].as_str().unwrap();
    let r = erin.post(&format!("/v1/keys/{dk_id}/rotate"), &json!({})).await.unwrap();
    expect_problem(&r, 403, "forbidden");
    let r = erin.delete(&format!("/v1/keys/{dk_id}")).await.unwrap();
    expect_problem(&r, 403, "forbidden");
    let r = viewer.delete(&format!("/v1/keys/{dk_id}")).await.unwrap();
    expect_problem(&r, 403, "forbidden");
    assert_key_works(&key_client(&s, &dk), dk_id).await;

    // The creator rotates; a workspace admin and the org owner revoke.
    let r = dave.post(&format!("/v1/keys/{dk_id}/rotate"), &json!({})).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = wsadmin.delete(&format!("/v1/keys/{dk_id}")).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);
    let ek = create_key(&erin, &ws, "erin's").await;
    let r = alice.delete(&format!("/v1/keys/{}", ek["id"].as_str().unwrap())).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_unauthenticated(&key_client(&s, &ek)).await;
}

async fn another_tenant_cannot_touch_your_key(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (_, ws) = s.org(&alice, "Acme", "team").await;
    let (mallory, _) = s.signup("Mallory").await;
    let key = create_key(&alice, &ws, "ci").await;
    let id = key["id"].as_str().unwrap();
    let k = key_client(&s, &key);
    assert_key_works(&k, id).await;

    let missing = roost_domain::IdKind::Key.generate();
    for target in [id, missing.as_str()] {
        let r = mallory.post(&format!("/v1/keys/{target}/rotate"), &json!({"grace_seconds": 0})).await.unwrap();
        expect_problem(&r, 404, "not_found");
        let r = mallory.delete(&format!("/v1/keys/{target}")).await.unwrap();
        expect_problem(&r, 404, "not_found");
    }
    let r = mallory.get(&format!("/v1/workspaces/{ws}/keys")).await.unwrap();
    expect_problem(&r, 404, "not_found");
    let r = mallory.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "mine now"})).await.unwrap();
    expect_problem(&r, 404, "not_found");

    // Mallory's own key cannot touch it either.
    let (_, mws) = s.org(&mallory, "Evil", "team").await;
    let mk = key_client(&s, &create_key(&mallory, &mws, "evil").await);
    let r = mk.delete(&format!("/v1/keys/{id}")).await.unwrap();
    assert!(r.status == 404 || r.status == 403, "{} {:?}", r.status, r.body);

    assert_key_works(&k, id).await;
    let list = alice.get(&format!("/v1/workspaces/{ws}/keys")).await.unwrap();
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1), "{:?}", list.body);
}

async fn deleting_a_workspace_or_org_kills_its_keys_at_once(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws1) = s.org(&alice, "Acme", "team").await;
    let r = alice.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": "Two"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let ws2 = r.str("id").to_string();
    let k1 = create_key(&alice, &ws1, "one").await;
    let k2 = create_key(&alice, &ws2, "two").await;
    let (c1, c2) = (key_client(&s, &k1), key_client(&s, &k2));
    let (id1, id2) = (k1["id"].as_str().unwrap(), k2["id"].as_str().unwrap());
    assert_key_works(&c1, id1).await;
    assert_key_works(&c2, id2).await;

    let r = alice.delete(&format!("/v1/workspaces/{ws2}")).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_unauthenticated(&c2).await;
    assert_key_works(&c1, id1).await;
    let revoked = audit_actions(&alice, &org, "key.revoked").await;
    assert!(
        revoked.iter().any(|e| e["target"]["id"] == id2),
        "key.revoked for the deleted workspace's key: {revoked:?}"
    );

    // Another org's key is untouched by all this.
    let (bob, _) = s.signup("Bob").await;
    let (_, bob_ws) = s.org(&bob, "Bobco", "team").await;
    let bk = create_key(&bob, &bob_ws, "bob").await;
    assert_key_works(&key_client(&s, &bk), bk["id"].as_str().unwrap()).await;

    let r = alice.delete(&format!("/v1/orgs/{org}")).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_unauthenticated(&c1).await;
    assert_unauthenticated(&c2).await;
    assert_key_works(&key_client(&s, &bk), bk["id"].as_str().unwrap()).await;
}

/// Being taken out of a workspace (while staying in the org) is being removed from it: the keys
/// the member created there stop working at once (API.md, API keys).
async fn removed_from_a_workspace_loses_keys_there(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws1) = s.org(&alice, "Acme", "team").await;
    let r = alice.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": "Two"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let ws2 = r.str("id").to_string();
    let (bob, b) = s.signup("Bob").await;
    let bob_id = uid(&b);
    s.add_member(&alice, &org, &bob, &b, "member").await;
    set_ws_role(&alice, &ws1, &bob_id, "member").await;
    set_ws_role(&alice, &ws2, &bob_id, "member").await;
    let k1 = create_key(&bob, &ws1, "one").await;
    let k2 = create_key(&bob, &ws2, "two").await;
    let (c1, c2) = (key_client(&s, &k1), key_client(&s, &k2));
    assert_key_works(&c1, k1["id"].as_str().unwrap()).await;
    assert_key_works(&c2, k2["id"].as_str().unwrap()).await;

    let r = alice.delete(&format!("/v1/workspaces/{ws1}/members/{bob_id}")).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);
    expect_problem(&bob.get(&format!("/v1/workspaces/{ws1}")).await.unwrap(), 404, "not_found");
    let r = c1
        .post(&format!("/v1/workspaces/{ws1}/resources"), &json!({"kind": "app", "name": "after removal"}))
        .await
        .unwrap();
    expect_problem(&r, 401, "unauthenticated");
    assert_unauthenticated(&c1).await;
    // The other workspace, where bob still is, keeps working.
    assert_key_works(&c2, k2["id"].as_str().unwrap()).await;
}

/// A key has a workspace member's rights, no more.
async fn a_key_has_member_rights_only(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let r = alice.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": "Two"})).await.unwrap();
    let ws2 = r.str("id").to_string();
    let key = create_key(&alice, &ws, "ci").await;
    let k = key_client(&s, &key);
    let ws_before = alice.get(&format!("/v1/workspaces/{ws}")).await.unwrap().body;
    let alices = alice
        .post(&format!("/v1/workspaces/{ws}/resources"), &json!({"kind": "app", "name": "alice's"}))
        .await
        .unwrap();
    let alices = alices.str("id").to_string();
    let own =
        k.post(&format!("/v1/workspaces/{ws}/resources"), &json!({"kind": "app", "name": "key's"})).await.unwrap();
    assert_eq!(own.status, 201, "{:?}", own.body);

    // Not a manager: others' resources, members, the workspace itself.
    expect_problem(&k.delete(&format!("/v1/resources/{alices}")).await.unwrap(), 403, "forbidden");
    let r = k.put(&format!("/v1/workspaces/{ws}/members/{}", uid(&a)), &json!({"role": "viewer"})).await.unwrap();
    expect_problem(&r, 403, "forbidden");
    let r = k.patch(&format!("/v1/workspaces/{ws}"), &json!({"name": "Renamed by key"})).await.unwrap();
    expect_problem(&r, 403, "forbidden");
    let r = k.delete(&format!("/v1/workspaces/{ws}")).await.unwrap();
    assert!(r.status == 403 || r.status == 409, "{} {:?}", r.status, r.body);
    let r = k.post(&format!("/v1/resources/{}/transfer", own.str("id")), &json!({"workspace_id": ws2})).await.unwrap();
    assert!(r.status == 403 || r.status == 404, "{} {:?}", r.status, r.body);
    // Its own creations it may delete.
    let r = k.delete(&format!("/v1/resources/{}", own.str("id"))).await.unwrap();
    assert_eq!(r.status, 204, "{:?}", r.body);

    let w = alice.get(&format!("/v1/workspaces/{ws}")).await.unwrap();
    assert_eq!(w.body["name"], ws_before["name"], "{:?}", w.body);
    let l = alice.get(&format!("/v1/workspaces/{ws}/resources")).await.unwrap();
    assert_eq!(l.body["items"].as_array().map(Vec::len), Some(1), "{:?}", l.body);
    let members = alice.get(&format!("/v1/workspaces/{ws}/members")).await.unwrap();
    assert!(!members.body.to_string().contains("viewer"), "{:?}", members.body);
}

both_backends!(
    deleting_a_workspace_or_org_kills_its_keys_at_once,
    removed_from_a_workspace_loses_keys_there,
    a_key_has_member_rights_only,
    removed_member_loses_their_keys_at_once,
    member_who_leaves_loses_their_keys,
    who_may_create_and_manage_keys,
    another_tenant_cannot_touch_your_key,
);

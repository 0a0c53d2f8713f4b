//! An org's members: their roles, removal and leaving, and the transfer of ownership.

use serde_json::{Value, json};

use crate::support::{create_ws, email_of, expect_invalid, expect_problem, expect_status, list_all, uid};
use roost_test_kit::TestServer;

async fn member_roles(s: TestServer) {
    let (alice, alice_s) = s.signup("Alice").await;
    let (admin, admin_s) = s.signup("Admin").await;
    let (member, member_s) = s.signup("Member").await;
    let (carol, carol_s) = s.signup("Carol").await;
    let (_out, out_s) = s.signup("Outsider").await;
    let (org, _) = s.org(&alice, "Acme", "team").await;
    s.add_member(&alice, &org, &admin, &admin_s, "admin").await;
    s.add_member(&alice, &org, &member, &member_s, "member").await;
    s.add_member(&alice, &org, &carol, &carol_s, "member").await;
    let m = |signup: &Value| format!("/v1/orgs/{org}/members/{}", uid(signup));

    let list = member.get(&format!("/v1/orgs/{org}/members")).await.unwrap();
    expect_status(&list, 200);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{items:?}");
    for (signup, role) in [(&alice_s, "owner"), (&admin_s, "admin"), (&member_s, "member"), (&carol_s, "member")] {
        let it =
            items.iter().find(|i| i["user_id"] == uid(signup).as_str()).unwrap_or_else(|| panic!("{signup} missing"));
        assert_eq!(it["role"], role);
        assert_eq!(it["email"], email_of(signup).as_str());
        assert_eq!(it["name"], signup["user"]["name"]);
    }
    assert_eq!(list_all(&member, &format!("/v1/orgs/{org}/members"), 1).await.len(), 4);

    // Only the owner grants admin and billing.
    expect_problem(&admin.patch(&m(&carol_s), &json!({"role": "billing"})).await.unwrap(), 403, "forbidden");
    expect_problem(&admin.patch(&m(&carol_s), &json!({"role": "admin"})).await.unwrap(), 403, "forbidden");
    expect_problem(&member.patch(&m(&carol_s), &json!({"role": "admin"})).await.unwrap(), 403, "forbidden");
    let r = alice.patch(&m(&carol_s), &json!({"role": "billing"})).await.unwrap();
    expect_status(&r, 200);
    let role_of = |body: &Value, signup: &Value| {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["user_id"] == uid(signup).as_str())
            .map(|i| i["role"].clone())
    };
    let list = alice.get(&format!("/v1/orgs/{org}/members")).await.unwrap();
    assert_eq!(role_of(&list.body, &carol_s), Some(json!("billing")));
    // … and only the owner takes them away.
    expect_problem(&admin.patch(&m(&carol_s), &json!({"role": "member"})).await.unwrap(), 403, "forbidden");
    expect_status(&alice.patch(&m(&carol_s), &json!({"role": "member"})).await.unwrap(), 200);

    // Nobody sets `owner` here; the owner's own role cannot change.
    expect_invalid(&alice.patch(&m(&carol_s), &json!({"role": "owner"})).await.unwrap(), "role");
    expect_invalid(&alice.patch(&m(&carol_s), &json!({"role": "superuser"})).await.unwrap(), "role");
    expect_problem(
        &alice.patch(&m(&alice_s), &json!({"role": "admin"})).await.unwrap(),
        409,
        "owner_cannot_be_removed",
    );
    let by_admin = admin.patch(&m(&alice_s), &json!({"role": "member"})).await.unwrap();
    assert!(
        by_admin.status == 403 || by_admin.status == 409,
        "admin demoting the owner: {} {}",
        by_admin.status,
        by_admin.body
    );
    // A user who is not a member.
    expect_problem(&alice.patch(&m(&out_s), &json!({"role": "member"})).await.unwrap(), 404, "not_found");

    let list = alice.get(&format!("/v1/orgs/{org}/members")).await.unwrap();
    assert_eq!(role_of(&list.body, &alice_s), Some(json!("owner")));
    assert_eq!(role_of(&list.body, &carol_s), Some(json!("member")));
    assert_eq!(role_of(&list.body, &admin_s), Some(json!("admin")));
}

async fn remove_members(s: TestServer) {
    let (alice, alice_s) = s.signup("Alice").await;
    let (admin, admin_s) = s.signup("Admin").await;
    let (member, member_s) = s.signup("Member").await;
    let (carol, carol_s) = s.signup("Carol").await;
    let (dave, dave_s) = s.signup("Dave").await;
    let (org, primary) = s.org(&alice, "Acme", "team").await;
    for (c, sg) in [(&admin, &admin_s), (&member, &member_s), (&carol, &carol_s), (&dave, &dave_s)] {
        s.add_member(&alice, &org, c, sg, "member").await;
    }
    expect_status(
        &alice.patch(&format!("/v1/orgs/{org}/members/{}", uid(&admin_s)), &json!({"role": "admin"})).await.unwrap(),
        200,
    );
    let m = |signup: &Value| format!("/v1/orgs/{org}/members/{}", uid(signup));

    // The owner cannot be removed, by anyone, nor leave.
    expect_problem(&admin.delete(&m(&alice_s)).await.unwrap(), 409, "owner_cannot_be_removed");
    expect_problem(&alice.delete(&m(&alice_s)).await.unwrap(), 409, "owner_cannot_be_removed");
    expect_problem(&alice.delete(&format!("/v1/orgs/{org}/members/me")).await.unwrap(), 409, "owner_cannot_be_removed");
    // A plain member removes nobody else.
    expect_problem(&member.delete(&m(&carol_s)).await.unwrap(), 403, "forbidden");

    // Carol works in the primary workspace with a key; the admin removes her.
    expect_status(
        &alice
            .put(&format!("/v1/workspaces/{primary}/members/{}", uid(&carol_s)), &json!({"role": "member"}))
            .await
            .unwrap(),
        200,
    );
    let key = carol.post(&format!("/v1/workspaces/{primary}/keys"), &json!({"name": "carol's"})).await.unwrap();
    expect_status(&key, 201);
    let key = s.client.with_token(key.str("secret"));
    expect_status(&key.get("/v1/workspaces/current").await.unwrap(), 200);
    expect_status(&carol.get(&format!("/v1/orgs/{org}")).await.unwrap(), 200);
    expect_status(&admin.delete(&m(&carol_s)).await.unwrap(), 204);
    expect_problem(&carol.get(&format!("/v1/orgs/{org}")).await.unwrap(), 404, "not_found");
    expect_problem(&carol.get(&format!("/v1/workspaces/{primary}")).await.unwrap(), 404, "not_found");
    expect_problem(&key.get("/v1/workspaces/current").await.unwrap(), 401, "unauthenticated");
    expect_problem(&admin.delete(&m(&carol_s)).await.unwrap(), 404, "not_found");

    // Leaving: with `me`, or with one's own id.
    expect_status(&member.delete(&format!("/v1/orgs/{org}/members/me")).await.unwrap(), 204);
    expect_problem(&member.get(&format!("/v1/orgs/{org}")).await.unwrap(), 404, "not_found");
    expect_status(&dave.delete(&m(&dave_s)).await.unwrap(), 204);
    expect_problem(&dave.get(&format!("/v1/orgs/{org}")).await.unwrap(), 404, "not_found");

    let list = alice.get(&format!("/v1/orgs/{org}/members")).await.unwrap();
    let ids: Vec<&str> =
        list.body["items"].as_array().unwrap().iter().map(|i| i["user_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&uid(&alice_s).as_str()) && ids.contains(&uid(&admin_s).as_str()));
    // A removed member can be invited back, without the workspace roles they had before.
    s.add_member(&alice, &org, &carol, &carol_s, "member").await;
    expect_status(&carol.get(&format!("/v1/orgs/{org}")).await.unwrap(), 200);
    expect_problem(&carol.get(&format!("/v1/workspaces/{primary}")).await.unwrap(), 404, "not_found");
    let ws_members = alice.get(&format!("/v1/workspaces/{primary}/members")).await.unwrap();
    assert!(
        !ws_members.body["items"].as_array().unwrap().iter().any(|m| m["user_id"] == uid(&carol_s).as_str()),
        "{}",
        ws_members.body
    );
}

/// docs/rules.md: only the owner grants or takes away `admin` and `billing`; admins manage `member`s.
/// Removing an admin or a billing member from the org takes their role away, so it is the owner's call.
async fn admins_manage_members_only(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (admin, admin_s) = s.signup("Admin").await;
    let (admin2, admin2_s) = s.signup("Admin2").await;
    let (billing, billing_s) = s.signup("Billing").await;
    let (member, member_s) = s.signup("Member").await;
    let (org, _) = s.org(&alice, "Acme", "team").await;
    s.add_member(&alice, &org, &admin, &admin_s, "admin").await;
    s.add_member(&alice, &org, &admin2, &admin2_s, "admin").await;
    s.add_member(&alice, &org, &billing, &billing_s, "billing").await;
    s.add_member(&alice, &org, &member, &member_s, "member").await;
    let m = |signup: &Value| format!("/v1/orgs/{org}/members/{}", uid(signup));

    expect_problem(&admin.delete(&m(&admin2_s)).await.unwrap(), 403, "forbidden");
    expect_problem(&admin.delete(&m(&billing_s)).await.unwrap(), 403, "forbidden");
    expect_status(&admin2.get(&format!("/v1/orgs/{org}")).await.unwrap(), 200);
    expect_status(&billing.get(&format!("/v1/orgs/{org}")).await.unwrap(), 200);
    expect_status(&admin.delete(&m(&member_s)).await.unwrap(), 204);
    expect_problem(&member.get(&format!("/v1/orgs/{org}")).await.unwrap(), 404, "not_found");
    expect_status(&alice.delete(&m(&billing_s)).await.unwrap(), 204);
}

/// A role change takes effect on the very next request.
async fn role_changes_apply_at_once(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (admin, admin_s) = s.signup("Admin").await;
    let (org, _) = s.org(&alice, "Acme", "team").await;
    s.add_member(&alice, &org, &admin, &admin_s, "admin").await;
    let m = format!("/v1/orgs/{org}/members/{}", uid(&admin_s));
    create_ws(&admin, &org, "While admin").await;
    expect_status(&alice.patch(&m, &json!({"role": "member"})).await.unwrap(), 200);
    let r = admin.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": "After demotion"})).await.unwrap();
    expect_problem(&r, 403, "forbidden");
    expect_problem(&admin.patch(&format!("/v1/orgs/{org}"), &json!({"name": "Nope"})).await.unwrap(), 403, "forbidden");
    expect_status(&alice.patch(&m, &json!({"role": "billing"})).await.unwrap(), 200);
    expect_status(&admin.put(&format!("/v1/orgs/{org}/plan"), &json!({"plan": "business"})).await.unwrap(), 200);
    expect_status(&alice.patch(&m, &json!({"role": "admin"})).await.unwrap(), 200);
    expect_problem(
        &admin.put(&format!("/v1/orgs/{org}/plan"), &json!({"plan": "team"})).await.unwrap(),
        403,
        "forbidden",
    );
    create_ws(&admin, &org, "Admin again").await;
}

/// Ownership moves once: of several transfers fired at the same moment by the owner, exactly one
/// succeeds (the others find the caller is no longer the owner), and the org has one owner.
async fn concurrent_transfers(s: TestServer) {
    let (alice, alice_s) = s.signup("Alice").await;
    let (org, _) = s.org(&alice, "Acme", "business").await;
    let mut targets = Vec::new();
    for i in 0..6 {
        let (c, sg) = s.signup(&format!("Heir{i}")).await;
        s.add_member(&alice, &org, &c, &sg, "member").await;
        targets.push(uid(&sg));
    }
    let path = format!("/v1/orgs/{org}/transfer-ownership");
    let mut set = tokio::task::JoinSet::new();
    for t in &targets {
        let (c, p, t) = (alice.clone(), path.clone(), t.clone());
        set.spawn(async move { c.post(&p, &json!({"user_id": t})).await.unwrap() });
    }
    let mut ok = 0;
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        if r.is_success() {
            ok += 1;
        } else {
            expect_problem(&r, 403, "forbidden");
        }
    }
    let list = list_all(&alice, &format!("/v1/orgs/{org}/members"), 500).await;
    let owners: Vec<&Value> = list.iter().filter(|m| m["role"] == "owner").collect();
    assert_eq!(owners.len(), 1, "exactly one owner: {list:?}");
    let got = alice.get(&format!("/v1/orgs/{org}")).await.unwrap();
    assert_eq!(got.body["owner_id"], owners[0]["user_id"]);
    let alice_role = list.iter().find(|m| m["user_id"] == uid(&alice_s).as_str()).map(|m| m["role"].clone());
    assert_eq!(alice_role, Some(json!("admin")));
    let admins = list.iter().filter(|m| m["role"] == "admin").count();
    assert_eq!(ok, 1, "transfers that succeeded: {ok}; the org ends with {admins} admins: {list:?}");
}

async fn transfer_ownership(s: TestServer) {
    let (alice, alice_s) = s.signup("Alice").await;
    let (admin, admin_s) = s.signup("Admin").await;
    let (bob, bob_s) = s.signup("Bob").await;
    let (_out, out_s) = s.signup("Outsider").await;
    let (org, _) = s.org(&alice, "Acme", "team").await;
    s.add_member(&alice, &org, &admin, &admin_s, "admin").await;
    s.add_member(&alice, &org, &bob, &bob_s, "member").await;
    let path = format!("/v1/orgs/{org}/transfer-ownership");

    expect_problem(&admin.post(&path, &json!({"user_id": uid(&admin_s)})).await.unwrap(), 403, "forbidden");
    expect_problem(&bob.post(&path, &json!({"user_id": uid(&bob_s)})).await.unwrap(), 403, "forbidden");
    expect_problem(&alice.post(&path, &json!({"user_id": uid(&out_s)})).await.unwrap(), 404, "not_found");
    expect_problem(
        &alice.post(&path, &json!({"user_id": roost_domain::IdKind::User.generate()})).await.unwrap(),
        404,
        "not_found",
    );
    expect_invalid(&alice.post(&path, &json!({})).await.unwrap(), "user_id");

    let r = alice.post(&path, &json!({"user_id": uid(&bob_s)})).await.unwrap();
    assert!(r.is_success(), "transfer failed: {} {}", r.status, r.body);
    let got = bob.get(&format!("/v1/orgs/{org}")).await.unwrap();
    assert_eq!(got.body["owner_id"], uid(&bob_s).as_str());
    let list = bob.get(&format!("/v1/orgs/{org}/members")).await.unwrap();
    let role = |signup: &Value| {
        list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["user_id"] == uid(signup).as_str())
            .map(|i| i["role"].clone())
    };
    assert_eq!(role(&bob_s), Some(json!("owner")));
    assert_eq!(role(&alice_s), Some(json!("admin")), "the old owner becomes admin");
    assert_eq!(role(&admin_s), Some(json!("admin")));
    let owners = list.body["items"].as_array().unwrap().iter().filter(|i| i["role"] == "owner").count();
    assert_eq!(owners, 1);

    // The old owner has an admin's rights now; the new one has the owner's.
    expect_problem(&alice.post(&path, &json!({"user_id": uid(&alice_s)})).await.unwrap(), 403, "forbidden");
    expect_problem(&alice.delete(&format!("/v1/orgs/{org}")).await.unwrap(), 403, "forbidden");
    expect_status(&alice.delete(&format!("/v1/orgs/{org}/members/me")).await.unwrap(), 204);
    expect_problem(&bob.delete(&format!("/v1/orgs/{org}/members/me")).await.unwrap(), 409, "owner_cannot_be_removed");
    expect_status(&bob.delete(&format!("/v1/orgs/{org}")).await.unwrap(), 204);
}

both_backends!(
    member_roles,
    remove_members,
    transfer_ownership,
    admins_manage_members_only,
    role_changes_apply_at_once,
    concurrent_transfers,
);

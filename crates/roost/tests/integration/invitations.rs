//! Scenarios: invitations — who may invite, seats at invite and at accept, email matching,
//! one use, revocation, expiry, workspace grants, and the pending list.

use roost_domain::time::DAY_MS;
use serde_json::{Value, json};

use crate::support::{
    create_ws, email_of, expect_about, expect_invalid, expect_plan_limit, expect_problem, expect_status, fresh_email,
    list_all, membership, now_ms, uid,
};
use roost_test_kit::TestServer;

async fn create_invitation(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (admin, admin_s) = s.signup("Admin").await;
    let (member, member_s) = s.signup("Member").await;
    let (billing, billing_s) = s.signup("Billing").await;
    let (org, _) = s.org(&alice, "Acme", "team").await;
    s.add_member(&alice, &org, &admin, &admin_s, "admin").await;
    s.add_member(&alice, &org, &member, &member_s, "member").await;
    s.add_member(&alice, &org, &billing, &billing_s, "billing").await;
    let path = format!("/v1/orgs/{org}/invitations");

    let email = fresh_email("newbie");
    let r = alice.post(&path, &json!({"email": email})).await.unwrap();
    expect_status(&r, 201);
    assert!(r.str("id").starts_with("inv_"), "{}", r.body);
    assert_eq!(r.body["email"], email.as_str());
    assert_eq!(r.body["role"], "member", "role defaults to member");
    assert!(!r.str("token").is_empty(), "{}", r.body);
    expect_about(&r.body["expires_at"], now_ms(&s) + 7 * DAY_MS);

    // Admins invite members; only the owner invites admins and billing.
    let by_admin = admin.post(&path, &json!({"email": fresh_email("a"), "role": "member"})).await.unwrap();
    expect_status(&by_admin, 201);
    assert_eq!(by_admin.body["role"], "member");
    expect_problem(
        &admin.post(&path, &json!({"email": fresh_email("b"), "role": "admin"})).await.unwrap(),
        403,
        "forbidden",
    );
    expect_problem(
        &admin.post(&path, &json!({"email": fresh_email("c"), "role": "billing"})).await.unwrap(),
        403,
        "forbidden",
    );
    let as_admin = alice.post(&path, &json!({"email": fresh_email("d"), "role": "admin"})).await.unwrap();
    expect_status(&as_admin, 201);
    assert_eq!(as_admin.body["role"], "admin");
    expect_status(&alice.post(&path, &json!({"email": fresh_email("e"), "role": "billing"})).await.unwrap(), 201);

    expect_problem(&member.post(&path, &json!({"email": fresh_email("f")})).await.unwrap(), 403, "forbidden");
    expect_problem(&billing.post(&path, &json!({"email": fresh_email("g")})).await.unwrap(), 403, "forbidden");
    expect_invalid(&alice.post(&path, &json!({"email": fresh_email("h"), "role": "owner"})).await.unwrap(), "role");
    expect_invalid(&alice.post(&path, &json!({"email": fresh_email("i"), "role": "viewer"})).await.unwrap(), "role");
    expect_invalid(&alice.post(&path, &json!({"email": "not an email"})).await.unwrap(), "email");
    expect_invalid(&alice.post(&path, &json!({})).await.unwrap(), "email");

    // The accepted role is the invited one; emails match case-insensitively.
    let (newbie, newbie_s) = s.signup("Promoted").await;
    let inv =
        alice.post(&path, &json!({"email": email_of(&newbie_s).to_uppercase(), "role": "billing"})).await.unwrap();
    expect_status(&inv, 201);
    let acc = newbie.post("/v1/invitations/accept", &json!({"token": inv.str("token")})).await.unwrap();
    expect_status(&acc, 200);
    assert_eq!(acc.body["org_id"], org.as_str());
    assert_eq!(acc.body["workspace_ids"], json!([]));
    let me = newbie.get("/v1/me").await.unwrap();
    assert_eq!(membership(&me.body, &org).unwrap()["org_role"], "billing");
}

async fn single_seat_plans_take_no_invitations(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    for plan in ["solo", "pro"] {
        let (org, _) = s.org(&alice, plan, plan).await;
        let r = alice.post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": fresh_email("x")})).await.unwrap();
        expect_plan_limit(&r, 403, "max_seats");
    }
}

async fn accept_rules(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (bob, bob_s) = s.signup("Bob").await;
    let (carol, _) = s.signup("Carol").await;
    let (org, _) = s.org(&alice, "Acme", "team").await;
    let path = format!("/v1/orgs/{org}/invitations");
    let accept = |c: &roost::Client, token: &str| {
        let c = c.clone();
        let token = token.to_string();
        async move { c.post("/v1/invitations/accept", &json!({"token": token})).await.unwrap() }
    };

    let inv = alice.post(&path, &json!({"email": email_of(&bob_s)})).await.unwrap();
    expect_status(&inv, 201);
    let token = inv.str("token").to_string();
    // Someone else cannot use Bob's invitation, and trying does not use it up.
    expect_problem(&accept(&carol, &token).await, 403, "invitation_email_mismatch");
    expect_problem(&carol.get(&format!("/v1/orgs/{org}")).await.unwrap(), 404, "not_found");
    let ok = accept(&bob, &token).await;
    expect_status(&ok, 200);
    assert_eq!(ok.body["org_id"], org.as_str());
    assert!(ok.body["workspace_ids"].is_array(), "{}", ok.body);
    expect_status(&bob.get(&format!("/v1/orgs/{org}")).await.unwrap(), 200);
    // Once only.
    expect_problem(&accept(&bob, &token).await, 410, "invitation_invalid");
    // An unknown token answers the same way.
    expect_problem(&accept(&bob, "no-such-token").await, 410, "invitation_invalid");
    expect_invalid(&bob.post("/v1/invitations/accept", &json!({})).await.unwrap(), "token");
    expect_problem(
        &s.client.post("/v1/invitations/accept", &json!({"token": token})).await.unwrap(),
        401,
        "unauthenticated",
    );

    // Revoked.
    let (dave, dave_s) = s.signup("Dave").await;
    let inv = alice.post(&path, &json!({"email": email_of(&dave_s)})).await.unwrap();
    expect_status(&inv, 201);
    expect_status(&alice.delete(&format!("{path}/{}", inv.str("id"))).await.unwrap(), 204);
    expect_problem(&accept(&dave, inv.str("token")).await, 410, "invitation_invalid");
    expect_problem(&dave.get(&format!("/v1/orgs/{org}")).await.unwrap(), 404, "not_found");
    expect_problem(&alice.delete(&format!("{path}/{}", inv.str("id"))).await.unwrap(), 404, "not_found");
    // Bob, a plain member now, cannot revoke; another tenant sees nothing.
    let pending = alice.post(&path, &json!({"email": fresh_email("p")})).await.unwrap();
    expect_status(&pending, 201);
    expect_problem(&bob.delete(&format!("{path}/{}", pending.str("id"))).await.unwrap(), 403, "forbidden");
    expect_problem(&carol.delete(&format!("{path}/{}", pending.str("id"))).await.unwrap(), 404, "not_found");

    // Expired: seven days is the limit.
    let (erin, erin_s) = s.signup("Erin").await;
    let inv = alice.post(&path, &json!({"email": email_of(&erin_s)})).await.unwrap();
    expect_status(&inv, 201);
    s.clock.advance(8 * DAY_MS);
    expect_problem(&accept(&erin, inv.str("token")).await, 410, "invitation_invalid");
    expect_problem(&erin.get(&format!("/v1/orgs/{org}")).await.unwrap(), 404, "not_found");
}

async fn seats_rechecked_at_accept(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, _) = s.org(&alice, "Small", "build").await; // max_seats 3
    let path = format!("/v1/orgs/{org}/invitations");
    let mut people = Vec::new();
    for name in ["A", "B", "C"] {
        let (c, signup) = s.signup(name).await;
        // Invitations count against current members only: with one member, all three fit.
        let inv = alice.post(&path, &json!({"email": email_of(&signup)})).await.unwrap();
        expect_status(&inv, 201);
        people.push((c, inv.str("token").to_string()));
    }
    for (c, token) in &people[..2] {
        expect_status(&c.post("/v1/invitations/accept", &json!({"token": token})).await.unwrap(), 200);
    }
    // Three members now: the third acceptance and any new invitation are refused.
    let (c, token) = &people[2];
    let late = c.post("/v1/invitations/accept", &json!({"token": token})).await.unwrap();
    expect_plan_limit(&late, 403, "max_seats");
    expect_problem(&c.get(&format!("/v1/orgs/{org}")).await.unwrap(), 404, "not_found");
    expect_plan_limit(&alice.post(&path, &json!({"email": fresh_email("d")})).await.unwrap(), 403, "max_seats");
    let members = alice.get(&format!("/v1/orgs/{org}/members")).await.unwrap();
    assert_eq!(members.body["items"].as_array().unwrap().len(), 3);

    // A seat frees up: the refused invitation is still good.
    let first = people[0].0.get("/v1/me").await.unwrap();
    expect_status(
        &alice.delete(&format!("/v1/orgs/{org}/members/{}", first.body["user"]["id"].as_str().unwrap())).await.unwrap(),
        204,
    );
    expect_status(&c.post("/v1/invitations/accept", &json!({"token": token})).await.unwrap(), 200);
}

async fn workspace_grants(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (bob, bob_s) = s.signup("Bob").await;
    let (other_owner, _) = s.signup("Other").await;
    let (org, primary) = s.org(&alice, "Acme", "team").await;
    let (other_org, other_ws) = s.org(&other_owner, "Elsewhere", "team").await;
    let w = create_ws(&alice, &org, "Staging").await;
    let path = format!("/v1/orgs/{org}/invitations");

    // Workspaces must be this org's.
    let foreign = alice
        .post(&path, &json!({"email": email_of(&bob_s), "workspaces": [{"workspace_id": other_ws, "role": "member"}]}))
        .await
        .unwrap();
    expect_problem(&foreign, 422, "invalid_request");
    assert!(crate::support::field_errors(&foreign).iter().any(|f| f.starts_with("workspaces")), "{}", foreign.body);
    let missing = alice
        .post(
            &path,
            &json!({"email": email_of(&bob_s), "workspaces": [{"workspace_id": roost_domain::IdKind::Workspace.generate(), "role": "member"}]}),
        )
        .await
        .unwrap();
    expect_problem(&missing, 422, "invalid_request");
    let bad_role = alice
        .post(&path, &json!({"email": email_of(&bob_s), "workspaces": [{"workspace_id": w, "role": "owner"}]}))
        .await
        .unwrap();
    expect_problem(&bad_role, 422, "invalid_request");

    let inv = alice
        .post(
            &path,
            &json!({"email": email_of(&bob_s), "workspaces": [{"workspace_id": w, "role": "viewer"}, {"workspace_id": primary, "role": "admin"}]}),
        )
        .await
        .unwrap();
    expect_status(&inv, 201);
    let acc = bob.post("/v1/invitations/accept", &json!({"token": inv.str("token")})).await.unwrap();
    expect_status(&acc, 200);
    let mut got: Vec<&str> =
        acc.body["workspace_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    got.sort_unstable();
    let mut want = vec![w.as_str(), primary.as_str()];
    want.sort_unstable();
    assert_eq!(got, want);

    let me = bob.get("/v1/me").await.unwrap();
    let m = membership(&me.body, &org).unwrap_or_else(|| panic!("{}", me.body));
    assert_eq!(m["org_role"], "member");
    let role_in =
        |id: &str| m["workspaces"].as_array().unwrap().iter().find(|x| x["id"] == id).map(|x| x["role"].clone());
    assert_eq!(role_in(&w), Some(json!("viewer")));
    assert_eq!(role_in(&primary), Some(json!("admin")));
    expect_status(&bob.get(&format!("/v1/workspaces/{w}")).await.unwrap(), 200);
    let listed = alice.get(&format!("/v1/workspaces/{w}/members")).await.unwrap();
    let it = listed.body["items"].as_array().unwrap().iter().find(|i| i["user_id"] == uid(&bob_s).as_str()).cloned();
    assert_eq!(it.map(|i| i["role"].clone()), Some(json!("viewer")));

    // Already a member: accepting another invitation applies its grants.
    let w2 = create_ws(&alice, &org, "Second").await;
    let inv = alice
        .post(&path, &json!({"email": email_of(&bob_s), "workspaces": [{"workspace_id": w2, "role": "member"}]}))
        .await
        .unwrap();
    expect_status(&inv, 201);
    let acc = bob.post("/v1/invitations/accept", &json!({"token": inv.str("token")})).await.unwrap();
    expect_status(&acc, 200);
    assert_eq!(acc.body["workspace_ids"], json!([w2]));
    let me = bob.get("/v1/me").await.unwrap();
    let m = membership(&me.body, &org).unwrap();
    assert_eq!(m["org_role"], "member", "a second invitation does not change the org role");
    assert!(m["workspaces"].as_array().unwrap().iter().any(|x| x["id"] == w2.as_str() && x["role"] == "member"), "{m}");

    // A workspace deleted between invitation and acceptance is skipped; the rest applies.
    let (carol, carol_s) = s.signup("Carol").await;
    let w3 = create_ws(&alice, &org, "Short-lived").await;
    let inv = alice
        .post(
            &path,
            &json!({"email": email_of(&carol_s), "workspaces": [{"workspace_id": w3, "role": "admin"}, {"workspace_id": w, "role": "member"}]}),
        )
        .await
        .unwrap();
    expect_status(&inv, 201);
    expect_status(&alice.delete(&format!("/v1/workspaces/{w3}")).await.unwrap(), 204);
    let acc = carol.post("/v1/invitations/accept", &json!({"token": inv.str("token")})).await.unwrap();
    expect_status(&acc, 200);
    assert_eq!(acc.body["workspace_ids"], json!([w]));
    expect_problem(&carol.get(&format!("/v1/workspaces/{w3}")).await.unwrap(), 404, "not_found");
    expect_status(&carol.get(&format!("/v1/workspaces/{w}")).await.unwrap(), 200);
    // The other org is untouched by all this.
    expect_problem(&bob.get(&format!("/v1/orgs/{other_org}")).await.unwrap(), 404, "not_found");
}

/// One token, one use, even when the acceptances race; and seats hold under racing acceptances.
async fn concurrent_accepts(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, _) = s.org(&alice, "Small", "build").await; // max_seats 3
    let path = format!("/v1/orgs/{org}/invitations");

    let (bob, bob_s) = s.signup("Bob").await;
    let inv = alice.post(&path, &json!({"email": email_of(&bob_s)})).await.unwrap();
    expect_status(&inv, 201);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (c, t) = (bob.clone(), inv.str("token").to_string());
        set.spawn(async move { c.post("/v1/invitations/accept", &json!({"token": t})).await.unwrap() });
    }
    let mut ok = 0;
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        if r.status == 200 {
            ok += 1;
        } else {
            expect_problem(&r, 410, "invitation_invalid");
        }
    }
    assert_eq!(ok, 1, "one token, one acceptance");

    // Two members, one seat left, three invitees accepting at once.
    let mut invitees = Vec::new();
    for name in ["C1", "C2", "C3"] {
        let (c, sg) = s.signup(name).await;
        let inv = alice.post(&path, &json!({"email": email_of(&sg)})).await.unwrap();
        expect_status(&inv, 201);
        invitees.push((c, inv.str("token").to_string()));
    }
    let mut set = tokio::task::JoinSet::new();
    for (c, t) in invitees {
        set.spawn(async move { c.post("/v1/invitations/accept", &json!({"token": t})).await.unwrap() });
    }
    let mut ok = 0;
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        if r.status == 200 {
            ok += 1;
        } else {
            expect_plan_limit(&r, 403, "max_seats");
        }
    }
    assert_eq!(ok, 1, "one seat was left");
    assert_eq!(list_all(&alice, &format!("/v1/orgs/{org}/members"), 50).await.len(), 3);
}

async fn pending_list(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (admin, admin_s) = s.signup("Admin").await;
    let (member, member_s) = s.signup("Member").await;
    let (bob, bob_s) = s.signup("Bob").await;
    let (outsider, _) = s.signup("Outsider").await;
    let (org, _) = s.org(&alice, "Acme", "team").await;
    s.add_member(&alice, &org, &admin, &admin_s, "admin").await;
    s.add_member(&alice, &org, &member, &member_s, "member").await;
    let path = format!("/v1/orgs/{org}/invitations");

    let accepted = alice.post(&path, &json!({"email": email_of(&bob_s)})).await.unwrap();
    expect_status(&accepted, 201);
    expect_status(&bob.post("/v1/invitations/accept", &json!({"token": accepted.str("token")})).await.unwrap(), 200);
    let revoked = alice.post(&path, &json!({"email": fresh_email("r")})).await.unwrap();
    expect_status(&revoked, 201);
    expect_status(&alice.delete(&format!("{path}/{}", revoked.str("id"))).await.unwrap(), 204);
    let p1 = alice.post(&path, &json!({"email": fresh_email("p1"), "role": "admin"})).await.unwrap();
    let p2 = admin.post(&path, &json!({"email": fresh_email("p2")})).await.unwrap();
    expect_status(&p1, 201);
    expect_status(&p2, 201);

    let list = alice.get(&path).await.unwrap();
    expect_status(&list, 200);
    let items = list.body["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![p1.str("id"), p2.str("id")], "pending only, in creation order");
    let first = &items[0];
    assert_eq!(first["email"], p1.body["email"]);
    assert_eq!(first["role"], "admin");
    assert!(first.get("token").is_none_or(Value::is_null), "the token is shown once: {first}");
    expect_status(&admin.get(&path).await.unwrap(), 200);
    assert_eq!(list_all(&alice, &path, 1).await.len(), 2);
    let m = member.get(&path).await.unwrap();
    assert!(
        m.status == 403 || m.status == 200 && m.body["items"].as_array().is_some(),
        "member listing invitations: {} {}",
        m.status,
        m.body
    );
    expect_problem(&outsider.get(&path).await.unwrap(), 404, "not_found");

    // Expired ones drop out of the list.
    s.clock.advance(8 * DAY_MS);
    let list = alice.get(&path).await.unwrap();
    expect_status(&list, 200);
    assert_eq!(list.body["items"], json!([]));
}

both_backends!(
    create_invitation,
    single_seat_plans_take_no_invitations,
    accept_rules,
    seats_rechecked_at_accept,
    workspace_grants,
    pending_list,
    concurrent_accepts,
);

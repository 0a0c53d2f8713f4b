//! An org's life: creation and plans, listing, renaming, plan changes, seats, deletion.

use roost_domain::time::DAY_MS;
use serde_json::json;

use crate::support::{
    create_ws, email_of, expect_about, expect_invalid, expect_plan_limit, expect_problem, expect_status, list_all,
    now_ms, uid,
};
use roost_test_kit::TestServer;

async fn create_org_and_plans(s: TestServer) {
    let (alice, signup) = s.signup("Alice").await;

    let free = alice.post("/v1/orgs", &json!({"name": "Cheap", "plan": "free"})).await.unwrap();
    expect_problem(&free, 402, "paid_plan_required");

    let r = alice.post("/v1/orgs", &json!({"name": "Acme", "plan": "team"})).await.unwrap();
    expect_status(&r, 201);
    let org = &r.body["org"];
    assert!(org["id"].as_str().unwrap().starts_with("org_"), "{org}");
    assert_eq!(org["name"], "Acme");
    assert_eq!(org["kind"], "org");
    assert_eq!(org["plan"], "team");
    assert_eq!(org["owner_id"], uid(&signup).as_str());
    let ws = &r.body["workspace"];
    assert!(ws["id"].as_str().unwrap().starts_with("ws_"), "{ws}");
    assert!(ws["name"].as_str().is_some_and(|n| !n.is_empty()), "{ws}");
    assert_eq!(ws["primary"], true);
    let org_id = org["id"].as_str().unwrap();

    // The creator is the owner and sees the primary workspace.
    let got = alice.get(&format!("/v1/orgs/{org_id}")).await.unwrap();
    expect_status(&got, 200);
    assert_eq!(got.body["id"], org_id);
    assert_eq!(got.body["owner_id"], uid(&signup).as_str());
    let members = alice.get(&format!("/v1/orgs/{org_id}/members")).await.unwrap();
    expect_status(&members, 200);
    let items = members.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["user_id"], uid(&signup).as_str());
    assert_eq!(items[0]["role"], "owner");
    assert_eq!(items[0]["email"], email_of(&signup).as_str());
    let wss = alice.get(&format!("/v1/orgs/{org_id}/workspaces")).await.unwrap();
    expect_status(&wss, 200);
    assert_eq!(wss.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(wss.body["items"][0]["id"], ws["id"]);
    assert_eq!(wss.body["items"][0]["primary"], true);

    // A trial on a plan that offers one (pro: 14 days), without payment.
    let trial = alice.post("/v1/orgs", &json!({"name": "Trying", "plan": "pro", "trial": true})).await.unwrap();
    expect_status(&trial, 201);
    assert_eq!(trial.body["org"]["plan"], "pro");
    expect_about(&trial.body["org"]["trial_ends_at"], now_ms(&s) + 14 * DAY_MS);
    // Without a trial, the field is absent or null.
    assert!(r.body["org"]["trial_ends_at"].is_null(), "{}", r.body);

    // A plan without a trial, and the free plan, answer trial:true with 402.
    let solo = alice.post("/v1/orgs", &json!({"name": "Solo", "plan": "solo", "trial": true})).await.unwrap();
    expect_problem(&solo, 402, "paid_plan_required");
    let free_trial = alice.post("/v1/orgs", &json!({"name": "Free", "plan": "free", "trial": true})).await.unwrap();
    expect_problem(&free_trial, 402, "paid_plan_required");

    expect_invalid(&alice.post("/v1/orgs", &json!({"name": "X", "plan": "platinum"})).await.unwrap(), "plan");
    expect_invalid(&alice.post("/v1/orgs", &json!({"name": "  ", "plan": "team"})).await.unwrap(), "name");
    expect_invalid(&alice.post("/v1/orgs", &json!({"plan": "team"})).await.unwrap(), "name");
    expect_problem(
        &s.client.post("/v1/orgs", &json!({"name": "Anon", "plan": "team"})).await.unwrap(),
        401,
        "unauthenticated",
    );
}

async fn list_orgs_and_pagination(s: TestServer) {
    let (alice, signup) = s.signup("Alice").await;
    let (bob, _) = s.signup("Bob").await;
    let mut mine = vec![signup["personal"]["org_id"].as_str().unwrap().to_string()];
    for n in ["One", "Two", "Three"] {
        mine.push(s.org(&alice, n, "team").await.0);
    }
    let (bobs, _) = s.org(&bob, "Bob's", "team").await;

    let all = alice.get("/v1/orgs").await.unwrap();
    expect_status(&all, 200);
    assert!(all.body["next_cursor"].is_null(), "{}", all.body);
    let ids: Vec<&str> = all.body["items"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    let mut want: Vec<&str> = mine.iter().map(String::as_str).collect();
    let mut got = ids.clone();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, want, "only the caller's orgs");
    assert!(!ids.contains(&bobs.as_str()));

    // One at a time: each page has a cursor until the last; together they are the whole list.
    let first = alice.get("/v1/orgs?limit=1").await.unwrap();
    expect_status(&first, 200);
    assert_eq!(first.body["items"].as_array().unwrap().len(), 1);
    assert!(first.body["next_cursor"].is_string(), "{}", first.body);
    let paged: Vec<String> =
        list_all(&alice, "/v1/orgs", 1).await.iter().map(|o| o["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(paged, ids, "paging with limit=1 gives the same list in the same order");
    let paged3: Vec<String> =
        list_all(&alice, "/v1/orgs", 3).await.iter().map(|o| o["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(paged3, ids);

    for bad in ["0", "501", "-1", "ten", "1.5"] {
        expect_invalid(&alice.get(&format!("/v1/orgs?limit={bad}")).await.unwrap(), "limit");
    }
    expect_status(&alice.get("/v1/orgs?limit=500").await.unwrap(), 200);
    expect_status(&alice.get("/v1/orgs?limit=1").await.unwrap(), 200);

    // Bob sees only his own two.
    let bob_list = bob.get("/v1/orgs").await.unwrap();
    assert_eq!(bob_list.body["items"].as_array().unwrap().len(), 2, "{}", bob_list.body);
}

async fn another_tenants_org_is_not_found(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (bob, _) = s.signup("Bob").await;
    let (org, primary) = s.org(&alice, "Acme", "team").await;
    let other = bob.get(&format!("/v1/orgs/{org}")).await.unwrap();
    expect_problem(&other, 404, "not_found");
    let nowhere = bob.get(&format!("/v1/orgs/{}", roost_domain::IdKind::Org.generate())).await.unwrap();
    expect_problem(&nowhere, 404, "not_found");
    assert_eq!(other.body, nowhere.body, "another tenant's org answers exactly like a missing one");
    expect_problem(&bob.get("/v1/orgs/not-an-id").await.unwrap(), 404, "not_found");
    for path in [
        format!("/v1/orgs/{org}/members"),
        format!("/v1/orgs/{org}/workspaces"),
        format!("/v1/orgs/{org}/invitations"),
        format!("/v1/workspaces/{primary}"),
    ] {
        expect_problem(&bob.get(&path).await.unwrap(), 404, "not_found");
    }
    expect_problem(&bob.patch(&format!("/v1/orgs/{org}"), &json!({"name": "Pwned"})).await.unwrap(), 404, "not_found");
    expect_problem(
        &bob.put(&format!("/v1/orgs/{org}/plan"), &json!({"plan": "business"})).await.unwrap(),
        404,
        "not_found",
    );
    expect_problem(&bob.delete(&format!("/v1/orgs/{org}")).await.unwrap(), 404, "not_found");
    expect_problem(
        &bob.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": "W"})).await.unwrap(),
        404,
        "not_found",
    );
    assert_eq!(alice.get(&format!("/v1/orgs/{org}")).await.unwrap().body["name"], "Acme");
}

async fn rename_org(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (admin, admin_s) = s.signup("Admin").await;
    let (member, member_s) = s.signup("Member").await;
    let (billing, billing_s) = s.signup("Billing").await;
    let (org, _) = s.org(&alice, "Acme", "team").await;
    s.add_member(&alice, &org, &admin, &admin_s, "admin").await;
    s.add_member(&alice, &org, &member, &member_s, "member").await;
    s.add_member(&alice, &org, &billing, &billing_s, "billing").await;
    let path = format!("/v1/orgs/{org}");

    let r = admin.patch(&path, &json!({"name": "Acme Renamed"})).await.unwrap();
    expect_status(&r, 200);
    assert_eq!(member.get(&path).await.unwrap().body["name"], "Acme Renamed");
    expect_status(&alice.patch(&path, &json!({"name": "Acme Again"})).await.unwrap(), 200);
    expect_problem(&member.patch(&path, &json!({"name": "Nope"})).await.unwrap(), 403, "forbidden");
    expect_problem(&billing.patch(&path, &json!({"name": "Nope"})).await.unwrap(), 403, "forbidden");
    expect_invalid(&alice.patch(&path, &json!({"name": ""})).await.unwrap(), "name");
    assert_eq!(alice.get(&path).await.unwrap().body["name"], "Acme Again");
}

async fn change_plan(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (admin, admin_s) = s.signup("Admin").await;
    let (billing, billing_s) = s.signup("Billing").await;
    let (member, member_s) = s.signup("Member").await;
    let (org, _) = s.org(&alice, "Acme", "team").await;
    s.add_member(&alice, &org, &admin, &admin_s, "admin").await;
    s.add_member(&alice, &org, &billing, &billing_s, "billing").await;
    s.add_member(&alice, &org, &member, &member_s, "member").await;
    let plan = format!("/v1/orgs/{org}/plan");

    expect_problem(&admin.put(&plan, &json!({"plan": "business"})).await.unwrap(), 403, "forbidden");
    expect_problem(&member.put(&plan, &json!({"plan": "business"})).await.unwrap(), 403, "forbidden");
    expect_status(&billing.put(&plan, &json!({"plan": "business"})).await.unwrap(), 200);
    assert_eq!(admin.get(&format!("/v1/orgs/{org}")).await.unwrap().body["plan"], "business");
    expect_status(&alice.put(&plan, &json!({"plan": "team"})).await.unwrap(), 200);
    assert_eq!(admin.get(&format!("/v1/orgs/{org}")).await.unwrap().body["plan"], "team");

    // An org cannot go to an unpaid plan; an unknown plan is invalid.
    expect_problem(&alice.put(&plan, &json!({"plan": "free"})).await.unwrap(), 402, "paid_plan_required");
    expect_invalid(&alice.put(&plan, &json!({"plan": "platinum"})).await.unwrap(), "plan");
    // Four members do not fit pro (one seat).
    expect_plan_limit(&billing.put(&plan, &json!({"plan": "pro"})).await.unwrap(), 409, "max_seats");
    assert_eq!(alice.get(&format!("/v1/orgs/{org}")).await.unwrap().body["plan"], "team");

    // Two workspaces do not fit build (one workspace) — an org with only its owner, so seats fit.
    let (solo_org, _) = s.org(&alice, "Two Spaces", "team").await;
    create_ws(&alice, &solo_org, "Second").await;
    let down = alice.put(&format!("/v1/orgs/{solo_org}/plan"), &json!({"plan": "build"})).await.unwrap();
    expect_plan_limit(&down, 409, "max_workspaces");
    assert_eq!(alice.get(&format!("/v1/orgs/{solo_org}")).await.unwrap().body["plan"], "team");
    // With one workspace it fits.
    let (one_ws, _) = s.org(&alice, "One Space", "team").await;
    expect_status(&alice.put(&format!("/v1/orgs/{one_ws}/plan"), &json!({"plan": "build"})).await.unwrap(), 200);

    // One trial per org, ever.
    let t1 = alice.put(&plan, &json!({"plan": "launch", "trial": true})).await.unwrap();
    expect_status(&t1, 200);
    let got = alice.get(&format!("/v1/orgs/{org}")).await.unwrap();
    assert_eq!(got.body["plan"], "launch");
    expect_about(&got.body["trial_ends_at"], now_ms(&s) + 14 * DAY_MS);
    expect_problem(&alice.put(&plan, &json!({"plan": "team", "trial": true})).await.unwrap(), 409, "trial_used");
    // An org made on a trial has used it.
    let made = alice.post("/v1/orgs", &json!({"name": "Trial Org", "plan": "pro", "trial": true})).await.unwrap();
    expect_status(&made, 201);
    let made_id = made.body["org"]["id"].as_str().unwrap();
    let again = alice.put(&format!("/v1/orgs/{made_id}/plan"), &json!({"plan": "team", "trial": true})).await.unwrap();
    expect_problem(&again, 409, "trial_used");
}

async fn delete_org(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (admin, admin_s) = s.signup("Admin").await;
    let (member, member_s) = s.signup("Member").await;
    let (late, late_s) = s.signup("Late").await;
    let (org, primary) = s.org(&alice, "Doomed", "team").await;
    s.add_member(&alice, &org, &admin, &admin_s, "admin").await;
    s.add_member(&alice, &org, &member, &member_s, "member").await;
    let path = format!("/v1/orgs/{org}");

    // Admin works in the org's primary workspace and holds a key there.
    expect_status(&admin.put("/v1/me/active-workspace", &json!({"workspace_id": primary})).await.unwrap(), 200);
    let key = admin.post(&format!("/v1/workspaces/{primary}/keys"), &json!({"name": "ci"})).await.unwrap();
    expect_status(&key, 201);
    let key = s.client.with_token(key.str("secret"));
    expect_status(&key.get("/v1/workspaces/current").await.unwrap(), 200);
    let inv = alice.post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": email_of(&late_s)})).await.unwrap();
    expect_status(&inv, 201);

    expect_problem(&admin.delete(&path).await.unwrap(), 403, "forbidden");
    expect_problem(&member.delete(&path).await.unwrap(), 403, "forbidden");
    expect_status(&alice.get(&path).await.unwrap(), 200);
    expect_status(&alice.delete(&path).await.unwrap(), 204);

    for who in [&alice, &admin, &member] {
        expect_problem(&who.get(&path).await.unwrap(), 404, "not_found");
        expect_problem(&who.get(&format!("/v1/workspaces/{primary}")).await.unwrap(), 404, "not_found");
        let orgs = who.get("/v1/orgs").await.unwrap();
        assert!(!orgs.body["items"].as_array().unwrap().iter().any(|o| o["id"] == org.as_str()), "{}", orgs.body);
        let me = who.get("/v1/me").await.unwrap();
        assert!(crate::support::membership(&me.body, &org).is_none(), "{}", me.body);
    }
    expect_problem(&alice.delete(&path).await.unwrap(), 404, "not_found");
    // The admin's active workspace fell back to the personal one; the key is revoked.
    assert_eq!(admin.get("/v1/me").await.unwrap().body["active_workspace_id"], admin_s["personal"]["workspace_id"]);
    expect_problem(&key.get("/v1/workspaces/current").await.unwrap(), 401, "unauthenticated");
    // Pending invitations died with it.
    let accept = late.post("/v1/invitations/accept", &json!({"token": inv.str("token")})).await.unwrap();
    expect_problem(&accept, 410, "invitation_invalid");
}

/// `GET /v1/orgs/{org}` shows seats against the plan: team includes 3, the 4th is billable.
async fn seats_and_usage(s: TestServer) {
    let (owner, _) = s.signup("Owner").await;
    let (org, _) = s.org(&owner, "Seats", "team").await;
    let detail = owner.get(&format!("/v1/orgs/{org}")).await.unwrap();
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert_eq!(detail.body["id"], json!(org));
    assert_eq!(
        detail.body["seats"],
        json!({"used": 1, "included": 3, "max": null, "billable_extra": 0, "extra_seat_price": 45000, "currency": "IDR"})
    );
    assert_eq!(detail.body["usage"]["workspaces"], 1);
    for name in ["A", "B", "C"] {
        let (m, body) = s.signup(name).await;
        s.add_member(&owner, &org, &m, &body, "member").await;
    }
    let ws = detail.body["usage"]["max_workspaces"].clone();
    assert_eq!(ws, 20);
    let detail = owner.get(&format!("/v1/orgs/{org}")).await.unwrap();
    assert_eq!(
        (detail.body["seats"]["used"].as_u64(), detail.body["seats"]["billable_extra"].as_u64()),
        (Some(4), Some(1))
    );

    // A single-seat plan reports its hard cap.
    let (solo_org, _) = s.org(&owner, "Solo", "solo").await;
    let solo = owner.get(&format!("/v1/orgs/{solo_org}")).await.unwrap();
    assert_eq!((solo.body["seats"]["max"].as_u64(), solo.body["seats"]["billable_extra"].as_u64()), (Some(1), Some(0)));
}

both_backends!(
    seats_and_usage,
    create_org_and_plans,
    list_orgs_and_pagination,
    another_tenants_org_is_not_found,
    rename_org,
    change_plan,
    delete_org,
);

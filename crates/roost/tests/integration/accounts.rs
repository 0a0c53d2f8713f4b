//! Scenarios: accounts — signup, sessions, `me`, the active workspace, and the personal org.
//!
//! The small assertion helpers at the bottom are shared by orgs, workspaces, invitations and roles.

use serde_json::json;

use crate::support::{
    create_ws, email_of, expect_invalid, expect_problem, expect_status, field_errors, fresh_email, membership, uid,
};
use roost_test_kit::TestServer;

const PASSWORD: &str = "correct horse battery";

async fn signup_then_me(s: TestServer) {
    let (alice, body) = s.signup("Alice").await;
    let me = alice.get("/v1/me").await.unwrap();
    assert_eq!(me.status, 200);
    assert_eq!(me.body["user"]["id"], body["user"]["id"]);
    assert_eq!(me.body["active_workspace_id"], body["personal"]["workspace_id"]);
    assert_eq!(me.body["memberships"][0]["org_kind"], "personal");
}

async fn signup_shape(s: TestServer) {
    let email = fresh_email("shape");
    let r = s
        .client
        .post("/v1/signup", &json!({"email": email, "password": PASSWORD, "name": "Shape Tester"}))
        .await
        .unwrap();
    expect_status(&r, 201);
    assert!(r.content_type.starts_with("application/json"), "content type {}", r.content_type);
    let user = &r.body["user"];
    assert!(user["id"].as_str().unwrap().starts_with("usr_"), "{user}");
    assert_eq!(user["email"], email.as_str());
    assert_eq!(user["name"], "Shape Tester");
    assert!(r.str("token").starts_with("rsu_"), "{:?}", r.body);
    assert!(r.body["personal"]["org_id"].as_str().unwrap().starts_with("org_"), "{:?}", r.body);
    assert!(r.body["personal"]["workspace_id"].as_str().unwrap().starts_with("ws_"), "{:?}", r.body);
    assert!(r.body.get("password").is_none() && user.get("password_hash").is_none());

    // The personal org: kind personal, plan free, owned by the new user.
    let me = s.client.with_token(r.str("token"));
    let org = me.get(&format!("/v1/orgs/{}", r.body["personal"]["org_id"].as_str().unwrap())).await.unwrap();
    expect_status(&org, 200);
    assert_eq!(org.body["kind"], "personal");
    assert_eq!(org.body["plan"], "free");
    assert_eq!(org.body["owner_id"], user["id"]);
    // Signing up makes the personal workspace the active one.
    let cur = me.get("/v1/workspaces/current").await.unwrap();
    expect_status(&cur, 200);
    assert_eq!(cur.body["id"], r.body["personal"]["workspace_id"]);
}

async fn email_unique_case_insensitively(s: TestServer) {
    let local = format!("mixed-{}", roost_domain::IdKind::User.generate());
    let first = s
        .client
        .post("/v1/signup", &json!({"email": format!("{local}@Example.COM"), "password": PASSWORD, "name": "First"}))
        .await
        .unwrap();
    expect_status(&first, 201);
    let again = s
        .client
        .post(
            "/v1/signup",
            &json!({"email": format!("{}@example.com", local.to_uppercase()), "password": PASSWORD, "name": "Second"}),
        )
        .await
        .unwrap();
    expect_problem(&again, 409, "email_taken");
    // Login is case-insensitive too.
    let login = s
        .client
        .post("/v1/sessions", &json!({"email": format!("{local}@EXAMPLE.com"), "password": PASSWORD}))
        .await
        .unwrap();
    expect_status(&login, 201);
    assert_eq!(login.body["user"]["id"], first.body["user"]["id"]);
}

async fn signup_validation(s: TestServer) {
    let short = s
        .client
        .post("/v1/signup", &json!({"email": fresh_email("short"), "password": "123456789", "name": "Short"}))
        .await
        .unwrap();
    expect_invalid(&short, "password");
    // Exactly 10 characters is enough.
    let ten = s
        .client
        .post("/v1/signup", &json!({"email": fresh_email("ten"), "password": "1234567890", "name": "Ten"}))
        .await
        .unwrap();
    expect_status(&ten, 201);

    let bad_email = s
        .client
        .post("/v1/signup", &json!({"email": "not-an-email", "password": PASSWORD, "name": "X"}))
        .await
        .unwrap();
    expect_invalid(&bad_email, "email");
    let blank_name = s
        .client
        .post("/v1/signup", &json!({"email": fresh_email("blank"), "password": PASSWORD, "name": "  "}))
        .await
        .unwrap();
    expect_invalid(&blank_name, "name");

    let missing =
        s.client.post("/v1/signup", &json!({"email": fresh_email("missing"), "password": PASSWORD})).await.unwrap();
    expect_invalid(&missing, "name");
    let unknown = s
        .client
        .post("/v1/signup", &json!({"emial": fresh_email("typo"), "password": PASSWORD, "name": "Typo"}))
        .await
        .unwrap();
    expect_problem(&unknown, 422, "invalid_request");
    assert!(!field_errors(&unknown).is_empty(), "422 without errors[]: {:?}", unknown.body);
    let wrong_type = s
        .client
        .post("/v1/signup", &json!({"email": fresh_email("type"), "password": 1234567890, "name": "T"}))
        .await
        .unwrap();
    expect_invalid(&wrong_type, "password");

    let malformed =
        s.client.send_raw(reqwest::Method::POST, "/v1/signup", b"{\"email\": \"a@b.c\", ".to_vec()).await.unwrap();
    expect_problem(&malformed, 400, "malformed_json");
    let trailing = s
        .client
        .send_raw(
            reqwest::Method::POST,
            "/v1/signup",
            format!("{{\"email\":\"{}\",\"password\":\"{PASSWORD}\",\"name\":\"T\"}} x", fresh_email("t")).into_bytes(),
        )
        .await
        .unwrap();
    expect_problem(&trailing, 400, "malformed_json");
    let empty = s.client.send_raw(reqwest::Method::POST, "/v1/signup", Vec::new()).await.unwrap();
    expect_problem(&empty, 400, "malformed_json");
}

async fn login_and_logout(s: TestServer) {
    let (alice, signup) = s.signup("Alice").await;
    let email = email_of(&signup);
    let login = s.client.post("/v1/sessions", &json!({"email": email, "password": PASSWORD})).await.unwrap();
    expect_status(&login, 201);
    assert!(login.str("token").starts_with("rsu_"));
    assert_ne!(login.str("token"), alice.token().unwrap(), "a new session gets a new token");
    assert_eq!(login.body["user"], signup["user"]);

    let wrong = s.client.post("/v1/sessions", &json!({"email": email, "password": "wrong password!"})).await.unwrap();
    expect_problem(&wrong, 401, "invalid_credentials");
    let unknown =
        s.client.post("/v1/sessions", &json!({"email": fresh_email("nobody"), "password": PASSWORD})).await.unwrap();
    expect_problem(&unknown, 401, "invalid_credentials");
    assert_eq!(wrong.body, unknown.body, "unknown email and wrong password must answer alike");
    assert_eq!(wrong.content_type, unknown.content_type);

    // Logging one session out leaves the other working.
    let session = s.client.with_token(login.str("token"));
    expect_status(&session.get("/v1/me").await.unwrap(), 200);
    let out = session.delete("/v1/sessions/current").await.unwrap();
    expect_status(&out, 204);
    expect_problem(&session.get("/v1/me").await.unwrap(), 401, "unauthenticated");
    expect_problem(&session.delete("/v1/sessions/current").await.unwrap(), 401, "unauthenticated");
    expect_status(&alice.get("/v1/me").await.unwrap(), 200);

    // No token, a garbage token, a well-formed unknown token.
    expect_problem(&s.client.get("/v1/me").await.unwrap(), 401, "unauthenticated");
    expect_problem(&s.client.with_token("garbage").get("/v1/me").await.unwrap(), 401, "unauthenticated");
    expect_problem(
        &s.client.with_token("rsu_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").get("/v1/me").await.unwrap(),
        401,
        "unauthenticated",
    );
}

async fn me_shape(s: TestServer) {
    let (alice, signup) = s.signup("Alice").await;
    let me = alice.get("/v1/me").await.unwrap();
    expect_status(&me, 200);
    assert_eq!(me.body["user"], signup["user"]);
    assert_eq!(me.body["active_workspace_id"], signup["personal"]["workspace_id"]);
    let ms = me.body["memberships"].as_array().unwrap();
    assert_eq!(ms.len(), 1, "{ms:?}");
    let m = &ms[0];
    assert_eq!(m["org_id"], signup["personal"]["org_id"]);
    assert!(m["org_name"].as_str().is_some_and(|n| !n.is_empty()), "{m}");
    assert_eq!(m["org_kind"], "personal");
    assert_eq!(m["org_role"], "owner");
    let ws = m["workspaces"].as_array().unwrap();
    assert_eq!(ws.len(), 1, "{ws:?}");
    assert_eq!(ws[0]["id"], signup["personal"]["workspace_id"]);
    assert!(ws[0]["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert_eq!(ws[0]["role"], "admin");

    // After joining an org as admin, it shows with its role and its workspace.
    let (bob, _) = s.signup("Bob").await;
    let (org, primary) = s.org(&bob, "Bob Co", "team").await;
    s.add_member(&bob, &org, &alice, &signup, "admin").await;
    let me = alice.get("/v1/me").await.unwrap();
    let m = membership(&me.body, &org).expect("the joined org is listed");
    assert_eq!(m["org_kind"], "org");
    assert_eq!(m["org_role"], "admin");
    assert_eq!(m["org_name"], "Bob Co");
    assert!(m["workspaces"].as_array().unwrap().iter().any(|w| w["id"] == primary.as_str()), "{m}");
    assert_eq!(me.body["active_workspace_id"], signup["personal"]["workspace_id"], "joining does not switch");
}

async fn active_workspace(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (bob, bob_signup) = s.signup("Bob").await;
    let (carol, carol_signup) = s.signup("Carol").await;
    let bob_personal = bob_signup["personal"]["workspace_id"].as_str().unwrap().to_string();
    let (org, _primary) = s.org(&alice, "Acme", "team").await;
    s.add_member(&alice, &org, &bob, &bob_signup, "member").await;
    let w = create_ws(&alice, &org, "Shared").await;
    let hidden = create_ws(&alice, &org, "Hidden").await;
    expect_status(
        &alice
            .put(&format!("/v1/workspaces/{w}/members/{}", uid(&bob_signup)), &json!({"role": "member"}))
            .await
            .unwrap(),
        200,
    );

    let r = bob.put("/v1/me/active-workspace", &json!({"workspace_id": w})).await.unwrap();
    expect_status(&r, 200);
    assert_eq!(r.body["active_workspace_id"], w.as_str());
    assert_eq!(bob.get("/v1/me").await.unwrap().body["active_workspace_id"], w.as_str());
    let cur = bob.get("/v1/workspaces/current").await.unwrap();
    expect_status(&cur, 200);
    assert_eq!(cur.body["id"], w.as_str());
    assert_eq!(cur.body["org_id"], org.as_str());

    // Another tenant's workspace, and one of the same org Bob was not added to: 404, nothing changes.
    let carol_ws = carol_signup["personal"]["workspace_id"].as_str().unwrap();
    expect_problem(
        &bob.put("/v1/me/active-workspace", &json!({"workspace_id": carol_ws})).await.unwrap(),
        404,
        "not_found",
    );
    expect_problem(
        &bob.put("/v1/me/active-workspace", &json!({"workspace_id": hidden})).await.unwrap(),
        404,
        "not_found",
    );
    expect_problem(
        &bob.put("/v1/me/active-workspace", &json!({"workspace_id": "ws_nonsense"})).await.unwrap(),
        404,
        "not_found",
    );
    expect_invalid(&bob.put("/v1/me/active-workspace", &json!({})).await.unwrap(), "workspace_id");
    assert_eq!(bob.get("/v1/me").await.unwrap().body["active_workspace_id"], w.as_str());

    // `Roost-Workspace` acts in the named workspace for that request only.
    let once = bob.in_workspace(&bob_personal).get("/v1/workspaces/current").await.unwrap();
    expect_status(&once, 200);
    assert_eq!(once.body["id"], bob_personal.as_str());
    assert_eq!(bob.get("/v1/workspaces/current").await.unwrap().body["id"], w.as_str());
    expect_problem(&bob.in_workspace(carol_ws).get("/v1/workspaces/current").await.unwrap(), 404, "not_found");
    expect_problem(&bob.in_workspace(&hidden).get("/v1/workspaces/current").await.unwrap(), 404, "not_found");
    expect_problem(&carol.in_workspace(&w).get("/v1/workspaces/current").await.unwrap(), 404, "not_found");

    // Leaving the org: the active workspace falls back to the personal one.
    expect_status(&bob.delete(&format!("/v1/orgs/{org}/members/me")).await.unwrap(), 204);
    assert_eq!(bob.get("/v1/me").await.unwrap().body["active_workspace_id"], bob_personal.as_str());
    assert_eq!(bob.get("/v1/workspaces/current").await.unwrap().body["id"], bob_personal.as_str());
}

async fn personal_org_rules(s: TestServer) {
    let (alice, signup) = s.signup("Alice").await;
    let (_bob, bob_signup) = s.signup("Bob").await;
    let org = signup["personal"]["org_id"].as_str().unwrap();
    let ws = signup["personal"]["workspace_id"].as_str().unwrap();

    expect_problem(&alice.delete(&format!("/v1/orgs/{org}")).await.unwrap(), 403, "personal_org");
    let invite =
        alice.post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": email_of(&bob_signup)})).await.unwrap();
    expect_problem(&invite, 403, "personal_org");
    expect_problem(
        &alice.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": "Second"})).await.unwrap(),
        403,
        "personal_org",
    );
    // The owner of a personal org is its only member and can never leave it. Both API.md rules of
    // `DELETE …/members/{user}` apply ("the owner: 409", "personal org: 403"); the one specific to
    // personal orgs wins.
    expect_problem(&alice.delete(&format!("/v1/orgs/{org}/members/me")).await.unwrap(), 403, "personal_org");
    expect_problem(
        &alice.delete(&format!("/v1/orgs/{org}/members/{}", uid(&signup))).await.unwrap(),
        403,
        "personal_org",
    );
    expect_problem(&alice.delete(&format!("/v1/workspaces/{ws}")).await.unwrap(), 409, "workspace_protected");

    // It may move to a paid plan and stays single-seat.
    let up = alice.put(&format!("/v1/orgs/{org}/plan"), &json!({"plan": "solo"})).await.unwrap();
    expect_status(&up, 200);
    assert_eq!(alice.get(&format!("/v1/orgs/{org}")).await.unwrap().body["plan"], "solo");
    let invite =
        alice.post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": email_of(&bob_signup)})).await.unwrap();
    expect_problem(&invite, 403, "personal_org");
    expect_problem(&alice.delete(&format!("/v1/orgs/{org}")).await.unwrap(), 403, "personal_org");
    let me = alice.get("/v1/me").await.unwrap();
    assert_eq!(membership(&me.body, org).unwrap()["org_kind"], "personal");
}

async fn me_with_api_key(s: TestServer) {
    let (alice, signup) = s.signup("Alice").await;
    let (_bob, bob_s) = s.signup("Bob").await;
    let ws = signup["personal"]["workspace_id"].as_str().unwrap();
    let org = signup["personal"]["org_id"].as_str().unwrap();
    let key = alice.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "laptop"})).await.unwrap();
    expect_status(&key, 201);
    assert!(key.str("secret").starts_with("rsk_"), "{}", key.body);
    let k = s.client.with_token(key.str("secret"));

    let me = k.get("/v1/me").await.unwrap();
    expect_status(&me, 200);
    assert_eq!(me.body["key"]["id"], key.body["id"]);
    assert_eq!(me.body["key"]["name"], "laptop");
    assert_eq!(me.body["key"]["workspace_id"], ws);
    assert_eq!(me.body["key"]["org_id"], org);
    assert!(me.body.get("user").is_none() && me.body.get("memberships").is_none(), "{}", me.body);

    // A key acts in its own workspace only, and cannot do what only a user does.
    let cur = k.get("/v1/workspaces/current").await.unwrap();
    expect_status(&cur, 200);
    assert_eq!(cur.body["id"], ws);
    expect_status(&k.in_workspace(ws).get("/v1/workspaces/current").await.unwrap(), 200);
    let bob_ws = bob_s["personal"]["workspace_id"].as_str().unwrap();
    expect_problem(&k.in_workspace(bob_ws).get("/v1/workspaces/current").await.unwrap(), 403, "forbidden");
    expect_problem(&k.put("/v1/me/active-workspace", &json!({"workspace_id": ws})).await.unwrap(), 403, "forbidden");
    expect_problem(&k.delete("/v1/sessions/current").await.unwrap(), 403, "forbidden");
    expect_problem(&k.post("/v1/invitations/accept", &json!({"token": "whatever"})).await.unwrap(), 403, "forbidden");
    expect_problem(&k.get(&format!("/v1/orgs/{org}")).await.unwrap(), 403, "forbidden");
    let bob_org = bob_s["personal"]["org_id"].as_str().unwrap();
    expect_problem(&k.get(&format!("/v1/orgs/{bob_org}")).await.unwrap(), 404, "not_found");
    // The key still works after all that, and the user's session is untouched.
    expect_status(&k.get("/v1/me").await.unwrap(), 200);
    expect_status(&alice.get("/v1/me").await.unwrap(), 200);
}

both_backends!(
    signup_then_me,
    signup_shape,
    email_unique_case_insensitively,
    signup_validation,
    login_and_logout,
    me_shape,
    active_workspace,
    personal_org_rules,
    me_with_api_key,
);

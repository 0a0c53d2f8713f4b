//! Hostile strings and query parameters, and what a refused request leaves behind (nothing).

use roost::Client;
use serde_json::json;

use crate::support::{expect_problem, uid};
use roost_test_kit::TestServer;

use super::{assert_invalid, org_count};

async fn hostile_strings_are_stored_verbatim_or_refused(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let before = org_count(&alice).await;
    for name in [
        "x".repeat(10_000),
        "y".repeat(201),
        "bad\u{0}name".to_string(),
        "tab\there".to_string(),
        "line\nbreak".to_string(),
    ] {
        let r = alice.post("/v1/orgs", &json!({"name": name, "plan": "team"})).await.unwrap();
        assert_invalid(&r, Some("name"));
    }
    assert_eq!(org_count(&alice).await, before, "a refused org was stored");

    let weird = [
        "Ünïcødé 🚀 组织 — «ok» ﷽".to_string(),
        "'; DROP TABLE users; --".to_string(),
        "Robert'); DROP TABLE orgs;--".to_string(),
        "\" OR \"\"=\"".to_string(),
        "<script>alert(1)</script>".to_string(),
        "%s%n%x {{7*7}} ${jndi:ldap://x}".to_string(),
        "👩‍👩‍👧‍👦".repeat(20),
        "z".repeat(200),
    ];
    for name in &weird {
        let r = alice.post("/v1/orgs", &json!({"name": name, "plan": "team"})).await.unwrap();
        assert_eq!(r.status, 201, "org {name:?}: {:?}", r.body);
        assert_eq!(&r.body["org"]["name"], name);
        let org = r.body["org"]["id"].as_str().unwrap().to_string();
        let ws = r.body["workspace"]["id"].as_str().unwrap().to_string();
        let got = alice.get(&format!("/v1/orgs/{org}")).await.unwrap();
        assert_eq!(&got.body["name"], name, "{:?}", got.body);

        let w = alice.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": name})).await.unwrap();
        assert_eq!(w.status, 201, "workspace {name:?}: {:?}", w.body);
        let got = alice.get(&format!("/v1/workspaces/{}", w.str("id"))).await.unwrap();
        assert_eq!(&got.body["name"], name);

        let k = alice.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": name})).await.unwrap();
        assert_eq!(k.status, 201, "key {name:?}: {:?}", k.body);
        assert_eq!(&k.body["name"], name);
        let me = s.client.with_token(k.str("secret")).get("/v1/me").await.unwrap();
        assert_eq!(&me.body["key"]["name"], name);

        let res =
            alice.post(&format!("/v1/workspaces/{ws}/resources"), &json!({"kind": "app", "name": name})).await.unwrap();
        assert_eq!(res.status, 201, "resource {name:?}: {:?}", res.body);
        let list = alice.get(&format!("/v1/workspaces/{ws}/resources")).await.unwrap();
        assert_eq!(&list.body["items"][0]["name"], name);
    }
    let listed = org_count(&alice).await;
    assert_eq!(listed.len(), before.len() + weird.len());
    for name in &weird {
        assert!(listed.iter().any(|o| &o["name"] == name), "{name:?} not listed");
    }
    // SQL-ish resource kinds are refused by shape, not executed.
    let ws = a["personal"]["workspace_id"].as_str().unwrap();
    let r = alice
        .post(
            &format!("/v1/workspaces/{ws}/resources"),
            &json!({"kind": "app'; DROP TABLE resources; --", "name": "x"}),
        )
        .await
        .unwrap();
    assert_invalid(&r, Some("kind"));

    // A user whose name and email look like SQL signs up, logs in, and the others still work.
    let email = "o'brien+'--@example.com";
    let r = s
        .client
        .post(
            "/v1/signup",
            &json!({"email": email, "password": "'; DROP TABLE users; --", "name": "'; DROP TABLE users; --"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["user"]["name"], "'; DROP TABLE users; --");
    let login =
        s.client.post("/v1/sessions", &json!({"email": email, "password": "'; DROP TABLE users; --"})).await.unwrap();
    assert_eq!(login.status, 201, "{:?}", login.body);
    let login =
        s.client.post("/v1/sessions", &json!({"email": "' OR '1'='1", "password": "' OR '1'='1"})).await.unwrap();
    expect_problem(&login, 401, "invalid_credentials");
    let me = alice.get("/v1/me").await.unwrap();
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["user"]["id"], a["user"]["id"]);
}

async fn bad_query_parameters(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    for base in [
        "/v1/orgs".to_string(),
        format!("/v1/orgs/{org}/members"),
        format!("/v1/orgs/{org}/workspaces"),
        format!("/v1/orgs/{org}/invitations"),
        format!("/v1/orgs/{org}/audit"),
        format!("/v1/workspaces/{ws}/members"),
        format!("/v1/workspaces/{ws}/keys"),
        format!("/v1/workspaces/{ws}/resources"),
    ] {
        for bad in ["abc", "0", "501", "-1", "1e3", "2.5", "99999999999999999999"] {
            let r = alice.get(&format!("{base}?limit={bad}")).await.unwrap();
            assert_invalid(&r, Some("limit"));
        }
        for good in ["1", "500"] {
            let r = alice.get(&format!("{base}?limit={good}")).await.unwrap();
            assert_eq!(r.status, 200, "{base}?limit={good}: {:?}", r.body);
            assert!(r.body["items"].is_array(), "{:?}", r.body);
            assert!(r.body.get("next_cursor").is_some(), "{base}: next_cursor missing: {:?}", r.body);
        }
    }
    // limit=1 on a list of two pages.
    let r = alice.get("/v1/orgs?limit=1").await.unwrap();
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));
    let next = r.body["next_cursor"].as_str().expect("two orgs: a next page").to_string();
    let r2 = alice.get(&format!("/v1/orgs?limit=1&cursor={next}")).await.unwrap();
    assert_eq!(r2.status, 200, "{:?}", r2.body);
    assert_eq!(r2.body["items"].as_array().map(Vec::len), Some(1));
    assert_ne!(r.body["items"][0]["id"], r2.body["items"][0]["id"]);
}

async fn rejected_requests_leave_nothing_behind(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let orgs_before = org_count(&alice).await;
    let audit = |c: Client, org: String| async move {
        let r = c.get(&format!("/v1/orgs/{org}/audit?limit=500")).await.unwrap();
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["items"].clone()
    };
    let personal_org = a["personal"]["org_id"].as_str().unwrap().to_string();
    let audit_before = audit(alice.clone(), org.clone()).await;
    let personal_audit_before = audit(alice.clone(), personal_org.clone()).await;

    // Org creation refused for each reason in turn.
    let r = alice.post("/v1/orgs", &json!({"name": "Free", "plan": "free"})).await.unwrap();
    expect_problem(&r, 402, "paid_plan_required");
    let r = alice.post("/v1/orgs", &json!({"name": "Unknown", "plan": "platinum"})).await.unwrap();
    assert_invalid(&r, Some("plan"));
    let r = alice.post("/v1/orgs", &json!({"name": "x".repeat(300), "plan": "team"})).await.unwrap();
    assert_invalid(&r, Some("name"));
    let r = alice.post("/v1/orgs", &json!({"name": "Solo trial", "plan": "solo", "trial": true})).await.unwrap();
    expect_problem(&r, 402, "paid_plan_required");
    assert_eq!(org_count(&alice).await, orgs_before, "a refused org was half-written");

    // Personal org: no workspaces, no invitations.
    let r = alice.post(&format!("/v1/orgs/{personal_org}/workspaces"), &json!({"name": "No"})).await.unwrap();
    expect_problem(&r, 403, "personal_org");
    let r =
        alice.post(&format!("/v1/orgs/{personal_org}/invitations"), &json!({"email": "z@example.com"})).await.unwrap();
    expect_problem(&r, 403, "personal_org");
    // Personal quota: a second postgres.
    let pws = a["personal"]["workspace_id"].as_str().unwrap();
    let r = alice
        .post(&format!("/v1/workspaces/{pws}/resources"), &json!({"kind": "postgres", "name": "one"}))
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let personal_audit_after_create = audit(alice.clone(), personal_org.clone()).await;
    assert_eq!(
        personal_audit_after_create.as_array().map(Vec::len),
        personal_audit_before.as_array().map(|x| x.len() + 1),
        "creating a resource adds one audit event"
    );
    let personal_audit_before = personal_audit_after_create;
    let r = alice
        .post(&format!("/v1/workspaces/{pws}/resources"), &json!({"kind": "postgres", "name": "two"}))
        .await
        .unwrap();
    expect_problem(&r, 403, "plan_limit");
    let r = alice.delete(&format!("/v1/orgs/{personal_org}")).await.unwrap();
    expect_problem(&r, 403, "personal_org");

    // Org-side refusals.
    let r = alice
        .post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": "o@example.com", "role": "owner"}))
        .await
        .unwrap();
    assert_invalid(&r, Some("role"));
    let r = alice
        .post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "k", "expires_at": "2001-01-01T00:00:00Z"}))
        .await
        .unwrap();
    assert_invalid(&r, Some("expires_at"));
    let r = alice.delete(&format!("/v1/workspaces/{ws}")).await.unwrap();
    expect_problem(&r, 409, "workspace_protected");
    let me_id = uid(&a);
    let r = alice.delete(&format!("/v1/orgs/{org}/members/{me_id}")).await.unwrap();
    expect_problem(&r, 409, "owner_cannot_be_removed");

    assert_eq!(org_count(&alice).await, orgs_before);
    assert_eq!(audit(alice.clone(), org.clone()).await, audit_before, "a refused request was audited or applied");
    assert_eq!(audit(alice.clone(), personal_org.clone()).await, personal_audit_before);
    let ws_list = alice.get(&format!("/v1/orgs/{org}/workspaces")).await.unwrap();
    assert_eq!(ws_list.body["items"].as_array().map(Vec::len), Some(1), "{:?}", ws_list.body);
    let inv = alice.get(&format!("/v1/orgs/{org}/invitations")).await.unwrap();
    assert_eq!(inv.body["items"].as_array().map(Vec::len), Some(0), "{:?}", inv.body);
    let keys = alice.get(&format!("/v1/workspaces/{ws}/keys")).await.unwrap();
    assert_eq!(keys.body["items"].as_array().map(Vec::len), Some(0), "{:?}", keys.body);
    let res = alice.get(&format!("/v1/workspaces/{pws}/resources")).await.unwrap();
    assert_eq!(res.body["items"].as_array().map(Vec::len), Some(1), "{:?}", res.body);

    // Signup with a taken email leaves the first account as it was.
    let email = a["user"]["email"].as_str().unwrap();
    let r = s
        .client
        .post(
            "/v1/signup",
            &json!({"email": email.to_uppercase(), "password": "another password!", "name": "Imposter"}),
        )
        .await
        .unwrap();
    expect_problem(&r, 409, "email_taken");
    let login = s.client.post("/v1/sessions", &json!({"email": email, "password": "another password!"})).await.unwrap();
    expect_problem(&login, 401, "invalid_credentials");
    let login =
        s.client.post("/v1/sessions", &json!({"email": email, "password": "correct horse battery"})).await.unwrap();
    assert_eq!(login.status, 201, "{:?}", login.body);
    assert_eq!(login.body["user"]["name"], "Alice");
}

both_backends!(
    hostile_strings_are_stored_verbatim_or_refused,
    bad_query_parameters,
    rejected_requests_leave_nothing_behind,
);

//! Scenarios: authentication, tenant isolation, hostile input, and the published contract.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use roost::{Client, Response};
use roost_domain::IdKind;
use serde_json::{Value, json};

use crate::support::{expect_problem, set_ws_role, uid};
use roost_test_kit::TestServer;

/// Asserts a 422 `invalid_request` with a field-level error.
#[track_caller]
fn assert_invalid(r: &Response, field: Option<&str>) {
    expect_problem(r, 422, "invalid_request");
    let f = r.body["errors"][0]["field"].as_str();
    assert!(f.is_some_and(|f| !f.is_empty()), "errors[0].field missing: {:?}", r.body);
    assert!(r.body["errors"][0]["message"].as_str().is_some(), "errors[0].message missing: {:?}", r.body);
    if let Some(field) = field {
        assert_eq!(f, Some(field), "{:?}", r.body);
    }
}

/// Everything a tenant owns, for attacks on it.
struct Estate {
    org: String,
    ws: String,
    ws2: String,
    member: String,
    invitation: String,
    key: String,
    key_secret: String,
    resource: String,
}

/// Alice's org with a second workspace, a member (bob), a pending invitation, a key and a resource.
async fn estate(s: &TestServer, alice: &Client) -> Estate {
    let (org, ws) = s.org(alice, "Acme", "team").await;
    let r = alice.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": "Two"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let ws2 = r.str("id").to_string();
    let (bob, b) = s.signup("Bob").await;
    s.add_member(alice, &org, &bob, &b, "member").await;
    set_ws_role(alice, &ws, &uid(&b), "member").await;
    let r = alice.post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": "pending@example.com"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let invitation = r.str("id").to_string();
    let r = alice.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "ci"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let (key, key_secret) = (r.str("id").to_string(), r.str("secret").to_string());
    let r =
        alice.post(&format!("/v1/workspaces/{ws}/resources"), &json!({"kind": "app", "name": "app"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let resource = r.str("id").to_string();
    Estate { org, ws, ws2, member: uid(&b), invitation, key, key_secret, resource }
}

/// Every authenticated call of API.md (Accounts … Audit log) against `e`, with a valid body.
fn authenticated_calls(e: &Estate) -> Vec<(Method, String, Option<Value>)> {
    let Estate { org, ws, member, invitation, key, resource, ws2, .. } = e;
    vec![
        (Method::GET, "/v1/me".into(), None),
        (Method::PUT, "/v1/me/active-workspace".into(), Some(json!({"workspace_id": ws}))),
        (Method::DELETE, "/v1/sessions/current".into(), None),
        (Method::GET, "/v1/workspaces/current".into(), None),
        (Method::POST, "/v1/orgs".into(), Some(json!({"name": "New", "plan": "team"}))),
        (Method::GET, "/v1/orgs".into(), None),
        (Method::GET, format!("/v1/orgs/{org}"), None),
        (Method::PATCH, format!("/v1/orgs/{org}"), Some(json!({"name": "Renamed"}))),
        (Method::PUT, format!("/v1/orgs/{org}/plan"), Some(json!({"plan": "business"}))),
        (Method::DELETE, format!("/v1/orgs/{org}"), None),
        (Method::GET, format!("/v1/orgs/{org}/members"), None),
        (Method::PATCH, format!("/v1/orgs/{org}/members/{member}"), Some(json!({"role": "admin"}))),
        (Method::DELETE, format!("/v1/orgs/{org}/members/{member}"), None),
        (Method::POST, format!("/v1/orgs/{org}/transfer-ownership"), Some(json!({"user_id": member}))),
        (Method::POST, format!("/v1/orgs/{org}/workspaces"), Some(json!({"name": "Three"}))),
        (Method::GET, format!("/v1/orgs/{org}/workspaces"), None),
        (Method::GET, format!("/v1/workspaces/{ws}"), None),
        (Method::PATCH, format!("/v1/workspaces/{ws}"), Some(json!({"name": "Renamed"}))),
        (Method::DELETE, format!("/v1/workspaces/{ws2}"), None),
        (Method::GET, format!("/v1/workspaces/{ws}/members"), None),
        (Method::PUT, format!("/v1/workspaces/{ws}/members/{member}"), Some(json!({"role": "admin"}))),
        (Method::DELETE, format!("/v1/workspaces/{ws}/members/{member}"), None),
        (Method::POST, format!("/v1/orgs/{org}/invitations"), Some(json!({"email": "x@example.com"}))),
        (Method::GET, format!("/v1/orgs/{org}/invitations"), None),
        (Method::DELETE, format!("/v1/orgs/{org}/invitations/{invitation}"), None),
        (Method::POST, "/v1/invitations/accept".into(), Some(json!({"token": "rsi_whatever"}))),
        (Method::POST, format!("/v1/workspaces/{ws}/keys"), Some(json!({"name": "k"}))),
        (Method::GET, format!("/v1/workspaces/{ws}/keys"), None),
        (Method::POST, format!("/v1/keys/{key}/rotate"), Some(json!({"grace_seconds": 0}))),
        (Method::DELETE, format!("/v1/keys/{key}"), None),
        (Method::POST, format!("/v1/workspaces/{ws}/resources"), Some(json!({"kind": "app", "name": "r"}))),
        (Method::GET, format!("/v1/workspaces/{ws}/resources"), None),
        (Method::DELETE, format!("/v1/resources/{resource}"), None),
        (Method::POST, format!("/v1/resources/{resource}/transfer"), Some(json!({"workspace_id": ws2}))),
        (Method::GET, format!("/v1/orgs/{org}/audit"), None),
    ]
}

/// Checks that `e` is intact: nothing an attack tried took effect.
async fn assert_intact(s: &TestServer, alice: &Client, e: &Estate) {
    let org = alice.get(&format!("/v1/orgs/{}", e.org)).await.unwrap();
    assert_eq!(org.status, 200, "{:?}", org.body);
    assert_eq!(org.body["name"], "Acme", "{:?}", org.body);
    assert_eq!(org.body["plan"], "team", "{:?}", org.body);
    let ws = alice.get(&format!("/v1/workspaces/{}", e.ws)).await.unwrap();
    assert_eq!(ws.status, 200, "{:?}", ws.body);
    let ws2 = alice.get(&format!("/v1/workspaces/{}", e.ws2)).await.unwrap();
    assert_eq!(ws2.status, 200, "{:?}", ws2.body);
    let members = alice.get(&format!("/v1/orgs/{}/members", e.org)).await.unwrap();
    let m: BTreeMap<&str, &str> = members.body["items"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|i| Some((i["user_id"].as_str()?, i["role"].as_str()?)))
        .collect();
    assert_eq!(m.values().filter(|r| **r == "owner").count(), 1, "{:?}", members.body);
    assert_eq!(m.get(e.member.as_str()), Some(&"member"), "{:?}", members.body);
    let wm = alice.get(&format!("/v1/workspaces/{}/members", e.ws)).await.unwrap();
    assert!(
        wm.body["items"]
            .as_array()
            .expect("ws members")
            .iter()
            .any(|i| i["user_id"] == e.member.as_str() && i["role"] == "member"),
        "{:?}",
        wm.body
    );
    let inv = alice.get(&format!("/v1/orgs/{}/invitations", e.org)).await.unwrap();
    assert!(
        inv.body["items"].as_array().expect("invitations").iter().any(|i| i["id"] == e.invitation.as_str()),
        "{:?}",
        inv.body
    );
    let me = s.client.with_token(&e.key_secret).get("/v1/me").await.unwrap();
    assert_eq!(me.body["key"]["id"], e.key.as_str(), "the key stopped working: {:?}", me.body);
    let res = alice.get(&format!("/v1/workspaces/{}/resources", e.ws)).await.unwrap();
    let ids: Vec<&str> =
        res.body["items"].as_array().expect("resources").iter().filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(ids, [e.resource.as_str()]);
    let ws_list = alice.get(&format!("/v1/orgs/{}/workspaces", e.org)).await.unwrap();
    assert_eq!(ws_list.body["items"].as_array().map(Vec::len), Some(2), "{:?}", ws_list.body);
}

async fn missing_authorization_is_401_everywhere(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let e = estate(&s, &alice).await;
    for (method, path, body) in authenticated_calls(&e) {
        let r = s.client.send(method.clone(), &path, body.as_ref()).await.unwrap();
        assert_eq!(r.status, 401, "{method} {path} without a token: {:?}", r.body);
        expect_problem(&r, 401, "unauthenticated");
    }
    assert_intact(&s, &alice, &e).await;
    let me = alice.get("/v1/me").await.unwrap();
    assert_eq!(me.status, 200, "alice's session must survive: {:?}", me.body);
}

async fn forged_tokens_are_401(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let e = estate(&s, &alice).await;
    let real = alice.token().unwrap().to_string();
    let mut flipped = real.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'a' { 'b' } else { 'a' });
    let forged = [
        format!("rsu_{}", IdKind::User.generate().trim_start_matches("usr_")),
        format!("rsk_{}", IdKind::Key.generate().trim_start_matches("key_")),
        "rsu_".to_string(),
        "rsk_".to_string(),
        "garbage".to_string(),
        String::new(),
        flipped,
        format!("{real}x"),
        real.replacen("rsu_", "rsk_", 1),
        e.key_secret.replacen("rsk_", "rsu_", 1),
        format!("rsu_{}", "a".repeat(10_000)),
        format!("rsk_{}", "a".repeat(10_000)),
        "rsu_' OR '1'='1".to_string(),
        "rsk_%00".to_string(),
    ];
    for token in &forged {
        let c = s.client.with_token(token);
        for path in ["/v1/me".to_string(), format!("/v1/orgs/{}", e.org), format!("/v1/workspaces/{}/resources", e.ws)]
        {
            let r = c.get(&path).await.unwrap();
            assert_eq!(r.status, 401, "token {:?} on {path}: {:?}", token.chars().take(40).collect::<String>(), r.body);
            expect_problem(&r, 401, "unauthenticated");
        }
    }
    // A logged-out session is dead too.
    let login = s
        .client
        .post("/v1/sessions", &json!({"email": a["user"]["email"], "password": "correct horse battery"}))
        .await
        .unwrap();
    assert_eq!(login.status, 201, "{:?}", login.body);
    let second = s.client.with_token(login.str("token"));
    assert_eq!(second.delete("/v1/sessions/current").await.unwrap().status, 204);
    expect_problem(&second.get("/v1/me").await.unwrap(), 401, "unauthenticated");
    // The real ones still work.
    assert_eq!(alice.get("/v1/me").await.unwrap().status, 200);
    assert_intact(&s, &alice, &e).await;
}

/// `(method, path, body)` of every family, against `e` — and the same call with each id
/// replaced by a fresh, nonexistent id of the same kind.
fn tenant_calls(e: &Estate, mine: &str) -> Vec<(Method, String, Option<Value>, String)> {
    let missing = Estate {
        org: IdKind::Org.generate(),
        ws: IdKind::Workspace.generate(),
        ws2: IdKind::Workspace.generate(),
        member: IdKind::User.generate(),
        invitation: IdKind::Invitation.generate(),
        key: IdKind::Key.generate(),
        key_secret: String::new(),
        resource: IdKind::Resource.generate(),
    };
    let calls = |e: &Estate| -> Vec<(Method, String, Option<Value>)> {
        let Estate { org, ws, ws2, member, invitation, key, resource, .. } = e;
        vec![
            (Method::GET, format!("/v1/orgs/{org}"), None),
            (Method::PATCH, format!("/v1/orgs/{org}"), Some(json!({"name": "Pwned"}))),
            (Method::PUT, format!("/v1/orgs/{org}/plan"), Some(json!({"plan": "business"}))),
            (Method::DELETE, format!("/v1/orgs/{org}"), None),
            (Method::GET, format!("/v1/orgs/{org}/members"), None),
            (Method::PATCH, format!("/v1/orgs/{org}/members/{member}"), Some(json!({"role": "admin"}))),
            (Method::DELETE, format!("/v1/orgs/{org}/members/{member}"), None),
            (Method::POST, format!("/v1/orgs/{org}/transfer-ownership"), Some(json!({"user_id": member}))),
            (Method::POST, format!("/v1/orgs/{org}/workspaces"), Some(json!({"name": "Pwned"}))),
            (Method::GET, format!("/v1/orgs/{org}/workspaces"), None),
            (Method::GET, format!("/v1/workspaces/{ws}"), None),
            (Method::PATCH, format!("/v1/workspaces/{ws}"), Some(json!({"name": "Pwned"}))),
            (Method::DELETE, format!("/v1/workspaces/{ws2}"), None),
            (Method::GET, format!("/v1/workspaces/{ws}/members"), None),
            (Method::PUT, format!("/v1/workspaces/{ws}/members/{member}"), Some(json!({"role": "admin"}))),
            (Method::DELETE, format!("/v1/workspaces/{ws}/members/{member}"), None),
            (Method::POST, format!("/v1/orgs/{org}/invitations"), Some(json!({"email": "evil@example.com"}))),
            (Method::GET, format!("/v1/orgs/{org}/invitations"), None),
            (Method::DELETE, format!("/v1/orgs/{org}/invitations/{invitation}"), None),
            (Method::POST, format!("/v1/workspaces/{ws}/keys"), Some(json!({"name": "evil"}))),
            (Method::GET, format!("/v1/workspaces/{ws}/keys"), None),
            (Method::POST, format!("/v1/keys/{key}/rotate"), Some(json!({"grace_seconds": 0}))),
            (Method::DELETE, format!("/v1/keys/{key}"), None),
            (Method::POST, format!("/v1/workspaces/{ws}/resources"), Some(json!({"kind": "app", "name": "evil"}))),
            (Method::GET, format!("/v1/workspaces/{ws}/resources"), None),
            (Method::DELETE, format!("/v1/resources/{resource}"), None),
            (Method::POST, format!("/v1/resources/{resource}/transfer"), Some(json!({"workspace_id": mine}))),
            (Method::GET, format!("/v1/orgs/{org}/audit"), None),
            (Method::GET, format!("/v1/orgs/{org}/audit?workspace={ws}"), None),
            (Method::PUT, "/v1/me/active-workspace".into(), Some(json!({"workspace_id": ws}))),
        ]
    };
    calls(e).into_iter().zip(calls(&missing)).map(|((m, p, b), (_, q, _))| (m, p, b, q)).collect()
}

async fn another_tenants_ids_look_like_missing_ones(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let e = estate(&s, &alice).await;
    let (mallory, m) = s.signup("Mallory").await;
    let (mallory_org, mallory_ws) = s.org(&mallory, "Evil", "team").await;
    let mres = mallory
        .post(&format!("/v1/workspaces/{mallory_ws}/resources"), &json!({"kind": "app", "name": "m"}))
        .await
        .unwrap();
    assert_eq!(mres.status, 201, "{:?}", mres.body);
    let mres = mres.str("id").to_string();

    for (method, theirs, body, missing) in tenant_calls(&e, &mallory_ws) {
        let a = mallory.send(method.clone(), &theirs, body.as_ref()).await.unwrap();
        let b = mallory.send(method.clone(), &missing, body.as_ref()).await.unwrap();
        assert_eq!(a.status, 404, "{method} {theirs} by another tenant: {:?}", a.body);
        expect_problem(&a, 404, "not_found");
        expect_problem(&b, 404, "not_found");
        assert_eq!(
            (a.status, a.code(), a.body["detail"].clone()),
            (b.status, b.code(), b.body["detail"].clone()),
            "{method} {theirs}: another tenant's id answers differently from a missing one"
        );
    }

    // Mallory's own scopes, pointed at alice's things.
    let missing_user = IdKind::User.generate();
    let missing_ws = IdKind::Workspace.generate();
    let pairs: Vec<(String, Response, Response)> = vec![
        (
            "transfer into alice's workspace".into(),
            mallory.post(&format!("/v1/resources/{mres}/transfer"), &json!({"workspace_id": e.ws})).await.unwrap(),
            mallory
                .post(&format!("/v1/resources/{mres}/transfer"), &json!({"workspace_id": missing_ws}))
                .await
                .unwrap(),
        ),
        (
            "give alice's member a role in mallory's org".into(),
            mallory
                .patch(&format!("/v1/orgs/{mallory_org}/members/{}", e.member), &json!({"role": "admin"}))
                .await
                .unwrap(),
            mallory
                .patch(&format!("/v1/orgs/{mallory_org}/members/{missing_user}"), &json!({"role": "admin"}))
                .await
                .unwrap(),
        ),
        (
            "add alice's member to mallory's workspace".into(),
            mallory
                .put(&format!("/v1/workspaces/{mallory_ws}/members/{}", e.member), &json!({"role": "admin"}))
                .await
                .unwrap(),
            mallory
                .put(&format!("/v1/workspaces/{mallory_ws}/members/{missing_user}"), &json!({"role": "admin"}))
                .await
                .unwrap(),
        ),
        (
            "transfer ownership to a stranger".into(),
            mallory
                .post(&format!("/v1/orgs/{mallory_org}/transfer-ownership"), &json!({"user_id": e.member}))
                .await
                .unwrap(),
            mallory
                .post(&format!("/v1/orgs/{mallory_org}/transfer-ownership"), &json!({"user_id": missing_user}))
                .await
                .unwrap(),
        ),
        (
            "act in alice's workspace by header".into(),
            mallory.in_workspace(&e.ws).get("/v1/workspaces/current").await.unwrap(),
            mallory.in_workspace(&missing_ws).get("/v1/workspaces/current").await.unwrap(),
        ),
        (
            "alice's member's keys".into(),
            mallory
                .get(&format!("/v1/orgs/{}/audit?actor={}", m["personal"]["org_id"].as_str().unwrap(), e.member))
                .await
                .unwrap(),
            mallory
                .get(&format!("/v1/orgs/{}/audit?actor={missing_user}", m["personal"]["org_id"].as_str().unwrap()))
                .await
                .unwrap(),
        ),
    ];
    for (what, theirs, missing) in &pairs {
        assert_eq!(theirs.status, missing.status, "{what}: {:?} vs {:?}", theirs.body, missing.body);
        assert_eq!(theirs.code(), missing.code(), "{what}: {:?} vs {:?}", theirs.body, missing.body);
        assert_eq!(theirs.body["detail"], missing.body["detail"], "{what}");
        assert_eq!(
            theirs.body.get("items").map(|i| i.as_array().map(Vec::len)),
            missing.body.get("items").map(|i| i.as_array().map(Vec::len)),
            "{what}"
        );
    }
    expect_problem(&pairs[0].1, 404, "not_found");
    expect_problem(&pairs[4].1, 404, "not_found");

    // Alice's key cannot be used to reach mallory either.
    let k = s.client.with_token(&e.key_secret);
    let a = k.get(&format!("/v1/workspaces/{mallory_ws}/resources")).await.unwrap();
    let b = k.get(&format!("/v1/workspaces/{missing_ws}/resources")).await.unwrap();
    expect_problem(&a, 404, "not_found");
    assert_eq!(a.body, b.body);

    assert_intact(&s, &alice, &e).await;
    let l = mallory.get(&format!("/v1/workspaces/{mallory_ws}/resources")).await.unwrap();
    assert_eq!(l.body["items"].as_array().map(Vec::len), Some(1), "{:?}", l.body);
}

async fn org_member_outside_a_workspace_gets_404(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let e = estate(&s, &alice).await;
    let (carol, c) = s.signup("Carol").await;
    s.add_member(&alice, &e.org, &carol, &c, "member").await;
    // Carol is in the org but in neither workspace; ws2 has nobody but its creator.
    for path in [
        format!("/v1/workspaces/{}", e.ws2),
        format!("/v1/workspaces/{}/resources", e.ws2),
        format!("/v1/workspaces/{}/members", e.ws2),
    ] {
        let theirs = carol.get(&path).await.unwrap();
        let missing = carol.get(&path.replace(&e.ws2, &IdKind::Workspace.generate())).await.unwrap();
        expect_problem(&theirs, 404, "not_found");
        assert_eq!(theirs.body, missing.body, "{path}");
    }
    let r = carol.delete(&format!("/v1/resources/{}", e.resource)).await.unwrap();
    let missing = carol.delete(&format!("/v1/resources/{}", IdKind::Resource.generate())).await.unwrap();
    expect_problem(&r, 404, "not_found");
    assert_eq!(r.body, missing.body);
    assert_intact(&s, &alice, &e).await;
}

async fn malformed_path_ids_are_404(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let e = estate(&s, &alice).await;
    let long = format!("org_{}", "7".repeat(5_000));
    let missing_org = IdKind::Org.generate();
    let reference = alice.get(&format!("/v1/orgs/{missing_org}")).await.unwrap();
    expect_problem(&reference, 404, "not_found");
    let paths = [
        "/v1/orgs/not-an-id".to_string(),
        "/v1/orgs/org_'%20OR%201=1".to_string(),
        "/v1/orgs/org_' OR 1=1--".to_string(),
        "/v1/orgs/org_%27%3B%20DROP%20TABLE%20orgs%3B--".to_string(),
        "/v1/orgs/%00".to_string(),
        "/v1/orgs/org_".to_string(),
        format!("/v1/orgs/{long}"),
        format!("/v1/orgs/{}", e.org.to_uppercase()),
        format!("/v1/orgs/{}", e.ws),
        format!("/v1/orgs/{}%20", e.org),
        format!("/v1/orgs/{}", e.org.replace("org_", "org_%F0%9F%9A%80")),
        "/v1/orgs/org_😀😀😀".to_string(),
    ];
    for path in &paths {
        let r = alice.get(path).await.unwrap();
        expect_problem(&r, 404, "not_found");
        assert_eq!(r.body["detail"], reference.body["detail"], "{path}: a malformed id answers differently");
    }
    let ws_reference = alice.get(&format!("/v1/workspaces/{}", IdKind::Workspace.generate())).await.unwrap();
    for path in [
        "/v1/workspaces/ws_'--".to_string(),
        format!("/v1/workspaces/{}", e.org),
        "/v1/workspaces/ws_%2e%2e".to_string(),
    ] {
        let r = alice.get(&path).await.unwrap();
        expect_problem(&r, 404, "not_found");
        assert_eq!(r.body["detail"], ws_reference.body["detail"], "{path}: a malformed id answers differently");
    }
    for (method, path, body) in [
        (Method::PATCH, format!("/v1/orgs/{}/members/not-a-user", e.org), Some(json!({"role": "member"}))),
        (Method::PATCH, format!("/v1/orgs/{}/members/{}", e.org, e.ws), Some(json!({"role": "member"}))),
        (Method::PUT, format!("/v1/workspaces/{}/members/usr_'--", e.ws), Some(json!({"role": "member"}))),
        (Method::DELETE, "/v1/keys/key_x".to_string(), None),
        (Method::POST, "/v1/keys/key_'OR'1'='1/rotate".to_string(), Some(json!({}))),
        (Method::DELETE, format!("/v1/keys/{}", e.resource), None),
        (Method::DELETE, "/v1/resources/res_..".to_string(), None),
        (Method::POST, "/v1/resources/nope/transfer".to_string(), Some(json!({"workspace_id": e.ws2}))),
        (Method::DELETE, format!("/v1/workspaces/{}", e.key), None),
        (Method::DELETE, format!("/v1/orgs/{}/invitations/inv_bad", e.org), None),
        (Method::DELETE, format!("/v1/orgs/{}/invitations/{}", e.org, e.key), None),
        (Method::GET, "/v1/orgs/org_x/audit".to_string(), None),
    ] {
        let r = alice.send(method.clone(), &path, body.as_ref()).await.unwrap();
        expect_problem(&r, 404, "not_found");
    }
    assert_intact(&s, &alice, &e).await;
}

async fn org_count(c: &Client) -> Vec<Value> {
    let r = c.get("/v1/orgs").await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["items"].as_array().expect("items").clone()
}

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

async fn unknown_routes_and_methods(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    for path in ["/v1/nope", "/nope", "/v2/me", "/v1/orgs/x/y/z/w", "/v1/me/../../etc/passwd", "/v1/"] {
        let r = alice.get(path).await.unwrap();
        expect_problem(&r, 404, "not_found");
        let r = s.client.get(path).await.unwrap();
        assert_eq!(r.status, 404, "{path} without a token: {:?}", r.body);
        assert!(r.content_type.starts_with("application/problem+json"));
    }
    for (method, path) in [
        (Method::DELETE, "/v1/plans"),
        (Method::PUT, "/v1/me"),
        (Method::GET, "/v1/signup"),
        (Method::PATCH, "/v1/sessions"),
        (Method::GET, "/v1/invitations/accept"),
        (Method::POST, "/healthz"),
    ] {
        let r = alice.send(method.clone(), path, None).await.unwrap();
        assert_eq!(r.status, 405, "{method} {path}: {:?}", r.body);
        assert!(r.content_type.starts_with("application/problem+json"), "{method} {path}: {:?}", r.content_type);
        assert_eq!(r.body["status"], 405);
        assert!(r.body["code"].as_str().is_some_and(|c| !c.is_empty()), "{:?}", r.body);
        assert!(r.body["detail"].as_str().is_some(), "{:?}", r.body);
    }
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

/// `(METHOD, path)` with every `{param}` written `{}`.
fn normalize(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for ch in path.chars() {
        match ch {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            c if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

async fn openapi_describes_the_whole_contract(s: TestServer) {
    let r = s.client.get("/v1/openapi.json").await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.content_type.starts_with("application/json"), "{}", r.content_type);
    assert!(r.body["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{:?}", r.body["openapi"]);
    assert!(r.body["info"]["title"].as_str().is_some());
    let paths = r.body["paths"].as_object().expect("paths");
    let mut published = BTreeSet::new();
    for (p, ops) in paths {
        for m in ops.as_object().expect("operations").keys() {
            published.insert((m.to_uppercase(), normalize(p)));
        }
    }
    // API.md: Accounts, Plans, Organizations and workspaces, Invitations, API keys, Resources, Credits,
    // Audit log.
    let contract = [
        ("POST", "/v1/signup"),
        ("POST", "/v1/sessions"),
        ("DELETE", "/v1/sessions/current"),
        ("GET", "/v1/me"),
        ("PUT", "/v1/me/active-workspace"),
        ("GET", "/v1/plans"),
        ("POST", "/v1/orgs"),
        ("GET", "/v1/orgs"),
        ("GET", "/v1/orgs/{org}"),
        ("PATCH", "/v1/orgs/{org}"),
        ("DELETE", "/v1/orgs/{org}"),
        ("PUT", "/v1/orgs/{org}/plan"),
        ("GET", "/v1/orgs/{org}/members"),
        ("PATCH", "/v1/orgs/{org}/members/{user}"),
        ("DELETE", "/v1/orgs/{org}/members/{user}"),
        ("POST", "/v1/orgs/{org}/transfer-ownership"),
        ("POST", "/v1/orgs/{org}/workspaces"),
        ("GET", "/v1/orgs/{org}/workspaces"),
        ("GET", "/v1/workspaces/{ws}"),
        ("PATCH", "/v1/workspaces/{ws}"),
        ("DELETE", "/v1/workspaces/{ws}"),
        ("GET", "/v1/workspaces/{ws}/members"),
        ("PUT", "/v1/workspaces/{ws}/members/{user}"),
        ("DELETE", "/v1/workspaces/{ws}/members/{user}"),
        ("POST", "/v1/orgs/{org}/invitations"),
        ("GET", "/v1/orgs/{org}/invitations"),
        ("DELETE", "/v1/orgs/{org}/invitations/{id}"),
        ("POST", "/v1/invitations/accept"),
        ("POST", "/v1/workspaces/{ws}/keys"),
        ("GET", "/v1/workspaces/{ws}/keys"),
        ("POST", "/v1/keys/{id}/rotate"),
        ("DELETE", "/v1/keys/{id}"),
        ("POST", "/v1/workspaces/{ws}/resources"),
        ("GET", "/v1/workspaces/{ws}/resources"),
        ("DELETE", "/v1/resources/{id}"),
        ("POST", "/v1/resources/{id}/transfer"),
        ("GET", "/v1/orgs/{org}/wallets"),
        ("POST", "/v1/orgs/{org}/wallets/{wallet}/topups"),
        ("POST", "/v1/charges"),
        ("POST", "/v1/holds"),
        ("POST", "/v1/holds/{id}/settle"),
        ("POST", "/v1/holds/{id}/release"),
        ("GET", "/v1/workspaces/{ws}/transactions"),
        ("GET", "/v1/orgs/{org}/usage"),
        ("PUT", "/v1/workspaces/{ws}/budget"),
        ("PUT", "/v1/workspaces/{ws}/members/{user}/budget"),
        ("GET", "/v1/orgs/{org}/audit"),
    ];
    let missing: Vec<String> = contract
        .iter()
        .filter(|(m, p)| !published.contains(&(m.to_string(), normalize(p))))
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(missing.is_empty(), "openapi.json lacks: {missing:#?}\npublished: {published:#?}");
    // Every operation documents at least one response.
    for (p, ops) in paths {
        for (m, op) in ops.as_object().expect("operations") {
            if ["get", "put", "post", "delete", "patch"].contains(&m.as_str()) {
                assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{m} {p} has no responses");
            }
        }
    }
}

/// No answer ever carries a secret after the one response that hands it out.
async fn secrets_are_shown_once(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let (bob, b) = s.signup("Bob").await;
    let inv = alice.post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": b["user"]["email"]})).await.unwrap();
    assert_eq!(inv.status, 201, "{:?}", inv.body);
    let inv_token = inv.str("token").to_string();
    assert!(!inv_token.is_empty(), "{:?}", inv.body);
    let pending =
        alice.post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": "later@example.com"})).await.unwrap();
    let pending_token = pending.str("token").to_string();
    let acc = bob.post("/v1/invitations/accept", &json!({"token": inv_token})).await.unwrap();
    assert_eq!(acc.status, 200, "{:?}", acc.body);
    let key = alice.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "ci"})).await.unwrap();
    assert_eq!(key.status, 201, "{:?}", key.body);
    let id = key.str("id").to_string();
    let rotated = alice.post(&format!("/v1/keys/{id}/rotate"), &json!({"grace_seconds": 60})).await.unwrap();
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let secrets = [
        key.str("secret").to_string(),
        rotated.str("secret").to_string(),
        inv_token,
        pending_token,
        alice.token().unwrap().to_string(),
        bob.token().unwrap().to_string(),
    ];
    let k = s.client.with_token(rotated.str("secret"));
    let mut seen = vec![];
    for (c, path) in [
        (&alice, "/v1/me".to_string()),
        (&alice, "/v1/orgs".to_string()),
        (&alice, format!("/v1/orgs/{org}")),
        (&alice, format!("/v1/orgs/{org}/members")),
        (&alice, format!("/v1/orgs/{org}/invitations")),
        (&alice, format!("/v1/orgs/{org}/audit?limit=500")),
        (&alice, format!("/v1/orgs/{}/audit?limit=500", a["personal"]["org_id"].as_str().unwrap())),
        (&alice, format!("/v1/orgs/{org}/workspaces")),
        (&alice, format!("/v1/workspaces/{ws}")),
        (&alice, format!("/v1/workspaces/{ws}/members")),
        (&alice, format!("/v1/workspaces/{ws}/keys")),
        (&alice, "/v1/workspaces/current".to_string()),
        (&bob, "/v1/me".to_string()),
        (&k, "/v1/me".to_string()),
        (&k, format!("/v1/workspaces/{ws}")),
        (&k, format!("/v1/workspaces/{ws}/keys")),
    ] {
        let r = c.get(&path).await.unwrap();
        assert_eq!(r.status, 200, "{path}: {:?}", r.body);
        seen.push((path, r.body.to_string()));
    }
    for (path, text) in &seen {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{path} shows a secret ({:.8}…): {text}", secret);
        }
        assert!(!text.contains("$argon2"), "{path} shows a password hash: {text}");
        assert!(!text.contains("password"), "{path} mentions a password: {text}");
        assert!(!text.contains("secret_hash") && !text.contains("token_hash"), "{path} shows a hash: {text}");
    }
}

async fn healthz_answers(s: TestServer) {
    let r = s.client.get("/healthz").await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["status"], "ok");
    let r = s.client.with_token("garbage").get("/healthz").await.unwrap();
    assert_eq!(r.status, 200, "health needs no token: {:?}", r.body);
    let r = s.client.get("/v1/plans").await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
}

both_backends!(
    missing_authorization_is_401_everywhere,
    forged_tokens_are_401,
    another_tenants_ids_look_like_missing_ones,
    org_member_outside_a_workspace_gets_404,
    malformed_path_ids_are_404,
    bad_bodies_are_refused_cleanly,
    malformed_json_wins_over_wrong_shape,
    oversized_body_is_413_and_the_server_lives_on,
    hostile_strings_are_stored_verbatim_or_refused,
    unknown_routes_and_methods,
    bad_query_parameters,
    rejected_requests_leave_nothing_behind,
    openapi_describes_the_whole_contract,
    secrets_are_shown_once,
    healthz_answers,
);

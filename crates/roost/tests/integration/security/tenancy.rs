//! Tenant isolation: another tenant's ids, and ids that could be anyone's, answer like missing ones.

use reqwest::Method;
use roost::Response;
use roost_domain::IdKind;
use serde_json::{Value, json};

use crate::support::expect_problem;
use roost_test_kit::TestServer;

use super::{Estate, assert_intact, estate};

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

both_backends!(
    another_tenants_ids_look_like_missing_ones,
    org_member_outside_a_workspace_gets_404,
    malformed_path_ids_are_404,
);

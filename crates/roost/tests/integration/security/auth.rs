//! Authentication: no token, forged tokens, and secrets shown only once.

use reqwest::Method;
use roost_domain::IdKind;
use serde_json::{Value, json};

use crate::support::expect_problem;
use roost_test_kit::TestServer;

use super::{Estate, assert_intact, estate};

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

both_backends!(missing_authorization_is_401_everywhere, forged_tokens_are_401, secrets_are_shown_once,);

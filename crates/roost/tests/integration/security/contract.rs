//! The published contract: unknown routes and methods, the OpenAPI document, `/healthz`.

use std::collections::BTreeSet;

use reqwest::Method;

use crate::support::expect_problem;
use roost_test_kit::TestServer;

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
        // Identity (issue 10), as far as built: mail-borne tokens, sessions, two-factor, domains.
        ("POST", "/v1/me/email-verification"),
        ("POST", "/v1/email-verification/confirm"),
        ("POST", "/v1/password-reset"),
        ("POST", "/v1/password-reset/confirm"),
        ("GET", "/v1/me/sessions"),
        ("DELETE", "/v1/me/sessions/{id}"),
        ("PUT", "/v1/me/password"),
        ("POST", "/v1/me/totp"),
        ("POST", "/v1/me/totp/confirm"),
        ("DELETE", "/v1/me/totp"),
        ("POST", "/v1/orgs/{org}/domains"),
        ("GET", "/v1/orgs/{org}/domains"),
        ("POST", "/v1/orgs/{org}/domains/{id}/verify"),
        ("DELETE", "/v1/orgs/{org}/domains/{id}"),
        ("GET", "/v1/me/suggested-orgs"),
        ("POST", "/v1/me/suggested-orgs/{org}/join"),
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

async fn healthz_answers(s: TestServer) {
    let r = s.client.get("/healthz").await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["status"], "ok");
    let r = s.client.with_token("garbage").get("/healthz").await.unwrap();
    assert_eq!(r.status, 200, "health needs no token: {:?}", r.body);
    let r = s.client.get("/v1/plans").await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
}

both_backends!(unknown_routes_and_methods, openapi_describes_the_whole_contract, healthz_answers,);

//! Hostile bytes in input: NUL and control characters, percent-encoding that is not UTF-8.

use reqwest::Method;
use serde_json::json;

use crate::support::{expect_invalid, expect_problem, expect_status, list_all};
use roost_test_kit::TestServer;

use super::expect_clean_refusal;

// 9. ------------------------------------------------------------------------------------------------

/// NUL bytes and control characters in input are refused cleanly, never a 500.
async fn nul_and_control_characters_never_500(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;

    let own_email = a["user"]["email"].as_str().unwrap();
    for email in ["a\u{0}@b.c".to_string(), "a\u{1}@b.c".to_string(), format!("{own_email}\u{0}")] {
        let r = s.client.post("/v1/sessions", &json!({"email": email, "password": "correct horse battery"})).await;
        expect_problem(&r.unwrap(), 401, "invalid_credentials");
    }
    let r = s
        .client
        .post("/v1/sessions", &json!({"email": a["user"]["email"], "password": "correct\u{0}horse battery"}))
        .await
        .unwrap();
    expect_problem(&r, 401, "invalid_credentials");

    expect_invalid(&alice.get("/v1/orgs?cursor=%00").await.unwrap(), "cursor");
    expect_invalid(&alice.get("/v1/orgs?cursor=a%00b").await.unwrap(), "cursor");
    for list in [
        format!("/v1/orgs/{org}/members"),
        format!("/v1/orgs/{org}/workspaces"),
        format!("/v1/orgs/{org}/invitations"),
        format!("/v1/orgs/{org}/audit"),
        format!("/v1/workspaces/{ws}/members"),
        format!("/v1/workspaces/{ws}/keys"),
        format!("/v1/workspaces/{ws}/resources"),
    ] {
        expect_invalid(&alice.get(&format!("{list}?cursor=%00")).await.unwrap(), "cursor");
    }
    for (query, field) in [
        ("action=%00".to_string(), "action"),
        ("action=key.%01created".to_string(), "action"),
        ("workspace=a%00b".to_string(), "workspace"),
        (format!("workspace={ws}%00"), "workspace"),
        ("actor=%01".to_string(), "actor"),
        ("actor=usr_%00".to_string(), "actor"),
    ] {
        let r = alice.get(&format!("/v1/orgs/{org}/audit?{query}")).await.unwrap();
        assert_eq!(r.status, 422, "audit ?{query}: {}", r.body);
        expect_invalid(&r, field);
    }

    for bad in ["a\u{0}b", "\u{0}", "a\u{1}b"] {
        let r = alice.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": bad})).await.unwrap();
        expect_invalid(&r, "name");
        let r = alice.patch(&format!("/v1/workspaces/{ws}"), &json!({"name": bad})).await.unwrap();
        expect_invalid(&r, "name");
        let r = alice.patch(&format!("/v1/orgs/{org}"), &json!({"name": bad})).await.unwrap();
        expect_invalid(&r, "name");
        let r = alice.post("/v1/orgs", &json!({"name": bad, "plan": "team"})).await.unwrap();
        expect_invalid(&r, "name");
        let r = alice.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": bad})).await.unwrap();
        expect_invalid(&r, "name");
        let r =
            alice.post(&format!("/v1/workspaces/{ws}/resources"), &json!({"kind": "app", "name": bad})).await.unwrap();
        expect_invalid(&r, "name");
        let r =
            alice.post(&format!("/v1/workspaces/{ws}/resources"), &json!({"kind": bad, "name": "x"})).await.unwrap();
        expect_invalid(&r, "kind");
        let r = s
            .client
            .post(
                "/v1/signup",
                &json!({"email": crate::support::fresh_email("nul"), "password": "correct horse battery", "name": bad}),
            )
            .await
            .unwrap();
        expect_invalid(&r, "name");
    }

    // Elsewhere, a clean 4xx.
    let r = s
        .client
        .post("/v1/signup", &json!({"email": "nul\u{0}@example.com", "password": "correct horse battery", "name": "N"}))
        .await
        .unwrap();
    expect_clean_refusal(&r, "signup with a NUL in the email");
    let r = alice.post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": "x\u{0}@example.com"})).await.unwrap();
    expect_clean_refusal(&r, "invitation with a NUL in the email");
    let r = alice.post("/v1/invitations/accept", &json!({"token": "inv\u{0}tok"})).await.unwrap();
    expect_clean_refusal(&r, "accept with a NUL in the token");
    let r = alice.put("/v1/me/active-workspace", &json!({"workspace_id": "ws_\u{0}"})).await.unwrap();
    expect_clean_refusal(&r, "active workspace with a NUL");
    let r = alice.put(&format!("/v1/workspaces/{ws}/members/usr_%00"), &json!({"role": "member"})).await.unwrap();
    expect_clean_refusal(&r, "workspace member with a NUL id");

    // Nothing of that was stored; the account still works.
    let listed = list_all(&alice, &format!("/v1/orgs/{org}/workspaces"), 500).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    expect_status(&alice.get("/v1/me").await.unwrap(), 200);
}

// 10. -----------------------------------------------------------------------------------------------

/// Paths whose percent-encoding is not UTF-8 are unknown things: 404 `not_found`, as a problem.
async fn bad_percent_encoding_in_paths_is_404(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, _) = s.org(&alice, "Acme", "team").await;
    for (method, path) in [
        (Method::GET, "/v1/orgs/%FF".to_string()),
        (Method::DELETE, "/v1/keys/%FF%FE".to_string()),
        (Method::GET, "/v1/workspaces/%C3%28".to_string()),
        (Method::GET, "/v1/orgs/%FF/audit".to_string()),
        (Method::GET, "/v1/workspaces/%C3%28/resources".to_string()),
        (Method::DELETE, "/v1/resources/%FF".to_string()),
        (Method::DELETE, format!("/v1/orgs/{org}/members/%FF")),
    ] {
        let r = alice.send(method.clone(), &path, None).await.unwrap();
        assert_eq!(r.status, 404, "{method} {path}: {} {}", r.status, r.body);
        assert!(
            r.content_type.starts_with("application/problem+json"),
            "{method} {path}: content type `{}`",
            r.content_type
        );
        expect_problem(&r, 404, "not_found");
    }
    let r = alice.post("/v1/keys/%FF/rotate", &json!({})).await.unwrap();
    expect_problem(&r, 404, "not_found");
    expect_status(&alice.get(&format!("/v1/orgs/{org}")).await.unwrap(), 200);
}

both_backends!(nul_and_control_characters_never_500, bad_percent_encoding_in_paths_is_404,);

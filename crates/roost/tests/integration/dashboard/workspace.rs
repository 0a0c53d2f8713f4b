//! The workspace page's other forms: rotating a key with a grace period, resources (and the plan's
//! quota shown as a message), budgets, validation errors next to their fields, and odd paths.

use roost_test_kit::TestServer;
use serde_json::json;

use super::web::Web;

both_backends!(keys_resources_and_budgets);

async fn keys_resources_and_budgets(s: TestServer) {
    let (ann, _) = Web::sign_up(&s, "Ann").await;
    let ws = ann.active_ws().await;
    let path = format!("/app/w/{ws}");

    // A key without a name: 422, the API's message next to the field, nothing made.
    let page = ann.get(&path).await;
    let r = ann.post(&page, &format!("{path}/keys"), &[("name", ""), ("spend_limit", "lots")]).await;
    assert_eq!(r.status, 422, "{}", r.html);
    assert!(r.has(r#"<p class="field-error">"#), "{}", r.html);
    assert_eq!(r.html.matches("/revoke\"").count(), 0);

    // Rotate with a grace period: a new secret shown once; the old one still works meanwhile.
    let r = ann.post(&page, &format!("{path}/keys"), &[("name", "ci")]).await;
    let old = r.html.split(r#"id="new-secret">"#).nth(1).unwrap().split('<').next().unwrap().to_string();
    let key_id = r.attr(&format!(r#"action="{path}/keys/"#)).unwrap().split('/').next().unwrap().to_string();
    let r = ann.post(&r, &format!("{path}/keys/{key_id}/rotate"), &[("grace_seconds", "3600")]).await;
    assert_eq!(r.status, 200, "{}", r.html);
    let new = r.html.split(r#"id="new-secret">"#).nth(1).unwrap().split('<').next().unwrap().to_string();
    assert!(new.starts_with("rsk_") && new != old);
    for secret in [&old, &new] {
        assert_eq!(s.client.with_token(secret).get("/v1/me").await.unwrap().status, 200);
    }

    // Resources: the free plan allows one `box`; the second is refused with the plan's limit.
    let r = ann.post(&page, &format!("{path}/resources"), &[("kind", "box"), ("name", "web")]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    let r = ann.post(&page, &format!("{path}/resources"), &[("kind", "box"), ("name", "web2")]).await;
    assert_eq!(r.status, 403, "{}", r.html);
    assert!(r.has("limit (resource_quotas.box) is reached"), "{}", r.html);
    let page = ann.get(&path).await;
    assert!(page.has("<td>box</td><td>web</td>") && !page.has("web2"));
    let res_id = page.attr(&format!(r#"action="{path}/resources/"#)).unwrap().split('/').next().unwrap().to_string();
    let r = ann.post(&page, &format!("{path}/resources/{res_id}/delete"), &[]).await;
    assert_eq!(r.status, 303);
    assert!(ann.get(&path).await.has("No resources in this workspace yet."));

    // Budgets: a cap for the workspace, shown against what was used; then removed.
    let key = s.client.with_token(&new);
    let c = key.post_idem("/v1/charges", "ws-1", &json!({"amount": 7, "action": "gen"})).await.unwrap();
    assert_eq!(c.status, 201, "{}", c.body);
    let r = ann.post(&page, &format!("{path}/budget"), &[("limit", "50")]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    assert!(ann.get(&path).await.has("<strong>7</strong> of <strong>50</strong> credits used this cycle"));
    let r = ann.post(&page, &format!("{path}/budget"), &[("limit", "-5")]).await;
    assert_eq!(r.status, 422, "{}", r.html);
    let r = ann.post(&page, &format!("{path}/budget"), &[("limit", "")]).await;
    assert_eq!(r.status, 303);
    assert!(ann.get(&path).await.has("No cap: <strong>7</strong>"));

    // Paths with escapes, and an API key in place of a session: never a 500.
    assert_eq!(ann.get(&format!("/app/w/{ws}%2Fkeys")).await.status, 404);
    assert_eq!(ann.get("/app/w/a%20b").await.status, 404);
    let thief = Web::new(&s);
    thief.set_cookie("roost_session", &new);
    assert_eq!(thief.get(&path).await.status, 303, "an API key is not a session");
}

both_backends!(password_change);

/// The account page changes the password through `PUT /v1/me/password`: a wrong current password
/// is refused next to its field and changes nothing; a right one ends the person's other sessions,
/// keeps this one, and the new password signs in where the old one no longer does.
async fn password_change(s: TestServer) {
    let (ann, email) = Web::sign_up(&s, "Ann").await;
    let other = login(&s, &email, "correct horse battery").await.expect("a second session");
    assert_eq!(other.get("/v1/me").await.unwrap().status, 200);

    let page = ann.get("/app/account").await;
    assert!(page.has(r#"action="/app/account/password""#), "{}", page.html);
    let r = ann
        .post(
            &page,
            "/app/account/password",
            &[("current_password", "wrong password!"), ("password", "a new long one")],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.html);
    assert!(r.has(r#"<p class="field-error">"#), "{}", r.html);
    assert_eq!(other.get("/v1/me").await.unwrap().status, 200, "nothing changed");

    let r = ann
        .post(
            &page,
            "/app/account/password",
            &[("current_password", "correct horse battery"), ("password", "a new long one")],
        )
        .await;
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/app/account?done=password")), "{}", r.html);
    assert!(ann.open("/app/account?done=password").await.has("Password changed."));
    assert_eq!(other.get("/v1/me").await.unwrap().status, 401, "the other session ended");
    assert!(login(&s, &email, "correct horse battery").await.is_none(), "the old password no longer signs in");
    assert!(login(&s, &email, "a new long one").await.is_some());
    // Without the page's token: refused, as every form is.
    let r = ann.post_raw("/app/account/password", &[("current_password", "a new long one"), ("password", "x")]).await;
    assert_eq!(r.status, 403, "{}", r.html);
}

/// A client signed in through `POST /v1/sessions`, or `None` when the credentials are refused.
async fn login(s: &TestServer, email: &str, password: &str) -> Option<roost::Client> {
    let r = s.client.post("/v1/sessions", &json!({"email": email, "password": password})).await.unwrap();
    (r.status == 201).then(|| s.client.with_token(r.str("token")))
}

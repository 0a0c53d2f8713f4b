//! Account settings through the pages: the list of sessions (when, where from, which browser, this
//! one marked) and ending another one, and email verification from the button to the mailed link
//! (through a real SMTP server).

use roost_test_kit::peers::SmtpServer;
use roost_test_kit::{Backend, TestServer};
use serde_json::json;

use super::web::{Page, Web};
use crate::identity::{PUBLIC_URL, start_with_smtp};

both_backends!(sessions_listed_and_ended, name_changed);

/// The rows of the sessions table.
fn session_rows(p: &Page) -> usize {
    p.html
        .split(r#"id="sessions""#)
        .nth(1)
        .map_or(0, |t| t.split("</table>").next().unwrap().matches("<tr>").count() - 1)
}

async fn sessions_listed_and_ended(s: TestServer) {
    let (ann, email) = Web::sign_up(&s, "Ann").await;
    // A second browser signs in as Ann.
    let other = Web::new(&s);
    let form = other.get("/app/sign-in").await;
    let r = other.post(&form, "/app/sign-in", &[("email", &email), ("password", "correct horse battery")]).await;
    assert_eq!(r.status, 303, "{}", r.html);

    let acct = ann.get("/app/account").await;
    assert_eq!(session_rows(&acct), 2, "{}", acct.html);
    assert_eq!(acct.html.matches("This session").count(), 1, "{}", acct.html);
    assert_eq!(acct.html.matches("<td>127.0.0.1</td>").count(), 2, "the IP of each: {}", acct.html);
    assert_eq!(acct.html.matches("<td>roost-dashboard-tests</td>").count(), 2, "each browser: {}", acct.html);
    let end = acct.attr(r#"action="/app/account/sessions/"#).expect("an end form for the other session");
    assert!(end.starts_with("ses_") && end.ends_with("/end"), "{end}");

    // Someone else cannot end it: 404, as the API answers, and it goes on working.
    let (eve, _) = Web::sign_up(&s, "Eve").await;
    let r = eve.post(&eve.get("/app/account").await, &format!("/app/account/sessions/{end}"), &[]).await;
    assert_eq!(r.status, 404, "{}", r.html);
    assert_eq!(other.open("/app/account").await.status, 200);

    // Ann ends it: the other browser is signed out at once.
    let r = ann.post(&acct, &format!("/app/account/sessions/{end}"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    let acct = ann.open(&r.location.unwrap()).await;
    assert!(acct.has("That session has ended."), "{}", acct.html);
    assert_eq!(session_rows(&acct), 1);
    let r = other.get("/app/account").await;
    assert_eq!(r.status, 303);
    assert!(r.location.unwrap().starts_with("/app/sign-in"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_verification_sqlite() {
    if let Some((smtp, s)) = start_with_smtp(Backend::Sqlite).await {
        email_verification(smtp, s).await;
    }
}

pg_test! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_verification_postgres() {
    if let Some((smtp, s)) = start_with_smtp(Backend::Postgres).await {
        email_verification(smtp, s).await;
    }
}
}

async fn email_verification(smtp: SmtpServer, s: TestServer) {
    let (ann, email) = Web::sign_up(&s, "Ann").await;
    let acct = ann.get("/app/account").await;
    assert!(acct.has("<strong>not verified yet</strong>") && acct.has(r#"id="send-verification""#), "{}", acct.html);
    let r = ann.post(&acct, "/app/account/verify-email", &[]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    assert!(ann.open(&r.location.unwrap()).await.has("A verification link is on its way"));

    // The mailed link opens the dashboard's page, which confirms with one button.
    let mails = smtp.wait_for(&email, 1).await;
    let text = mails[0]["text"].as_str().expect("text part");
    let prefix = format!("{PUBLIC_URL}/app/verify-email?token=");
    let at = text.find(&prefix).unwrap_or_else(|| panic!("no link in {text}")) + PUBLIC_URL.len();
    let link: String = text[at..].chars().take_while(|c| !c.is_whitespace()).collect();
    let page = ann.get(&link).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.has(&email) && page.has(r#"id="verify-email""#), "{}", page.html);
    let token = page.attr(r#"name="token" value=""#).unwrap();
    assert!(token.starts_with("rsv_"), "{token}");
    // A made-up token: a clear message.
    let r = ann.post(&page, "/app/verify-email", &[("token", "rsv_madeup")]).await;
    assert_eq!(r.status, 410, "{}", r.html);
    assert!(r.has("This link was used already or has expired"), "{}", r.html);
    let r = ann.post(&page, "/app/verify-email", &[("token", &token)]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    let acct = ann.open(&r.location.unwrap()).await;
    assert!(acct.has("Your email address is verified.") && acct.has("<strong>verified</strong>"), "{}", acct.html);
    assert!(!acct.has(r#"id="send-verification""#));
    // Used once.
    let r = ann.post(&page, "/app/verify-email", &[("token", &token)]).await;
    assert_eq!(r.status, 410, "{}", r.html);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_sqlite() {
    if let Some((smtp, s)) = start_with_smtp(Backend::Sqlite).await {
        password_reset(smtp, s).await;
    }
}

pg_test! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_postgres() {
    if let Some((smtp, s)) = start_with_smtp(Backend::Postgres).await {
        password_reset(smtp, s).await;
    }
}
}

/// "Forgot your password?" on the sign-in page, the mail, its link, a new password; every session
/// ends and the new password signs in.
async fn password_reset(smtp: SmtpServer, s: TestServer) {
    let (ann, email) = Web::sign_up(&s, "Ann").await;
    let stranger = Web::new(&s);
    let sign_in = stranger.get("/app/sign-in").await;
    assert!(sign_in.has(r#"href="/app/forgot-password""#), "{}", sign_in.html);
    let form = stranger.get("/app/forgot-password").await;
    assert_eq!(form.status, 200, "{}", form.html);
    // The same answer for an address without an account.
    let r = stranger.post(&form, "/app/forgot-password", &[("email", "nobody@example.org")]).await;
    assert!(r.has(r#"id="reset-sent""#), "{}", r.html);
    let r = stranger.post(&form, "/app/forgot-password", &[("email", &email)]).await;
    assert_eq!(r.status, 200, "{}", r.html);
    assert!(r.has(r#"id="reset-sent""#) && r.has(&email), "{}", r.html);

    let mails = smtp.wait_for(&email, 1).await;
    let text = mails[0]["text"].as_str().expect("text part");
    let prefix = format!("{PUBLIC_URL}/app/reset-password?token=");
    let at = text.find(&prefix).unwrap_or_else(|| panic!("no link in {text}")) + PUBLIC_URL.len();
    let link: String = text[at..].chars().take_while(|c| !c.is_whitespace()).collect();
    let page = stranger.get(&link).await;
    let token = page.attr(r#"name="token" value=""#).expect("the token in the form");
    assert!(token.starts_with("rsr_"), "{token}");
    // Too short: said next to the field; a made-up token: a clear message.
    let r = stranger.post(&page, "/app/reset-password", &[("token", &token), ("password", "short")]).await;
    assert_eq!(r.status, 422, "{}", r.html);
    let r = stranger
        .post(&page, "/app/reset-password", &[("token", "rsr_madeup"), ("password", "a new long password")])
        .await;
    assert_eq!(r.status, 410, "{}", r.html);
    assert!(r.has("This link was used already or has expired"), "{}", r.html);
    let r =
        stranger.post(&page, "/app/reset-password", &[("token", &token), ("password", "a new long password")]).await;
    assert_eq!(r.status, 200, "{}", r.html);
    assert!(r.has(r#"id="reset-done""#), "{}", r.html);

    // Ann's open session ended; the new password signs in, the old one does not.
    assert_eq!(ann.get("/app/account").await.status, 303);
    let form = stranger.get("/app/sign-in").await;
    let old = stranger.post(&form, "/app/sign-in", &[("email", &email), ("password", "correct horse battery")]).await;
    assert_eq!(old.status, 401, "{}", old.html);
    let new = stranger.post(&form, "/app/sign-in", &[("email", &email), ("password", "a new long password")]).await;
    assert_eq!(new.status, 303, "{}", new.html);
}

/// The account page changes the person's name through `PATCH /v1/me`; bad names are refused next
/// to the field, and API keys may not rename anyone.
async fn name_changed(s: TestServer) {
    let (ann, _) = Web::sign_up(&s, "Ann").await;
    let acct = ann.get("/app/account").await;
    assert!(acct.has(r#"id="display-name" name="name" value="Ann""#), "{}", acct.html);
    let r = ann.post(&acct, "/app/account/name", &[("name", "  Ann Lee ")]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    let acct = ann.open(&r.location.unwrap()).await;
    assert!(acct.has("Name changed.") && acct.has("<strong>Ann Lee</strong>"), "{}", acct.html);
    let long = "x".repeat(roost_domain::validate::MAX_NAME + 1);
    for (bad, says) in [("   ", "must not be blank"), (long.as_str(), "at most 200")] {
        let r = ann.post(&acct, "/app/account/name", &[("name", bad)]).await;
        assert_eq!(r.status, 422, "{:?} {}", r.location, r.html);
        assert!(r.has(says), "{says}: {}", r.html);
    }

    // Through the API: the name is what /v1/me and the members list say; a key is refused.
    let (bob, _) = s.signup("Bob").await;
    let r = bob.patch("/v1/me", &json!({"name": "Robert"})).await.unwrap();
    assert_eq!((r.status, &r.body["name"]), (200, &json!("Robert")), "{}", r.body);
    assert_eq!(bob.get("/v1/me").await.unwrap().body["user"]["name"], "Robert");
    for bad in [json!({"name": ""}), json!({}), json!({"name": 7}), json!({"name": "a", "x": 1})] {
        let r = bob.patch("/v1/me", &bad).await.unwrap();
        assert!(matches!(r.status, 400 | 422), "{bad} → {} {}", r.status, r.body);
    }
    let ws = bob.get("/v1/me").await.unwrap().body["active_workspace_id"].as_str().unwrap().to_string();
    let key = bob.post(&format!("/v1/workspaces/{ws}/keys"), &json!({"name": "k"})).await.unwrap();
    let as_key = s.client.with_token(key.body["secret"].as_str().unwrap());
    crate::support::expect_problem(&as_key.patch("/v1/me", &json!({"name": "Key"})).await.unwrap(), 403, "forbidden");
    let (org, _) = s.org(&bob, "Acme", "business").await;
    let members = bob.get(&format!("/v1/orgs/{org}/members")).await.unwrap();
    assert_eq!(members.body["items"][0]["name"], "Robert", "{}", members.body);
}

//! Notices by mail, read from a real SMTP server: "a new sign-in" from an IP address and user agent
//! not seen before, and alert mails (low balance, out of credits) to an org's owners and billing
//! members, queued once per event and recipient after the charge committed.

use roost_store::Store;
use roost_test_kit::TestServer;
use roost_test_kit::peers::SmtpServer;
use serde_json::{Value, json};

use super::{PUBLIC_URL, with_smtp};
use crate::credits::common::{business, charge, created, member};
use crate::support::{email_of, expect_status};

const PASSWORD: &str = "correct horse battery";

async fn sign_in(s: &TestServer, email: &str, user_agent: &str) {
    let c = s.client.with_header("User-Agent", user_agent);
    let r = c.post("/v1/sessions", &json!({"email": email, "password": PASSWORD})).await.unwrap();
    expect_status(&r, 201);
}

/// The messages to `to` of `kind` (a subject fragment), after waiting a moment for stragglers.
async fn settled(smtp: &SmtpServer, to: &str, subject: &str, wait_ms: u64) -> Vec<Value> {
    tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;
    smtp.messages_to(to).into_iter().filter(|m| m["subject"].as_str().unwrap_or("").contains(subject)).collect()
}

async fn new_sign_in_notice(smtp: SmtpServer, s: TestServer) {
    let (_, sg) = s.signup("Nina").await;
    let email = email_of(&sg);
    // The test client signed up; signing in again from the same place is nothing new.
    sign_in(&s, &email, &format!("roost-cli/{}", env!("CARGO_PKG_VERSION"))).await;
    assert!(settled(&smtp, &email, "New sign-in", 300).await.is_empty(), "{:?}", smtp.messages_to(&email));

    // Another browser: one notice, naming it.
    sign_in(&s, &email, "Mozilla/5.0 (Macintosh) Safari/605.1.15").await;
    let mails = smtp.wait_for(&email, 1).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let m = &mails[0];
    assert_eq!(m["subject"], "[Roost Test] New sign-in to your account");
    let text = m["text"].as_str().expect("a text part");
    let html = m["html"].as_str().expect("an HTML part");
    assert!(text.contains("Safari/605.1.15") && text.contains("127.0.0.1") && text.contains(&email), "{text}");
    assert!(text.contains(&format!("{PUBLIC_URL}/app/account")), "{text}");
    assert!(html.contains("Safari/605.1.15") && html.contains("&quot;"), "escaped in HTML: {html}");
    // Known from now on; and the first browser stays known.
    sign_in(&s, &email, "Mozilla/5.0 (Macintosh) Safari/605.1.15").await;
    sign_in(&s, &email, &format!("roost-cli/{}", env!("CARGO_PKG_VERSION"))).await;
    assert_eq!(settled(&smtp, &email, "New sign-in", 400).await.len(), 1);

    // A person with no known place yet (e.g. from before roost kept them): the first sign-in
    // only records it.
    let (_, sg) = s.signup("Olga").await;
    let olga = email_of(&sg);
    let store = Store::connect(&s.admin_url).await.unwrap();
    sqlx::query("DELETE FROM sign_in_devices WHERE user_id = $1")
        .bind(sg["user"]["id"].as_str().unwrap())
        .execute(store.pool())
        .await
        .unwrap();
    sign_in(&s, &olga, "Firefox/140.0").await;
    sign_in(&s, &olga, "Chrome/141.0").await;
    let notices = smtp.wait_for(&olga, 1).await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0]["text"].as_str().unwrap().contains("Chrome/141.0"), "{notices:?}");
}

async fn low_balance_mails_owners_and_billing_once(smtp: SmtpServer, s: TestServer) {
    let (owner, owner_s, org, ws) = business(&s, "Alerted").await;
    let (_, billing_s) = member(&s, &owner, &org, &ws, "billing", None).await;
    let (_, plain_s) = member(&s, &owner, &org, &ws, "member", Some("member")).await;
    let (owner_e, billing_e, plain_e) = (email_of(&owner_s), email_of(&billing_s), email_of(&plain_s));
    let r = owner.put(&format!("/v1/orgs/{org}/wallets/credits/alerts"), &json!({"low_balance": 4_000})).await.unwrap();
    expect_status(&r, 200);

    created(charge(&owner, 500, "llm").await);
    // Crossing the threshold: one event, one mail to the owner and one to the billing member.
    created(charge(&owner, 700, "llm").await);
    for to in [&owner_e, &billing_e] {
        let got = wait_subject(&smtp, to, "running low").await;
        let m = &got[0];
        assert_eq!(m["subject"], "[Roost Test] Alerted: credits are running low", "{m}");
        let text = m["text"].as_str().unwrap();
        assert!(text.contains("3800 credits available") && text.contains("threshold of 4000"), "{text}");
        assert!(text.contains(&format!("{PUBLIC_URL}/app/o/{org}/credits")), "{text}");
        assert!(m["html"].as_str().unwrap().contains("running low") || m["html"].as_str().unwrap().contains("3800"));
    }
    // Out of credits: a refused charge is a second alert.
    let refused = charge(&owner, 10_000, "llm").await;
    assert_eq!(refused.status, 402, "{:?}", refused.body);
    let got = wait_subject(&smtp, &owner_e, "out of credits").await;
    assert!(got[0]["text"].as_str().unwrap().contains("needed 10000 "), "{got:?}");

    // Read the events again from the start (as a second replica, or a restart before the cursor
    // moved, would): the outbox's key per event and recipient queues nothing twice.
    let store = Store::connect(&s.admin_url).await.unwrap();
    sqlx::query("UPDATE event_cursors SET cursor = 'evt_0' WHERE name = 'alert_mail'")
        .execute(store.pool())
        .await
        .unwrap();
    for _ in 0..100 {
        let c: String = sqlx::query_scalar("SELECT cursor FROM event_cursors WHERE name = 'alert_mail'")
            .fetch_one(store.pool())
            .await
            .unwrap();
        if c != "evt_0" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for to in [&owner_e, &billing_e] {
        assert_eq!(settled(&smtp, to, "running low", 300).await.len(), 1, "once per event and recipient");
        assert_eq!(settled(&smtp, to, "out of credits", 0).await.len(), 1, "once per event and recipient");
    }
    // A plain member gets no alert (only the invitation that brought them in).
    assert!(settled(&smtp, &plain_e, "credits", 0).await.is_empty(), "{:?}", smtp.messages_to(&plain_e));
}

async fn budget_mails_owners_and_billing(smtp: SmtpServer, s: TestServer) {
    let (owner, owner_s, org, ws) = business(&s, "Budgeted").await;
    let (_, billing_s) = member(&s, &owner, &org, &ws, "billing", None).await;
    let (_, plain_s) = member(&s, &owner, &org, &ws, "member", Some("member")).await;
    let path = format!("/v1/workspaces/{ws}/budget");
    expect_status(&owner.put(&path, &json!({"limit": 1_000, "alert_percents": [50]})).await.unwrap(), 200);

    created(charge(&owner, 600, "llm").await);
    for to in [email_of(&owner_s), email_of(&billing_s)] {
        let got = wait_subject(&smtp, &to, "50% of a budget used").await;
        assert_eq!(got[0]["subject"], "[Roost Test] Budgeted: 50% of a budget used");
        let text = got[0]["text"].as_str().unwrap();
        assert!(text.contains(&format!("Workspace {ws}")) && text.contains("used 600 of its budget of 1000"), "{text}");
        assert!(text.contains(&format!("{PUBLIC_URL}/app/w/{ws}")), "{text}");
    }
    let refused = charge(&owner, 600, "llm").await;
    assert_eq!((refused.status, refused.code()), (403, Some("budget_exceeded")), "{:?}", refused.body);
    for to in [email_of(&owner_s), email_of(&billing_s)] {
        let got = wait_subject(&smtp, &to, "a budget was exceeded").await;
        assert!(got[0]["text"].as_str().unwrap().contains("refused by the workspace budget"), "{got:?}");
    }
    assert!(settled(&smtp, &email_of(&plain_s), "budget", 0).await.is_empty());
}

/// Waits (up to 10 s: alerts wait for events to settle first) for exactly one mail to `to` whose
/// subject contains `subject`.
async fn wait_subject(smtp: &SmtpServer, to: &str, subject: &str) -> Vec<Value> {
    for _ in 0..200 {
        let got = settled(smtp, to, subject, 50).await;
        if !got.is_empty() {
            assert_eq!(got.len(), 1, "{got:?}");
            return got;
        }
    }
    panic!("no mail to {to} about {subject}: {:?}", smtp.messages_to(to));
}

with_smtp!(new_sign_in_notice, low_balance_mails_owners_and_billing_once, budget_mails_owners_and_billing);

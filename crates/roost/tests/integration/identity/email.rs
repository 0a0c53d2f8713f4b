//! Email verification and password reset, through the mail a real SMTP server received: single
//! use, one hour, stored hashed, the same answer for known and unknown addresses, and a reset ends
//! every session.

use std::time::{Duration, Instant};

use roost::Client;
use roost_store::Store;
use roost_test_kit::TestServer;
use roost_test_kit::peers::{SmtpServer, first_link, query_param};
use serde_json::json;

use super::{PUBLIC_URL, with_smtp};
use crate::support::{email_of, expect_invalid, expect_problem, expect_status};

/// The token in the only link of the `n`-th mail to `to` (1-based), checking where the link points.
async fn mailed_token(smtp: &SmtpServer, to: &str, n: usize, path: &str, prefix: &str) -> String {
    let mails = smtp.wait_for(to, n).await;
    let m = &mails[n - 1];
    let text = m["text"].as_str().expect("text part");
    let link = first_link(text).expect("a link");
    assert!(link.starts_with(&format!("{PUBLIC_URL}{path}?token={prefix}")), "{link}");
    assert_eq!(first_link(m["html"].as_str().expect("html part")).as_deref(), Some(link.as_str()));
    query_param(&link, "token").unwrap()
}

async fn me_verified(c: &Client) -> bool {
    let me = c.get("/v1/me").await.unwrap();
    expect_status(&me, 200);
    me.body["email_verified"].as_bool().expect("email_verified")
}

async fn email_verification_by_mail(smtp: SmtpServer, s: TestServer) {
    let (bob, bob_s) = s.signup("Bob").await;
    let email = email_of(&bob_s);
    assert!(!me_verified(&bob).await, "a new account is unverified");

    let r = bob.post("/v1/me/email-verification", &json!({})).await.unwrap();
    expect_status(&r, 202);
    assert_eq!(r.body, json!({"email": email, "email_verified": false}));
    let token = mailed_token(&smtp, &email, 1, "/app/verify-email", "rsv_").await;
    assert!(smtp.messages_to(&email)[0]["subject"].as_str().unwrap().contains("Confirm your email"));

    // The token works without signing in, once.
    let ok = s.client.post("/v1/email-verification/confirm", &json!({"token": token})).await.unwrap();
    expect_status(&ok, 200);
    assert_eq!(ok.body["email_verified"], true);
    assert!(me_verified(&bob).await);
    let again = s.client.post("/v1/email-verification/confirm", &json!({"token": token})).await.unwrap();
    expect_problem(&again, 410, "token_invalid");

    // Verified: asking again sends nothing.
    let r = bob.post("/v1/me/email-verification", &json!({})).await.unwrap();
    expect_status(&r, 202);
    assert_eq!(r.body["email_verified"], true);
    let st = Store::connect(&s.admin_url).await.unwrap();
    assert_eq!(st.mails_to(&email).await.unwrap().len(), 1, "no second mail once verified");

    // An hour later the link is dead; garbage, other kinds of token and oversized ones are too.
    let (carol, carol_s) = s.signup("Carol").await;
    expect_status(&carol.post("/v1/me/email-verification", &json!({})).await.unwrap(), 202);
    let late = mailed_token(&smtp, &email_of(&carol_s), 1, "/app/verify-email", "rsv_").await;
    s.clock.advance(3_600_001);
    for t in [late.as_str(), "rsv_nope", "rsr_nope", "", &"x".repeat(5000)] {
        let r = s.client.post("/v1/email-verification/confirm", &json!({"token": t})).await.unwrap();
        expect_problem(&r, 410, "token_invalid");
    }
    assert!(!me_verified(&carol).await);
    // A new link works again.
    expect_status(&carol.post("/v1/me/email-verification", &json!({})).await.unwrap(), 202);
    let fresh = mailed_token(&smtp, &email_of(&carol_s), 2, "/app/verify-email", "rsv_").await;
    expect_status(&s.client.post("/v1/email-verification/confirm", &json!({"token": fresh})).await.unwrap(), 200);
    assert!(me_verified(&carol).await);
    // Asking needs a signed-in user.
    expect_problem(&s.client.post("/v1/me/email-verification", &json!({})).await.unwrap(), 401, "unauthenticated");
}

async fn password_reset_by_mail(smtp: SmtpServer, s: TestServer) {
    let (bob, bob_s) = s.signup("Bob").await;
    let email = email_of(&bob_s);
    let login = |password: &str| {
        let (c, e, p) = (s.client.clone(), email.clone(), password.to_string());
        async move { c.post("/v1/sessions", &json!({"email": e, "password": p})).await.unwrap() }
    };
    let second = login("correct horse battery").await;
    expect_status(&second, 201);
    let bob2 = s.client.with_token(second.str("token"));

    // Asked twice (the address in any case): two links; using one spends both.
    for e in [email.to_uppercase(), email.clone()] {
        expect_status(&s.client.post("/v1/password-reset", &json!({"email": e})).await.unwrap(), 202);
    }
    let first = mailed_token(&smtp, &email, 1, "/app/reset-password", "rsr_").await;
    let other = mailed_token(&smtp, &email, 2, "/app/reset-password", "rsr_").await;
    assert!(smtp.messages_to(&email)[0]["subject"].as_str().unwrap().contains("Reset your password"));

    // A too-short password is refused and leaves the token usable.
    let short =
        s.client.post("/v1/password-reset/confirm", &json!({"token": first, "password": "short"})).await.unwrap();
    expect_invalid(&short, "password");
    let done = s
        .client
        .post("/v1/password-reset/confirm", &json!({"token": first, "password": "a brand new passphrase"}))
        .await
        .unwrap();
    expect_status(&done, 200);
    assert_eq!(done.body["user_id"], bob_s["user"]["id"]);

    // Every session ended; the old password is dead, the new one signs in.
    for c in [&bob, &bob2] {
        expect_problem(&c.get("/v1/me").await.unwrap(), 401, "unauthenticated");
    }
    expect_problem(&login("correct horse battery").await, 401, "invalid_credentials");
    let new = login("a brand new passphrase").await;
    expect_status(&new, 201);
    // The mail proved the address.
    assert!(me_verified(&s.client.with_token(new.str("token"))).await);

    // Single use: this token and the other one from before.
    for t in [&first, &other] {
        let r = s
            .client
            .post("/v1/password-reset/confirm", &json!({"token": t, "password": "yet another passphrase"}))
            .await
            .unwrap();
        expect_problem(&r, 410, "token_invalid");
    }
    // One hour.
    expect_status(&s.client.post("/v1/password-reset", &json!({"email": email})).await.unwrap(), 202);
    let late = mailed_token(&smtp, &email, 3, "/app/reset-password", "rsr_").await;
    s.clock.advance(3_600_001);
    let r = s
        .client
        .post("/v1/password-reset/confirm", &json!({"token": late, "password": "yet another passphrase"}))
        .await
        .unwrap();
    expect_problem(&r, 410, "token_invalid");
    expect_status(&login("a brand new passphrase").await, 201);
    expect_invalid(&s.client.post("/v1/password-reset", &json!({"email": "not an address"})).await.unwrap(), "email");
}

async fn password_reset_answers_alike_for_unknown_addresses(smtp: SmtpServer, s: TestServer) {
    let (_, bob_s) = s.signup("Bob").await;
    let known = email_of(&bob_s);
    let unknown = crate::support::fresh_email("nobody");
    let ask = |e: String| {
        let c = s.client.clone();
        async move {
            let t = Instant::now();
            let r = c.post("/v1/password-reset", &json!({"email": e})).await.unwrap();
            (r, t.elapsed())
        }
    };
    let (a, _) = ask(known.clone()).await;
    let (b, _) = ask(unknown.clone()).await;
    expect_status(&a, 202);
    assert_eq!((a.status, &a.body, &a.content_type), (b.status, &b.body, &b.content_type), "the same answer");

    // The same work: one token row and one outbox row each; only the unknown one's is never sent.
    let st = Store::connect(&s.admin_url).await.unwrap();
    for e in [&known, &unknown] {
        let tokens: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM user_tokens WHERE email = $1")
            .bind(e)
            .fetch_one(st.pool())
            .await
            .unwrap();
        assert_eq!(tokens, 1, "{e}");
        assert_eq!(st.mails_to(e).await.unwrap().len(), 1, "{e}");
    }
    smtp.wait_for(&known, 1).await;
    let unknown_mail = st.mails_to(&unknown).await.unwrap().pop().unwrap();
    assert_eq!(st.mail_status(&unknown_mail).await.unwrap().unwrap().status, "suppressed");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(smtp.messages_to(&unknown).is_empty(), "nothing is mailed to an address without an account");

    // And about the same time: medians of alternating requests. The work is identical, so this
    // only catches a gross difference (such as a branch that skips the database for unknowns).
    let (mut tk, mut tu) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        tk.push(ask(known.clone()).await.1);
        tu.push(ask(unknown.clone()).await.1);
    }
    tk.sort();
    tu.sort();
    let (mk, mu) = (tk[3], tu[3]);
    assert!(mk.abs_diff(mu) < Duration::from_millis(100).max(mk.max(mu) / 2), "known {mk:?} vs unknown {mu:?}");

    // Found by review: anyone could flood an inbox with reset mails. Eight asks in an hour were
    // all answered alike, recorded, and five were mailed; the rest are suppressed.
    let ids = st.mails_to(&known).await.unwrap();
    assert_eq!(ids.len(), 8);
    let mut statuses = Vec::new();
    for id in &ids {
        statuses.push(st.mail_status(id).await.unwrap().unwrap().status);
    }
    let held_back = statuses.iter().filter(|s| s.as_str() == "suppressed").count();
    assert_eq!(held_back, 8 - roost_store::LINKS_PER_HOUR as usize, "{statuses:?}");
    smtp.wait_for(&known, 5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.messages_to(&known).len(), 5, "five reset mails an hour");
    // An hour later, the next one is mailed again.
    s.clock.advance(3_600_001);
    expect_status(&ask(known.clone()).await.0, 202);
    smtp.wait_for(&known, 6).await;
}

with_smtp!(email_verification_by_mail, password_reset_by_mail, password_reset_answers_alike_for_unknown_addresses);

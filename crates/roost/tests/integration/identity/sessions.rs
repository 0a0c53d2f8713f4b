//! Sessions: each person sees their own (where from, when last used, which is this one), ends one,
//! and a password change ends all the others; idle sessions end on their own.

use std::time::Duration;

use roost::Client;
use roost_test_kit::TestServer;
use serde_json::{Value, json};

use crate::support::{email_of, expect_about, expect_invalid, expect_problem, expect_status, now_ms};

async fn login(s: &TestServer, email: &str, password: &str, agent: &str) -> Client {
    let r = s
        .client
        .with_header("User-Agent", agent)
        .post("/v1/sessions", &json!({"email": email, "password": password}))
        .await
        .unwrap();
    expect_status(&r, 201);
    s.client.with_token(r.str("token"))
}

async fn sessions(c: &Client) -> Vec<Value> {
    let r = c.get("/v1/me/sessions").await.unwrap();
    expect_status(&r, 200);
    assert!(r.body["next_cursor"].is_null(), "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

async fn list_and_end_sessions(s: TestServer) {
    let (alice, alice_s) = s.signup("Alice").await;
    let email = email_of(&alice_s);
    let phone = login(&s, &email, "correct horse battery", "Phone Browser/1.0").await;
    let (bob, _) = s.signup("Bob").await;

    let list = sessions(&alice).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let (mine, other) = (&list[0], &list[1]);
    assert!(mine["id"].as_str().unwrap().starts_with("ses_") && mine["id"] != other["id"]);
    assert_eq!((mine["current"].as_bool(), other["current"].as_bool()), (Some(true), Some(false)));
    assert_eq!(mine["user_agent"], concat!("roost-cli/", env!("CARGO_PKG_VERSION")), "the CLI's client names itself");
    assert_eq!(other["user_agent"], "Phone Browser/1.0");
    for x in &list {
        assert_eq!(x["ip"], "127.0.0.1");
        expect_about(&x["created_at"], now_ms(&s));
        expect_about(&x["last_used_at"], now_ms(&s));
        assert!(x.get("token").is_none() && x.get("token_hash").is_none(), "never the token: {x}");
    }
    let from_phone = sessions(&phone).await;
    assert_eq!(from_phone.iter().find(|x| x["current"] == true).unwrap()["id"], other["id"], "current is per caller");
    assert_eq!(sessions(&bob).await.len(), 1, "only one's own");

    // Last use moves when the session is used (written at most once a minute).
    s.clock.advance(120_000);
    expect_status(&phone.get("/v1/me").await.unwrap(), 200);
    let mut moved = false;
    for _ in 0..100 {
        let l = sessions(&alice).await;
        let p = l.iter().find(|x| x["id"] == other["id"]).unwrap();
        if p["last_used_at"] != other["last_used_at"] {
            expect_about(&p["last_used_at"], now_ms(&s));
            moved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(moved, "last_used_at never moved");

    // Someone else's session, or nonsense: not found. The phone's: ended at once.
    let other_id = other["id"].as_str().unwrap();
    expect_problem(&bob.delete(&format!("/v1/me/sessions/{other_id}")).await.unwrap(), 404, "not_found");
    expect_problem(&alice.delete("/v1/me/sessions/ses_nope").await.unwrap(), 404, "not_found");
    expect_status(&phone.get("/v1/me").await.unwrap(), 200);
    expect_status(&alice.delete(&format!("/v1/me/sessions/{other_id}")).await.unwrap(), 204);
    expect_problem(&phone.get("/v1/me").await.unwrap(), 401, "unauthenticated");
    expect_problem(&alice.delete(&format!("/v1/me/sessions/{other_id}")).await.unwrap(), 404, "not_found");
    // Ending the current one is signing out.
    let mine_id = mine["id"].as_str().unwrap();
    expect_status(&alice.delete(&format!("/v1/me/sessions/{mine_id}")).await.unwrap(), 204);
    expect_problem(&alice.get("/v1/me/sessions").await.unwrap(), 401, "unauthenticated");
}

async fn password_change_ends_the_other_sessions(s: TestServer) {
    let (alice, alice_s) = s.signup("Alice").await;
    let email = email_of(&alice_s);
    let laptop = login(&s, &email, "correct horse battery", "Laptop").await;
    let phone = login(&s, &email, "correct horse battery", "Phone").await;
    let (bob, _) = s.signup("Bob").await;

    let wrong = alice
        .put("/v1/me/password", &json!({"current_password": "not it at all", "password": "a new passphrase"}))
        .await
        .unwrap();
    expect_invalid(&wrong, "current_password");
    let short = alice
        .put("/v1/me/password", &json!({"current_password": "correct horse battery", "password": "short"}))
        .await
        .unwrap();
    expect_invalid(&short, "password");
    expect_status(&phone.get("/v1/me").await.unwrap(), 200);

    let ok = alice
        .put("/v1/me/password", &json!({"current_password": "correct horse battery", "password": "a new passphrase"}))
        .await
        .unwrap();
    expect_status(&ok, 200);
    assert_eq!(ok.body["sessions_ended"], 2);
    expect_status(&alice.get("/v1/me").await.unwrap(), 200);
    for c in [&laptop, &phone] {
        expect_problem(&c.get("/v1/me").await.unwrap(), 401, "unauthenticated");
    }
    expect_status(&bob.get("/v1/me").await.unwrap(), 200);
    let old =
        s.client.post("/v1/sessions", &json!({"email": email, "password": "correct horse battery"})).await.unwrap();
    expect_problem(&old, 401, "invalid_credentials");
    login(&s, &email, "a new passphrase", "Laptop").await;
    assert_eq!(sessions(&alice).await.len(), 2);
}

/// Guessing the current password on `PUT /v1/me/password` is throttled like sign-ins (three
/// failures here), on a count of its own: sign-ins still work, and the window's end lets it in again.
async fn password_guesses_are_throttled(s: TestServer) {
    let (alice, alice_s) = s.signup("Alice").await;
    let email = email_of(&alice_s);
    let change = |current: &'static str| {
        let alice = alice.clone();
        async move {
            alice
                .put("/v1/me/password", &json!({"current_password": current, "password": "a new passphrase"}))
                .await
                .unwrap()
        }
    };
    for _ in 0..3 {
        expect_invalid(&change("not it at all").await, "current_password");
    }
    // Locked now, even for the right password, and it says for how long.
    let locked = change("correct horse battery").await;
    expect_problem(&locked, 429, "rate_limited");
    assert_eq!(locked.body["limit_source"], "account", "{}", locked.body);
    let wait = locked.body["reset_seconds"].as_i64().unwrap();
    assert!((1..=900).contains(&wait), "{}", locked.body);
    // Signing in is not locked by it.
    login(&s, &email, "correct horse battery", "Phone").await;
    s.clock.advance(15 * 60_000);
    expect_status(&change("correct horse battery").await, 200);
}

fn tight_throttle(s: &mut roost_server::Settings) {
    s.login_failures_per_account = 3;
}

/// With `session_idle_minutes = 60`: a session used within the hour lives on, an idle one ends.
async fn idle_sessions_end(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (bob, _) = s.signup("Bob").await;
    for _ in 0..3 {
        s.clock.advance(50 * 60_000);
        expect_status(&alice.get("/v1/me").await.unwrap(), 200);
        // The last use is written beside the request: wait until it is.
        for _ in 0..100 {
            let l = sessions(&alice).await;
            if crate::support::ts_ms(&l[0]["last_used_at"]) == now_ms(&s) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    expect_status(&alice.get("/v1/me").await.unwrap(), 200);
    expect_problem(&bob.get("/v1/me").await.unwrap(), 401, "unauthenticated");
    s.clock.advance(61 * 60_000);
    expect_problem(&alice.get("/v1/me").await.unwrap(), 401, "unauthenticated");
}

fn idle_hour(s: &mut roost_server::Settings) {
    s.session_idle_minutes = 60;
}

both_backends!(list_and_end_sessions, password_change_ends_the_other_sessions);
both_backends_with!(idle_sessions_end => super::idle_hour);
both_backends_with!(password_guesses_are_throttled => super::tight_throttle);

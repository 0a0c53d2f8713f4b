//! History: idempotent appends, filters, newest first with cursors, bad input, admin deletion
//! (audited) and retention by the plan's `history_days`.

use std::time::Duration;

use serde_json::json;

use crate::support::{expect_invalid, expect_problem, list_all, personal_ws, set_ws_role, uid};
use roost_test_kit::TestServer;

use super::{append, key_client};

async fn appends_are_idempotent_and_listed_newest_first(s: TestServer) {
    let (alice, a) = s.signup("Alice").await;
    let ws = personal_ws(&a);
    let path = format!("/v1/workspaces/{ws}/history");
    let body = json!({"kind": "conversation.turn", "data": {"role": "user", "text": "hello"}, "ref": "conv-1"});

    let r = alice.post_idem(&path, "turn-1", &body).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let first = r.body.clone();
    assert!(first["id"].as_str().is_some_and(|i| i.starts_with("his_")), "{first}");
    assert_eq!(first["kind"], "conversation.turn");
    assert_eq!(first["data"], json!({"role": "user", "text": "hello"}));
    assert_eq!(first["ref"], "conv-1");
    assert_eq!(first["actor"], json!({"type": "user", "id": uid(&a)}));
    assert!(first["at"].is_string());
    // The same key and body: the first answer again; another body: 409; no key: 422.
    let again = alice.post_idem(&path, "turn-1", &body).await.unwrap();
    assert_eq!((again.status, &again.body), (201, &first));
    let other = alice.post_idem(&path, "turn-1", &json!({"kind": "conversation.turn", "data": 2})).await.unwrap();
    expect_problem(&other, 409, "idempotency_conflict");
    expect_invalid(&alice.post(&path, &body).await.unwrap(), "Idempotency-Key");
    assert_eq!(list_all(&alice, &path, 50).await.len(), 1, "a retry appended twice");

    // Entries from a key are the key's; filters by kind, ref, actor and time.
    let key = key_client(&alice, &ws).await;
    let k = key.get("/v1/me").await.unwrap().body["key"]["id"].as_str().unwrap().to_string();
    let mut ids = vec![first["id"].as_str().unwrap().to_string()];
    for i in 0..5 {
        let who = if i % 2 == 0 { &key } else { &alice };
        let kind = if i < 3 { "generation" } else { "conversation.turn" };
        let e = append(who, &ws, kind, json!({"i": i}), Some(if i < 4 { "conv-2" } else { "conv-1" })).await;
        ids.push(e["id"].as_str().unwrap().to_string());
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    let all = list_all(&alice, &path, 2).await;
    assert_eq!(all.iter().filter_map(|e| e["id"].as_str()).collect::<Vec<_>>(), newest_first);
    let of = |q: &str| {
        let (c, p) = (alice.clone(), format!("{path}?{q}"));
        async move { list_all(&c, &p, 50).await.iter().map(|e| e["data"].clone()).collect::<Vec<_>>() }
    };
    assert_eq!(of("kind=generation").await, [json!({"i": 2}), json!({"i": 1}), json!({"i": 0})]);
    assert_eq!(of("ref=conv-1").await, [json!({"i": 4}), json!({"role": "user", "text": "hello"})]);
    assert_eq!(of(&format!("actor={k}")).await, [json!({"i": 4}), json!({"i": 2}), json!({"i": 0})]);
    assert_eq!(of(&format!("actor={k}&kind=generation&ref=conv-2")).await, [json!({"i": 2}), json!({"i": 0})]);
    assert!(all.iter().filter(|e| e["actor"]["id"] == k.as_str()).all(|e| e["actor"]["type"] == "key"));

    // Time: from inclusive, to exclusive, on the server's clock.
    s.clock.advance(3_600_000);
    let late = append(&alice, &ws, "generation", json!("late"), None).await;
    let at = late["at"].as_str().unwrap().to_string();
    assert_eq!(of(&format!("from={at}")).await, [json!("late")]);
    assert_eq!(of(&format!("to={at}")).await.len(), 6);
    assert_eq!(of(&format!("from={at}&to={at}")).await.len(), 0);

    // Bad input.
    let post = |b: serde_json::Value| {
        let c = alice.clone();
        let p = path.clone();
        async move { c.post_idem(&p, &roost_domain::IdKind::Event.generate(), &b).await.unwrap() }
    };
    expect_invalid(&post(json!({"kind": "Bad Kind", "data": 1})).await, "kind");
    expect_invalid(&post(json!({"kind": "", "data": 1})).await, "kind");
    expect_invalid(&post(json!({"kind": "k"})).await, "data");
    expect_invalid(&post(json!({"kind": "k", "data": 1, "ref": ""})).await, "ref");
    expect_problem(&post(json!({"kind": "k", "data": 1, "extra": true})).await, 422, "invalid_request");
    expect_problem(&post(json!({"kind": "k", "data": "x".repeat(256 * 1024)})).await, 413, "payload_too_large");
    let raw = alice
        .with_header("Idempotency-Key", "raw")
        .send_raw(reqwest::Method::POST, &path, b"{\"kind\": ".to_vec())
        .await
        .unwrap();
    expect_problem(&raw, 400, "malformed_json");
    for q in ["cursor=nope", "actor=bob", "from=yesterday", "to=2026-13-01T00:00:00Z", "limit=501"] {
        let r = alice.get(&format!("{path}?{q}")).await.unwrap();
        expect_problem(&r, 422, "invalid_request");
    }
    assert_eq!(list_all(&alice, &path, 50).await.len(), 7, "bad input appended something");
}

async fn admins_delete_old_history_audited(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, ws) = s.org(&alice, "Acme", "team").await;
    let (bob, b) = s.signup("Bob").await;
    s.add_member(&alice, &org, &bob, &b, "member").await;
    set_ws_role(&alice, &ws, &uid(&b), "member").await;
    let path = format!("/v1/workspaces/{ws}/history");
    let old = append(&bob, &ws, "turn", json!(1), None).await;
    s.clock.advance(86_400_000);
    let cut = roost_domain::time::to_rfc3339(crate::support::now_ms(&s));
    let kept = append(&bob, &ws, "turn", json!(2), None).await;

    // Members, keys and viewers may not; a missing or bad `before` is 422.
    expect_problem(&bob.delete(&format!("{path}?before={cut}")).await.unwrap(), 403, "forbidden");
    let key = key_client(&alice, &ws).await;
    expect_problem(&key.delete(&format!("{path}?before={cut}")).await.unwrap(), 403, "forbidden");
    expect_invalid(&alice.delete(&path).await.unwrap(), "before");
    expect_invalid(&alice.delete(&format!("{path}?before=soon")).await.unwrap(), "before");

    let r = alice.delete(&format!("{path}?before={cut}")).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["deleted"], 1);
    let left = list_all(&alice, &path, 50).await;
    assert_eq!(left.iter().filter_map(|e| e["id"].as_str()).collect::<Vec<_>>(), [kept["id"].as_str().unwrap()]);
    assert_ne!(old["id"], kept["id"]);

    let audit = alice.get(&format!("/v1/orgs/{org}/audit?action=history.deleted")).await.unwrap();
    let items = audit.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{}", audit.body);
    assert_eq!(items[0]["workspace_id"], ws.as_str());
    assert_eq!(items[0]["detail"]["deleted"], 1);
    assert_eq!(items[0]["actor"]["type"], "user");
}

/// The background job every 50 ms, and no rate limit on the key that polls.
fn fast_ticks(s: &mut roost_server::Settings) {
    s.ledger_tick_ms = 50;
    s.rate_limits = false;
}

async fn retention_removes_what_the_plan_no_longer_keeps(s: TestServer) {
    // The free plan keeps 30 days of history. A key acts throughout: a session would end while
    // the clock moves a month.
    let (alice, a) = s.signup("Alice").await;
    let ws = personal_ws(&a);
    let alice = key_client(&alice, &ws).await;
    let path = format!("/v1/workspaces/{ws}/history");
    for i in 0..3 {
        append(&alice, &ws, "turn", json!(i), None).await;
    }
    s.clock.advance(29 * 86_400_000);
    let recent = append(&alice, &ws, "turn", json!("recent"), None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(list_all(&alice, &path, 50).await.len(), 4, "retention removed entries younger than 30 days");
    s.clock.advance(2 * 86_400_000);
    let mut left = Vec::new();
    for _ in 0..200 {
        left = list_all(&alice, &path, 50).await;
        if left.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left.iter().map(|e| e["id"].clone()).collect::<Vec<_>>(), [recent["id"].clone()]);
}

both_backends!(appends_are_idempotent_and_listed_newest_first, admins_delete_old_history_audited);
both_backends_with!(retention_removes_what_the_plan_no_longer_keeps => super::fast_ticks);

//! Headroom in the 201 answers to charges and holds: exact numbers, the headers, and replays that
//! answer the same bytes.

use roost_test_kit::TestServer;
use serde_json::{Value, json};

use super::{on_both, unique_prefix};
use crate::support::expect_status;

/// A raw answer: status, the headroom headers, and the body's bytes.
#[derive(Debug, PartialEq)]
struct Raw {
    status: u16,
    available: Option<String>,
    budget_remaining: Option<String>,
    body: Vec<u8>,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

async fn post(s: &TestServer, path: &str, token: &str, idem: &str, body: &Value) -> Raw {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", s.base))
        .bearer_auth(token)
        .header("idempotency-key", idem)
        .json(body)
        .send()
        .await
        .expect("request");
    let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap_or("").to_string());
    let (status, available, budget_remaining) =
        (r.status().as_u16(), h("roost-credits-available"), h("roost-budget-remaining"));
    Raw { status, available, budget_remaining, body: r.bytes().await.expect("body").to_vec() }
}

async fn headroom_is_exact_and_replayed(s: TestServer) {
    let (alice, body) = s.signup("Alice").await;
    let ws = body["personal"]["workspace_id"].as_str().unwrap().to_string();
    let me = body["user"]["id"].as_str().unwrap().to_string();
    let user_token = alice.token().unwrap().to_string();
    expect_status(&alice.put(&format!("/v1/workspaces/{ws}/budget"), &json!({"limit": 50})).await.unwrap(), 200);
    let forty = json!({"limit": 40});
    expect_status(&alice.put(&format!("/v1/workspaces/{ws}/members/{me}/budget"), &forty).await.unwrap(), 200);
    let key_body = json!({"name": "ci", "spend_limit": 30});
    let key = alice.post(&format!("/v1/workspaces/{ws}/keys"), &key_body).await.unwrap();
    let secret = key.str("secret").to_string();
    let resets_at = alice.get(&format!("/v1/workspaces/{ws}/budget")).await.unwrap().body["resets_at"].clone();

    // The key: its spend limit (30, 10 used) is the tightest of three budgets.
    let charge = json!({"amount": 10, "action": "llm.tokens"});
    let first = post(&s, "/v1/charges", &secret, "k1", &charge).await;
    assert_eq!(
        (first.status, first.available.as_deref(), first.budget_remaining.as_deref()),
        (201, Some("90"), Some("20"))
    );
    let expected = json!({"available": 90, "budget": {"scope": "key", "limit": 30, "used": 10, "remaining": 20, "resets_at": resets_at}});
    assert_eq!(first.json()["headroom"], expected, "{}", first.json());
    // Replayed: the same bytes and headers, though the wallet has moved on since.
    let user_charge = json!({"amount": 5, "action": "llm.tokens"});
    let by_user = post(&s, "/v1/charges", &user_token, "u1", &user_charge).await;
    assert_eq!(post(&s, "/v1/charges", &secret, "k1", &charge).await, first);

    // The user: the member budget (40; the key's 10 and these 5 count) is tighter than the workspace's.
    assert_eq!(
        (by_user.status, by_user.available.as_deref(), by_user.budget_remaining.as_deref()),
        (201, Some("85"), Some("25"))
    );
    let expected = json!({"available": 85, "budget": {"scope": "member", "limit": 40, "used": 15, "remaining": 25, "resets_at": resets_at}});
    assert_eq!(by_user.json()["headroom"], expected);

    // A hold: held credits are not available; replayed the same.
    let hold = json!({"amount": 20, "action": "llm.tokens"});
    let held = post(&s, "/v1/holds", &user_token, "h1", &hold).await;
    assert_eq!(
        (held.status, held.available.as_deref(), held.budget_remaining.as_deref()),
        (201, Some("65"), Some("5"))
    );
    assert_eq!(held.json()["headroom"]["budget"]["used"], 35);
    assert_eq!(post(&s, "/v1/holds", &user_token, "h1", &hold).await, held);

    // No budget in force: `budget` is null and there is no budget header.
    for path in [format!("/v1/workspaces/{ws}/budget"), format!("/v1/workspaces/{ws}/members/{me}/budget")] {
        expect_status(&alice.put(&path, &json!({"limit": null})).await.unwrap(), 200);
    }
    let free = post(&s, "/v1/charges", &user_token, "u2", &user_charge).await;
    assert_eq!((free.status, free.available.as_deref(), free.budget_remaining.as_deref()), (201, Some("60"), None));
    assert_eq!(free.json()["headroom"], json!({"available": 60, "budget": null}));
    // The journal shows charges without headroom: it belongs to the answer.
    let journal = alice.get(&format!("/v1/workspaces/{ws}/transactions")).await.unwrap();
    assert!(
        journal.body["items"]
            .as_array()
            .is_some_and(|i| !i.is_empty() && i.iter().all(|e| e.get("headroom").is_none())),
        "{}",
        journal.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headroom_in_charges_and_holds() {
    on_both(None, &unique_prefix(), headroom_is_exact_and_replayed).await;
}

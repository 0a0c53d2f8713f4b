//! `GET /v1/limits`: for an API key and for a user, every limit in force with exact numbers.

use roost_server::Clock;
use roost_test_kit::TestServer;
use serde_json::{Value, json};

use super::{on_both, unique_prefix};
use crate::support::{expect_problem, expect_status};

async fn limits_list_what_applies(s: TestServer) {
    let (alice, body) = s.signup("Alice").await;
    let ws = body["personal"]["workspace_id"].as_str().unwrap().to_string();
    let me = body["user"]["id"].as_str().unwrap().to_string();
    expect_status(&alice.put(&format!("/v1/workspaces/{ws}/budget"), &json!({"limit": 50})).await.unwrap(), 200);
    let forty = json!({"limit": 40});
    expect_status(&alice.put(&format!("/v1/workspaces/{ws}/members/{me}/budget"), &forty).await.unwrap(), 200);
    let key_body = json!({"name": "ci", "rpm": 5, "spend_limit": 30});
    let r = alice.post(&format!("/v1/workspaces/{ws}/keys"), &key_body).await.unwrap();
    expect_status(&r, 201);
    let key = s.client.with_token(r.str("secret"));
    let charged = key.post_idem("/v1/charges", "c1", &json!({"amount": 10, "action": "llm.tokens"})).await.unwrap();
    expect_status(&charged, 201);
    let resets_at = alice.get(&format!("/v1/workspaces/{ws}/budget")).await.unwrap().body["resets_at"].clone();
    assert!(resets_at.is_string());

    // The key: its charge and this request counted against both rpm limits.
    let r = key.get("/v1/limits").await.unwrap();
    expect_status(&r, 200);
    let rpm_resets = |v: &Value, i: usize| v["items"][i]["resets_at"].clone();
    let expected = json!({"next_cursor": null, "items": [
        {"kind": "rpm", "scope": "org", "limit": 60, "used": 2, "remaining": 58, "resets_at": rpm_resets(&r.body, 0)},
        {"kind": "rpm", "scope": "key", "limit": 5, "used": 2, "remaining": 3, "resets_at": rpm_resets(&r.body, 1)},
        {"kind": "budget", "scope": "workspace", "limit": 50, "used": 10, "remaining": 40, "resets_at": resets_at},
        {"kind": "budget", "scope": "member", "limit": 40, "used": 10, "remaining": 30, "resets_at": resets_at},
        {"kind": "spend_limit", "scope": "key", "limit": 30, "used": 10, "remaining": 20, "resets_at": resets_at},
        {"kind": "balance", "scope": "org", "limit": null, "used": null, "remaining": 90, "resets_at": null},
    ]});
    assert_eq!(r.body, expected);
    // The key's window: two requests at 12 s apart each refill in 24 s; the org's 2 at 1 s each.
    let now = s.clock.now_ms();
    let at = |secs: i64| roost_domain::time::to_rfc3339(now + secs * 1000);
    assert_eq!((rpm_resets(&r.body, 0), rpm_resets(&r.body, 1)), (json!(at(2)), json!(at(24))));

    // The user: no rate limits (they apply to API keys), no spend_limit.
    let r = alice.get("/v1/limits").await.unwrap();
    let kinds: Vec<(&str, &str, i64)> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["kind"].as_str().unwrap(), l["scope"].as_str().unwrap(), l["remaining"].as_i64().unwrap()))
        .collect();
    assert_eq!(kinds, [("budget", "workspace", 40), ("budget", "member", 30), ("balance", "org", 90)]);

    // Another tenant's workspace is not found; no token is unauthenticated.
    let (bob, _) = s.signup("Bob").await;
    expect_problem(&bob.in_workspace(&ws).get("/v1/limits").await.unwrap(), 404, "not_found");
    expect_problem(&s.client.get("/v1/limits").await.unwrap(), 401, "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_list() {
    on_both(None, &unique_prefix(), limits_list_what_applies).await;
}

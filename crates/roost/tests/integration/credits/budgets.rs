//! Budgets per billing cycle: workspace, member (their keys' charges included) and key spend_limit;
//! holds count when made and settles correct them; everything resets when the cycle turns.

use serde_json::{Value, json};

use super::common::*;
use crate::support::{create_ws, expect_problem, expect_status, uid};
use roost_test_kit::TestServer;

#[track_caller]
fn exceeded(r: &roost::Response, scope: &str, limit: i64, used: i64, resets_at: &Value) {
    expect_problem(r, 403, "budget_exceeded");
    assert_eq!(
        (&r.body["scope"], &r.body["limit"], &r.body["used"], &r.body["resets_at"]),
        (&json!(scope), &json!(limit), &json!(used), resets_at),
        "{}",
        r.body
    );
}

async fn get_budget(c: &roost::Client, path: &str) -> Value {
    let r = c.get(path).await.unwrap();
    expect_status(&r, 200);
    r.body
}

async fn workspace_budget(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Budgeted").await;
    let end = wallet(&owner, &org).await["cycle_ends_at"].clone();
    let path = format!("/v1/workspaces/{ws}/budget");
    let b = get_budget(&owner, &path).await;
    assert_eq!((&b["scope"], &b["limit"], &b["used"]), (&json!("workspace"), &Value::Null, &json!(0)), "{b}");
    let r = owner.put(&path, &json!({"limit": 1_000, "alert_percents": [80, 50]})).await.unwrap();
    expect_status(&r, 200);
    assert_eq!(
        r.body,
        json!({"scope": "workspace", "workspace_id": ws, "limit": 1_000, "alert_percents": [50, 80], "used": 0, "resets_at": end})
    );

    // A hold counts when made.
    let h = created(hold(&owner, 300, None).await);
    assert_eq!(get_budget(&owner, &path).await["used"], 300);
    created(charge(&owner, 600, "llm").await);
    assert_eq!(get_budget(&owner, &path).await["used"], 900);
    exceeded(&charge(&owner, 101, "llm").await, "workspace", 1_000, 900, &end);
    exceeded(&hold(&owner, 101, None).await, "workspace", 1_000, 900, &end);
    // Settling 100 of the 300 held gives back 200 of the budget.
    expect_status(&settle(&owner, h["id"].as_str().unwrap(), 100).await, 200);
    assert_eq!(get_budget(&owner, &path).await["used"], 700);
    created(charge(&owner, 300, "llm").await);
    assert_eq!(get_budget(&owner, &path).await["used"], 1_000);
    exceeded(&charge(&owner, 1, "llm").await, "workspace", 1_000, 1_000, &end);
    // Another workspace is not bound by it.
    let w2 = create_ws(&owner, &org, "Free").await;
    created(charge(&owner.in_workspace(&w2), 50, "llm").await);
    // A released hold gives everything back.
    let r = owner.put(&path, &json!({"limit": 1_500})).await.unwrap();
    assert_eq!(
        (&r.body["limit"], &r.body["used"], &r.body["alert_percents"]),
        (&json!(1_500), &json!(1_000), &json!([50, 80, 100]))
    );
    let h = created(hold(&owner, 500, None).await);
    exceeded(&charge(&owner, 1, "llm").await, "workspace", 1_500, 1_500, &end);
    expect_status(
        &owner.post(&format!("/v1/holds/{}/release", h["id"].as_str().unwrap()), &json!({})).await.unwrap(),
        200,
    );
    assert_eq!(get_budget(&owner, &path).await["used"], 1_000);

    // Removing it with limit null.
    let r = owner.put(&path, &json!({"limit": null})).await.unwrap();
    expect_status(&r, 200);
    assert_eq!((&r.body["limit"], &r.body["used"]), (&Value::Null, &json!(1_000)));
    assert_eq!(get_budget(&owner, &path).await["limit"], Value::Null);
    created(charge(&owner, 1_200, "llm").await);

    // Next cycle: the counter starts again.
    owner.put(&path, &json!({"limit": 1_000})).await.unwrap();
    exceeded(&charge(&owner, 1, "llm").await, "workspace", 1_000, 2_200, &end);
    past_cycle_end(&s, &owner, &org).await;
    let end2 = wallet(&owner, &org).await["cycle_ends_at"].clone();
    let b = get_budget(&owner, &path).await;
    assert_eq!((&b["used"], &b["limit"], &b["resets_at"]), (&json!(0), &json!(1_000), &end2), "{b}");
    created(charge(&owner, 1_000, "llm").await);
    exceeded(&charge(&owner, 1, "llm").await, "workspace", 1_000, 1_000, &end2);
    s.assert_ledger().await;
}

async fn member_and_key_budgets(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Members").await;
    let end = wallet(&owner, &org).await["cycle_ends_at"].clone();
    let (m, msg) = member(&s, &owner, &org, &ws, "member", Some("member")).await;
    let mid = uid(&msg);
    let path = format!("/v1/workspaces/{ws}/members/{mid}/budget");
    let r = owner.put(&path, &json!({"limit": 500})).await.unwrap();
    expect_status(&r, 200);
    assert_eq!(
        r.body,
        json!({"scope": "member", "workspace_id": ws, "user_id": mid, "limit": 500, "used": 0, "resets_at": end})
    );
    // The member reads their own budget as `me`.
    assert_eq!(get_budget(&m, &format!("/v1/workspaces/{ws}/members/me/budget")).await["limit"], 500);

    // The member's key charges count for the member.
    let (_, mkey) = api_key(&s, &m, &ws, None).await;
    created(charge(&mkey, 300, "llm").await);
    assert_eq!(get_budget(&owner, &path).await["used"], 300);
    created(charge(&m, 150, "llm").await);
    assert_eq!(get_budget(&owner, &path).await["used"], 450);
    exceeded(&charge(&mkey, 51, "llm").await, "member", 500, 450, &end);
    exceeded(&charge(&m, 51, "llm").await, "member", 500, 450, &end);
    created(charge(&m, 50, "llm").await);
    // The owner's own charges in the workspace are not the member's.
    created(charge(&owner, 700, "llm").await);
    assert_eq!(get_budget(&owner, &path).await["used"], 500);

    // A key's own spend_limit, per cycle; the owner has no member budget.
    let (_, okey) = api_key(&s, &owner, &ws, Some(100)).await;
    let h = created(hold(&okey, 80, None).await);
    exceeded(&charge(&okey, 21, "llm").await, "key", 100, 80, &end);
    expect_status(&settle(&okey, h["id"].as_str().unwrap(), 30).await, 200);
    created(charge(&okey, 70, "llm").await);
    exceeded(&charge(&okey, 1, "llm").await, "key", 100, 100, &end);

    // Removing the member budget frees the member (their key included).
    let r = owner.put(&path, &json!({"limit": null})).await.unwrap();
    expect_status(&r, 200);
    assert_eq!((&r.body["limit"], &r.body["used"]), (&Value::Null, &json!(500)));
    created(charge(&mkey, 100, "llm").await);

    // The next cycle resets the member and the key.
    owner.put(&path, &json!({"limit": 200})).await.unwrap();
    exceeded(&charge(&m, 1, "llm").await, "member", 200, 600, &end);
    past_cycle_end(&s, &owner, &org).await;
    let end2 = wallet(&owner, &org).await["cycle_ends_at"].clone();
    assert_eq!(get_budget(&owner, &path).await["used"], 0);
    created(charge(&okey, 100, "llm").await);
    exceeded(&charge(&okey, 1, "llm").await, "key", 100, 100, &end2);
    created(charge(&mkey, 200, "llm").await);
    exceeded(&charge(&m, 1, "llm").await, "member", 200, 200, &end2);
    // Budgets: only managers of the workspace set them.
    expect_problem(&m.put(&path, &json!({"limit": 10_000})).await.unwrap(), 403, "forbidden");
    expect_problem(&mkey.put(&path, &json!({"limit": 10_000})).await.unwrap(), 403, "forbidden");
    s.assert_ledger().await;
}

both_backends_with!(workspace_budget => super::long_sessions, member_and_key_budgets => super::long_sessions);

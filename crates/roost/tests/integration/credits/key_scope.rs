//! An API key draws credits from what the key cache holds: a charge, a hold, and reading or
//! settling the key's own hold read neither its workspace nor its org from the database (the key
//! names both for good, and deleting either revokes the key). Shown by taking the workspace row
//! away behind the server's back, which no API call can do without revoking the key: whatever
//! reads the workspace notices at once, the key's draws do not, and answer exactly as before.

use serde_json::json;

use super::common::*;
use crate::support::{create_ws, expect_problem, expect_status};
use roost_test_kit::TestServer;

async fn key_draws_without_reading_its_workspace(s: TestServer) {
    let (owner, _, org, _) = business(&s, "Keyed").await;
    let ws = create_ws(&owner, &org, "Agents").await;
    let other = create_ws(&owner, &org, "Other").await;
    let (key_id, key) = api_key(&s, &owner, &ws, None).await;
    // First use reads the key into the cache.
    created(charge(&key, 10, "llm").await);
    let h = created(hold(&key, 100, None).await);
    let hid = h["id"].as_str().unwrap().to_string();

    let store = roost_store::Store::connect(&s.admin_url).await.expect("connect");
    sqlx::query("DELETE FROM workspaces WHERE id = $1").bind(&ws).execute(store.pool()).await.unwrap();
    store.close().await;

    // Whatever reads the workspace row sees it gone: a user's charge there, and the key's own
    // `GET /v1/workspaces/current`.
    expect_problem(&charge(&owner.in_workspace(&ws), 1, "llm").await, 404, "not_found");
    expect_problem(&key.get("/v1/workspaces/current").await.unwrap(), 404, "not_found");

    // The key's draws do not read it: the same answers as before, the header rules included.
    let c = created(charge(&key, 20, "llm").await);
    assert_eq!(
        (&c["workspace_id"], &c["org_id"], &c["actor"], &c["amount"]),
        (&json!(ws), &json!(org), &json!({"type": "key", "id": key_id}), &json!(20))
    );
    created(charge(&key.in_workspace(&ws), 1, "llm").await);
    expect_problem(&charge(&key.in_workspace(&other), 1, "llm").await, 403, "forbidden");
    expect_problem(&hold(&key.in_workspace(&other), 1, None).await, 403, "forbidden");
    let h2 = created(hold(&key, 5, None).await);
    assert_eq!((&h2["workspace_id"], &h2["org_id"]), (&json!(ws), &json!(org)));
    let got = key.get(&format!("/v1/holds/{hid}")).await.unwrap();
    expect_status(&got, 200);
    assert_eq!(got.body["status"], "open");
    let r = settle(&key, &hid, 60).await;
    expect_status(&r, 200);
    assert_eq!((&r.body["charge"]["amount"], &r.body["charge"]["workspace_id"]), (&json!(60), &json!(ws)));
    let r = key.post(&format!("/v1/holds/{}/release", h2["id"].as_str().unwrap()), &json!({})).await.unwrap();
    expect_status(&r, 200);
    s.assert_ledger().await;
}

both_backends!(key_draws_without_reading_its_workspace);

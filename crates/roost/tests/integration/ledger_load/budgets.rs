//! Budgets as the binding limit under 64 concurrent clients: a workspace budget, one API key's
//! `spend_limit`, and a workspace budget shared by charges and holds.

use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::common::{Fire, Run, Tenant, distinct, idem_key, int, race, tenant};
use crate::support::{expect_problem, expect_status};
use roost_test_kit::TestServer;
use roost_test_kit::ledger::check_org;

const K: i64 = 40;
const AMOUNT: i64 = 7;
const LIMIT: i64 = K * AMOUNT;

both_backends!(workspace_budget_binds, key_spend_limit_binds, holds_count_toward_the_budget);

/// Sets the budget of workspace `ws` and checks the answer.
async fn set_budget(t: &Tenant, ws: &str, limit: i64) {
    let r = t.owner.put(&format!("/v1/workspaces/{ws}/budget"), &json!({"limit": limit})).await.unwrap();
    expect_status(&r, 200);
    assert_eq!((r.body["scope"].as_str(), r.body["limit"].as_i64()), (Some("workspace"), Some(limit)), "{}", r.body);
}

/// The workspace budget's `used`, as GET reports it.
async fn budget_used(t: &Tenant, ws: &str) -> i64 {
    let r = t.owner.get(&format!("/v1/workspaces/{ws}/budget")).await.unwrap();
    expect_status(&r, 200);
    int(&r.body, "used")
}

/// Every refusal is 403 `budget_exceeded` for `scope` at `limit` with `used`.
#[track_caller]
fn all_refused_by_budget(runs: &[Run], scope: &str, limit: i64, used: i64) {
    for r in runs {
        expect_problem(&r.refusal, 403, "budget_exceeded");
        let b = &r.refusal.body;
        assert_eq!(
            (b["scope"].as_str(), b["limit"].as_i64(), b["used"].as_i64()),
            (Some(scope), Some(limit), Some(used)),
            "refusal: {b}"
        );
        assert!(b["resets_at"].is_string(), "{b}");
    }
}

fn accepted(runs: &[Run]) -> Vec<&Value> {
    runs.iter().flat_map(|r| r.accepted.iter()).collect()
}

async fn workspace_budget_binds(s: TestServer) {
    let t = tenant(&s.client, 3).await;
    let ws = t.ws[0].as_str();
    let actors = t.actors(&s.client, 32, 32, &[ws]).await;
    let before = t.wallet().await;
    assert!(int(&before, "available") >= 10 * LIMIT, "plenty of credits: {before}");
    set_budget(&t, ws, LIMIT).await;

    let runs = race(actors.iter().map(|a| (a.client(&s.client), Fire::charge(AMOUNT))).collect()).await;
    let ok = accepted(&runs);
    assert_eq!(ok.len() as i64, K, "exactly {K} charges fit the workspace budget of {LIMIT}");
    distinct(ok.iter().map(|c| c["id"].as_str().unwrap().to_string()), "charge ids");
    assert!(ok.iter().all(|c| c["workspace_id"] == ws && int(c, "amount") == AMOUNT));
    all_refused_by_budget(&runs, "workspace", LIMIT, LIMIT);
    assert_eq!(budget_used(&t, ws).await, LIMIT);

    let w = t.wallet().await;
    assert_eq!(int(&w, "balance"), int(&before, "balance") - LIMIT, "{w}");
    assert_eq!(int(&w, "charged"), int(&before, "charged") + LIMIT, "{w}");
    // The other workspace has no budget: it still draws from the pool.
    let other = t.user_client(&s.client, 0).in_workspace(&t.ws[1]);
    let r = other.post_idem("/v1/charges", &idem_key("other"), &Fire::charge(AMOUNT).body).await.unwrap();
    expect_status(&r, 201);
    assert_eq!(r.body["workspace_id"], t.ws[1].as_str());

    let db = check_org(&s.admin_url, &t.org).await;
    assert_eq!(db.charges.len() as i64, K + 1);
    assert_eq!(db.balance, int(&before, "balance") - LIMIT - AMOUNT);
}

async fn key_spend_limit_binds(s: TestServer) {
    let t = tenant(&s.client, 1).await;
    let ws = t.ws[0].as_str();
    // A key made by the member, with a spend limit; 64 concurrent clients all use it.
    let key = t.key(&s.client, 1, ws, Some(LIMIT)).await;
    let before = t.wallet().await;

    let runs = race((0..64).map(|_| (key.client(&s.client), Fire::charge(AMOUNT))).collect()).await;
    let ok = accepted(&runs);
    assert_eq!(ok.len() as i64, K, "exactly {K} charges fit the key's spend limit of {LIMIT}");
    distinct(ok.iter().map(|c| c["id"].as_str().unwrap().to_string()), "charge ids");
    assert!(ok.iter().all(|c| c["actor"]["id"] == key.id() && c["actor"]["type"] == "key"));
    all_refused_by_budget(&runs, "key", LIMIT, LIMIT);

    // The key's limit is the key's: another key of the same member in the same workspace charges.
    let other = t.key(&s.client, 1, ws, None).await;
    let r = other.client(&s.client).post_idem("/v1/charges", &idem_key("other"), &Fire::charge(AMOUNT).body).await;
    expect_status(&r.unwrap(), 201);
    // The usage rollups agree: the limited key spent exactly its limit in K charges.
    let usage = t.owner.get(&format!("/v1/orgs/{}/usage?group_by=key", t.org)).await.unwrap();
    expect_status(&usage, 200);
    let g = usage.body["groups"].as_array().unwrap().iter().find(|g| g["key"] == key.id()).cloned();
    let g = g.unwrap_or_else(|| panic!("no usage group for the key: {}", usage.body));
    assert_eq!((int(&g, "amount"), int(&g, "count")), (LIMIT, K), "{}", usage.body);
    assert_eq!((int(&usage.body, "total"), int(&usage.body, "count")), (LIMIT + AMOUNT, K + 1), "{}", usage.body);

    let w = t.wallet().await;
    assert_eq!(int(&w, "balance"), int(&before, "balance") - LIMIT - AMOUNT, "{w}");
    let db = check_org(&s.admin_url, &t.org).await;
    assert_eq!(db.charges.len() as i64, K + 1);
}

async fn holds_count_toward_the_budget(s: TestServer) {
    let t = tenant(&s.client, 3).await;
    let ws = t.ws[0].as_str();
    let actors = t.actors(&s.client, 32, 32, &[ws]).await;
    let before = t.wallet().await;
    set_budget(&t, ws, LIMIT).await;

    // Half the clients hold, half charge; both draw on the same budget.
    let fire = |i: usize| if i.is_multiple_of(2) { Fire::charge(AMOUNT) } else { Fire::hold(AMOUNT) };
    let runs = race(actors.iter().enumerate().map(|(i, a)| (a.client(&s.client), fire(i))).collect()).await;
    let charges: Vec<&Value> = runs.iter().step_by(2).flat_map(|r| r.accepted.iter()).collect();
    let holds: Vec<&Value> = runs.iter().skip(1).step_by(2).flat_map(|r| r.accepted.iter()).collect();
    let (c, h) = (charges.len() as i64, holds.len() as i64);
    assert_eq!(c + h, K, "charges ({c}) and holds ({h}) together fill the budget of {LIMIT} exactly");
    assert!(c > 0 && h > 0, "both kinds got through (charges {c}, holds {h})");
    assert!(holds.iter().all(|x| x["status"] == "open" && int(x, "amount") == AMOUNT && x["workspace_id"] == ws));
    all_refused_by_budget(&runs, "workspace", LIMIT, LIMIT);
    assert_eq!(budget_used(&t, ws).await, LIMIT);
    let w = t.wallet().await;
    assert_eq!(int(&w, "held"), h * AMOUNT, "{w}");
    assert_eq!(int(&w, "balance"), int(&before, "balance") - c * AMOUNT, "{w}");
    assert_eq!(int(&w, "available"), int(&w, "balance") - h * AMOUNT, "{w}");
    let db = check_org(&s.admin_url, &t.org).await;
    assert_eq!(db.holds.iter().filter(|x| x.2 == "open").count() as i64, h);

    // Close the holds concurrently: the first half settled for 3 (4 go back), the rest released.
    let settled = h / 2;
    let mut set = JoinSet::new();
    for (i, hold) in holds.iter().enumerate() {
        let owner = t.owner.clone();
        let id = hold["id"].as_str().unwrap().to_string();
        let settle = (i as i64) < settled;
        set.spawn(async move {
            if settle {
                let r = owner
                    .post_idem(&format!("/v1/holds/{id}/settle"), &idem_key("settle"), &json!({"amount": 3}))
                    .await;
                let r = r.unwrap();
                expect_status(&r, 200);
                assert_eq!((int(&r.body["charge"], "amount"), int(&r.body, "released")), (3, AMOUNT - 3), "{}", r.body);
                assert_eq!(
                    (r.body["hold"]["status"].as_str(), r.body["charge"]["hold_id"].as_str()),
                    (Some("settled"), Some(id.as_str()))
                );
            } else {
                let r = owner.post(&format!("/v1/holds/{id}/release"), &json!({})).await.unwrap();
                expect_status(&r, 200);
                assert_eq!(r.body["status"], "released", "{}", r.body);
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.expect("closing a hold");
    }
    let used = c * AMOUNT + settled * 3;
    assert_eq!(budget_used(&t, ws).await, used, "a settle counts what it charged, a release gives everything back");

    // What the holds gave back is drawn again by a second race, exactly.
    let more = (LIMIT - used) / AMOUNT;
    let runs = race(actors.iter().map(|a| (a.client(&s.client), Fire::charge(AMOUNT))).collect()).await;
    assert_eq!(accepted(&runs).len() as i64, more, "charges that fit in the budget given back");
    all_refused_by_budget(&runs, "workspace", LIMIT, used + more * AMOUNT);
    let w = t.wallet().await;
    assert_eq!(int(&w, "held"), 0, "{w}");
    assert_eq!(int(&w, "balance"), int(&before, "balance") - used - more * AMOUNT, "{w}");
    let db = check_org(&s.admin_url, &t.org).await;
    assert_eq!(db.charges.len() as i64, c + settled + more);
    assert_eq!(db.held, 0);
}

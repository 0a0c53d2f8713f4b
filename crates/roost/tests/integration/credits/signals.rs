//! Events, wallet alerts and auto-reload through HTTP (API.md "Events and webhooks", "Wallet alerts
//! and auto-reload"): each event once per crossing, written with the batch that caused it — also
//! when 64 charges cross a threshold at once — and the settings' rules and roles.

use serde_json::{Value, json};

use super::common::*;
use crate::support::{expect_problem, expect_status};
use roost_test_kit::TestServer;
use roost_test_kit::process::Roost;

/// The org's events of `kind`, oldest first, read page by page (one event a page, so paging is
/// exercised too).
async fn events(c: &roost::Client, org: &str, kind: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/orgs/{org}/events?type={kind}&limit=1");
        if let Some(cur) = &cursor {
            path.push_str(&format!("&cursor={cur}"));
        }
        let r = c.get(&path).await.unwrap();
        expect_status(&r, 200);
        for e in r.body["items"].as_array().unwrap() {
            assert_eq!((&e["type"], &e["org_id"]), (&json!(kind), &json!(org)), "{e}");
            assert!(e["id"].as_str().unwrap().starts_with("evt_"), "{e}");
            out.push(e.clone());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(out.len() < 1_000, "paging ends");
    }
    out.reverse();
    out
}

async fn set_alert(c: &roost::Client, org: &str, low: Value) -> roost::Response {
    c.put(&format!("/v1/orgs/{org}/wallets/credits/alerts"), &json!({"low_balance": low})).await.unwrap()
}

async fn set_reload(c: &roost::Client, org: &str, body: Value) -> roost::Response {
    c.put(&format!("/v1/orgs/{org}/wallets/credits/auto-reload"), &body).await.unwrap()
}

async fn low_balance_once_per_crossing(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Alerts").await;
    assert_eq!(bha(&owner, &org).await.2, 5_000, "the business allocation");
    let r = set_alert(&owner, &org, json!(4_000)).await;
    expect_status(&r, 200);
    assert_eq!((&r.body["kind"], &r.body["low_balance"]), (&json!("credits"), &json!(4_000)), "{}", r.body);
    created(charge(&owner, 500, "llm").await);
    assert!(events(&owner, &org, "credits.low_balance").await.is_empty(), "4,500 is above the threshold");
    created(charge(&owner, 600, "llm").await);
    created(charge(&owner, 100, "llm").await);
    let low = events(&owner, &org, "credits.low_balance").await;
    assert_eq!(low.len(), 1, "once per crossing: {low:?}");
    assert_eq!(low[0]["data"]["available"], 3_900, "{}", low[0]);
    assert_eq!(low[0]["data"]["threshold"], 4_000, "{}", low[0]);
    // Rising above the threshold arms it again; the top-up is an event of its own.
    let g = topup(&owner, &org, 1_000).await;
    let topped = events(&owner, &org, "wallet.topped_up").await;
    assert_eq!(topped.len(), 1, "{topped:?}");
    assert_eq!((&topped[0]["data"]["amount"], &topped[0]["data"]["grant_id"]), (&json!(1_000), &g["id"]));
    created(charge(&owner, 1_000, "llm").await);
    let low = events(&owner, &org, "credits.low_balance").await;
    assert_eq!(low.len(), 2, "{low:?}");
    assert_eq!(low[1]["data"]["available"], 3_800, "{}", low[1]);
    // Turned off: no more.
    expect_status(&set_alert(&owner, &org, Value::Null).await, 200);
    topup(&owner, &org, 1_000).await;
    created(charge(&owner, 2_000, "llm").await);
    assert_eq!(events(&owner, &org, "credits.low_balance").await.len(), 2);

    // Who may: owner, admin, billing read events and set alerts; a member may not; an outsider
    // sees nothing at all.
    let (billing, _) = member(&s, &owner, &org, &ws, "billing", None).await;
    expect_status(&billing.get(&format!("/v1/orgs/{org}/events")).await.unwrap(), 200);
    expect_status(&set_alert(&billing, &org, json!(10)).await, 200);
    let (m, _) = member(&s, &owner, &org, &ws, "member", Some("member")).await;
    expect_problem(&m.get(&format!("/v1/orgs/{org}/events")).await.unwrap(), 403, "forbidden");
    expect_problem(&set_alert(&m, &org, json!(10)).await, 403, "forbidden");
    let (outsider, _) = s.signup("Outsider").await;
    expect_problem(&outsider.get(&format!("/v1/orgs/{org}/events")).await.unwrap(), 404, "not_found");
    expect_problem(&set_alert(&outsider, &org, json!(10)).await, 404, "not_found");
    // Bad input.
    for bad in [json!({"low_balance": -1}), json!({}), json!({"low_balance": "x"}), json!({"low_balance": 1, "x": 1})] {
        let r = owner.put(&format!("/v1/orgs/{org}/wallets/credits/alerts"), &bad).await.unwrap();
        assert!(r.status == 422 || r.status == 400, "{bad} → {} {}", r.status, r.body);
    }
    expect_problem(&owner.get(&format!("/v1/orgs/{org}/events?type=nope")).await.unwrap(), 422, "invalid_request");
    expect_problem(&owner.get(&format!("/v1/orgs/{org}/events?cursor=zzz")).await.unwrap(), 422, "invalid_request");
    s.assert_ledger().await;
}

/// 64 charges of 50 at once from 64 keys, with a low-balance alert at 4,000 and auto-reload of
/// 1,000 below 3,000 (at most 1,000 a month): whatever the order and the batches, available goes
/// 5,000 → 2,950 (one low-balance event at the 4,000 crossing, one reload) → 3,950 → 2,950 (the
/// month's maximum is reached: one failure event) → 2,800.
async fn sixty_four_charges_cross_once(s: TestServer) {
    let (owner, org, ws) = cross_once(&s, std::slice::from_ref(&s.base)).await;
    let r = owner.get(&format!("/v1/orgs/{org}/wallets/credits/auto-reload")).await.unwrap();
    assert_eq!(r.body["reloaded_this_month"], 1_000, "{}", r.body);

    // Auto-reload: owner and billing only; the settings are checked.
    let (admin, _) = member(&s, &owner, &org, &ws, "admin", None).await;
    let ok = json!({"enabled": true, "threshold": 1, "amount": 10, "monthly_max": 100});
    expect_problem(&set_reload(&admin, &org, ok.clone()).await, 403, "forbidden");
    for bad in [
        json!({"enabled": true, "threshold": 1, "amount": 0, "monthly_max": 100}),
        json!({"enabled": true, "threshold": -1, "amount": 10, "monthly_max": 100}),
        json!({"enabled": true, "threshold": 1, "amount": 200, "monthly_max": 100}),
    ] {
        expect_problem(&set_reload(&owner, &org, bad).await, 422, "invalid_request");
    }
    s.assert_ledger().await;
}

async fn depleted_once_until_funded(s: TestServer) {
    let (owner, _, org, _) = business(&s, "Depleted").await;
    created(charge(&owner, 5_000, "llm").await);
    expect_problem(&charge(&owner, 1, "llm").await, 402, "insufficient_credits");
    expect_problem(&hold(&owner, 5, None).await, 402, "insufficient_credits");
    let d = events(&owner, &org, "credits.depleted").await;
    assert_eq!(d.len(), 1, "once until funded: {d:?}");
    assert_eq!((&d[0]["data"]["needed"], &d[0]["data"]["available"]), (&json!(1), &json!(0)), "{}", d[0]);
    topup(&owner, &org, 10).await;
    expect_problem(&charge(&owner, 20, "llm").await, 402, "insufficient_credits");
    assert_eq!(events(&owner, &org, "credits.depleted").await.len(), 2);
    s.assert_ledger().await;
}

async fn budget_threshold_and_exceeded(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Budgets").await;
    let path = format!("/v1/workspaces/{ws}/budget");
    expect_status(&owner.put(&path, &json!({"limit": 1_000, "alert_percents": [50, 80]})).await.unwrap(), 200);
    created(charge(&owner, 400, "llm").await);
    created(charge(&owner, 200, "llm").await);
    created(charge(&owner, 300, "llm").await);
    let t = events(&owner, &org, "budget.threshold").await;
    let percents: Vec<&Value> = t.iter().map(|e| &e["data"]["percent"]).collect();
    assert_eq!(percents, [&json!(50), &json!(80)], "{t:?}");
    assert_eq!((&t[0]["workspace_id"], &t[0]["data"]["used"]), (&json!(ws), &json!(600)));
    expect_problem(&charge(&owner, 200, "llm").await, 403, "budget_exceeded");
    expect_problem(&charge(&owner, 150, "llm").await, 403, "budget_exceeded");
    let x = events(&owner, &org, "budget.exceeded").await;
    assert_eq!(x.len(), 1, "once per budget per cycle: {x:?}");
    assert_eq!((&x[0]["data"]["scope"], &x[0]["data"]["limit"]), (&json!("workspace"), &json!(1_000)));
    // The next cycle: both again.
    past_cycle_end(&s, &owner, &org).await;
    created(charge(&owner, 900, "llm").await);
    expect_problem(&charge(&owner, 200, "llm").await, 403, "budget_exceeded");
    assert_eq!(events(&owner, &org, "budget.threshold").await.len(), 4);
    assert_eq!(events(&owner, &org, "budget.exceeded").await.len(), 2);
    // The turn itself is an event, with the new cycle's allocation.
    let c = events(&owner, &org, "cycle.started").await;
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!((&c[0]["data"]["cycle"], &c[0]["data"]["allocation"]), (&json!(1), &json!(5_000)), "{}", c[0]);
    assert_eq!(c[0]["data"]["ends_at"], wallet(&owner, &org).await["cycle_ends_at"], "{}", c[0]);
    s.assert_ledger().await;
}

/// Found by review: a wallet already below the threshold when auto-reload is turned on reloads at
/// once (it used to refuse every charge for ever); a reload that lifts the wallet above the
/// low-balance threshold in the same command sends no low-balance alert.
async fn reload_when_already_low(s: TestServer) {
    let (owner, _, org, _) = business(&s, "Empty").await;
    created(charge(&owner, 5_000, "llm").await);
    expect_problem(&charge(&owner, 1, "llm").await, 402, "insufficient_credits");
    let r =
        set_reload(&owner, &org, json!({"enabled": true, "threshold": 50, "amount": 500, "monthly_max": 5_000})).await;
    expect_status(&r, 200);
    assert_eq!(r.body["reloaded_this_month"], 500, "{}", r.body);
    assert_eq!(bha(&owner, &org).await.2, 500);
    assert_eq!(events(&owner, &org, "wallet.auto_reloaded").await.len(), 1);
    // Charges go through again; the next crossing of 50 reloads again.
    created(charge(&owner, 460, "llm").await);
    assert_eq!(bha(&owner, &org).await.2, 540, "40 left, below 50: one more reload of 500");
    assert_eq!(events(&owner, &org, "wallet.auto_reloaded").await.len(), 2);

    // A low-balance threshold the same reload lifts the wallet back over: no alert.
    expect_status(&set_alert(&owner, &org, json!(400)).await, 200);
    expect_status(
        &set_reload(&owner, &org, json!({"enabled": true, "threshold": 400, "amount": 1_000, "monthly_max": 5_000}))
            .await,
        200,
    );
    created(charge(&owner, 200, "llm").await);
    assert_eq!(bha(&owner, &org).await.2, 1_340);
    assert!(events(&owner, &org, "credits.low_balance").await.is_empty(), "the reload kept it above 400");
    s.assert_ledger().await;
}

both_backends_with!(
    reload_when_already_low => super::long_sessions,
    low_balance_once_per_crossing => super::long_sessions,
    sixty_four_charges_cross_once => super::long_sessions,
    depleted_once_until_funded => super::long_sessions,
    budget_threshold_and_exceeded => super::long_sessions,
    answers_count_the_reload => super::long_sessions,
);
postgres_only!(sixty_four_charges_cross_once_in_three_processes);

/// The same crossing with the 64 charges spread over three `roost serve` processes on one
/// PostgreSQL database: still one alert, one reload and one failure.
async fn sixty_four_charges_cross_once_in_three_processes(s: TestServer) {
    let mut procs = Vec::new();
    for _ in 0..3 {
        procs.push(Roost::start(crate::ROOST, &s.database_url).await);
    }
    let bases: Vec<String> = procs.iter().map(|p| p.base.clone()).collect();
    let (owner, org, _) = cross_once(&s, &bases).await;
    // Each process reads the same settings, with this month's reload counted once.
    for p in &procs {
        let as_owner = p.client.with_token(owner.token().unwrap());
        let r = as_owner.get(&format!("/v1/orgs/{org}/wallets/credits/auto-reload")).await.unwrap();
        assert_eq!(r.body["reloaded_this_month"], 1_000, "{}", r.body);
    }
    for p in &mut procs {
        assert!(p.running(), "the roost process at {} died; log: {}", p.base, p.log.display());
        p.kill().await;
    }
}

/// Sets the alert and auto-reload, then fires 64 charges of 50 at once from 64 keys, charge `i`
/// to the server at `bases[i % len]`, and checks the events; returns `(owner, org, ws)`.
async fn cross_once(s: &TestServer, bases: &[String]) -> (roost::Client, String, String) {
    let (owner, _, org, ws) = business(s, "Crossing").await;
    expect_status(&set_alert(&owner, &org, json!(4_000)).await, 200);
    let r =
        set_reload(&owner, &org, json!({"enabled": true, "threshold": 3_000, "amount": 1_000, "monthly_max": 1_000}))
            .await;
    expect_status(&r, 200);
    assert_eq!(
        r.body,
        json!({"wallet_id": r.body["wallet_id"], "kind": "credits", "enabled": true, "threshold": 3_000,
               "amount": 1_000, "monthly_max": 1_000, "reloaded_this_month": 0})
    );
    let mut keys = Vec::new();
    for i in 0..64 {
        let k = api_key(s, &owner, &ws, None).await.1;
        keys.push(roost::Client::new(&bases[i % bases.len()]).with_token(k.token().unwrap()));
    }
    let tasks: Vec<_> =
        keys.into_iter().map(|k| tokio::spawn(async move { created(charge(&k, 50, "llm").await) })).collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(bha(&owner, &org).await.2, 2_800);
    let low = events(&owner, &org, "credits.low_balance").await;
    let reloaded = events(&owner, &org, "wallet.auto_reloaded").await;
    let failed = events(&owner, &org, "wallet.auto_reload_failed").await;
    assert_eq!((low.len(), reloaded.len(), failed.len()), (1, 1, 1), "{low:?} {reloaded:?} {failed:?}");
    assert_eq!(low[0]["data"]["available"], 3_950, "{}", low[0]);
    assert_eq!(reloaded[0]["data"]["amount"], 1_000, "{}", reloaded[0]);
    assert_eq!(failed[0]["data"]["reason"], "monthly_max", "{}", failed[0]);
    // The reload is a never-expiring top-up that says where it came from.
    let w = wallet(&owner, &org).await;
    let g = w["grants"].as_array().unwrap().iter().find(|g| g["id"] == reloaded[0]["data"]["grant_id"]).cloned();
    let g = g.unwrap_or_else(|| panic!("the reload's grant: {w}"));
    assert_eq!((&g["source"], &g["origin"], &g["expires_at"]), (&json!("topup"), &json!("auto_reload"), &Value::Null));
    (owner, org, ws)
}

/// Found by review: a charge or hold that caused a reload answered with what was left before it
/// (headroom and `Roost-Credits-Available` short by the reload's amount).
async fn answers_count_the_reload(s: TestServer) {
    let (owner, _, org, _) = business(&s, "Counted").await;
    let r = set_reload(&owner, &org, json!({"enabled": true, "threshold": 4_500, "amount": 500, "monthly_max": 5_000}));
    expect_status(&r.await, 200);
    let c = created(charge(&owner, 1_100, "llm").await);
    assert_eq!(c["balance_after"], 3_900, "the journal's balance right after the charge: {c}");
    assert_eq!(c["headroom"]["available"], 4_400, "the reload counted: {c}");
    assert_eq!(bha(&owner, &org).await.2, 4_400);
    // Back above the threshold (re-armed), then a hold that crosses it again.
    topup(&owner, &org, 1_000).await;
    let h = hold(&owner, 1_000, None).await;
    expect_status(&h, 201);
    assert_eq!(h.body["headroom"]["available"], 4_900, "5,400 − 1,000 + the 500 reload: {}", h.body);
    assert_eq!(bha(&owner, &org).await.2, 4_900);
    s.assert_ledger().await;
}

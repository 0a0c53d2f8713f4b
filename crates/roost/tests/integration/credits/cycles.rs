//! Billing cycles on the injected clock: monthly allocation, rollover (drawn first, capped, expiring
//! one cycle later, never rolled again), expiry entries, and top-ups that never expire and go last.

use roost_domain::Catalog;
use roost_server::Settings;
use serde_json::{Value, json};

use super::common::*;
use crate::support::{expect_status, list_all, ts_ms};
use roost_test_kit::TestServer;

/// `(source, remaining, expires_at ms or None)` of the wallet's live grants, sorted.
fn live(w: &Value) -> Vec<(String, i64, Option<i64>)> {
    let mut v: Vec<_> = w["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let exp = if g["expires_at"].is_null() { None } else { Some(ts_ms(&g["expires_at"])) };
            (g["source"].as_str().unwrap().to_string(), g["remaining"].as_i64().unwrap(), exp)
        })
        .collect();
    v.sort();
    v
}

/// `(granted, charged, expired, balance)` of a wallet view.
fn totals(w: &Value) -> (i64, i64, i64, i64) {
    let n = |k: &str| w[k].as_i64().unwrap_or_else(|| panic!("{k} missing: {w}"));
    (n("granted"), n("charged"), n("expired"), n("balance"))
}

async fn rollover_and_expiry(s: TestServer) {
    let (owner, _, org, _) = business(&s, "Rolling").await;
    let w0 = wallet(&owner, &org).await;
    let (start1, end1) = (ts_ms(&w0["cycle_started_at"]), ts_ms(&w0["cycle_ends_at"]));
    assert!(end1 - start1 >= 28 * DAY && end1 - start1 <= 31 * DAY, "a cycle is a calendar month: {w0}");
    assert_eq!(live(&w0), vec![("allocation".into(), 5_000, Some(end1))]);
    let alloc1 = grant_id(&w0, "allocation");
    let top = topup(&owner, &org, 1_000).await;
    let top_id = top["id"].as_str().unwrap().to_string();

    // Cycle 1: the allocation pays before the top-up.
    let c = created(charge(&owner, 3_000, "llm").await);
    assert_eq!(splits(&c), vec![(alloc1.clone(), 3_000)]);
    assert_eq!(c["balance_after"], 3_000);

    // Cycle 2: 2,000 rolled over + 5,000 allocated + the top-up.
    past_cycle_end(&s, &owner, &org).await;
    let w1 = wallet(&owner, &org).await;
    assert_eq!(ts_ms(&w1["cycle_started_at"]), end1, "{w1}");
    let end2 = ts_ms(&w1["cycle_ends_at"]);
    assert_eq!(
        live(&w1),
        vec![
            ("allocation".into(), 5_000, Some(end2)),
            ("rollover".into(), 2_000, Some(end2)),
            ("topup".into(), 1_000, None)
        ]
    );
    assert_eq!(totals(&w1), (13_000, 3_000, 2_000, 8_000));
    let roll2 = grant_id(&w1, "rollover");
    let alloc2 = grant_id(&w1, "allocation");
    // The rollover is drawn before this cycle's allocation.
    let c = created(charge(&owner, 1_500, "llm").await);
    assert_eq!(splits(&c), vec![(roll2.clone(), 1_500)]);
    assert_eq!(c["balance_after"], 6_500);

    // Cycle 3: the rollover's 500 expires (it never rolls again); the untouched allocation rolls.
    past_cycle_end(&s, &owner, &org).await;
    let w2 = wallet(&owner, &org).await;
    let end3 = ts_ms(&w2["cycle_ends_at"]);
    assert_eq!(ts_ms(&w2["cycle_started_at"]), end2);
    assert_eq!(
        live(&w2),
        vec![
            ("allocation".into(), 5_000, Some(end3)),
            ("rollover".into(), 5_000, Some(end3)),
            ("topup".into(), 1_000, None)
        ]
    );
    assert_eq!(totals(&w2), (23_000, 4_500, 7_500, 11_000));
    let roll3 = grant_id(&w2, "rollover");
    let alloc3 = grant_id(&w2, "allocation");
    assert!(roll3 != roll2 && alloc3 != alloc2);
    // Rollover, then allocation, then (last) the top-up.
    let c = created(charge(&owner, 10_500, "llm").await);
    assert_eq!(splits(&c), vec![(roll3.clone(), 5_000), (alloc3.clone(), 5_000), (top_id.clone(), 500)]);
    assert_eq!(c["balance_after"], 500);

    // Cycle 4: nothing left to roll; the top-up's 500 survives.
    past_cycle_end(&s, &owner, &org).await;
    let w3 = wallet(&owner, &org).await;
    let end4 = ts_ms(&w3["cycle_ends_at"]);
    assert_eq!(live(&w3), vec![("allocation".into(), 5_000, Some(end4)), ("topup".into(), 500, None)]);
    assert_eq!(totals(&w3), (28_000, 15_000, 7_500, 5_500));

    // The journal shows each expiry, at the grant's end, naming the grant, by the system.
    let all = list_all(&owner, &format!("/v1/orgs/{org}/transactions"), 7).await;
    let mut expiries: Vec<(String, i64, i64)> = all
        .iter()
        .filter(|e| e["type"] == "expiry")
        .map(|e| {
            assert_eq!(e["actor"]["type"], "system", "{e}");
            assert!(e["workspace_id"].is_null(), "{e}");
            let sp = splits(e);
            assert_eq!(sp.len(), 1, "{e}");
            assert_eq!(sp[0].1, e["amount"].as_i64().unwrap(), "{e}");
            (sp[0].0.clone(), e["amount"].as_i64().unwrap(), ts_ms(&e["at"]))
        })
        .collect();
    expiries.sort_by_key(|x| (x.2, x.1));
    assert_eq!(expiries, vec![(alloc1, 2_000, end1), (roll2, 500, end2), (alloc2, 5_000, end2)]);
    let mut grants: Vec<(String, i64)> = all
        .iter()
        .filter(|e| e["type"] == "grant")
        .map(|e| (e["action"].as_str().unwrap().to_string(), e["amount"].as_i64().unwrap()))
        .collect();
    grants.sort();
    assert_eq!(
        grants,
        vec![
            ("allocation".into(), 5_000),
            ("allocation".into(), 5_000),
            ("allocation".into(), 5_000),
            ("allocation".into(), 5_000),
            ("rollover".into(), 2_000),
            ("rollover".into(), 5_000),
            ("topup".into(), 1_000),
        ]
    );
    assert_eq!(all.iter().filter(|e| e["type"] == "charge").count(), 3);
    s.assert_ledger().await;
}

/// Team (10,000 a month, cap 10,000): a top-up is never rolled (only allocations roll), so what is
/// left above the cap stays a top-up; a rollover expires after one cycle and is not rolled again.
async fn only_allocations_roll(s: TestServer) {
    let (owner, _, org, _) = org_on(&s, "Teamish", "team").await;
    topup(&owner, &org, 5_000).await;
    assert_eq!(bha(&owner, &org).await, (15_000, 0, 15_000));
    past_cycle_end(&s, &owner, &org).await;
    let w = wallet(&owner, &org).await;
    let end = ts_ms(&w["cycle_ends_at"]);
    assert_eq!(
        live(&w),
        vec![
            ("allocation".into(), 10_000, Some(end)),
            ("rollover".into(), 10_000, Some(end)),
            ("topup".into(), 5_000, None)
        ]
    );
    past_cycle_end(&s, &owner, &org).await;
    let w = wallet(&owner, &org).await;
    let end2 = ts_ms(&w["cycle_ends_at"]);
    assert_eq!(
        live(&w),
        vec![
            ("allocation".into(), 10_000, Some(end2)),
            ("rollover".into(), 10_000, Some(end2)),
            ("topup".into(), 5_000, None)
        ]
    );
    // Cycle 1's allocation expired (10,000, 10,000 of it rolled); cycle 2's rollover and allocation
    // expired (20,000, 10,000 of it rolled).
    assert_eq!(totals(&w), (55_000, 0, 30_000, 25_000));
    s.assert_ledger().await;
}

/// Solo (1,000 a month, cap 0): nothing rolls; what is left expires.
async fn zero_cap(s: TestServer) {
    let (owner, _, org, _) = org_on(&s, "Solo", "solo").await;
    created(charge(&owner, 200, "llm").await);
    past_cycle_end(&s, &owner, &org).await;
    let w = wallet(&owner, &org).await;
    let end = ts_ms(&w["cycle_ends_at"]);
    assert_eq!(live(&w), vec![("allocation".into(), 1_000, Some(end))]);
    assert_eq!(totals(&w), (2_000, 200, 800, 1_000));
    s.assert_ledger().await;
}

/// A plan of 5,000 a month with a rollover cap of 1,000.
pub(crate) fn capped_catalog(s: &mut Settings) {
    let mut plans = Catalog::builtin().all().to_vec();
    let mut p = plans.iter().find(|p| p.id == "business").cloned().unwrap();
    p.id = "capped".into();
    p.name = "Capped".into();
    p.monthly_credits = Some(5_000);
    p.rollover_cap = Some(1_000);
    plans.push(p);
    s.catalog = Catalog::new(plans, "free").unwrap();
    long_sessions(s);
}

/// Leftover above the cap expires: 4,000 left, 1,000 rolls, 3,000 (and the whole 4,000 of the old
/// allocation, as journaled) expires.
async fn partial_cap(s: TestServer) {
    let (owner, _, org, _) = org_on(&s, "Capped", "capped").await;
    created(charge(&owner, 1_000, "llm").await);
    past_cycle_end(&s, &owner, &org).await;
    let w = wallet(&owner, &org).await;
    let end = ts_ms(&w["cycle_ends_at"]);
    assert_eq!(live(&w), vec![("allocation".into(), 5_000, Some(end)), ("rollover".into(), 1_000, Some(end))]);
    assert_eq!(totals(&w), (11_000, 1_000, 4_000, 6_000));
    let r = owner.get(&format!("/v1/orgs/{org}/transactions")).await.unwrap();
    expect_status(&r, 200);
    let exp: Vec<i64> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "expiry")
        .map(|e| e["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(exp, vec![4_000]);
    let rolled: Vec<&Value> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "grant" && e["action"] == "rollover")
        .collect();
    assert_eq!(rolled.len(), 1);
    assert_eq!(rolled[0]["amount"], json!(1_000));
    s.assert_ledger().await;
}

both_backends_with!(
    rollover_and_expiry => super::long_sessions,
    only_allocations_roll => super::long_sessions,
    zero_cap => super::long_sessions,
    partial_cap => super::capped_catalog,
);

/// Two processes on one PostgreSQL reach the same cycle end at once, each with requests that make
/// its ledger turn the cycle: the turn happens exactly once (one allocation and one rollover for the
/// new cycle), whichever process gets there first.
async fn replicas_turn_a_cycle_once(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Twice").await;
    created(charge(&owner, 1_000, "llm").await);
    // API keys: user sessions would expire over the month the clocks jump.
    let (_, key) = api_key(&s, &owner, &ws, None).await;
    let r = s.replica().await;
    let key_r = r.client.with_token(key.token().unwrap());
    let end = ts_ms(&wallet(&owner, &org).await["cycle_ends_at"]);
    advance_to(&s, end + 1_000);
    advance_to(&r, end + 1_000);

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let c = if i % 2 == 0 { key.clone() } else { key_r.clone() };
        tasks.spawn(async move { c.get("/v1/wallets").await.unwrap() });
    }
    while let Some(res) = tasks.join_next().await {
        let res = res.unwrap();
        expect_status(&res, 200);
        let w = &res.body["items"][0];
        assert_eq!((w["balance"].as_i64(), w["cycle_started_at"].as_str().map(|_| ())), (Some(9_000), Some(())), "{w}");
    }
    let store = roost_store::Store::connect(&s.admin_url).await.unwrap();
    let (wallets, grants) = store.wallets_of(&org).await.unwrap();
    store.close().await;
    assert_eq!((wallets[0].cycle, wallets[0].balance, wallets[0].granted), (1, 9_000, 14_000), "{wallets:?}");
    let new_cycle: Vec<(&str, i64)> =
        grants.iter().filter(|g| g.effective_at == end).map(|g| (g.source.as_str(), g.amount)).collect();
    let mut sorted = new_cycle.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![("allocation", 5_000), ("rollover", 4_000)], "exactly one turn: {grants:?}");
    s.assert_ledger().await;
}

postgres_only!(replicas_turn_a_cycle_once);

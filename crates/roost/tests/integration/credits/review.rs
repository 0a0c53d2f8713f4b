//! Regressions of defects an independent review found: minting credits by re-putting or switching
//! plans, an adjustment of `i64::MIN` that corrupted the wallet, and journal cursors that were not
//! checked.

use serde_json::json;

use super::common::*;
use crate::support::{expect_invalid, expect_status};
use roost_test_kit::TestServer;

/// Lifetime totals `(granted, charged, expired, balance)` of the org's credits wallet.
async fn totals(c: &roost::Client, org: &str) -> (i64, i64, i64, i64) {
    let w = wallet(c, org).await;
    let n = |k: &str| w[k].as_i64().unwrap();
    (n("granted"), n("charged"), n("expired"), n("balance"))
}

async fn plan_changes_mint_nothing(s: TestServer) {
    let (owner, _, org, _) = business(&s, "Planner").await;
    created(charge(&owner, 5_000, "all").await);
    assert_eq!(totals(&owner, &org).await, (5_000, 5_000, 0, 0));

    // Putting the plan it already has changes nothing: no new allocation, no new cycle.
    let before = wallet(&owner, &org).await;
    for _ in 0..3 {
        let r = owner.put(&format!("/v1/orgs/{org}/plan"), &json!({"plan": "business"})).await.unwrap();
        expect_status(&r, 200);
        assert_eq!(r.body["plan"], "business");
    }
    let after = wallet(&owner, &org).await;
    assert_eq!(totals(&owner, &org).await, (5_000, 5_000, 0, 0), "re-putting the plan minted credits: {after}");
    assert_eq!(after["cycle_started_at"], before["cycle_started_at"], "the cycle did not restart");

    // Switching plans back and forth: each new allocation is the new allowance less what the cycle
    // already used (all 5,000), so nothing is minted.
    for plan in ["pro", "business", "pro", "business"] {
        s.clock.advance(1_000);
        let r = owner.put(&format!("/v1/orgs/{org}/plan"), &json!({"plan": plan})).await.unwrap();
        expect_status(&r, 200);
        assert_eq!(bha(&owner, &org).await, (0, 0, 0), "after switching to {plan}");
    }
    // An upgrade gives what the bigger allowance adds: team is 10,000 a month, 5,000 were used.
    s.clock.advance(1_000);
    let r = owner.put(&format!("/v1/orgs/{org}/plan"), &json!({"plan": "team"})).await.unwrap();
    expect_status(&r, 200);
    assert_eq!(bha(&owner, &org).await, (5_000, 0, 5_000), "team's allowance less the 5,000 used");
    let w = wallet(&owner, &org).await;
    assert_eq!(grants_of(&w), vec![("allocation".to_string(), 5_000, 0)], "{w}");
    s.assert_ledger().await;
}

async fn adjustments_cannot_overflow(s: TestServer) {
    let (owner, _, org, _) = business(&s, "Overflow").await;
    let before = totals(&owner, &org).await;
    for amount in [json!(i64::MIN), json!(i64::MAX), json!(-1_000_000_000_000_001_i64)] {
        let r = owner
            .post_idem(
                &format!("/v1/orgs/{org}/wallets/credits/adjustments"),
                &idem(),
                &json!({"amount": amount, "reason": "hostile"}),
            )
            .await
            .unwrap();
        expect_invalid(&r, "amount");
    }
    assert_eq!(totals(&owner, &org).await, before, "a refused adjustment changed the wallet");
    // A debit within range still works and keeps the books.
    let r = owner
        .post_idem(
            &format!("/v1/orgs/{org}/wallets/credits/adjustments"),
            &idem(),
            &json!({"amount": -1_000, "reason": "fix"}),
        )
        .await
        .unwrap();
    expect_status(&r, 201);
    assert_eq!(totals(&owner, &org).await, (5_000, 1_000, 0, 4_000));
    s.assert_ledger().await;
}

async fn journal_cursors_are_checked(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Cursor").await;
    created(charge(&owner, 10, "llm").await);
    for path in [format!("/v1/orgs/{org}/transactions"), format!("/v1/workspaces/{ws}/transactions")] {
        for bad in ["abc", "-1", "0", "1.5"] {
            let r = owner.get(&format!("{path}?cursor={bad}")).await.unwrap();
            expect_invalid(&r, "cursor");
        }
        // A cursor the server issued pages on.
        let first = owner.get(&format!("{path}?limit=1")).await.unwrap();
        expect_status(&first, 200);
        let next = first.body["next_cursor"].as_str().map(str::to_string);
        if let Some(c) = next {
            let r = owner.get(&format!("{path}?limit=1&cursor={c}")).await.unwrap();
            expect_status(&r, 200);
            assert_ne!(r.body["items"][0]["id"], first.body["items"][0]["id"], "{}", r.body);
        }
    }
}

both_backends!(plan_changes_mint_nothing, adjustments_cannot_overflow, journal_cursors_are_checked);

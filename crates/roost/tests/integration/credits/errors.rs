//! Every Credits error code through HTTP, with its problem body and extension members.

use reqwest::Method;
use serde_json::json;

use super::common::*;
use crate::support::{create_ws, expect_invalid, expect_problem, expect_status, uid};
use roost_test_kit::TestServer;

/// 402 `insufficient_credits` with the exact `available`, holds included.
async fn insufficient_credits(s: TestServer) {
    let (owner, _, org, _) = business(&s, "Poor").await;
    created(charge(&owner, 4_000, "llm").await);
    let r = charge(&owner, 1_001, "llm").await;
    expect_problem(&r, 402, "insufficient_credits");
    assert_eq!(r.body["title"], "Payment Required", "{}", r.body);
    assert_eq!(r.body["available"], 1_000, "{}", r.body);
    // A hold lowers what is available.
    expect_status(&hold(&owner, 300, None).await, 201);
    let r = charge(&owner, 701, "llm").await;
    expect_problem(&r, 402, "insufficient_credits");
    assert_eq!(r.body["available"], 700, "{}", r.body);
    let r = hold(&owner, 701, None).await;
    expect_problem(&r, 402, "insufficient_credits");
    assert_eq!(r.body["available"], 700, "{}", r.body);
    // Exactly what is available still goes through, and nothing was taken by the refusals.
    created(charge(&owner, 700, "llm").await);
    assert_eq!(bha(&owner, &org).await, (300, 300, 0));
    let r = charge(&owner, 1, "llm").await;
    expect_problem(&r, 402, "insufficient_credits");
    assert_eq!(r.body["available"], 0, "{}", r.body);
    s.assert_ledger().await;
}

/// 403 `budget_exceeded` for each scope, with exact `limit`, `used` and `resets_at` = the cycle end.
async fn budget_exceeded(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Capped").await;
    let end = wallet(&owner, &org).await["cycle_ends_at"].clone();
    assert!(end.is_string(), "the credits wallet shows its cycle end");

    // Workspace.
    let r = owner.put(&format!("/v1/workspaces/{ws}/budget"), &json!({"limit": 1_000})).await.unwrap();
    expect_status(&r, 200);
    created(charge(&owner, 600, "llm").await);
    let r = charge(&owner, 401, "llm").await;
    expect_problem(&r, 403, "budget_exceeded");
    assert_eq!(
        (&r.body["scope"], &r.body["limit"], &r.body["used"], &r.body["resets_at"]),
        (&json!("workspace"), &json!(1_000), &json!(600), &end),
        "{}",
        r.body
    );

    // Member: in a second workspace without a workspace budget.
    let w2 = create_ws(&owner, &org, "Second").await;
    let (m, msg) = member(&s, &owner, &org, &w2, "member", Some("member")).await;
    let r =
        owner.put(&format!("/v1/workspaces/{w2}/members/{}/budget", uid(&msg)), &json!({"limit": 300})).await.unwrap();
    expect_status(&r, 200);
    created(charge(&m, 200, "llm").await);
    let r = charge(&m, 101, "llm").await;
    expect_problem(&r, 403, "budget_exceeded");
    assert_eq!(
        (&r.body["scope"], &r.body["limit"], &r.body["used"], &r.body["resets_at"]),
        (&json!("member"), &json!(300), &json!(200), &end),
        "{}",
        r.body
    );
    // The owner in the same workspace is not bound by the member's budget.
    created(charge(&owner.in_workspace(&w2), 500, "llm").await);

    // Key spend_limit.
    let (_, key) = api_key(&s, &owner, &w2, Some(100)).await;
    created(charge(&key, 60, "llm").await);
    let r = charge(&key, 41, "llm").await;
    expect_problem(&r, 403, "budget_exceeded");
    assert_eq!(
        (&r.body["scope"], &r.body["limit"], &r.body["used"], &r.body["resets_at"]),
        (&json!("key"), &json!(100), &json!(60), &end),
        "{}",
        r.body
    );
    // Nothing refused was taken: 5,000 − 600 − 200 − 500 − 60.
    assert_eq!(bha(&owner, &org).await, (3_640, 0, 3_640));
    s.assert_ledger().await;
}

/// 422 `settle_exceeds_hold` with `held`; 409 `hold_closed` for settled, released and expired holds.
async fn hold_errors(s: TestServer) {
    let (owner, _, org, _) = business(&s, "Holder").await;
    let h = created(hold(&owner, 500, None).await);
    let id = h["id"].as_str().unwrap();
    let r = settle(&owner, id, 501).await;
    expect_problem(&r, 422, "settle_exceeds_hold");
    assert_eq!(r.body["held"], 500, "{}", r.body);
    // The refused settle left the hold open.
    let g = owner.get(&format!("/v1/holds/{id}")).await.unwrap();
    assert_eq!(g.body["status"], "open", "{}", g.body);

    expect_status(&settle(&owner, id, 500).await, 200);
    let r = settle(&owner, id, 1).await;
    expect_problem(&r, 409, "hold_closed");
    assert_eq!(r.body["hold_status"], "settled", "{}", r.body);
    let r = owner.post(&format!("/v1/holds/{id}/release"), &json!({})).await.unwrap();
    expect_problem(&r, 409, "hold_closed");
    assert_eq!(r.body["hold_status"], "settled", "{}", r.body);

    let h = created(hold(&owner, 400, None).await);
    let id = h["id"].as_str().unwrap();
    expect_status(&owner.post(&format!("/v1/holds/{id}/release"), &json!({})).await.unwrap(), 200);
    let r = settle(&owner, id, 1).await;
    expect_problem(&r, 409, "hold_closed");
    assert_eq!(r.body["hold_status"], "released", "{}", r.body);

    let h = created(hold(&owner, 300, Some(60)).await);
    let id = h["id"].as_str().unwrap();
    s.clock.advance(61_000);
    let r = settle(&owner, id, 1).await;
    expect_problem(&r, 409, "hold_closed");
    assert_eq!(r.body["hold_status"], "expired", "{}", r.body);
    let r = owner.post(&format!("/v1/holds/{id}/release"), &json!({})).await.unwrap();
    expect_problem(&r, 409, "hold_closed");
    assert_eq!(r.body["hold_status"], "expired", "{}", r.body);
    assert_eq!(bha(&owner, &org).await, (4_500, 0, 4_500));
    s.assert_ledger().await;
}

/// 409 `idempotency_conflict`: the same key with another body, another actor, another workspace.
async fn idempotency_conflict(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Conflicted").await;
    let key = idem();
    expect_status(&owner.post_idem("/v1/charges", &key, &json!({"amount": 10, "action": "a"})).await.unwrap(), 201);
    for body in [json!({"amount": 11, "action": "a"}), json!({"amount": 10, "action": "b"})] {
        let r = owner.post_idem("/v1/charges", &key, &body).await.unwrap();
        expect_problem(&r, 409, "idempotency_conflict");
    }
    // Another actor of the same org, and the same actor in another workspace.
    let (m, _) = member(&s, &owner, &org, &ws, "member", Some("member")).await;
    let r = m.post_idem("/v1/charges", &key, &json!({"amount": 10, "action": "a"})).await.unwrap();
    expect_problem(&r, 409, "idempotency_conflict");
    let w2 = create_ws(&owner, &org, "Other").await;
    let r =
        owner.in_workspace(&w2).post_idem("/v1/charges", &key, &json!({"amount": 10, "action": "a"})).await.unwrap();
    expect_problem(&r, 409, "idempotency_conflict");
    // A top-up reusing a charge's key.
    let r =
        owner.post_idem(&format!("/v1/orgs/{org}/wallets/credits/topups"), &key, &json!({"amount": 10})).await.unwrap();
    expect_problem(&r, 409, "idempotency_conflict");
    assert_eq!(bha(&owner, &org).await, (4_990, 0, 4_990));
    s.assert_ledger().await;
}

/// 403 `forbidden`: viewers charging or holding, members and admins topping up, non-owners adjusting.
async fn forbidden(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Strict").await;
    let (viewer, _) = member(&s, &owner, &org, &ws, "member", Some("viewer")).await;
    expect_problem(&charge(&viewer, 1, "llm").await, 403, "forbidden");
    expect_problem(&hold(&viewer, 1, None).await, 403, "forbidden");
    let (plain, _) = member(&s, &owner, &org, &ws, "member", Some("member")).await;
    let (admin, _) = member(&s, &owner, &org, &ws, "admin", None).await;
    let (billing, _) = member(&s, &owner, &org, &ws, "billing", None).await;
    for who in [&plain, &admin] {
        let r = who
            .post_idem(&format!("/v1/orgs/{org}/wallets/credits/topups"), &idem(), &json!({"amount": 5}))
            .await
            .unwrap();
        expect_problem(&r, 403, "forbidden");
    }
    for who in [&plain, &admin, &billing] {
        let r = who
            .post_idem(
                &format!("/v1/orgs/{org}/wallets/credits/adjustments"),
                &idem(),
                &json!({"amount": 5, "reason": "x"}),
            )
            .await
            .unwrap();
        expect_problem(&r, 403, "forbidden");
    }
    // The owner may adjust both ways.
    let r = owner
        .post_idem(
            &format!("/v1/orgs/{org}/wallets/credits/adjustments"),
            &idem(),
            &json!({"amount": 50, "reason": "gift"}),
        )
        .await
        .unwrap();
    expect_status(&r, 201);
    assert_eq!(
        (&r.body["grant"]["source"], &r.body["grant"]["amount"]),
        (&json!("adjustment"), &json!(50)),
        "{}",
        r.body
    );
    let r = owner
        .post_idem(
            &format!("/v1/orgs/{org}/wallets/credits/adjustments"),
            &idem(),
            &json!({"amount": -20, "reason": "fix"}),
        )
        .await
        .unwrap();
    expect_status(&r, 201);
    assert_eq!(r.body["adjustment"]["amount"], 20, "{}", r.body);
    // Billing tops up; nothing refused changed the wallet: 5,000 + 50 − 20 + 7.
    topup(&billing, &org, 7).await;
    assert_eq!(bha(&owner, &org).await, (5_037, 0, 5_037));
    s.assert_ledger().await;
}

/// 404 `not_found` for another tenant's hold, wallet, org and workspace transactions.
async fn other_tenants(s: TestServer) {
    let (a, _, org_a, ws_a) = business(&s, "Alpha").await;
    let (b, _, org_b, ws_b) = business(&s, "Beta").await;
    let h = created(hold(&a, 100, None).await);
    let hid = h["id"].as_str().unwrap();
    let wal_a = wallet(&a, &org_a).await["id"].as_str().unwrap().to_string();
    let wal_b = wallet(&b, &org_b).await["id"].as_str().unwrap().to_string();
    let missing_hold = "hold_00000000000000000000000000";
    for hid in [hid, missing_hold] {
        expect_problem(&b.get(&format!("/v1/holds/{hid}")).await.unwrap(), 404, "not_found");
        expect_problem(&settle(&b, hid, 1).await, 404, "not_found");
        let r = b.post(&format!("/v1/holds/{hid}/release"), &json!({})).await.unwrap();
        expect_problem(&r, 404, "not_found");
    }
    for path in [
        format!("/v1/orgs/{org_a}/wallets"),
        format!("/v1/orgs/{org_a}/transactions"),
        format!("/v1/orgs/{org_a}/usage"),
        format!("/v1/workspaces/{ws_a}/transactions"),
        format!("/v1/workspaces/{ws_a}/budget"),
    ] {
        expect_problem(&b.get(&path).await.unwrap(), 404, "not_found");
    }
    let r =
        b.post_idem(&format!("/v1/orgs/{org_a}/wallets/credits/topups"), &idem(), &json!({"amount": 5})).await.unwrap();
    expect_problem(&r, 404, "not_found");
    // A's wallet id under B's org path.
    let r =
        b.post_idem(&format!("/v1/orgs/{org_b}/wallets/{wal_a}/topups"), &idem(), &json!({"amount": 5})).await.unwrap();
    expect_problem(&r, 404, "not_found");
    // B's wallet by id works.
    let r =
        b.post_idem(&format!("/v1/orgs/{org_b}/wallets/{wal_b}/topups"), &idem(), &json!({"amount": 5})).await.unwrap();
    expect_status(&r, 201);
    // Charging in A's workspace by naming it.
    expect_problem(&charge(&b.in_workspace(&ws_a), 1, "x").await, 404, "not_found");
    // A key of B cannot see A's hold either.
    let (_, kb) = api_key(&s, &b, &ws_b, None).await;
    expect_problem(&kb.get(&format!("/v1/holds/{hid}")).await.unwrap(), 404, "not_found");
    // The hold is untouched.
    assert_eq!(bha(&a, &org_a).await, (5_000, 100, 4_900));
    assert_eq!(bha(&b, &org_b).await, (5_005, 0, 5_005));
    s.assert_ledger().await;
}

/// 422 `invalid_request` naming the field, and 400 `malformed_json`.
async fn invalid_input(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Sloppy").await;
    let cases = [
        ("/v1/charges", json!({"amount": 0, "action": "a"}), "amount"),
        ("/v1/charges", json!({"amount": -5, "action": "a"}), "amount"),
        ("/v1/charges", json!({"amount": 1_000_000_000_000_000_001_i64, "action": "a"}), "amount"),
        ("/v1/charges", json!({"amount": 10_000_000_000_000_000_000_u64, "action": "a"}), "amount"),
        ("/v1/charges", json!({"amount": 1, "action": ""}), "action"),
        ("/v1/charges", json!({"amount": 1, "action": "a", "wallet": "gold"}), "wallet"),
        ("/v1/charges", json!({"amount": 1, "action": "a", "metadata": "note"}), "metadata"),
        ("/v1/charges", json!({"amount": 1, "action": "a", "metadata": [1, 2]}), "metadata"),
        ("/v1/holds", json!({"amount": 0, "action": "a"}), "amount"),
        ("/v1/holds", json!({"amount": 1, "action": "a", "ttl_seconds": 0}), "ttl_seconds"),
        ("/v1/holds", json!({"amount": 1, "action": "a", "ttl_seconds": 8 * 86_400}), "ttl_seconds"),
        ("/v1/holds", json!({"amount": 1, "action": "a", "wallet": "gold"}), "wallet"),
    ];
    for (path, body, field) in &cases {
        let r = owner.post_idem(path, &idem(), body).await.unwrap();
        assert_eq!(r.status, 422, "{path} {body}: {}", r.body);
        expect_invalid(&r, field);
    }
    let topups = format!("/v1/orgs/{org}/wallets/credits/topups");
    for amount in [0, -1] {
        expect_invalid(&owner.post_idem(&topups, &idem(), &json!({"amount": amount})).await.unwrap(), "amount");
    }
    // Missing Idempotency-Key, on every (idem) endpoint.
    let h = created(hold(&owner, 10, None).await);
    let hid = h["id"].as_str().unwrap();
    for (path, body) in [
        ("/v1/charges".to_string(), json!({"amount": 1, "action": "a"})),
        ("/v1/holds".to_string(), json!({"amount": 1, "action": "a"})),
        (format!("/v1/holds/{hid}/settle"), json!({"amount": 1})),
        (topups.clone(), json!({"amount": 1})),
        (format!("/v1/orgs/{org}/wallets/credits/adjustments"), json!({"amount": 1, "reason": "r"})),
    ] {
        let r = owner.post(&path, &body).await.unwrap();
        expect_invalid(&r, "Idempotency-Key");
    }
    // Checked first: naming a workspace that does not exist (or an empty one) does not turn a
    // request without a key into a 404 (found by schemathesis).
    for ws_header in ["", "ws_nope"] {
        for path in ["/v1/charges", "/v1/holds"] {
            let r = owner
                .with_header("Roost-Workspace", ws_header)
                .post(path, &json!({"amount": 1, "action": "a"}))
                .await
                .unwrap();
            expect_invalid(&r, "Idempotency-Key");
        }
    }
    // Budgets: `limit` is required (null removes), and not negative.
    for body in [json!({}), json!({"alert_percents": [50]}), json!({"limit": -1})] {
        expect_invalid(&owner.put(&format!("/v1/workspaces/{ws}/budget"), &body).await.unwrap(), "limit");
    }
    // Unknown wallet kind in the path.
    let r =
        owner.post_idem(&format!("/v1/orgs/{org}/wallets/gold/topups"), &idem(), &json!({"amount": 1})).await.unwrap();
    assert!(matches!(r.status, 404 | 422), "unknown wallet kind in the path: {} {}", r.status, r.body);
    // Malformed JSON.
    for path in ["/v1/charges", "/v1/holds", topups.as_str()] {
        let r = owner
            .with_header("Idempotency-Key", &idem())
            .send_raw(Method::POST, path, b"{\"amount\": 1,".to_vec())
            .await
            .unwrap();
        expect_problem(&r, 400, "malformed_json");
    }
    // None of it moved a credit: only the one hold of 10 is held.
    assert_eq!(bha(&owner, &org).await, (5_000, 10, 4_990));
    s.assert_ledger().await;
}

both_backends!(
    insufficient_credits,
    budget_exceeded,
    hold_errors,
    idempotency_conflict,
    forbidden,
    other_tenants,
    invalid_input
);

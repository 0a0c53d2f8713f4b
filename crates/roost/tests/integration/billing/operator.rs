//! The operator: keys of its own on the /v1/admin routes only, grants that land at once and are
//! audited with the operator as actor; with billing on, owners' top-ups wait for payment and
//! adjustments are the operator's alone; with billing off, both grant at once as before.

use serde_json::json;

use super::common::*;
use crate::support::{expect_problem, expect_status, uid};
use roost_test_kit::TestServer;

async fn operator_acts_alone(s: TestServer) {
    let (owner, _) = s.signup("Owner").await;
    let (billing, billing_signup) = s.signup("Billing").await;
    let (admin, admin_signup) = s.signup("Admin").await;
    let (org, _) = s.org(&owner, "Paying", "team").await;
    s.add_member(&owner, &org, &billing, &billing_signup, "billing").await;
    s.add_member(&owner, &org, &admin, &admin_signup, "admin").await;
    let (op_id, op_secret) = operator_key(&s).await;
    let op = s.client.with_token(&op_secret);

    // An owner's top-up is a purchase: pending, no credits yet.
    let r = owner
        .post_idem(&format!("/v1/orgs/{org}/wallets/credits/topups"), &idem(), &json!({"amount": 500}))
        .await
        .unwrap();
    expect_status(&r, 201);
    assert_eq!(r.body["purchase"]["status"], "pending", "{:?}", r.body);
    assert_eq!(r.body["purchase"]["credits"], 500);
    assert_eq!(r.body["purchase"]["amount"], 50_000, "500 credits at IDR 100,000 per 1,000");
    assert!(r.body["purchase"]["id"].as_str().unwrap().starts_with("pur_"));
    assert_eq!(topped_up(&owner, &org).await, 0);
    // Adjustments are the operator's alone.
    for who in [&owner, &billing, &admin] {
        let r = who
            .post_idem(
                &format!("/v1/orgs/{org}/wallets/credits/adjustments"),
                &idem(),
                &json!({"amount": 100, "reason": "x"}),
            )
            .await
            .unwrap();
        expect_problem(&r, 403, "forbidden");
    }
    assert_eq!(topped_up(&owner, &org).await, 0);

    // The operator's grant lands at once and is audited as the operator's.
    let r = op
        .post(
            &format!("/v1/admin/orgs/{org}/wallets/credits/grants"),
            &json!({"amount": 700, "reason": "launch promo"}),
        )
        .await
        .unwrap();
    expect_status(&r, 201);
    assert_eq!(r.body["grant"]["amount"], 700, "{:?}", r.body);
    let w = wallet(&owner, &org).await;
    assert!(
        w["grants"].as_array().unwrap().iter().any(|g| g["source"] == "adjustment" && g["remaining"] == 700),
        "{w}"
    );
    let audit = owner.get(&format!("/v1/orgs/{org}/audit?action=wallet.adjusted")).await.unwrap();
    let e = &audit.body["items"][0];
    assert_eq!(
        (e["actor"]["type"].as_str(), e["actor"]["id"].as_str()),
        (Some("operator"), Some(op_id.as_str())),
        "{e}"
    );
    // A debit never below what is held; bad input is refused whole.
    let r = op
        .post(&format!("/v1/admin/orgs/{org}/wallets/credits/grants"), &json!({"amount": 0, "reason": "x"}))
        .await
        .unwrap();
    expect_problem(&r, 422, "invalid_request");
    let r = op
        .post(
            "/v1/admin/orgs/org_00000000000000000000000000/wallets/credits/grants",
            &json!({"amount": 1, "reason": "x"}),
        )
        .await
        .unwrap();
    expect_problem(&r, 404, "not_found");

    // Every org, with its plan and members.
    let r = op.get("/v1/admin/orgs?limit=500").await.unwrap();
    expect_status(&r, 200);
    let listed = r.body["items"].as_array().unwrap().iter().find(|o| o["id"] == org.as_str()).cloned().unwrap();
    assert_eq!((listed["plan"].as_str(), listed["members"].as_i64()), (Some("team"), Some(3)), "{listed}");
    assert!(listed["balance"].as_i64().unwrap() >= 700);

    // A plan given without payment.
    let r = op.put(&format!("/v1/admin/orgs/{org}/plan"), &json!({"plan": "business"})).await.unwrap();
    expect_status(&r, 200);
    assert_eq!(r.body["plan"], "business");
    let audit = owner.get(&format!("/v1/orgs/{org}/audit?action=plan.changed")).await.unwrap();
    assert_eq!(audit.body["items"][0]["actor"]["type"], "operator", "{:?}", audit.body);
    let draft = &invoices(&owner, &org).await[0];
    assert!(
        draft["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["description"].as_str().unwrap().contains("given by the operator")),
        "{draft}"
    );

    // Operator keys never act as a user; user tokens never act as the operator.
    for path in ["/v1/me".to_string(), format!("/v1/orgs/{org}"), format!("/v1/orgs/{org}/wallets")] {
        expect_problem(&op.get(&path).await.unwrap(), 403, "forbidden");
    }
    expect_problem(&owner.get("/v1/admin/orgs").await.unwrap(), 403, "forbidden");
    expect_problem(&s.client.get("/v1/admin/orgs").await.unwrap(), 401, "unauthenticated");
    expect_problem(&s.client.with_token("rso_nope").get("/v1/admin/orgs").await.unwrap(), 401, "unauthenticated");

    // Revoked: the very next request fails.
    let store = roost_store::Store::connect(&s.database_url).await.unwrap();
    store.revoke_operator_key(&op_id, 1).await.unwrap();
    store.close().await;
    expect_problem(&op.get("/v1/admin/orgs").await.unwrap(), 401, "unauthenticated");
    expect_problem(&op.get("/v1/me").await.unwrap(), 401, "unauthenticated");
    let _ = uid(&billing_signup);
}

async fn billing_off_grants_at_once(s: TestServer) {
    let (owner, _) = s.signup("Owner").await;
    let (org, _) = s.org(&owner, "Internal", "team").await;
    let r = owner
        .post_idem(&format!("/v1/orgs/{org}/wallets/credits/topups"), &idem(), &json!({"amount": 500}))
        .await
        .unwrap();
    expect_status(&r, 201);
    assert_eq!(r.body["grant"]["amount"], 500, "{:?}", r.body);
    let r = owner
        .post_idem(
            &format!("/v1/orgs/{org}/wallets/credits/adjustments"),
            &idem(),
            &json!({"amount": 100, "reason": "fix"}),
        )
        .await
        .unwrap();
    expect_status(&r, 201);
    assert_eq!(topped_up(&owner, &org).await, 500);
    // Nothing to pay, and no intake.
    assert!(invoices(&owner, &org).await.is_empty());
    let r = report(&s, "msg_1", &json!({"purchase_id": "pur_00000000000000000000000000", "status": "succeeded", "amount": 1, "currency": "IDR", "reference": "x"})).await;
    expect_problem(&r, 404, "not_found");
    // The catalog shows its prices.
    let plans = s.client.get("/v1/plans").await.unwrap();
    let team = plans.body.as_array().unwrap().iter().find(|p| p["id"] == "team").cloned().unwrap();
    assert_eq!((team["price"].as_i64(), team["currency"].as_str()), (Some(149_000), Some("IDR")), "{team}");
    assert_eq!(team["credit_pack"], json!({"credits": 1000, "price": 100_000}));
}

roost_test_kit::both_backends_with!(operator_acts_alone => super::billing_on);
roost_test_kit::both_backends!(billing_off_grants_at_once);

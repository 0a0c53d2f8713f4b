//! Invoices on the injected clock: a draft per org per cycle that follows what happens (plan,
//! seats — the most members the cycle saw past the included ones — purchases), finalized once at
//! the cycle's end with gapless numbers (several replicas racing), never changed after, past due
//! after the grace period, and printable.

use serde_json::{Value, json};

use super::common::*;
use crate::support::{expect_problem, expect_status, ts_ms, uid};
use roost_test_kit::TestServer;

const HOUR: i64 = 3_600_000;

async fn finalized(owner: &roost::Client, org: &str, period_start: &Value) -> Value {
    let mut found = Value::Null;
    for _ in 0..400 {
        let inv = invoices(owner, org).await;
        if let Some(i) = inv.iter().find(|i| &i["period_start"] == period_start && i["status"] != "draft") {
            found = i.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!found.is_null(), "the invoice of {period_start} was never finalized");
    found
}

async fn seats_purchases_and_finalization(s: TestServer) {
    let (owner, _) = s.signup("Owner").await;
    let (org, _) = s.org(&owner, "Team", "team").await;
    let mut members = Vec::new();
    for i in 0..4 {
        let (c, signup) = s.signup(&format!("Member{i}")).await;
        s.add_member(&owner, &org, &c, &signup, "member").await;
        members.push((c, signup));
    }
    // Five members for part of the cycle, then three.
    for (_, signup) in &members[..2] {
        let r = owner.delete(&format!("/v1/orgs/{org}/members/{}", uid(signup))).await.unwrap();
        expect_status(&r, 204);
    }
    let p = buy(&owner, &org, 1).await;
    let r = report(&s, "msg_pack", &json!({"purchase_id": p["id"], "status": "succeeded", "amount": 100_000, "currency": "IDR", "reference": "ch_1"})).await;
    expect_status(&r, 200);
    let draft = invoices(&owner, &org).await[0].clone();
    assert_eq!((draft["status"].as_str(), draft["number"].is_null()), (Some("draft"), true), "{draft}");
    let kinds: Vec<&str> = draft["lines"].as_array().unwrap().iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["plan", "seats", "topup"], "{draft}");
    assert_eq!(draft["billed_to"]["name"], "Team");

    // Members other than owner and billing do not see invoices; strangers do not find them.
    let r = members[2].0.get(&format!("/v1/orgs/{org}/invoices")).await.unwrap();
    expect_problem(&r, 403, "forbidden");
    let (stranger, _) = s.signup("Stranger").await;
    expect_problem(
        &stranger.get(&format!("/v1/invoices/{}", draft["id"].as_str().unwrap())).await.unwrap(),
        404,
        "not_found",
    );

    // The cycle ends: finalized once, numbered, owed.
    s.clock.advance(32 * DAY);
    let inv = finalized(&owner, &org, &draft["period_start"]).await;
    assert_eq!(inv["status"], "open", "{inv}");
    assert!(inv["number"].as_i64().unwrap() >= 1);
    let lines = inv["lines"].as_array().unwrap();
    assert_eq!((lines[0]["kind"].as_str(), lines[0]["amount"].as_i64()), (Some("plan"), Some(149_000)), "{inv}");
    assert_eq!(
        (
            lines[1]["kind"].as_str(),
            lines[1]["quantity"].as_i64(),
            lines[1]["unit_price"].as_i64(),
            lines[1]["amount"].as_i64()
        ),
        (Some("seats"), Some(2), Some(45_000), Some(90_000)),
        "five members at most, three included: {inv}"
    );
    assert_eq!((lines[2]["kind"].as_str(), lines[2]["amount"].as_i64()), (Some("topup"), Some(100_000)));
    assert_eq!(lines[2]["purchase_id"], p["id"]);
    assert!(adds_up(&inv));
    assert_eq!(inv["total"], 339_000);
    assert_eq!(inv["amount_due"], 239_000, "the pack was paid already");
    assert_eq!(events(&owner, &org, "invoice.finalized").await.len(), 1);
    // The next cycle has its own draft.
    let all = invoices(&owner, &org).await;
    assert_eq!(all.iter().filter(|i| i["status"] == "draft").count(), 1, "{all:?}");

    // Printable.
    let html = reqwest::Client::new()
        .get(format!("{}/v1/invoices/{}", s.base, inv["id"].as_str().unwrap()))
        .header("authorization", format!("Bearer {}", owner.token().unwrap()))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(html.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = html.text().await.unwrap();
    assert!(page.contains(&format!("Invoice No. {}", inv["number"])) && page.contains("2 extra seats"), "{page}");

    // Unpaid past the grace period: past due; upgrades and purchases wait for payment.
    s.clock.advance(73 * HOUR);
    let o = owner.get(&format!("/v1/orgs/{org}")).await.unwrap();
    assert_eq!(o.body["billing_status"], "past_due", "{:?}", o.body);
    let r = owner
        .post_idem(&format!("/v1/orgs/{org}/wallets/credits/purchases"), &idem(), &json!({"packs": 1}))
        .await
        .unwrap();
    expect_problem(&r, 402, "payment_required");
    let r = owner.put(&format!("/v1/orgs/{org}/plan"), &json!({"plan": "business"})).await.unwrap();
    expect_problem(&r, 402, "payment_required");
    // Paying stays possible: a wrong amount is refused, the right one pays.
    let id = inv["id"].as_str().unwrap();
    let r = report(
        &s,
        "msg_inv_wrong",
        &json!({"invoice_id": id, "status": "succeeded", "amount": 339_000, "currency": "IDR", "reference": "x"}),
    )
    .await;
    expect_problem(&r, 422, "payment_mismatch");
    let r = report(
        &s,
        "msg_inv",
        &json!({"invoice_id": id, "status": "succeeded", "amount": 239_000, "currency": "IDR", "reference": "ch_inv"}),
    )
    .await;
    expect_status(&r, 200);
    assert_eq!(r.body["outcome"], "paid");
    let o = owner.get(&format!("/v1/orgs/{org}")).await.unwrap();
    assert_eq!(o.body["billing_status"], "ok");
    assert_eq!(events(&owner, &org, "invoice.paid").await.len(), 1);

    // A finalized invoice never changes, whatever happens after.
    let before = owner.get(&format!("/v1/invoices/{id}")).await.unwrap().body;
    let (c, signup) = s.signup("Late").await;
    s.add_member(&owner, &org, &c, &signup, "member").await;
    buy(&owner, &org, 3).await;
    let r = owner.put(&format!("/v1/orgs/{org}/plan"), &json!({"plan": "business"})).await.unwrap();
    expect_status(&r, 200);
    let after = owner.get(&format!("/v1/invoices/{id}")).await.unwrap().body;
    assert_eq!(before, after);
    assert_eq!(after["status"], "paid");
}

async fn plan_change_mid_cycle(s: TestServer) {
    let (owner, _) = s.signup("Owner").await;
    let (org, _) = s.org(&owner, "Growing", "solo").await;
    s.clock.advance(10 * DAY);
    let r = owner.put(&format!("/v1/orgs/{org}/plan"), &json!({"plan": "team"})).await.unwrap();
    expect_status(&r, 200);
    let draft = invoices(&owner, &org).await[0].clone();
    let days = (ts_ms(&draft["period_end"]) - ts_ms(&draft["period_start"]) + DAY - 1) / DAY;
    let lines = draft["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{draft}");
    assert!(lines[0]["description"].as_str().unwrap().starts_with("Solo plan"), "{draft}");
    assert!(lines[0]["description"].as_str().unwrap().contains(&format!("10 of {days} days")), "{draft}");
    assert_eq!(lines[0]["amount"].as_i64().unwrap(), 99_000 * 10 / days);
    assert!(lines[1]["description"].as_str().unwrap().starts_with("Team plan"));
    assert!(lines[1]["description"].as_str().unwrap().contains(&format!("{} of {days} days", days - 10)), "{draft}");
    assert_eq!(lines[1]["amount"].as_i64().unwrap(), 149_000 * (days - 10) / days);
    assert!(adds_up(&draft));
    s.clock.advance(25 * DAY);
    let inv = finalized(&owner, &org, &draft["period_start"]).await;
    assert_eq!(inv["lines"], draft["lines"], "the draft is what was finalized");
}

async fn numbering_is_gapless(s: TestServer) {
    let replica = s.replica_with(billing_on).await;
    let mut orgs = Vec::new();
    for i in 0..6 {
        let (owner, _) = s.signup(&format!("Owner{i}")).await;
        let (org, _) = s.org(&owner, &format!("Org{i}"), "team").await;
        orgs.push((owner, org));
    }
    // Both replicas' background rounds race to finalize every invoice.
    s.clock.advance(32 * DAY);
    replica.clock.advance(32 * DAY);
    let mut numbers = Vec::new();
    for (owner, org) in &orgs {
        let draft_start = invoices(owner, org).await.last().unwrap()["period_start"].clone();
        let inv = finalized(owner, org, &draft_start).await;
        numbers.push(inv["number"].as_i64().unwrap());
        assert_eq!(events(owner, org, "invoice.finalized").await.len(), 1, "finalized once");
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=6).collect::<Vec<i64>>(), "sequential and gapless");
}

roost_test_kit::both_backends_with!(
    seats_purchases_and_finalization => super::billing_on,
    plan_change_mid_cycle => super::billing_on,
    numbering_is_gapless => super::billing_on,
);

//! A property over random sequences of membership changes, purchases, payments (succeeded and
//! failed, of purchases and of invoices), charges that trigger auto-reloads, and cycle turns:
//! every finalized invoice's total is the sum of its lines, numbers are gapless, and the credits
//! granted from purchases are exactly the credits of the purchases whose payment succeeded.

use proptest::prelude::*;
use roost::Client;
use roost_test_kit::{Backend, TestServer};
use serde_json::{Value, json};

use super::common::*;
use crate::support::uid;

#[derive(Debug, Clone)]
enum Step {
    AddMember,
    RemoveMember,
    Buy(i64),
    /// Report a payment of the `n`-th pending pack purchase: succeeded or failed.
    PayPurchase(usize, bool),
    /// Pay the oldest open invoice.
    PayInvoice,
    Charge(i64),
    CycleTurn,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => Just(Step::AddMember),
        1 => Just(Step::RemoveMember),
        2 => (1i64..=3).prop_map(Step::Buy),
        3 => (0usize..4, any::<bool>()).prop_map(|(n, ok)| Step::PayPurchase(n, ok)),
        1 => Just(Step::PayInvoice),
        2 => (100i64..=4_000).prop_map(Step::Charge),
        1 => Just(Step::CycleTurn),
    ]
}

/// A pack purchase as the test knows it.
#[derive(Debug, Clone)]
struct Bought {
    id: String,
    invoice_id: String,
    credits: i64,
    amount: i64,
    /// `pending`, `failed` or `paid`.
    status: String,
}

async fn turn_cycle(s: &TestServer, owner: &Client, org: &str) {
    s.clock.advance(31 * DAY);
    let now = roost_server::Clock::now_ms(&*s.clock);
    for _ in 0..400 {
        let due = invoices(owner, org)
            .await
            .iter()
            .any(|i| i["status"] == "draft" && crate::support::ts_ms(&i["period_end"]) <= now);
        if !due {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("invoices were not finalized after a cycle turn");
}

async fn run(backend: Backend, steps: Vec<Step>) {
    let Some(s) = TestServer::start_with(backend, billing_on).await else {
        eprintln!("{}", roost_test_kit::SKIPPED);
        return;
    };
    let (owner, _) = s.signup("Owner").await;
    let (org, ws) = s.org(&owner, "Prop", "team").await;
    let owner = owner.in_workspace(&ws);
    let r = owner
        .put(
            &format!("/v1/orgs/{org}/wallets/credits/auto-reload"),
            &json!({"enabled": true, "threshold": 2_000, "amount": 1_000, "monthly_max": 1_000_000}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut members: Vec<Value> = Vec::new();
    let mut bought: Vec<Bought> = Vec::new();
    let mut paid_credits = 0i64;
    for (i, st) in steps.into_iter().enumerate() {
        match st {
            Step::AddMember if members.len() < 4 => {
                let (c, signup) = s.signup(&format!("M{i}")).await;
                s.add_member(&owner, &org, &c, &signup, "member").await;
                members.push(signup);
            }
            Step::RemoveMember if !members.is_empty() => {
                let m = members.remove(0);
                let r = owner.delete(&format!("/v1/orgs/{org}/members/{}", uid(&m))).await.unwrap();
                assert_eq!(r.status, 204, "{:?}", r.body);
            }
            Step::Buy(packs) => {
                let r = owner
                    .post_idem(&format!("/v1/orgs/{org}/wallets/credits/purchases"), &idem(), &json!({"packs": packs}))
                    .await
                    .unwrap();
                // Past due (an unpaid invoice), buying waits for payment.
                if r.status == 402 {
                    continue;
                }
                assert_eq!(r.status, 201, "{:?}", r.body);
                let b = &r.body;
                bought.push(Bought {
                    id: b["id"].as_str().unwrap().into(),
                    invoice_id: b["invoice_id"].as_str().unwrap().into(),
                    credits: b["credits"].as_i64().unwrap(),
                    amount: b["amount"].as_i64().unwrap(),
                    status: "pending".into(),
                });
            }
            Step::PayPurchase(n, ok) => {
                let open: Vec<usize> = (0..bought.len()).filter(|&k| bought[k].status != "paid").collect();
                let Some(&k) = open.get(n % open.len().max(1)) else { continue };
                let p = &mut bought[k];
                let body = json!({"purchase_id": p.id, "status": if ok { "succeeded" } else { "failed" }, "amount": p.amount, "currency": "IDR", "reference": format!("ch_{i}")});
                let r = report(&s, &format!("msg_{i}"), &body).await;
                assert_eq!(r.status, 200, "{:?}", r.body);
                if ok {
                    p.status = "paid".into();
                    paid_credits += p.credits;
                } else if p.status == "pending" {
                    p.status = "failed".into();
                }
            }
            Step::PayInvoice => {
                let all = invoices(&owner, &org).await;
                let Some(inv) = all.iter().rev().find(|i| i["status"] == "open") else { continue };
                let body = json!({"invoice_id": inv["id"], "status": "succeeded", "amount": inv["amount_due"], "currency": "IDR", "reference": format!("inv_{i}")});
                let r = report(&s, &format!("msg_{i}"), &body).await;
                assert_eq!(r.status, 200, "{:?}", r.body);
                for p in
                    bought.iter_mut().filter(|p| p.invoice_id == inv["id"].as_str().unwrap() && p.status == "pending")
                {
                    p.status = "paid".into();
                    paid_credits += p.credits;
                }
            }
            Step::Charge(amount) => {
                let r = owner
                    .post_idem("/v1/charges", &idem(), &json!({"amount": amount, "action": "prop"}))
                    .await
                    .unwrap();
                assert!(r.status == 201 || r.status == 402, "{:?}", r.body);
            }
            Step::CycleTurn => turn_cycle(&s, &owner, &org).await,
            Step::AddMember | Step::RemoveMember => {}
        }
    }
    turn_cycle(&s, &owner, &org).await;

    let all = invoices(&owner, &org).await;
    let mut numbers = Vec::new();
    for inv in all.iter().filter(|i| i["status"] != "draft") {
        assert!(adds_up(inv), "a finalized invoice's total is the sum of its lines: {inv}");
        numbers.push(inv["number"].as_i64().unwrap());
        let again = owner.get(&format!("/v1/invoices/{}", inv["id"].as_str().unwrap())).await.unwrap().body;
        assert_eq!(again["lines"], inv["lines"]);
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=i64::try_from(numbers.len()).unwrap()).collect::<Vec<_>>(), "gapless");
    let completed: i64 =
        events(&owner, &org, "purchase.completed").await.iter().map(|e| e["data"]["credits"].as_i64().unwrap()).sum();
    assert_eq!(completed, paid_credits, "credits granted from purchases = credits of succeeded payments");
    // Read straight from the tables, across row-level security: as the owner.
    let store = roost_store::Store::connect(&s.admin_url).await.unwrap();
    let granted: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(amount) AS BIGINT) FROM grants WHERE org_id = $1 AND reason LIKE 'purchase %'",
    )
    .bind(&org)
    .fetch_one(store.pool())
    .await
    .unwrap();
    store.close().await;
    assert_eq!(granted.unwrap_or(0), paid_credits, "the ledger's purchase grants");
    s.assert_ledger().await;
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn invoices_add_up_and_purchases_grant_what_was_paid_sqlite(steps in prop::collection::vec(step(), 1..16)) {
        runtime().block_on(run(Backend::Sqlite, steps));
    }
}

roost_test_kit::pg_test! {
proptest! {
    #![proptest_config(ProptestConfig { cases: 3, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn invoices_add_up_and_purchases_grant_what_was_paid_postgres(steps in prop::collection::vec(step(), 1..16)) {
        runtime().block_on(run(Backend::Postgres, steps));
    }
}
}

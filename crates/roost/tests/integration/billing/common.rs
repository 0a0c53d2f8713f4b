//! What the billing scenarios share: a server with billing on, operator keys, signed payment
//! reports, and waiting for the background round.

use roost::{Client, Response};
use roost_domain::IdKind;
use roost_domain::tokens;
use roost_test_kit::TestServer;
use serde_json::{Value, json};

/// The operator's payment-intake secret in these tests.
pub(crate) const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub(crate) const DAY: i64 = 86_400_000;

/// Billing on, the background round every 50 ms, sessions that outlive a few cycles.
pub(crate) fn billing_on(s: &mut roost_server::Settings) {
    s.billing_intake_secret = Some(SECRET.into());
    s.ledger_tick_ms = 50;
    s.session_ttl_days = 400;
}

/// Makes an operator key straight in the database, as `roost operator create-key` does; returns
/// `(id, secret)`.
pub(crate) async fn operator_key(s: &TestServer) -> (String, String) {
    let store = roost_store::Store::connect(&s.database_url).await.unwrap();
    let secret = tokens::generate(tokens::OPERATOR_KEY_PREFIX);
    let id = IdKind::OperatorKey.generate();
    store.create_operator_key(&id, "tests", &tokens::hash(&secret), 0).await.unwrap();
    store.close().await;
    (id, secret)
}

/// A fresh `Idempotency-Key`.
pub(crate) fn idem() -> String {
    format!("k-{}", IdKind::Event.generate())
}

/// Sends a payment report signed with `secret` under `webhook_id`.
pub(crate) async fn report_signed(s: &TestServer, webhook_id: &str, body: &Value, secret: &str) -> Response {
    let raw = body.to_string();
    let ts = roost_server::Clock::now_ms(&*s.clock) / 1000;
    let sig = roost_server::webhooks::sign::sign(secret, webhook_id, ts, &raw).unwrap();
    s.client
        .with_header("webhook-id", webhook_id)
        .with_header("webhook-timestamp", &ts.to_string())
        .with_header("webhook-signature", &sig)
        .send_raw(reqwest::Method::POST, "/v1/billing/payments", raw.into_bytes())
        .await
        .unwrap()
}

/// Sends a payment report signed with the operator's secret.
pub(crate) async fn report(s: &TestServer, webhook_id: &str, body: &Value) -> Response {
    report_signed(s, webhook_id, body, SECRET).await
}

/// Buys `packs` packs; returns the purchase.
pub(crate) async fn buy(c: &Client, org: &str, packs: i64) -> Value {
    let r = c
        .post_idem(&format!("/v1/orgs/{org}/wallets/credits/purchases"), &idem(), &json!({"packs": packs}))
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body
}

/// The org's wallet of kind `credits`.
pub(crate) async fn wallet(c: &Client, org: &str) -> Value {
    let r = c.get(&format!("/v1/orgs/{org}/wallets")).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["items"].as_array().unwrap().iter().find(|w| w["kind"] == "credits").cloned().unwrap()
}

/// Credits of the wallet's live grants from top-ups.
pub(crate) async fn topped_up(c: &Client, org: &str) -> i64 {
    let w = wallet(c, org).await;
    w["grants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["source"] == "topup")
        .map(|g| g["remaining"].as_i64().unwrap())
        .sum()
}

/// The org's invoices, newest first.
pub(crate) async fn invoices(c: &Client, org: &str) -> Vec<Value> {
    let r = c.get(&format!("/v1/orgs/{org}/invoices")).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

/// Waits (up to ~20 s) until `check` holds, for the background round.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The org's events of type `kind`.
pub(crate) async fn events(c: &Client, org: &str, kind: &str) -> Vec<Value> {
    let r = c.get(&format!("/v1/orgs/{org}/events?type={kind}")).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

/// Whether the sum of an invoice's line amounts is its total.
pub(crate) fn adds_up(inv: &Value) -> bool {
    let sum: i64 = inv["lines"].as_array().unwrap().iter().map(|l| l["amount"].as_i64().unwrap()).sum();
    sum == inv["total"].as_i64().unwrap()
}

//! Small steps the credit scenarios share.

use roost::{Client, Response};
use serde_json::{Value, json};

use crate::support::{expect_status, ts_ms, uid};
use roost_test_kit::TestServer;

pub(crate) const MINUTE: i64 = 60_000;
pub(crate) const HOUR: i64 = 3_600_000;
pub(crate) const DAY: i64 = 86_400_000;

/// Settings for scenarios that cross billing cycles: user sessions (30 days by default) outlive them.
pub(crate) fn long_sessions(s: &mut roost_server::Settings) {
    s.session_ttl_days = 400;
}

/// A fresh `Idempotency-Key`.
pub(crate) fn idem() -> String {
    format!("k-{}", roost_domain::IdKind::Event.generate())
}

/// `POST /v1/charges` with a fresh key.
pub(crate) async fn charge(c: &Client, amount: i64, action: &str) -> Response {
    c.post_idem("/v1/charges", &idem(), &json!({"amount": amount, "action": action})).await.unwrap()
}

/// A charge that must succeed; returns its body.
#[track_caller]
pub(crate) fn created(r: Response) -> Value {
    expect_status(&r, 201);
    r.body
}

/// `POST /v1/holds` with a fresh key.
pub(crate) async fn hold(c: &Client, amount: i64, ttl_seconds: Option<i64>) -> Response {
    let mut body = json!({"amount": amount, "action": "job"});
    if let Some(t) = ttl_seconds {
        body["ttl_seconds"] = t.into();
    }
    c.post_idem("/v1/holds", &idem(), &body).await.unwrap()
}

/// `POST /v1/holds/{id}/settle` with a fresh key.
pub(crate) async fn settle(c: &Client, hold_id: &str, amount: i64) -> Response {
    c.post_idem(&format!("/v1/holds/{hold_id}/settle"), &idem(), &json!({"amount": amount})).await.unwrap()
}

/// Tops the org's `credits` wallet up by `amount`; returns the grant.
pub(crate) async fn topup(owner: &Client, org: &str, amount: i64) -> Value {
    let r = owner
        .post_idem(&format!("/v1/orgs/{org}/wallets/credits/topups"), &idem(), &json!({"amount": amount}))
        .await
        .unwrap();
    expect_status(&r, 201);
    assert_eq!(r.body["grant"]["source"], "topup", "{}", r.body);
    assert_eq!(r.body["grant"]["amount"], amount, "{}", r.body);
    assert!(r.body["grant"]["expires_at"].is_null(), "top-ups never expire: {}", r.body);
    r.body["grant"].clone()
}

/// The org's `credits` wallet as `GET /v1/orgs/{org}/wallets` shows it.
pub(crate) async fn wallet(c: &Client, org: &str) -> Value {
    let r = c.get(&format!("/v1/orgs/{org}/wallets")).await.unwrap();
    expect_status(&r, 200);
    let items = r.body["items"].as_array().unwrap_or_else(|| panic!("no items: {}", r.body));
    let w = items.iter().find(|w| w["kind"] == "credits").unwrap_or_else(|| panic!("no credits wallet: {}", r.body));
    assert_eq!(w["available"].as_i64().unwrap(), w["balance"].as_i64().unwrap() - w["held"].as_i64().unwrap(), "{w}");
    w.clone()
}

/// `(balance, held, available)` of the org's credits wallet.
pub(crate) async fn bha(c: &Client, org: &str) -> (i64, i64, i64) {
    let w = wallet(c, org).await;
    (w["balance"].as_i64().unwrap(), w["held"].as_i64().unwrap(), w["available"].as_i64().unwrap())
}

/// The live grants of a wallet view as `(source, remaining, reserved)`, in the view's order.
pub(crate) fn grants_of(w: &Value) -> Vec<(String, i64, i64)> {
    w["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["source"].as_str().unwrap().to_string(),
                g["remaining"].as_i64().unwrap(),
                g["reserved"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The id of the live grant of `source` (exactly one must exist).
#[track_caller]
pub(crate) fn grant_id(w: &Value, source: &str) -> String {
    let gs: Vec<&Value> = w["grants"].as_array().unwrap().iter().filter(|g| g["source"] == source).collect();
    assert_eq!(gs.len(), 1, "exactly one live {source} grant expected: {w}");
    gs[0]["id"].as_str().unwrap().to_string()
}

pub(crate) use roost_test_kit::splits::of as splits;

/// Moves the server's clock to `at_ms` (forward only).
pub(crate) fn advance_to(s: &TestServer, at_ms: i64) {
    let now = crate::support::now_ms(s);
    assert!(at_ms >= now, "the clock only moves forward");
    s.clock.advance(at_ms - now);
}

/// Moves the clock one second past the current cycle's end shown by the wallet; returns that end.
pub(crate) async fn past_cycle_end(s: &TestServer, c: &Client, org: &str) -> i64 {
    let end = ts_ms(&wallet(c, org).await["cycle_ends_at"]);
    advance_to(s, end + 1_000);
    end
}

/// Creates an API key in `ws` as `creator`; returns `(key id, a client acting as the key)`.
pub(crate) async fn api_key(s: &TestServer, creator: &Client, ws: &str, spend_limit: Option<i64>) -> (String, Client) {
    let mut body = json!({"name": "k"});
    if let Some(l) = spend_limit {
        body["spend_limit"] = l.into();
    }
    let r = creator.post(&format!("/v1/workspaces/{ws}/keys"), &body).await.unwrap();
    expect_status(&r, 201);
    (r.str("id").to_string(), s.client.with_token(r.str("secret")))
}

/// A business org with its owner; returns `(owner, owner signup, org, primary ws)`.
pub(crate) async fn business(s: &TestServer, name: &str) -> (Client, Value, String, String) {
    org_on(s, name, "business").await
}

/// An org on `plan` with its owner; returns `(owner, owner signup, org, primary ws)`, the owner's
/// client acting in the primary workspace.
pub(crate) async fn org_on(s: &TestServer, name: &str, plan: &str) -> (Client, Value, String, String) {
    let (owner, sg) = s.signup(&format!("{name}Owner")).await;
    let (org, ws) = s.org(&owner, name, plan).await;
    (owner.in_workspace(&ws), sg, org, ws)
}

/// Adds a new user to `org` with `org_role` and, if given, `ws_role` in `ws`; returns their
/// client (acting in `ws`) and signup body.
pub(crate) async fn member(
    s: &TestServer,
    owner: &Client,
    org: &str,
    ws: &str,
    org_role: &str,
    ws_role: Option<&str>,
) -> (Client, Value) {
    let (c, sg) = s.signup(&format!("M{org_role}")).await;
    s.add_member(owner, org, &c, &sg, org_role).await;
    if let Some(r) = ws_role {
        crate::support::set_ws_role(owner, ws, &uid(&sg), r).await;
    }
    (c.in_workspace(ws), sg)
}

/// `(Σ the journal's expiry entries, Σ grants' expired)` of `org`, straight from the database:
/// equal when every expiry is journaled.
pub(crate) async fn expiries_journaled(s: &TestServer, org: &str) -> (i64, i64) {
    use sqlx::Row;
    let store = roost_store::Store::connect(&s.admin_url).await.unwrap();
    let pool = store.pool();
    let j: i64 = sqlx::query(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger_entries WHERE org_id = $1 AND type = 'expiry'",
    )
    .bind(org)
    .fetch_one(pool)
    .await
    .unwrap()
    .try_get(0)
    .unwrap();
    let g: i64 = sqlx::query("SELECT CAST(COALESCE(SUM(expired), 0) AS BIGINT) FROM grants WHERE org_id = $1")
        .bind(org)
        .fetch_one(pool)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    store.close().await;
    (j, g)
}

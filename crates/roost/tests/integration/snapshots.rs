//! Snapshots (insta) of the bodies a product sees, taken through the real HTTP API on both
//! backends against one set of `.snap` files (the backends must answer alike): the problem
//! documents of the ledger's refusals and a validation error, and the charge, hold, settle and
//! wallet views. Ids, timestamps and secrets are redacted; every other member stays visible, so a
//! renamed field, a changed `title` or a lost extension member shows up as a snapshot diff.
//!
//! Also: an idempotent replay answers the first response byte for byte, for a charge and for a
//! refusal.

use insta::internals::{Content, Redaction};
use reqwest::Method;
use roost::Response;
use roost_test_kit::TestServer;
use serde_json::{Value, json};

use crate::credits::common::{business, charge, hold, idem, settle, wallet};
use crate::support::{expect_problem, expect_status};

/// What a snapshot shows of a response: status, content type and body.
fn shot(r: &Response) -> Value {
    json!({"status": r.status, "content_type": r.content_type, "body": r.body})
}

/// Redacts an id (`hld_01…`, 26 characters after the prefix) to `[hld_…]`, keeping its kind
/// visible; anything else (`null`, a malformed id) stays as it is, so the snapshot shows it.
fn id() -> Redaction {
    insta::dynamic_redaction(|value: Content, _| {
        let redacted = value.as_str().and_then(|v| {
            let (kind, rest) = v.split_once('_')?;
            let ok = !kind.is_empty()
                && kind.bytes().all(|b| b.is_ascii_lowercase())
                && rest.len() == 26
                && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            ok.then(|| format!("[{kind}_…]"))
        });
        redacted.map_or(value, Content::from)
    })
}

/// Redacts an RFC 3339 timestamp to `[timestamp]`; anything else (`null`, a malformed time) stays.
fn ts() -> Redaction {
    insta::dynamic_redaction(|value: Content, _| {
        let parses = value
            .as_str()
            .is_some_and(|v| time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).is_ok());
        if parses { Content::from("[timestamp]") } else { value }
    })
}

/// `insta::assert_json_snapshot!` with the redactions roost's bodies need: ids and timestamps,
/// wherever they appear in a response, a charge, a hold or a wallet (selectors that match nothing
/// are harmless, so one list serves every body).
macro_rules! snap {
    ($name:expr, $value:expr) => {
        insta::assert_json_snapshot!($name, $value, {
            ".body.**.id" => id(),
            ".body.**.org_id" => id(),
            ".body.**.workspace_id" => id(),
            ".body.**.wallet_id" => id(),
            ".body.**.hold_id" => id(),
            ".body.**.charge_id" => id(),
            ".body.**.grant_id" => id(),
            ".body.**.member_id" => id(),
            ".body.**.key_id" => id(),
            ".body.**.at" => ts(),
            ".body.**.created_at" => ts(),
            ".body.**.effective_at" => ts(),
            ".body.**.expires_at" => ts(),
            ".body.**.closed_at" => ts(),
            ".body.**.resets_at" => ts(),
            ".body.**.cycle_started_at" => ts(),
            ".body.**.cycle_ends_at" => ts(),
        });
    };
}

/// The problem documents of the ledger's refusals, one snapshot each.
async fn problem_bodies(s: TestServer) {
    let (owner, _, _, ws) = business(&s, "Snap").await;

    let r = charge(&owner, 1_000_000, "llm").await;
    expect_problem(&r, 402, "insufficient_credits");
    snap!("problem_insufficient_credits", shot(&r));

    let b = owner.put(&format!("/v1/workspaces/{ws}/budget"), &json!({"limit": 1_000})).await.unwrap();
    expect_status(&b, 200);
    expect_status(&charge(&owner, 600, "llm").await, 201);
    let r = charge(&owner, 401, "llm").await;
    expect_problem(&r, 403, "budget_exceeded");
    snap!("problem_budget_exceeded", shot(&r));
    let b = owner.put(&format!("/v1/workspaces/{ws}/budget"), &json!({"limit": null})).await.unwrap();
    assert!(b.is_success(), "lifting the budget: {} {}", b.status, b.body);

    let h = hold(&owner, 500, None).await;
    expect_status(&h, 201);
    let hid = h.str("id").to_string();
    let r = settle(&owner, &hid, 501).await;
    expect_problem(&r, 422, "settle_exceeds_hold");
    snap!("problem_settle_exceeds_hold", shot(&r));
    expect_status(&settle(&owner, &hid, 500).await, 200);
    let r = settle(&owner, &hid, 1).await;
    expect_problem(&r, 409, "hold_closed");
    snap!("problem_hold_closed", shot(&r));

    let key = idem();
    expect_status(&owner.post_idem("/v1/charges", &key, &json!({"amount": 10, "action": "a"})).await.unwrap(), 201);
    let r = owner.post_idem("/v1/charges", &key, &json!({"amount": 11, "action": "a"})).await.unwrap();
    expect_problem(&r, 409, "idempotency_conflict");
    snap!("problem_idempotency_conflict", shot(&r));

    let r = owner.get("/v1/holds/hld_0000000000000000000000000000").await.unwrap();
    expect_problem(&r, 404, "not_found");
    snap!("problem_not_found", shot(&r));

    let r = owner.post_idem("/v1/charges", &idem(), &json!({"amount": 0, "action": ""})).await.unwrap();
    expect_problem(&r, 422, "invalid_request");
    snap!("problem_invalid_request", shot(&r));

    s.assert_ledger().await;
}

/// The charge, hold, settle and wallet views.
async fn ledger_views(s: TestServer) {
    let (owner, _, org, _) = business(&s, "Views").await;
    let key = idem();
    let body = json!({"amount": 250, "action": "llm", "metadata": {"model": "m1"}});
    let r = owner.post_idem("/v1/charges", &key, &body).await.unwrap();
    expect_status(&r, 201);
    snap!("view_charge", shot(&r));

    let h = hold(&owner, 300, Some(600)).await;
    expect_status(&h, 201);
    snap!("view_hold", shot(&h));
    let r = settle(&owner, h.str("id"), 120).await;
    expect_status(&r, 200);
    snap!("view_settle", shot(&r));

    let w = wallet(&owner, &org).await;
    snap!("view_wallet", json!({"body": w}));
    s.assert_ledger().await;
}

/// Status, content type and raw body bytes of `POST path` with an Idempotency-Key.
async fn raw_post(
    s: &TestServer,
    token: &str,
    ws: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> (u16, String, Vec<u8>) {
    let res = reqwest::Client::new()
        .request(Method::POST, format!("{}{path}", s.base))
        .bearer_auth(token)
        .header("Roost-Workspace", ws)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, ct, res.bytes().await.expect("body").to_vec())
}

/// A replay with the same Idempotency-Key and body answers the first response byte for byte: a
/// charge's 201 and a refusal's 402 alike.
async fn replays_are_byte_for_byte(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Bytes").await;
    let token = owner.token().unwrap().to_string();
    let key = idem();
    let body = json!({"amount": 250, "action": "llm", "metadata": {"model": "m1", "n": [1, 2]}});
    let first = raw_post(&s, &token, &ws, "/v1/charges", &key, &body).await;
    assert_eq!(first.0, 201, "{}", String::from_utf8_lossy(&first.2));
    s.clock.advance(5_000);
    for _ in 0..2 {
        let again = raw_post(&s, &token, &ws, "/v1/charges", &key, &body).await;
        assert_eq!(again, first, "a replayed charge answers the first response byte for byte");
    }

    let key = idem();
    let body = json!({"amount": 1_000_000, "action": "llm"});
    let refused = raw_post(&s, &token, &ws, "/v1/charges", &key, &body).await;
    assert_eq!(refused.0, 402, "{}", String::from_utf8_lossy(&refused.2));
    assert!(refused.1.starts_with("application/problem+json"), "{}", refused.1);
    // Credits arrive meanwhile: the replay still answers the refusal it stored, not a new charge.
    let t = owner
        .post_idem(&format!("/v1/orgs/{org}/wallets/credits/topups"), &idem(), &json!({"amount": 2_000_000}))
        .await
        .unwrap();
    expect_status(&t, 201);
    s.clock.advance(5_000);
    let again = raw_post(&s, &token, &ws, "/v1/charges", &key, &body).await;
    assert_eq!(again, refused, "a replayed refusal answers the first response byte for byte");
    s.assert_ledger().await;
}

both_backends!(problem_bodies, ledger_views, replays_are_byte_for_byte);

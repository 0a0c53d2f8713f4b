//! Credits: wallets, top-ups and adjustments, charges, holds, transactions, usage and budgets.
//! Every change goes through the ledger engine, which answers an outcome or a refusal; the views
//! here render them, and refusals become problems in the one place errors are mapped
//! (`ApiError: From<Refusal>`). Reads come from what the engine committed.

mod alerts;
mod budgets;
mod charges;
mod headroom;
mod holds;
pub(crate) use holds::release_workspace_holds;
mod transactions;
mod usage;
mod views;
pub(crate) mod wallets;

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use roost_domain::validate::Errors;
use roost_ledger::{ActorRef, Answer, Command, Idem, LedgerError, Op};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::views::OutcomeView;
use crate::AppState;
use crate::auth::{Caller, Who};
use crate::error::{ApiError, ApiResult};

/// The credits routes.
pub(in crate::api) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(wallets::list_wallets))
        .routes(routes!(wallets::acting_wallets))
        .routes(routes!(wallets::topup))
        .routes(routes!(wallets::adjust))
        .routes(routes!(charges::charge))
        .routes(routes!(holds::create_hold))
        .routes(routes!(holds::get_hold))
        .routes(routes!(holds::settle_hold))
        .routes(routes!(holds::release_hold))
        .routes(routes!(transactions::ws_transactions))
        .routes(routes!(transactions::org_transactions))
        .routes(routes!(usage::usage))
        .routes(routes!(budgets::get_ws_budget, budgets::put_ws_budget))
        .routes(routes!(budgets::get_member_budget, budgets::put_member_budget))
        .routes(routes!(alerts::put_alerts))
        .routes(routes!(alerts::get_auto_reload, alerts::put_auto_reload))
}

/// The largest amount one request may move (keeps every sum far from overflow).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;
/// Longest `Idempotency-Key`.
pub(super) const MAX_IDEM_KEY: usize = 255;
/// Largest serialized `metadata`.
pub(super) const MAX_METADATA: usize = 4096;
/// Hold lifetime when `ttl_seconds` is not given, and the longest allowed.
pub(super) const DEFAULT_HOLD_TTL: i64 = 900;
pub(super) const MAX_HOLD_TTL: i64 = 7 * 86_400;

/// The `Idempotency-Key` of a request, fingerprinted with what it asks for and who asks.
pub(super) fn idem(
    headers: &HeaderMap,
    route: &str,
    scope: &str,
    caller: &Caller,
    body: &impl Serialize,
) -> ApiResult<Idem> {
    let key = idem_key(headers)?;
    Ok(Idem { key: key.to_string(), fingerprint: fingerprint(route, scope, caller.actor_id(), body)? })
}

/// The request's `Idempotency-Key`, or 422 naming it. Routes that need one check it first, before
/// they look anything up: a request without one is malformed whatever it names.
pub(super) fn idem_key(headers: &HeaderMap) -> ApiResult<&str> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEM_KEY && !k.chars().any(char::is_control))
        .ok_or_else(|| {
            ApiError::invalid_field(
                "Idempotency-Key",
                "this request needs an Idempotency-Key header of 1–255 characters",
            )
        })
}

/// SHA-256 in lower-case hex over `route`, `scope`, the actor id and the body's JSON, each followed
/// by a zero byte. Stored idempotency records keep it, so these bytes must never change. The body
/// is serialized straight into the hash, and the hex is written without a `format!` per byte.
fn fingerprint(route: &str, scope: &str, actor_id: &str, body: &impl Serialize) -> ApiResult<String> {
    /// Feeds whatever is written into the hash.
    struct Hashing<'a>(&'a mut Sha256);
    impl std::io::Write for Hashing<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut h = Sha256::new();
    for part in [route, scope, actor_id] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    serde_json::to_writer(Hashing(&mut h), body).map_err(ApiError::internal)?;
    h.update([0]);
    let digest = h.finalize();
    let mut hex = String::with_capacity(2 * digest.len());
    for b in digest {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 15)]));
    }
    Ok(hex)
}

pub(super) fn actor_ref(caller: &Caller) -> ActorRef {
    match &caller.who {
        Who::User(u) => ActorRef::user(&u.id, caller.ip.clone()),
        Who::Key(k) => ActorRef::key(&k.id, &k.created_by, k.spend_limit, caller.ip.clone()),
    }
}

pub(super) fn check_amount(e: &mut Errors, field: &str, amount: i64) {
    if !(1..=MAX_AMOUNT).contains(&amount) {
        e.add(field, format!("must be a whole number from 1 to {MAX_AMOUNT}"));
    }
}

pub(super) fn check_action(e: &mut Errors, action: &str) -> String {
    let a = action.trim();
    if a.is_empty() || a.chars().count() > 100 || a.chars().any(char::is_control) {
        e.add("action", "must be 1–100 characters without control characters");
    }
    a.to_string()
}

/// The wallet kind a charge names (the default one when absent).
pub(super) fn check_kind(st: &AppState, e: &mut Errors, wallet: Option<&str>) -> String {
    let kinds = &st.ledger.config().kinds;
    match wallet {
        None => kinds.first().cloned().unwrap_or_else(|| roost_ledger::CREDITS.into()),
        Some(k) if kinds.iter().any(|x| x == k) => k.to_string(),
        Some(_) => {
            e.add("wallet", format!("must be one of: {}", kinds.join(", ")));
            String::new()
        }
    }
}

/// What a charge and a hold share: `amount`, `action` and `wallet`; returns the action (trimmed)
/// and the wallet kind.
pub(super) fn check_draw(
    st: &AppState,
    e: &mut Errors,
    amount: i64,
    action: &str,
    wallet: Option<&str>,
) -> (String, String) {
    check_amount(e, "amount", amount);
    (check_action(e, action), check_kind(st, e, wallet))
}

/// Deserializes a field that must be present but may be `null`.
pub(super) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Submits a command and renders the answer.
pub(super) async fn run(st: &AppState, cmd: Command) -> ApiResult<Response> {
    let answer = submit_counted(st, cmd).await?;
    let (status, view) = OutcomeView::of(answer?);
    // What `Json` does, into a buffer that fits a charge at once instead of growing from 128 bytes.
    let mut body = Vec::with_capacity(RESPONSE_CAPACITY);
    serde_json::to_writer(&mut body, &view).map_err(ApiError::internal)?;
    let headroom = match &view {
        OutcomeView::Charge(c) => c.headroom.as_ref(),
        OutcomeView::Hold(h) => h.headroom.as_ref(),
        _ => None,
    };
    let mut res = (status, [(CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response();
    if let Some(h) = headroom {
        h.write_headers(res.headers_mut());
    }
    Ok(res)
}

/// Submits a command, counting it in the metrics: the queue depth while it waits, its latency, and
/// its outcome (`ok`, the refusal's code, or `unavailable`) by operation.
pub(super) async fn submit_counted(st: &AppState, cmd: Command) -> ApiResult<Answer> {
    let op = match &cmd.op {
        Op::Charge { .. } => "charge",
        Op::Hold { .. } => "hold",
        Op::Settle { .. } => "settle",
        Op::Release { .. } => "release",
        Op::Grant { .. } => "grant",
        Op::SetBudget { .. } => "set_budget",
        Op::SetAlerts { .. } => "set_alerts",
        Op::SetAutoReload { .. } => "set_auto_reload",
        Op::PauseAutoReload { .. } => "pause_auto_reload",
        Op::Tick => "tick",
    };
    let t = &st.telemetry;
    t.gauge_add("roost_ledger_queue_depth", 1.0);
    let started = std::time::Instant::now();
    let answer = st.ledger.submit(cmd).await;
    t.gauge_add("roost_ledger_queue_depth", -1.0);
    let outcome = match &answer {
        Ok(Ok(_)) => "ok",
        Ok(Err(r)) => r.code(),
        Err(_) => "unavailable",
    };
    let op_label = metrics::Label::new("op", op);
    t.observe("roost_ledger_command_duration_seconds", vec![op_label.clone()], started.elapsed().as_secs_f64());
    t.count("roost_ledger_commands_total", vec![op_label, metrics::Label::new("outcome", outcome)], 1);
    answer.map_err(unavailable)
}

/// Room for the body of a ledger answer: a charge with a few splits is about 400 bytes.
const RESPONSE_CAPACITY: usize = 768;

/// 503 `ledger_unavailable`, retryable: nothing of the command happened.
fn unavailable(e: LedgerError) -> ApiError {
    tracing::warn!(error = %e, "ledger unavailable");
    ApiError::unavailable("ledger_unavailable", "the ledger could not commit; retry", 1)
}

/// The status and JSON body of a ledger answer, exactly as the API sends it (for tests that
/// drive the engine directly).
pub fn render(answer: Answer) -> (u16, Value) {
    match answer {
        Ok(o) => {
            let (status, view) = OutcomeView::of(o);
            (status.as_u16(), serde_json::to_value(view).unwrap_or_default())
        }
        Err(r) => {
            let e = ApiError::from(r);
            (e.status.as_u16(), e.body())
        }
    }
}

/// Brings the org's ledger up to now if something fell due since its last batch (or it has none).
pub(super) async fn refresh(st: &AppState, org_id: &str) -> ApiResult<()> {
    let due = match st.store.ledger_next_event(org_id).await? {
        None => true,
        Some(next) => next.is_some_and(|t| t <= st.clock.now_ms()),
    };
    if due {
        let cmd = Command { org_id: org_id.into(), actor: ActorRef::system(), op: Op::Tick, idem: None };
        // A tick's own answer says nothing: what matters is that it committed.
        let _ticked = st.ledger.submit(cmd).await.map_err(unavailable)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fingerprint as it was first computed (and is kept in stored idempotency records).
    fn first_form(route: &str, scope: &str, actor: &str, body: &Value) -> String {
        let body = serde_json::to_string(body).expect("json");
        let mut h = Sha256::new();
        for part in [route, scope, actor, &body] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn fingerprints_keep_their_stored_form() {
        let bodies = [
            serde_json::json!({"amount": 1, "action": "bench.charge"}),
            serde_json::json!({"amount": 7, "action": "llm \"quoted\" ü\n", "wallet": null, "metadata": {"a": [1, 2]}}),
            serde_json::json!({}),
        ];
        for body in &bodies {
            let got = fingerprint("charge", "ws_01", "key_01", body).expect("fingerprint");
            assert_eq!(got, first_form("charge", "ws_01", "key_01", body), "{body}");
            assert_eq!(got.len(), 64);
        }
        assert_ne!(
            fingerprint("charge", "ws_01", "key_01", &bodies[0]).expect("fingerprint"),
            fingerprint("hold", "ws_01", "key_01", &bodies[0]).expect("fingerprint")
        );
    }
}

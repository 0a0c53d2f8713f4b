//! Credits: wallets, top-ups and adjustments, charges, holds, transactions, usage and budgets.
//! Every change goes through the ledger engine; reads come from what it committed.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use roost_domain::credits::cycle_at;
use roost_domain::time::{parse_rfc3339, to_rfc3339};
use roost_domain::validate::Errors;
use roost_domain::{IdKind, OrgRole, Permission};
use roost_ledger::book::{entry_json, grant_json, hold_json};
use roost_ledger::{ActorRef, Command, Idem, LedgerError, Op, Reply, Source};
use roost_store::{EntryFilter, WalletRow};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{OrgCtx, WsCtx, acting_ws, check_id, not_found_after_access_check, org_ctx, user_param, ws_ctx};
use crate::AppState;
use crate::auth::{Caller, Who};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, Params};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_wallets))
        .routes(routes!(acting_wallets))
        .routes(routes!(topup))
        .routes(routes!(adjust))
        .routes(routes!(charge))
        .routes(routes!(create_hold))
        .routes(routes!(get_hold))
        .routes(routes!(settle_hold))
        .routes(routes!(release_hold))
        .routes(routes!(ws_transactions))
        .routes(routes!(org_transactions))
        .routes(routes!(usage))
        .routes(routes!(get_ws_budget, put_ws_budget))
        .routes(routes!(get_member_budget, put_member_budget))
}

/// The largest amount one request may move (keeps every sum far from overflow).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;
/// Longest `Idempotency-Key`.
const MAX_IDEM_KEY: usize = 255;
/// Largest serialized `metadata`.
const MAX_METADATA: usize = 4096;
/// Hold lifetime when `ttl_seconds` is not given, and the longest allowed.
const DEFAULT_HOLD_TTL: i64 = 900;
const MAX_HOLD_TTL: i64 = 7 * 86_400;

// ----- OpenAPI shapes (the bodies are built by the ledger; these describe them) -----

#[derive(ToSchema)]
#[expect(dead_code, reason = "describes the wire format only")]
struct SplitView {
    grant_id: String,
    amount: i64,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "describes the wire format only")]
struct ActorView {
    /// `user` or `key` (`system` for cycle turns and expiries).
    r#type: String,
    id: String,
}

/// A charge.
#[derive(ToSchema)]
#[expect(dead_code, reason = "describes the wire format only")]
struct ChargeView {
    id: String,
    amount: i64,
    action: String,
    wallet_id: String,
    workspace_id: String,
    org_id: String,
    actor: ActorView,
    splits: Vec<SplitView>,
    balance_after: i64,
    at: String,
    metadata: Option<Value>,
    /// The hold this charge settled.
    hold_id: Option<String>,
}

/// A hold.
#[derive(ToSchema)]
#[expect(dead_code, reason = "describes the wire format only")]
struct HoldView {
    id: String,
    amount: i64,
    action: String,
    wallet_id: String,
    workspace_id: String,
    org_id: String,
    /// `open`, `settled`, `released` or `expired`.
    status: String,
    actor: ActorView,
    expires_at: String,
    created_at: String,
    charge_id: Option<String>,
}

/// The answer to a settle.
#[derive(ToSchema)]
#[expect(dead_code, reason = "describes the wire format only")]
struct SettleView {
    charge: ChargeView,
    hold: HoldView,
    /// What went back to the wallet.
    released: i64,
}

/// A grant.
#[derive(ToSchema)]
#[expect(dead_code, reason = "describes the wire format only")]
struct GrantView {
    id: String,
    wallet_id: String,
    /// `allocation`, `rollover`, `topup`, `trial` or `adjustment`.
    source: String,
    amount: i64,
    remaining: i64,
    /// Reserved by open holds.
    reserved: i64,
    effective_at: String,
    /// `null`: never expires.
    expires_at: Option<String>,
    created_at: String,
    reason: Option<String>,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "describes the wire format only")]
struct GrantCreated {
    grant: GrantView,
}

/// A wallet: `balance` counts what is held; `available` = `balance` − `held`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "describes the wire format only")]
struct WalletView {
    id: String,
    kind: String,
    balance: i64,
    held: i64,
    available: i64,
    grants: Vec<GrantView>,
    /// Lifetime totals: balance = granted − charged − expired.
    granted: i64,
    charged: i64,
    expired: i64,
    cycle_started_at: Option<String>,
    cycle_ends_at: Option<String>,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "describes the wire format only")]
struct WalletList {
    items: Vec<WalletView>,
    next_cursor: Option<String>,
}

/// A journal entry: `charge`, `adjustment` (a debit), `grant` or `expiry`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "describes the wire format only")]
struct TransactionView {
    id: String,
    r#type: String,
    amount: i64,
    action: String,
    actor: ActorView,
    at: String,
    splits: Vec<SplitView>,
    wallet_id: String,
    workspace_id: Option<String>,
    balance_after: i64,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "describes the wire format only")]
struct TransactionList {
    items: Vec<TransactionView>,
    next_cursor: Option<String>,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "describes the wire format only")]
struct UsageGroupView {
    /// The workspace, member, key or action id (`null`: charges not made through a key).
    key: Option<String>,
    amount: i64,
    count: i64,
    /// This group's fraction of `total` (0–1).
    share: f64,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "describes the wire format only")]
struct UsageView {
    total: i64,
    count: i64,
    from: String,
    to: String,
    group_by: String,
    wallet_id: Option<String>,
    groups: Vec<UsageGroupView>,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "describes the wire format only")]
struct BudgetView {
    /// `workspace` or `member`.
    scope: String,
    workspace_id: String,
    user_id: Option<String>,
    limit: Option<i64>,
    alert_percents: Option<Vec<u32>>,
    /// Drawn this cycle.
    used: i64,
    resets_at: String,
}

// ----- helpers -----

/// A ledger reply as an HTTP response.
fn respond(r: Result<Reply, LedgerError>) -> Response {
    match r {
        Ok(r) => {
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut res = (status, Json(r.body)).into_response();
            if r.status >= 400 {
                res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
            }
            res
        }
        Err(e) => {
            tracing::warn!(error = %e, "ledger unavailable");
            let mut res = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ledger_unavailable",
                "the ledger could not commit; retry",
            )
            .into_response();
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            res
        }
    }
}

/// The `Idempotency-Key` of a request, fingerprinted with what it asks for and who asks.
fn idem(headers: &HeaderMap, route: &str, scope: &str, caller: &Caller, body: &impl Serialize) -> ApiResult<Idem> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEM_KEY && !k.chars().any(char::is_control))
        .ok_or_else(|| {
            ApiError::invalid_field(
                "Idempotency-Key",
                "this request needs an Idempotency-Key header of 1–255 characters",
            )
        })?;
    let body = serde_json::to_string(body).map_err(ApiError::internal)?;
    let mut h = Sha256::new();
    for part in [route, scope, &caller.actor().id, &body] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let fingerprint = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Idem { key: key.to_string(), fingerprint })
}

fn actor_ref(caller: &Caller) -> ActorRef {
    match &caller.who {
        Who::User(u) => ActorRef::user(&u.id, caller.ip.clone()),
        Who::Key(k) => ActorRef::key(&k.id, &k.created_by, k.spend_limit, caller.ip.clone()),
    }
}

fn check_amount(e: &mut Errors, field: &str, amount: i64) {
    if !(1..=MAX_AMOUNT).contains(&amount) {
        e.add(field, format!("must be a whole number from 1 to {MAX_AMOUNT}"));
    }
}

fn check_action(e: &mut Errors, action: &str) -> String {
    let a = action.trim();
    if a.is_empty() || a.chars().count() > 100 || a.chars().any(char::is_control) {
        e.add("action", "must be 1–100 characters without control characters");
    }
    a.to_string()
}

/// The wallet kind a charge names (the default one when absent).
fn check_kind(st: &AppState, e: &mut Errors, wallet: Option<&str>) -> String {
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
fn check_draw(st: &AppState, e: &mut Errors, amount: i64, action: &str, wallet: Option<&str>) -> (String, String) {
    check_amount(e, "amount", amount);
    (check_action(e, action), check_kind(st, e, wallet))
}

/// Deserializes a field that must be present but may be `null`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Submits a command and renders the answer.
async fn run(st: &AppState, cmd: Command) -> Response {
    respond(st.ledger.submit(cmd).await)
}

/// Brings the org's ledger up to now if something fell due since its last batch (or it has none).
async fn refresh(st: &AppState, org_id: &str) -> ApiResult<()> {
    let due = match st.store.ledger_next_event(org_id).await? {
        None => true,
        Some(next) => next.is_some_and(|t| t <= st.clock.now_ms()),
    };
    if due {
        let cmd = Command { org_id: org_id.into(), actor: ActorRef::user("system", None), op: Op::Tick, idem: None };
        let r = st.ledger.submit(cmd).await;
        if r.is_err() {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ledger_unavailable",
                "the ledger could not commit; retry",
            ));
        }
    }
    Ok(())
}

fn wallet_view(w: &WalletRow, grants: &[roost_store::GrantRow], anchor: i64, now: i64) -> Value {
    let mut gs: Vec<&roost_store::GrantRow> = grants.iter().filter(|g| g.wallet_id == w.id).collect();
    gs.sort_by(|a, b| {
        a.expires_at.unwrap_or(i64::MAX).cmp(&b.expires_at.unwrap_or(i64::MAX)).then(a.created_at.cmp(&b.created_at))
    });
    let mut v = json!({
        "id": w.id, "kind": w.kind, "balance": w.balance, "held": w.held, "available": w.balance - w.held,
        "granted": w.granted, "charged": w.charged, "expired": w.expired,
        "grants": gs.into_iter().map(grant_json).collect::<Vec<_>>(),
    });
    if w.kind == roost_ledger::CREDITS {
        let (_, s, e) = cycle_at(anchor, now);
        v["cycle_started_at"] = to_rfc3339(s).into();
        v["cycle_ends_at"] = to_rfc3339(e).into();
    }
    v
}

async fn wallets_json(st: &AppState, org_id: &str, anchor: i64) -> ApiResult<Value> {
    refresh(st, org_id).await?;
    let (wallets, grants) = st.store.wallets_of(org_id).await?;
    let now = st.clock.now_ms();
    let items: Vec<Value> = wallets.iter().map(|w| wallet_view(w, &grants, anchor, now)).collect();
    Ok(json!({"items": items, "next_cursor": null}))
}

// ----- wallets -----

/// The org's wallets with their balances and live grants. Any member of the org may read them.
#[utoipa::path(get, path = "/v1/orgs/{org}/wallets", tag = "credits", security(("bearer" = [])),
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = WalletList)))]
async fn list_wallets(State(st): State<AppState>, caller: Caller, Path(org): Path<String>) -> ApiResult<Json<Value>> {
    let o = org_ctx(&st, &caller, &org).await?;
    Ok(Json(wallets_json(&st, &o.org.id, o.org.plan_started_at).await?))
}

/// The wallets of the org of the acting workspace: for API keys, and users in their active workspace.
#[utoipa::path(get, path = "/v1/wallets", tag = "credits", security(("bearer" = [])),
    params(("Roost-Workspace" = Option<String>, Header, description = "act in this workspace")),
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = WalletList)))]
async fn acting_wallets(State(st): State<AppState>, caller: Caller, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let w = acting_ws(&st, &caller, &headers).await?;
    w.require(Permission::ReadWorkspace)?;
    Ok(Json(wallets_json(&st, &w.org.id, w.org.plan_started_at).await?))
}

/// Body of a top-up.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopupBody {
    /// Credits to add (≥ 1). Top-ups never expire.
    amount: i64,
}

/// Adds credits that never expire. Owner or billing. Needs an `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/orgs/{org}/wallets/{wallet}/topups", tag = "credits", security(("bearer" = [])),
    params(("wallet" = String, Path, description = "wallet id or kind"), ("Idempotency-Key" = String, Header)),
    request_body = TopupBody,
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 201, body = GrantCreated), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 409, description = "idempotency_conflict", body = Problem, content_type = "application/problem+json")))]
async fn topup(
    State(st): State<AppState>,
    caller: Caller,
    Path((org, wallet)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<TopupBody>,
) -> ApiResult<Response> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ManageBilling)?;
    let wallet = wallet_param(&st, &o, &wallet).await?;
    let mut e = Errors::default();
    check_amount(&mut e, "amount", b.amount);
    e.finish().map_err(ApiError::invalid)?;
    let idem = idem(&headers, "topup", &wallet, &caller, &b)?;
    let op = Op::Grant { wallet, source: Source::Topup, amount: b.amount, expires_at: None, reason: None };
    Ok(run(&st, Command { org_id: o.org.id, actor: actor_ref(&caller), op, idem: Some(idem) }).await)
}

/// A `{wallet}` path segment: a wallet id of this org, or a configured kind.
async fn wallet_param(st: &AppState, o: &OrgCtx, wallet: &str) -> ApiResult<String> {
    if st.ledger.config().kinds.iter().any(|k| k == wallet) {
        return Ok(wallet.to_string());
    }
    check_id(IdKind::Wallet, wallet)?;
    refresh(st, &o.org.id).await?;
    let (wallets, _) = st.store.wallets_of(&o.org.id).await?;
    wallets.into_iter().find(|w| w.id == wallet).map(|w| w.kind).ok_or_else(ApiError::not_found)
}

/// Body of an adjustment.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustBody {
    /// Credits to add (> 0) or take away (< 0, drawn in draw-down order).
    amount: i64,
    /// Why: kept in the journal and the audit log.
    reason: String,
    /// When added credits expire (default: never).
    expires_at: Option<String>,
}

/// Corrects a wallet by hand. Owner only; audited as `wallet.adjusted`. Needs an `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/orgs/{org}/wallets/{wallet}/adjustments", tag = "credits", security(("bearer" = [])),
    params(("wallet" = String, Path, description = "wallet id or kind"), ("Idempotency-Key" = String, Header)),
    request_body = AdjustBody,
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 201, description = "`{grant}` for a credit, `{adjustment}` for a debit"), (status = 402, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 409, description = "idempotency_conflict", body = Problem, content_type = "application/problem+json")))]
async fn adjust(
    State(st): State<AppState>,
    caller: Caller,
    Path((org, wallet)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<AdjustBody>,
) -> ApiResult<Response> {
    let o = org_ctx(&st, &caller, &org).await?;
    if o.role != OrgRole::Owner {
        return Err(ApiError::forbidden("only the owner adjusts wallets"));
    }
    let wallet = wallet_param(&st, &o, &wallet).await?;
    let mut e = Errors::default();
    if b.amount.checked_abs().is_none_or(|a| a == 0 || a > MAX_AMOUNT) {
        e.add("amount", format!("must be a non-zero whole number within ±{MAX_AMOUNT}"));
    }
    let reason = b.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 500 || reason.chars().any(char::is_control) {
        e.add("reason", "must be 1–500 characters without control characters");
    }
    let now = st.clock.now_ms();
    let expires_at = match &b.expires_at {
        None => None,
        Some(s) => match parse_rfc3339(s) {
            Some(t) if t > now && b.amount > 0 => Some(t),
            _ => {
                e.add("expires_at", "must be a future RFC 3339 time, and only on a credit");
                None
            }
        },
    };
    e.finish().map_err(ApiError::invalid)?;
    let idem = idem(&headers, "adjust", &wallet, &caller, &b)?;
    let op = Op::Grant { wallet, source: Source::Adjustment, amount: b.amount, expires_at, reason: Some(reason) };
    Ok(run(&st, Command { org_id: o.org.id, actor: actor_ref(&caller), op, idem: Some(idem) }).await)
}

// ----- charges and holds -----

/// Body of a charge.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargeBody {
    /// Credits to charge (≥ 1).
    amount: i64,
    /// What the credits paid for, e.g. `llm.tokens` (1–100 characters).
    action: String,
    /// The wallet kind (default `credits`).
    wallet: Option<String>,
    /// Anything to keep with the charge (a JSON object, at most 4 KiB).
    metadata: Option<Value>,
}

fn check_metadata(e: &mut Errors, m: Option<&Value>) -> Option<String> {
    let m = m?;
    if m.is_null() {
        return None;
    }
    let s = m.to_string();
    if !m.is_object() || s.len() > MAX_METADATA {
        e.add("metadata", "must be a JSON object of at most 4 KiB");
        return None;
    }
    Some(s)
}

/// Charges the org wallet of the acting workspace. Needs an `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/charges", tag = "credits", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header), ("Roost-Workspace" = Option<String>, Header, description = "act in this workspace")),
    request_body = ChargeBody,
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 201, body = ChargeView), (status = 402, description = "insufficient_credits, with `available`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden, or budget_exceeded with `scope`, `limit`, `used`, `resets_at`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "idempotency_conflict", body = Problem, content_type = "application/problem+json")))]
async fn charge(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(b): ApiJson<ChargeBody>,
) -> ApiResult<Response> {
    let w = acting_ws(&st, &caller, &headers).await?;
    w.require(Permission::UseWorkspace)?;
    let mut e = Errors::default();
    let (action, wallet) = check_draw(&st, &mut e, b.amount, &b.action, b.wallet.as_deref());
    let metadata = check_metadata(&mut e, b.metadata.as_ref());
    e.finish().map_err(ApiError::invalid)?;
    let idem = idem(&headers, "charge", &w.ws.id, &caller, &b)?;
    let op = Op::Charge { workspace_id: w.ws.id.clone(), wallet, amount: b.amount, action, metadata };
    Ok(run(&st, Command { org_id: w.org.id, actor: actor_ref(&caller), op, idem: Some(idem) }).await)
}

/// Body of a hold.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    /// Credits to reserve (≥ 1).
    amount: i64,
    action: String,
    /// How long the hold lives unless settled or released (1 s – 7 days, default 900).
    ttl_seconds: Option<i64>,
    /// The wallet kind (default `credits`).
    wallet: Option<String>,
}

/// Reserves credits against the wallet and workspace of the context now. Needs an `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/holds", tag = "credits", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header), ("Roost-Workspace" = Option<String>, Header, description = "act in this workspace")),
    request_body = HoldBody,
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 201, body = HoldView), (status = 402, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn create_hold(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(b): ApiJson<HoldBody>,
) -> ApiResult<Response> {
    let w = acting_ws(&st, &caller, &headers).await?;
    w.require(Permission::UseWorkspace)?;
    let mut e = Errors::default();
    let (action, wallet) = check_draw(&st, &mut e, b.amount, &b.action, b.wallet.as_deref());
    let ttl = b.ttl_seconds.unwrap_or(DEFAULT_HOLD_TTL);
    if !(1..=MAX_HOLD_TTL).contains(&ttl) {
        e.add("ttl_seconds", format!("must be from 1 to {MAX_HOLD_TTL}"));
    }
    e.finish().map_err(ApiError::invalid)?;
    let idem = idem(&headers, "hold", &w.ws.id, &caller, &b)?;
    let op = Op::Hold { workspace_id: w.ws.id.clone(), wallet, amount: b.amount, action, ttl_ms: ttl * 1000 };
    Ok(run(&st, Command { org_id: w.org.id, actor: actor_ref(&caller), op, idem: Some(idem) }).await)
}

/// The hold `id` if the caller may charge in the workspace it is bound to (404 otherwise).
async fn hold_ctx(st: &AppState, caller: &Caller, id: &str, p: Permission) -> ApiResult<(roost_store::HoldRow, WsCtx)> {
    check_id(IdKind::Hold, id)?;
    let Some(h) = st.store.hold(id).await? else {
        return not_found_after_access_check(st, caller).await;
    };
    let w = ws_ctx(st, caller, &h.workspace_id).await?;
    w.require(p)?;
    Ok((h, w))
}

/// A hold.
#[utoipa::path(get, path = "/v1/holds/{id}", tag = "credits", security(("bearer" = [])),
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = HoldView)))]
async fn get_hold(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (mut h, _) = hold_ctx(&st, &caller, &id, Permission::ReadWorkspace).await?;
    if h.status == "open" && h.expires_at <= st.clock.now_ms() {
        h.status = "expired".into();
    }
    Ok(Json(hold_json(&h)))
}

/// Body of a settle.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleBody {
    /// What to charge of the hold (1 ≤ amount ≤ held); the rest goes back.
    amount: i64,
}

/// Charges up to what is held, to the wallet and workspace bound when the hold was made, and
/// releases the rest. Needs an `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/holds/{id}/settle", tag = "credits", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header)), request_body = SettleBody,
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = SettleView), (status = 409, description = "hold_closed or idempotency_conflict", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "settle_exceeds_hold", body = Problem, content_type = "application/problem+json")))]
async fn settle_hold(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<SettleBody>,
) -> ApiResult<Response> {
    let (h, _) = hold_ctx(&st, &caller, &id, Permission::UseWorkspace).await?;
    let mut e = Errors::default();
    check_amount(&mut e, "amount", b.amount);
    e.finish().map_err(ApiError::invalid)?;
    let idem = idem(&headers, "settle", &h.id, &caller, &b)?;
    let op = Op::Settle { hold_id: h.id, amount: b.amount };
    Ok(run(&st, Command { org_id: h.org_id, actor: actor_ref(&caller), op, idem: Some(idem) }).await)
}

/// Releases everything a hold reserved.
#[utoipa::path(post, path = "/v1/holds/{id}/release", tag = "credits", security(("bearer" = [])),
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = HoldView), (status = 409, description = "hold_closed", body = Problem, content_type = "application/problem+json")))]
async fn release_hold(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let (h, _) = hold_ctx(&st, &caller, &id, Permission::UseWorkspace).await?;
    let op = Op::Release { hold_id: h.id };
    Ok(run(&st, Command { org_id: h.org_id, actor: actor_ref(&caller), op, idem: None }).await)
}

// ----- transactions and usage -----

/// `?limit=` and `?cursor=` of a journal list: the cursor is a sequence number this server issued.
fn journal_page(params: &Params) -> ApiResult<(u32, Option<&str>)> {
    let (limit, cursor) = params.page()?;
    if cursor.is_some_and(|c| !c.parse::<i64>().is_ok_and(|n| n > 0)) {
        return Err(ApiError::invalid_field("cursor", "is not a cursor this server issued"));
    }
    Ok((limit, cursor))
}

fn actor_filter(params: &Params) -> ApiResult<Option<String>> {
    match params.text("actor")? {
        None => Ok(None),
        Some(a) if IdKind::User.is_valid(a) || IdKind::Key.is_valid(a) => Ok(Some(a.to_string())),
        Some(_) => Err(ApiError::invalid_field("actor", "must be a user id (usr_…) or a key id (key_…)")),
    }
}

/// The workspace's charges, newest first. `?actor=usr_…|key_…` narrows to one actor.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/transactions", tag = "credits", security(("bearer" = [])),
    params(("actor" = Option<String>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = TransactionList)))]
async fn ws_transactions(
    State(st): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let w = ws_ctx(&st, &caller, &ws).await?;
    w.require(Permission::ReadWorkspace)?;
    let (limit, cursor) = journal_page(&params)?;
    let f = EntryFilter { workspace_id: Some(w.ws.id.clone()), actor_id: actor_filter(&params)? };
    let p = st.store.list_entries(&w.org.id, &f, limit, cursor).await?;
    Ok(Json(json!({"items": p.items.iter().map(entry_json).collect::<Vec<_>>(), "next_cursor": p.next_cursor})))
}

/// The org's whole journal: charges, grants, expiries and adjustments, newest first. Owner, admin, billing.
#[utoipa::path(get, path = "/v1/orgs/{org}/transactions", tag = "credits", security(("bearer" = [])),
    params(("actor" = Option<String>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = TransactionList)))]
async fn org_transactions(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ReadUsage)?;
    refresh(&st, &o.org.id).await?;
    let (limit, cursor) = journal_page(&params)?;
    let f = EntryFilter { workspace_id: None, actor_id: actor_filter(&params)? };
    let p = st.store.list_entries(&o.org.id, &f, limit, cursor).await?;
    Ok(Json(json!({"items": p.items.iter().map(entry_json).collect::<Vec<_>>(), "next_cursor": p.next_cursor})))
}

/// What the org spent in `[from, to)` (default: this cycle so far), grouped by `workspace`
/// (default), `member` (key charges count for the key's creator), `key` or `action`, from the
/// hourly rollups. Each group carries its `share` of the total. Owner, admin, billing.
#[utoipa::path(get, path = "/v1/orgs/{org}/usage", tag = "credits", security(("bearer" = [])),
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("group_by" = Option<String>, Query),
        ("wallet" = Option<String>, Query, description = "wallet kind, default `credits`")),
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = UsageView)))]
async fn usage(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ReadUsage)?;
    let now = st.clock.now_ms();
    let mut e = Errors::default();
    let group = params.get("group_by").unwrap_or("workspace");
    if !["workspace", "member", "key", "action"].contains(&group) {
        e.add("group_by", "must be workspace, member, key or action");
    }
    let mut time = |k: &str, default: i64| match params.get(k) {
        None => default,
        Some(v) => parse_rfc3339(v).unwrap_or_else(|| {
            e.add(k, "must be an RFC 3339 time");
            0
        }),
    };
    let (_, cycle_start, _) = cycle_at(o.org.plan_started_at, now);
    let from = time("from", cycle_start);
    let to = time("to", now.saturating_add(1));
    if to < from {
        e.add("to", "must not be before from");
    }
    let kind = check_kind(&st, &mut e, params.get("wallet"));
    e.finish().map_err(ApiError::invalid)?;
    refresh(&st, &o.org.id).await?;
    let (wallets, _) = st.store.wallets_of(&o.org.id).await?;
    let wallet_id = wallets.iter().find(|w| w.kind == kind).map(|w| w.id.clone());
    let groups = match &wallet_id {
        Some(w) => st.store.usage(&o.org.id, w, from, to, group).await?,
        None => Vec::new(),
    };
    let total: i64 = groups.iter().map(|g| g.amount).sum();
    let count: i64 = groups.iter().map(|g| g.count).sum();
    let groups: Vec<Value> = groups
        .iter()
        .map(|g| {
            #[expect(clippy::cast_precision_loss, reason = "a share is a ratio for people")]
            let share = if total > 0 { ((g.amount as f64 / total as f64) * 10_000.0).round() / 10_000.0 } else { 0.0 };
            json!({"key": if g.key.is_empty() { Value::Null } else { g.key.clone().into() }, "amount": g.amount, "count": g.count, "share": share})
        })
        .collect();
    Ok(Json(json!({
        "total": total, "count": count, "from": to_rfc3339(from), "to": to_rfc3339(to),
        "group_by": group, "wallet_id": wallet_id, "groups": groups,
    })))
}

// ----- budgets -----

/// Body of a workspace budget.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WsBudgetBody {
    /// The most this workspace may draw per cycle; `null` removes the budget.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    limit: Option<Option<i64>>,
    /// Percentages of the limit at which a `budget.alert` audit event is written (default 50, 80, 100).
    alert_percents: Option<Vec<u32>>,
}

/// Body of a member budget.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberBudgetBody {
    /// The most this member may draw in this workspace per cycle (their keys' charges included);
    /// `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    limit: Option<Option<i64>>,
}

fn check_limit(e: &mut Errors, limit: Option<Option<i64>>) -> Option<i64> {
    match limit {
        None => {
            e.add("limit", "is required (null removes the budget)");
            None
        }
        Some(Some(l)) if !(0..=MAX_AMOUNT).contains(&l) => {
            e.add("limit", format!("must be from 0 to {MAX_AMOUNT}, or null"));
            None
        }
        Some(l) => l,
    }
}

async fn budget_view(st: &AppState, w: &WsCtx, user: Option<&str>) -> ApiResult<Value> {
    let now = st.clock.now_ms();
    let (_, start, end) = cycle_at(w.org.plan_started_at, now);
    let (scope, uid, subject) = match user {
        Some(u) => ("member", u, format!("{}:{u}", w.ws.id)),
        None => ("workspace", "", w.ws.id.clone()),
    };
    let b = st.store.budget(&w.org.id, scope, &w.ws.id, uid).await?;
    let used = st.store.budget_used(&w.org.id, scope, &subject, start).await?;
    let mut v = json!({
        "scope": scope, "workspace_id": w.ws.id, "limit": b.as_ref().map(|b| b.limit),
        "used": used, "resets_at": to_rfc3339(end),
    });
    match user {
        Some(u) => v["user_id"] = u.into(),
        None => {
            let p: Vec<u32> =
                b.map(|b| b.alert_percents.split(',').filter_map(|p| p.parse().ok()).collect()).unwrap_or_default();
            v["alert_percents"] = json!(p);
        }
    }
    Ok(v)
}

/// The workspace's per-cycle budget and what it drew this cycle.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/budget", tag = "credits", security(("bearer" = [])),
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = BudgetView)))]
async fn get_ws_budget(State(st): State<AppState>, caller: Caller, Path(ws): Path<String>) -> ApiResult<Json<Value>> {
    let w = ws_ctx(&st, &caller, &ws).await?;
    w.require(Permission::ReadWorkspace)?;
    Ok(Json(budget_view(&st, &w, None).await?))
}

/// Sets (or with `limit: null` removes) the workspace's per-cycle cap on what it may draw from the
/// org's pool. Org owner/admin or workspace admin; audited as `budget.changed`.
#[utoipa::path(put, path = "/v1/workspaces/{ws}/budget", tag = "credits", security(("bearer" = [])),
    request_body = WsBudgetBody, responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = BudgetView), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn put_ws_budget(
    State(st): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    ApiJson(b): ApiJson<WsBudgetBody>,
) -> ApiResult<Response> {
    let w = ws_ctx(&st, &caller, &ws).await?;
    w.require(Permission::ManageWorkspace)?;
    let mut e = Errors::default();
    let limit = check_limit(&mut e, b.limit);
    let mut percents = b.alert_percents.unwrap_or_else(|| vec![50, 80, 100]);
    if percents.len() > 10 || percents.iter().any(|p| !(1..=1000).contains(p)) {
        e.add("alert_percents", "must be at most 10 whole numbers from 1 to 1000");
    }
    e.finish().map_err(ApiError::invalid)?;
    percents.sort_unstable();
    percents.dedup();
    let op = Op::SetBudget { workspace_id: w.ws.id.clone(), user_id: None, limit, alert_percents: percents };
    Ok(run(&st, Command { org_id: w.org.id, actor: actor_ref(&caller), op, idem: None }).await)
}

/// A member's per-cycle budget in the workspace.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/members/{user}/budget", tag = "credits", security(("bearer" = [])),
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = BudgetView)))]
async fn get_member_budget(
    State(st): State<AppState>,
    caller: Caller,
    Path((ws, user)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let w = ws_ctx(&st, &caller, &ws).await?;
    w.require(Permission::ReadWorkspace)?;
    let user = user_param(&caller, &user)?;
    st.store.workspace_access(&w.ws.id, &user).await?.ok_or_else(ApiError::not_found)?;
    Ok(Json(budget_view(&st, &w, Some(&user)).await?))
}

/// Sets (or with `limit: null` removes) a per-cycle cap on what one member may draw in this
/// workspace, their keys included. Org owner/admin or workspace admin; audited.
#[utoipa::path(put, path = "/v1/workspaces/{ws}/members/{user}/budget", tag = "credits", security(("bearer" = [])),
    request_body = MemberBudgetBody, responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = BudgetView)))]
async fn put_member_budget(
    State(st): State<AppState>,
    caller: Caller,
    Path((ws, user)): Path<(String, String)>,
    ApiJson(b): ApiJson<MemberBudgetBody>,
) -> ApiResult<Response> {
    let w = ws_ctx(&st, &caller, &ws).await?;
    w.require(Permission::ManageWorkspace)?;
    let user = user_param(&caller, &user)?;
    st.store.workspace_access(&w.ws.id, &user).await?.ok_or_else(ApiError::not_found)?;
    let mut e = Errors::default();
    let limit = check_limit(&mut e, b.limit);
    e.finish().map_err(ApiError::invalid)?;
    let op = Op::SetBudget { workspace_id: w.ws.id.clone(), user_id: Some(user), limit, alert_percents: Vec::new() };
    Ok(run(&st, Command { org_id: w.org.id, actor: actor_ref(&caller), op, idem: None }).await)
}

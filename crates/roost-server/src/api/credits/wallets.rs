//! Wallets: listing them with their live grants, top-ups, and an owner's adjustments.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use roost_domain::credits::cycle_at;
use roost_domain::time::parse_rfc3339;
use roost_domain::validate::Errors;
use roost_domain::{IdKind, OrgRole, Permission};
use roost_ledger::{Command, Op, Source};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::views::{Adjusted, GrantCreated, WalletView};
use super::{MAX_AMOUNT, actor_ref, check_amount, idem, refresh, run};
use crate::AppState;
use crate::api::{OrgCtx, acting_ws, check_id, org_ctx};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{HeadersAndJson, Params};
use crate::views::List;

/// The org's wallets (brought up to the clock first), as the API shows them.
async fn wallets(st: &AppState, org_id: &str, anchor: i64) -> ApiResult<List<WalletView>> {
    refresh(st, org_id).await?;
    let (wallets, grants) = st.store.wallets_of(org_id).await?;
    let now = st.clock.now_ms();
    let cycle = |w: &roost_store::WalletRow| {
        (w.kind == roost_ledger::CREDITS).then(|| {
            let (_, s, e) = cycle_at(anchor, now);
            (s, e)
        })
    };
    let items = wallets.iter().map(|w| WalletView::new(w, &grants, cycle(w))).collect();
    Ok(List { items, next_cursor: None })
}

/// The org's wallets with their balances and live grants. Any member of the org may read them.
#[utoipa::path(get, path = "/v1/orgs/{org}/wallets", tag = "credits", security(("bearer" = [])),
    params(("cursor" = Option<String>, Query, description = "never valid: the list is one page")),
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = List<WalletView>)))]
pub(super) async fn list_wallets(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    params: Params,
) -> ApiResult<Json<List<WalletView>>> {
    params.no_cursor()?;
    let o = org_ctx(&st, &caller, &org).await?;
    Ok(Json(wallets(&st, &o.org.id, o.org.plan_started_at).await?))
}

/// The wallets of the org of the acting workspace: for API keys, and users in their active workspace.
#[utoipa::path(get, path = "/v1/wallets", tag = "credits", security(("bearer" = [])),
    params(("Roost-Workspace" = Option<String>, Header, description = "act in this workspace"),
        ("cursor" = Option<String>, Query, description = "never valid: the list is one page")),
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = List<WalletView>)))]
pub(super) async fn acting_wallets(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    params: Params,
) -> ApiResult<Json<List<WalletView>>> {
    params.no_cursor()?;
    let w = acting_ws(&st, &caller, &headers).await?;
    w.require(Permission::ReadWorkspace)?;
    Ok(Json(wallets(&st, &w.org.id, w.org.plan_started_at).await?))
}

/// Body of a top-up.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopupBody {
    /// Credits to add (≥ 1). Top-ups never expire.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_i64)]
    amount: i64,
}

/// Adds credits that never expire. Owner or billing. Needs an `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/orgs/{org}/wallets/{wallet}/topups", tag = "credits", security(("bearer" = [])),
    params(("wallet" = String, Path, description = "wallet id or kind"), ("Idempotency-Key" = String, Header)),
    request_body = TopupBody,
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 201, body = GrantCreated), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 409, description = "idempotency_conflict", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn topup(
    State(st): State<AppState>,
    caller: Caller,
    Path((org, wallet)): Path<(String, String)>,
    HeadersAndJson(headers, b): HeadersAndJson<TopupBody>,
) -> ApiResult<Response> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ManageBilling)?;
    let wallet = wallet_param(&st, &o, &wallet).await?;
    let mut e = Errors::default();
    check_amount(&mut e, "amount", b.amount);
    e.finish().map_err(ApiError::invalid)?;
    if st.settings.billing_on() {
        // With billing on, a top-up is a purchase: its credits arrive when it is paid.
        return crate::api::billing::topup_purchase(&st, &caller, &o, &wallet, b.amount, &headers).await;
    }
    let idem = idem(&headers, "topup", &wallet, &caller, &b)?;
    let op = Op::Grant { wallet, source: Source::Topup, amount: b.amount, expires_at: None, reason: None };
    run(&st, Command { org_id: o.org.id, actor: actor_ref(&caller), op, idem: Some(idem) }).await
}

/// A `{wallet}` path segment: a wallet id of this org, or a configured kind.
pub(crate) async fn wallet_param(st: &AppState, o: &OrgCtx, wallet: &str) -> ApiResult<String> {
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
    #[schema(minimum = -1_000_000_000_000_000_i64, maximum = 1_000_000_000_000_000_i64)]
    amount: i64,
    /// Why: kept in the journal and the audit log.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    reason: String,
    /// When added credits expire (default: never).
    expires_at: Option<String>,
}

/// Corrects a wallet by hand. Owner only; audited as `wallet.adjusted`. Needs an `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/orgs/{org}/wallets/{wallet}/adjustments", tag = "credits", security(("bearer" = [])),
    params(("wallet" = String, Path, description = "wallet id or kind"), ("Idempotency-Key" = String, Header)),
    request_body = AdjustBody,
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 201, description = "`{grant}` for a credit, `{adjustment}` for a debit", body = Adjusted), (status = 402, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 409, description = "idempotency_conflict", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn adjust(
    State(st): State<AppState>,
    caller: Caller,
    Path((org, wallet)): Path<(String, String)>,
    HeadersAndJson(headers, b): HeadersAndJson<AdjustBody>,
) -> ApiResult<Response> {
    let o = org_ctx(&st, &caller, &org).await?;
    if st.settings.billing_on() {
        return Err(ApiError::forbidden(
            "with billing on, only the operator adjusts wallets (POST /v1/admin/orgs/{org}/wallets/{wallet}/grants)",
        ));
    }
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
    run(&st, Command { org_id: o.org.id, actor: actor_ref(&caller), op, idem: Some(idem) }).await
}

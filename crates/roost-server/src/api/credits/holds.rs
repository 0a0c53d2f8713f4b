//! Holds: reserving credits, reading a hold, settling and releasing it.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use roost_domain::ledger::HoldStatus;
use roost_domain::validate::Errors;
use roost_domain::{IdKind, Permission};
use roost_ledger::{Command, Op, Refusal};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::views::{HoldView, SettleView};
use super::{DEFAULT_HOLD_TTL, MAX_HOLD_TTL, actor_ref, check_amount, check_draw, idem, idem_key, run, submit_counted};
use crate::AppState;
use crate::api::{acting_scope, check_id, not_found_after_access_check, ws_scope};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::HeadersAndJson;

/// Body of a hold.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    /// Credits to reserve (≥ 1).
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_i64)]
    amount: i64,
    /// What the credits are held for (1–100 characters).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    action: String,
    /// How long the hold lives unless settled or released (1 s – 7 days, default 900).
    #[schema(minimum = 1, maximum = 604_800)]
    ttl_seconds: Option<i64>,
    /// The wallet kind (default `credits`).
    wallet: Option<String>,
}

/// Reserves credits against the wallet and workspace of the context now. Needs an `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/holds", tag = "credits", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header), ("Roost-Workspace" = Option<String>, Header, description = "act in this workspace")),
    request_body = HoldBody,
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 201, body = HoldView), (status = 402, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub(super) async fn create_hold(
    State(st): State<AppState>,
    caller: Caller,
    HeadersAndJson(headers, b): HeadersAndJson<HoldBody>,
) -> ApiResult<Response> {
    idem_key(&headers)?;
    let w = acting_scope(&st, &caller, &headers, Permission::UseWorkspace).await?;
    let mut e = Errors::default();
    let (action, wallet) = check_draw(&st, &mut e, b.amount, &b.action, b.wallet.as_deref());
    let ttl = b.ttl_seconds.unwrap_or(DEFAULT_HOLD_TTL);
    if !(1..=MAX_HOLD_TTL).contains(&ttl) {
        e.add("ttl_seconds", format!("must be from 1 to {MAX_HOLD_TTL}"));
    }
    e.finish().map_err(ApiError::invalid)?;
    let idem = idem(&headers, "hold", &w.workspace_id, &caller, &b)?;
    let op = Op::Hold { workspace_id: w.workspace_id, wallet, amount: b.amount, action, ttl_ms: ttl * 1000 };
    run(&st, Command { org_id: w.org_id, actor: actor_ref(&caller), op, idem: Some(idem) }).await
}

/// The hold `id` if the caller may charge in the workspace it is bound to (404 otherwise).
async fn hold_ctx(st: &AppState, caller: &Caller, id: &str, p: Permission) -> ApiResult<roost_store::HoldRow> {
    check_id(IdKind::Hold, id)?;
    let Some(h) = st.store.hold(id).await? else {
        return not_found_after_access_check(st, caller).await;
    };
    ws_scope(st, caller, &h.workspace_id, p).await?;
    Ok(h)
}

/// A hold.
#[utoipa::path(get, path = "/v1/holds/{id}", tag = "credits", security(("bearer" = [])),
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = HoldView)))]
pub(super) async fn get_hold(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<HoldView>> {
    let mut h = hold_ctx(&st, &caller, &id, Permission::ReadWorkspace).await?;
    if h.status == HoldStatus::Open && h.expires_at <= st.clock.now_ms() {
        h.status = HoldStatus::Expired;
    }
    Ok(Json(HoldView::from(&h)))
}

/// Body of a settle.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleBody {
    /// What to charge of the hold (1 ≤ amount ≤ held); the rest goes back.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_i64)]
    amount: i64,
}

/// Charges up to what is held, to the wallet and workspace bound when the hold was made, and
/// releases the rest. Needs an `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/holds/{id}/settle", tag = "credits", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header)), request_body = SettleBody,
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = SettleView), (status = 409, description = "hold_closed or idempotency_conflict", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "settle_exceeds_hold", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn settle_hold(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    HeadersAndJson(headers, b): HeadersAndJson<SettleBody>,
) -> ApiResult<Response> {
    let h = hold_ctx(&st, &caller, &id, Permission::UseWorkspace).await?;
    let mut e = Errors::default();
    check_amount(&mut e, "amount", b.amount);
    e.finish().map_err(ApiError::invalid)?;
    let idem = idem(&headers, "settle", &h.id, &caller, &b)?;
    let op = Op::Settle { hold_id: h.id, amount: b.amount };
    run(&st, Command { org_id: h.org_id, actor: actor_ref(&caller), op, idem: Some(idem) }).await
}

/// Releases everything a hold reserved.
#[utoipa::path(post, path = "/v1/holds/{id}/release", tag = "credits", security(("bearer" = [])),
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = HoldView), (status = 409, description = "hold_closed", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn release_hold(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let h = hold_ctx(&st, &caller, &id, Permission::UseWorkspace).await?;
    let op = Op::Release { hold_id: h.id };
    run(&st, Command { org_id: h.org_id, actor: actor_ref(&caller), op, idem: None }).await
}

/// Releases the open holds of a workspace that was just deleted, so that their credits come back
/// now rather than when each hold would have expired (a deleted workspace's holds cannot be
/// reached through `/v1/holds/{id}` any more). A hold closed meanwhile is left as it is.
pub(crate) async fn release_workspace_holds(
    st: &AppState,
    caller: &Caller,
    org_id: &str,
    ws_id: &str,
) -> ApiResult<()> {
    for hold_id in st.store.open_holds_of_workspace(org_id, ws_id).await? {
        let cmd =
            Command { org_id: org_id.to_string(), actor: actor_ref(caller), op: Op::Release { hold_id }, idem: None };
        match submit_counted(st, cmd).await? {
            Ok(_) | Err(Refusal::HoldClosed { .. }) => {}
            Err(other) => tracing::warn!(?other, "releasing a deleted workspace's hold was refused"),
        }
    }
    Ok(())
}

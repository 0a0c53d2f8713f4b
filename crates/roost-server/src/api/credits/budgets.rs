//! Budgets: per-cycle caps on what a workspace, or a member in a workspace, may draw.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use roost_domain::Permission;
use roost_domain::credits::cycle_at;
use roost_domain::ledger::BudgetScope;
use roost_domain::validate::Errors;
use roost_ledger::{BudgetState, Command, Op};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::views::BudgetView;
use super::{MAX_AMOUNT, actor_ref, present, run};
use crate::AppState;
use crate::api::{WsCtx, user_param, ws_ctx};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;

/// Body of a workspace budget.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WsBudgetBody {
    /// The most this workspace may draw per cycle; `null` removes the budget.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, required, minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    limit: Option<Option<i64>>,
    /// Percentages of the limit at which a `budget.alert` audit event is written (default 50, 80, 100).
    #[schema(max_items = 10)]
    alert_percents: Option<Vec<u32>>,
}

/// Body of a member budget.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberBudgetBody {
    /// The most this member may draw in this workspace per cycle (their keys' charges included);
    /// `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, required, minimum = 0, maximum = 1_000_000_000_000_000_i64)]
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

async fn budget_view(st: &AppState, w: &WsCtx, user: Option<&str>) -> ApiResult<BudgetView> {
    let now = st.clock.now_ms();
    let (_, start, end) = cycle_at(w.org.plan_started_at, now);
    let scope = if user.is_some() { BudgetScope::Member } else { BudgetScope::Workspace };
    let uid = user.unwrap_or_default();
    let b = st.store.budget(&w.org.id, scope, &w.ws.id, uid).await?;
    let used = st.store.budget_used(&w.org.id, scope, &scope.subject(&w.ws.id, uid, ""), start).await?;
    Ok(BudgetView::from(BudgetState {
        scope,
        workspace_id: w.ws.id.clone(),
        user_id: user.map(str::to_string),
        limit: b.as_ref().map(|b| b.limit),
        alert_percents: b.map(|b| b.alert_percents).unwrap_or_default(),
        used,
        resets_at: end,
    }))
}

/// The workspace's per-cycle budget and what it drew this cycle.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/budget", tag = "credits", security(("bearer" = [])),
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = BudgetView)))]
pub(super) async fn get_ws_budget(
    State(st): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
) -> ApiResult<Json<BudgetView>> {
    let w = ws_ctx(&st, &caller, &ws).await?;
    w.require(Permission::ReadWorkspace)?;
    Ok(Json(budget_view(&st, &w, None).await?))
}

/// Sets (or with `limit: null` removes) the workspace's per-cycle cap on what it may draw from the
/// org's pool. Org owner/admin or workspace admin; audited as `budget.changed`.
#[utoipa::path(put, path = "/v1/workspaces/{ws}/budget", tag = "credits", security(("bearer" = [])),
    request_body = WsBudgetBody, responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = BudgetView), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub(super) async fn put_ws_budget(
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
    run(&st, Command { org_id: w.org.id, actor: actor_ref(&caller), op, idem: None }).await
}

/// A member's per-cycle budget in the workspace.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/members/{user}/budget", tag = "credits", security(("bearer" = [])),
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = BudgetView)))]
pub(super) async fn get_member_budget(
    State(st): State<AppState>,
    caller: Caller,
    Path((ws, user)): Path<(String, String)>,
) -> ApiResult<Json<BudgetView>> {
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
pub(super) async fn put_member_budget(
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
    run(&st, Command { org_id: w.org.id, actor: actor_ref(&caller), op, idem: None }).await
}

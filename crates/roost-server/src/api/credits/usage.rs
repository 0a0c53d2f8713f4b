//! Usage: what an org spent in a window, grouped by workspace, member, key or action.

use axum::Json;
use axum::extract::{Path, State};
use roost_domain::Permission;
use roost_domain::credits::cycle_at;
use roost_domain::ledger::UsageGroup;
use roost_domain::time::{parse_rfc3339, to_rfc3339};
use roost_domain::validate::Errors;

use super::views::{UsageGroupView, UsageView};
use super::{check_kind, refresh};
use crate::AppState;
use crate::api::org_ctx;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::Params;

/// What the org spent in `[from, to)` (default: this cycle so far), grouped by `workspace`
/// (default), `member` (key charges count for the key's creator), `key` or `action`, from the
/// hourly rollups. Each group carries its `share` of the total. Owner, admin, billing.
#[utoipa::path(get, path = "/v1/orgs/{org}/usage", tag = "credits", security(("bearer" = [])),
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("group_by" = Option<String>, Query),
        ("wallet" = Option<String>, Query, description = "wallet kind, default `credits`")),
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = UsageView)))]
pub(super) async fn usage(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    params: Params,
) -> ApiResult<Json<UsageView>> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ReadUsage)?;
    let now = st.clock.now_ms();
    let mut e = Errors::default();
    let group = match params.get("group_by") {
        None => UsageGroup::Workspace,
        Some(g) => UsageGroup::parse(g).unwrap_or_else(|| {
            e.add("group_by", "must be workspace, member, key or action");
            UsageGroup::Workspace
        }),
    };
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
    let groups = groups
        .into_iter()
        .map(|g| {
            #[expect(clippy::cast_precision_loss, reason = "a share is a ratio for people")]
            let share = if total > 0 { ((g.amount as f64 / total as f64) * 10_000.0).round() / 10_000.0 } else { 0.0 };
            UsageGroupView { key: (!g.key.is_empty()).then_some(g.key), amount: g.amount, count: g.count, share }
        })
        .collect();
    Ok(Json(UsageView { total, count, from: to_rfc3339(from), to: to_rfc3339(to), group_by: group, wallet_id, groups }))
}

//! `GET /v1/limits`: every limit that applies to the caller in the acting workspace, and where it
//! comes from.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use roost_domain::Permission;
use roost_domain::credits::cycle_at;
use roost_domain::ledger::BudgetScope;
use roost_domain::time::to_rfc3339;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::acting_ws;
use crate::AppState;
use crate::auth::{Caller, Who};
use crate::error::{ApiResult, Problem};
use crate::limits::Source;
use crate::views::List;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(limits))
}

/// One limit in force for the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitView {
    /// `rpm` (requests per minute, API keys only), `budget` (per cycle), `spend_limit` (a key's
    /// per-cycle cap) or `balance` (the credits available to draw).
    pub kind: &'static str,
    /// Where it comes from: `org` (the plan, the wallet), `workspace`, `member` or `key`.
    pub scope: &'static str,
    /// The limit; `null` for `balance`, which has none but what is there.
    pub limit: Option<i64>,
    /// What was used of it: requests counted in the window, credits drawn this cycle.
    pub used: Option<i64>,
    /// What is left: requests that may be made at once, credits that may still be drawn.
    pub remaining: i64,
    /// When it is whole again (RFC 3339); `null` for `balance`.
    pub resets_at: Option<String>,
}

fn budget(kind: &'static str, scope: &'static str, limit: i64, used: i64, resets_at: i64) -> LimitView {
    let remaining = limit.saturating_sub(used).max(0);
    LimitView { kind, scope, limit: Some(limit), used: Some(used), remaining, resets_at: Some(to_rfc3339(resets_at)) }
}

/// Every limit that applies to the caller in the acting workspace (a user token: the
/// `Roost-Workspace` header, else the active workspace; an API key: its own): the org's and the
/// key's `rpm` (API keys only), the workspace's and the member's budgets, the key's
/// `spend_limit`, and the org's available credits.
#[utoipa::path(get, path = "/v1/limits", tag = "limits", security(("bearer" = [])),
    params(("Roost-Workspace" = Option<String>, Header, description = "act in this workspace")),
    responses((status = 200, body = List<LimitView>),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found, also for another tenant's workspace", body = Problem, content_type = "application/problem+json")))]
async fn limits(State(st): State<AppState>, caller: Caller, headers: HeaderMap) -> ApiResult<Json<List<LimitView>>> {
    let w = acting_ws(&st, &caller, &headers).await?;
    w.require(Permission::ReadWorkspace)?;
    let now = st.clock.now_ms();
    let mut items = Vec::new();
    let (member, key) = match &caller.who {
        Who::User(u) => (u.id.clone(), None),
        Who::Key(k) => (k.created_by.clone(), Some(k.clone())),
    };
    if let Some(k) = &key {
        for (source, cell) in st.limiter.peek(&st, k).await? {
            let left = i64::from(cell.left_before());
            let limit = i64::from(cell.limit);
            let resets_at = now.saturating_add(i64::try_from(cell.reset_before_seconds()).unwrap_or(0) * 1000);
            items.push(LimitView {
                kind: "rpm",
                scope: source.as_str(),
                limit: Some(limit),
                used: Some(limit - left),
                remaining: left,
                resets_at: Some(to_rfc3339(resets_at)),
            });
        }
        items.sort_by_key(|l| l.scope != Source::Org.as_str());
    }
    super::credits::refresh(&st, &w.org.id).await?;
    let (_, start, end) = cycle_at(w.org.plan_started_at, now);
    let org = &w.org.id;
    if let Some(b) = st.store.budget(org, BudgetScope::Workspace, &w.ws.id, "").await? {
        let used = st.store.budget_used(org, BudgetScope::Workspace, &w.ws.id, start).await?;
        items.push(budget("budget", "workspace", b.limit, used, end));
    }
    if let Some(b) = st.store.budget(org, BudgetScope::Member, &w.ws.id, &member).await? {
        let subject = BudgetScope::Member.subject(&w.ws.id, &member, "");
        let used = st.store.budget_used(org, BudgetScope::Member, &subject, start).await?;
        items.push(budget("budget", "member", b.limit, used, end));
    }
    if let Some((id, limit)) = key.as_ref().and_then(|k| k.spend_limit.map(|l| (&k.id, l))) {
        let used = st.store.budget_used(org, BudgetScope::Key, id, start).await?;
        items.push(budget("spend_limit", "key", limit, used, end));
    }
    let (wallets, _) = st.store.wallets_of(org).await?;
    let default_kind = st.ledger.config().kinds.first().cloned().unwrap_or_default();
    if let Some(wallet) = wallets.iter().find(|w| w.kind == default_kind) {
        let available = wallet.balance - wallet.held;
        items.push(LimitView {
            kind: "balance",
            scope: "org",
            limit: None,
            used: None,
            remaining: available,
            resets_at: None,
        });
    }
    Ok(Json(List { items, next_cursor: None }))
}

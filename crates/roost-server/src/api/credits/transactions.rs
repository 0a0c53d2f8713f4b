//! The journal: a workspace's charges and an org's whole history, newest first.

use axum::Json;
use axum::extract::{Path, State};
use roost_domain::{IdKind, Permission};
use roost_store::EntryFilter;

use super::refresh;
use super::views::TransactionView;
use crate::AppState;
use crate::api::{org_ctx, ws_ctx};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::Params;
use crate::views::List;

/// `?limit=` and `?cursor=` of a journal list: the cursor is a sequence number this server issued.
fn journal_page(params: &Params) -> ApiResult<(u32, Option<&str>)> {
    let (limit, cursor) = (params.limit()?, params.get("cursor"));
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
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = List<TransactionView>)))]
pub(super) async fn ws_transactions(
    State(st): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    params: Params,
) -> ApiResult<Json<List<TransactionView>>> {
    let w = ws_ctx(&st, &caller, &ws).await?;
    w.require(Permission::ReadWorkspace)?;
    let (limit, cursor) = journal_page(&params)?;
    let f = EntryFilter { workspace_id: Some(w.ws.id.clone()), actor_id: actor_filter(&params)? };
    let p = st.store.list_entries(&w.org.id, &f, limit, cursor).await?;
    Ok(Json(List::from_page(p, |e| TransactionView::from(&e))))
}

/// The org's whole journal: charges, grants, expiries and adjustments, newest first. Owner, admin, billing.
#[utoipa::path(get, path = "/v1/orgs/{org}/transactions", tag = "credits", security(("bearer" = [])),
    params(("actor" = Option<String>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 200, body = List<TransactionView>)))]
pub(super) async fn org_transactions(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    params: Params,
) -> ApiResult<Json<List<TransactionView>>> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ReadUsage)?;
    refresh(&st, &o.org.id).await?;
    let (limit, cursor) = journal_page(&params)?;
    let f = EntryFilter { workspace_id: None, actor_id: actor_filter(&params)? };
    let p = st.store.list_entries(&o.org.id, &f, limit, cursor).await?;
    Ok(Json(List::from_page(p, |e| TransactionView::from(&e))))
}

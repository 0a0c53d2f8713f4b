//! Workspaces and their members.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roost_domain::validate::Errors;
use roost_domain::{IdKind, Permission, WsRole};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{check_id, org_ctx, user_param, ws_ctx};
use crate::AppState;
use crate::auth::{Caller, revoking};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, Params};
use crate::views::{List, MemberView, WorkspaceView};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_workspace, list_workspaces))
        .routes(routes!(get_workspace, update_workspace, delete_workspace))
        .routes(routes!(list_ws_members))
        .routes(routes!(put_ws_member, delete_ws_member))
}

/// Body of `POST /v1/orgs/{org}/workspaces` and `PATCH /v1/workspaces/{ws}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceBody {
    name: String,
}

fn valid_name(name: &str) -> ApiResult<String> {
    let mut e = Errors::default();
    let name = e.name("name", name);
    e.finish().map_err(ApiError::invalid)?;
    Ok(name)
}

/// Creates a workspace (owner or admin), within the plan's `max_workspaces`.
#[utoipa::path(post, path = "/v1/orgs/{org}/workspaces", tag = "workspaces", security(("bearer" = [])), request_body = WorkspaceBody,
    responses((status = 201, body = WorkspaceView), (status = 403, description = "forbidden, personal_org or plan_limit", body = Problem)))]
async fn create_workspace(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(b): ApiJson<WorkspaceBody>,
) -> ApiResult<(StatusCode, Json<WorkspaceView>)> {
    let o = org_ctx(&st, &caller, &org).await?;
    if o.org.is_personal() {
        return Err(ApiError::personal_org("has exactly one workspace"));
    }
    o.require(Permission::CreateWorkspace)?;
    let name = valid_name(&b.name)?;
    let id = IdKind::Workspace.generate();
    st.store.create_workspace(&o.org.id, &id, &name, &st.settings.catalog, &caller.ctx(st.clock.now_ms())).await?;
    let (ws, _) = st.store.workspace_by_id(&id).await?.ok_or_else(|| ApiError::internal("workspace vanished"))?;
    Ok((StatusCode::CREATED, Json((&ws).into())))
}

/// The org's workspaces: all of them for owner, admin and billing; otherwise the caller's own.
#[utoipa::path(get, path = "/v1/orgs/{org}/workspaces", tag = "workspaces", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = List<WorkspaceView>)))]
async fn list_workspaces(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    params: Params,
) -> ApiResult<Json<List<WorkspaceView>>> {
    let o = org_ctx(&st, &caller, &org).await?;
    let (limit, cursor) = params.page(IdKind::Workspace)?;
    let me = caller.user()?.id.as_str();
    let only = (!o.role.allows(Permission::SeeAllWorkspaces)).then_some(me);
    let page = st.store.list_workspaces(&o.org.id, only, limit, cursor).await?;
    Ok(Json(List::from_page(page, |w| WorkspaceView::from(&w))))
}

/// One workspace.
#[utoipa::path(get, path = "/v1/workspaces/{ws}", tag = "workspaces", security(("bearer" = [])),
    responses((status = 200, body = WorkspaceView), (status = 404, description = "not_found", body = Problem)))]
async fn get_workspace(
    State(st): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
) -> ApiResult<Json<WorkspaceView>> {
    let w = ws_ctx(&st, &caller, &ws).await?;
    Ok(Json((&w.ws).into()))
}

/// Renames a workspace (workspace managers).
#[utoipa::path(patch, path = "/v1/workspaces/{ws}", tag = "workspaces", security(("bearer" = [])), request_body = WorkspaceBody,
    responses((status = 200, body = WorkspaceView), (status = 403, description = "forbidden", body = Problem)))]
async fn update_workspace(
    State(st): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    ApiJson(b): ApiJson<WorkspaceBody>,
) -> ApiResult<Json<WorkspaceView>> {
    let w = ws_ctx(&st, &caller, &ws).await?;
    w.require(Permission::ManageWorkspace)?;
    let name = valid_name(&b.name)?;
    st.store.rename_workspace(&w.ws, &name, &caller.ctx(st.clock.now_ms())).await?;
    let mut view = WorkspaceView::from(&w.ws);
    view.name = name;
    Ok(Json(view))
}

/// Deletes a workspace (org owner only), revoking its keys and releasing its open holds. Primary and
/// personal ones are protected.
#[utoipa::path(delete, path = "/v1/workspaces/{ws}", tag = "workspaces", security(("bearer" = [])),
    responses((status = 204), (status = 403, description = "forbidden", body = Problem), (status = 409, description = "workspace_protected", body = Problem)))]
async fn delete_workspace(State(st): State<AppState>, caller: Caller, Path(ws): Path<String>) -> ApiResult<StatusCode> {
    let w = ws_ctx(&st, &caller, &ws).await?;
    if !w.org_role.is_some_and(|r| r.allows(Permission::DeleteWorkspace)) {
        return Err(ApiError::forbidden("only the org owner deletes workspaces"));
    }
    let (org_id, ws_id) = (w.ws.org_id.clone(), w.ws.id.clone());
    let (ws, ctx) = (w.ws, caller.ctx(st.clock.now_ms()));
    revoking(&st, move |st| async move { st.store.delete_workspace(&ws, &ctx).await }).await?;
    super::credits::release_workspace_holds(&st, &caller, &org_id, &ws_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The workspace's members.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/members", tag = "workspaces", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = List<MemberView>)))]
async fn list_ws_members(
    State(st): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    params: Params,
) -> ApiResult<Json<List<MemberView>>> {
    let w = ws_ctx(&st, &caller, &ws).await?;
    let (limit, cursor) = params.page(IdKind::User)?;
    Ok(Json(List::from_page(st.store.list_ws_members(&w.ws.id, limit, cursor).await?, MemberView::from)))
}

/// Body of `PUT /v1/workspaces/{ws}/members/{user}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WsMemberBody {
    /// `admin`, `member` or `viewer`.
    role: String,
}

/// Adds an org member to the workspace or changes their role there (workspace managers).
#[utoipa::path(put, path = "/v1/workspaces/{ws}/members/{user}", tag = "workspaces", security(("bearer" = [])), request_body = WsMemberBody,
    responses((status = 200, body = MemberView), (status = 404, description = "not_found (also: not an org member)", body = Problem)))]
async fn put_ws_member(
    State(st): State<AppState>,
    caller: Caller,
    Path((ws, user)): Path<(String, String)>,
    ApiJson(b): ApiJson<WsMemberBody>,
) -> ApiResult<Json<MemberView>> {
    let w = ws_ctx(&st, &caller, &ws).await?;
    w.require(Permission::ManageWorkspace)?;
    let role = WsRole::parse(&b.role)
        .ok_or_else(|| ApiError::invalid_field("role", "must be one of admin, member, viewer"))?;
    check_id(IdKind::User, &user)?;
    let (ws, target_id, ctx) = (w.ws.clone(), user.clone(), caller.ctx(st.clock.now_ms()));
    revoking(&st, move |st| async move { st.store.put_ws_member(&ws, &target_id, role.as_str(), &ctx).await }).await?;
    let m = st.store.org_member(&w.ws.org_id, &user).await?.ok_or_else(ApiError::not_found)?;
    Ok(Json(MemberView { role: role.as_str().into(), ..m.into() }))
}

/// Takes a user out of the workspace (workspace managers, or the user themselves).
#[utoipa::path(delete, path = "/v1/workspaces/{ws}/members/{user}", tag = "workspaces", security(("bearer" = [])),
    responses((status = 204), (status = 404, description = "not_found", body = Problem)))]
async fn delete_ws_member(
    State(st): State<AppState>,
    caller: Caller,
    Path((ws, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let w = ws_ctx(&st, &caller, &ws).await?;
    let user = user_param(&caller, &user)?;
    if caller.user()?.id != user {
        w.require(Permission::ManageWorkspace)?;
    }
    let (ws, ctx) = (w.ws, caller.ctx(st.clock.now_ms()));
    revoking(&st, move |st| async move { st.store.delete_ws_member(&ws, &user, &ctx).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! Resources: things a product keeps per workspace (apps, databases, buckets, agents …).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roost_domain::validate::Errors;
use roost_domain::{IdKind, Permission};
use roost_store::Resource;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{WsCtx, check_id, not_found_after_access_check, ws_ctx};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, Params};
use crate::views::{List, ResourceView};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_resource, list_resources))
        .routes(routes!(delete_resource))
        .routes(routes!(transfer_resource))
}

/// Body of `POST /v1/workspaces/{ws}/resources`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateResource {
    /// 1–64 of a-z, 0-9, `_`, `-` (e.g. `postgres`, `bucket`).
    #[schema(pattern = r"^[a-z0-9_-]{1,64}$")]
    kind: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    name: String,
}

/// Creates a resource in the workspace, within the plan's quota for its kind.
#[utoipa::path(post, path = "/v1/workspaces/{ws}/resources", tag = "resources", security(("bearer" = [])), request_body = CreateResource,
    responses((status = 201, body = ResourceView), (status = 403, description = "forbidden or plan_limit", body = Problem)))]
async fn create_resource(
    State(st): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    ApiJson(b): ApiJson<CreateResource>,
) -> ApiResult<(StatusCode, Json<ResourceView>)> {
    let w = ws_ctx(&st, &caller, &ws).await?;
    w.require(Permission::UseWorkspace)?;
    let mut e = Errors::default();
    e.kind("kind", &b.kind);
    let name = e.name("name", &b.name);
    e.finish().map_err(ApiError::invalid)?;
    let now = st.clock.now_ms();
    let r = Resource {
        id: IdKind::Resource.generate(),
        org_id: w.ws.org_id.clone(),
        workspace_id: w.ws.id.clone(),
        kind: b.kind,
        name,
        created_by: caller.actor().id,
        created_at: now,
    };
    st.store.create_resource(&r, &st.settings.catalog, &caller.ctx(now)).await?;
    Ok((StatusCode::CREATED, Json(r.into())))
}

/// The workspace's resources.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/resources", tag = "resources", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = List<ResourceView>)))]
async fn list_resources(
    State(st): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    params: Params,
) -> ApiResult<Json<List<ResourceView>>> {
    let w = ws_ctx(&st, &caller, &ws).await?;
    w.require(Permission::ReadWorkspace)?;
    let (limit, cursor) = params.page(IdKind::Resource)?;
    Ok(Json(List::from_page(st.store.list_resources(&w.ws.id, limit, cursor).await?, ResourceView::from)))
}

/// A resource and the caller's standing in its workspace; 404 if the caller cannot see it.
async fn resource(st: &AppState, caller: &Caller, id: &str) -> ApiResult<(Resource, WsCtx)> {
    check_id(IdKind::Resource, id)?;
    let Some(r) = st.store.resource_by_id(id).await? else {
        return not_found_after_access_check(st, caller).await;
    };
    let w = ws_ctx(st, caller, &r.workspace_id).await?;
    Ok((r, w))
}

/// Deletes a resource (its creator or a workspace manager).
#[utoipa::path(delete, path = "/v1/resources/{id}", tag = "resources", security(("bearer" = [])),
    responses((status = 204), (status = 404, description = "not_found", body = Problem)))]
async fn delete_resource(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let (r, w) = resource(&st, &caller, &id).await?;
    if r.created_by != caller.actor().id {
        w.require(Permission::ManageWorkspace)?;
    } else {
        w.require(Permission::UseWorkspace)?;
    }
    st.store.delete_resource(&r, &caller.ctx(st.clock.now_ms())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /v1/resources/{id}/transfer`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferResource {
    workspace_id: String,
}

/// Moves a resource to another workspace; the caller must manage both. Never from an org
/// workspace into a personal one.
#[utoipa::path(post, path = "/v1/resources/{id}/transfer", tag = "resources", security(("bearer" = [])), request_body = TransferResource,
    responses((status = 200, body = ResourceView), (status = 403, description = "forbidden or transfer_not_allowed", body = Problem)))]
async fn transfer_resource(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<TransferResource>,
) -> ApiResult<Json<ResourceView>> {
    let (r, from) = resource(&st, &caller, &id).await?;
    let to = ws_ctx(&st, &caller, &b.workspace_id).await?;
    from.require(Permission::ManageWorkspace)?;
    to.require(Permission::ManageWorkspace)?;
    if !from.org.is_personal() && to.org.is_personal() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "transfer_not_allowed",
            "resources cannot move from an organization's workspace into a personal workspace",
        ));
    }
    if to.ws.id == r.workspace_id {
        return Ok(Json(r.into()));
    }
    st.store.transfer_resource(&r, &to.ws, &st.settings.catalog, &caller.ctx(st.clock.now_ms())).await?;
    Ok(Json(Resource { org_id: to.ws.org_id.clone(), workspace_id: to.ws.id.clone(), ..r }.into()))
}

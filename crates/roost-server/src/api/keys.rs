//! Workspace API keys: created by workspace members, shown once, stored hashed.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roost_domain::plans::MAX_RPM;
use roost_domain::time::parse_rfc3339;
use roost_domain::tokens::{self, API_KEY_PREFIX};
use roost_domain::validate::Errors;
use roost_domain::{IdKind, Permission};
use roost_store::ApiKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{check_id, not_found_after_access_check, ws_ctx};
use crate::AppState;
use crate::auth::{Caller, Who, revoking};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, OptionalJson, Params};
use crate::views::{KeyView, List};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_key, list_keys))
        .routes(routes!(rotate_key))
        .routes(routes!(revoke_key, update_key))
}

/// Body of `POST /v1/workspaces/{ws}/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    name: String,
    /// RFC 3339; the key stops working then.
    expires_at: Option<String>,
    /// Most this key may spend per cycle (enforced by the ledger).
    spend_limit: Option<i64>,
    /// The key's own requests per minute, at most the org plan's `rpm`.
    #[schema(minimum = 1, maximum = 60_000_000)]
    rpm: Option<i64>,
}

fn keys_need_users(caller: &Caller) -> ApiResult<()> {
    match caller.who {
        Who::Key(_) => Err(ApiError::forbidden("API keys cannot manage API keys")),
        Who::User(_) => Ok(()),
    }
}

/// Creates a key acting in this workspace. The secret is in this response only.
#[utoipa::path(post, path = "/v1/workspaces/{ws}/keys", tag = "keys", security(("bearer" = [])), request_body = CreateKey,
    responses((status = 201, body = KeyView), (status = 403, description = "forbidden", body = Problem)))]
async fn create_key(
    State(st): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    ApiJson(b): ApiJson<CreateKey>,
) -> ApiResult<(StatusCode, Json<KeyView>)> {
    keys_need_users(&caller)?;
    let w = ws_ctx(&st, &caller, &ws).await?;
    w.require(Permission::UseWorkspace)?;
    let now = st.clock.now_ms();
    let mut e = Errors::default();
    let name = e.name("name", &b.name);
    let expires_at = match b.expires_at.as_deref() {
        None => None,
        Some(s) => match parse_rfc3339(s) {
            Some(t) if t > now => Some(t),
            Some(_) => {
                e.add("expires_at", "must be in the future");
                None
            }
            None => {
                e.add("expires_at", "must be an RFC 3339 timestamp");
                None
            }
        },
    };
    if b.spend_limit.is_some_and(|l| l < 0) {
        e.add("spend_limit", "must be zero or more");
    }
    check_rpm(&st, &mut e, &w.org.plan, b.rpm);
    e.finish().map_err(ApiError::invalid)?;
    let secret = tokens::generate(API_KEY_PREFIX);
    let key = ApiKey {
        id: IdKind::Key.generate(),
        org_id: w.ws.org_id.clone(),
        workspace_id: w.ws.id.clone(),
        name,
        prefix: tokens::display_prefix(&secret),
        created_by: caller.actor().id,
        created_at: now,
        expires_at,
        spend_limit: b.spend_limit,
        revoked_at: None,
        rpm: b.rpm,
    };
    st.store.create_key(&key, &tokens::hash(&secret), &caller.ctx(now)).await?;
    let mut view = KeyView::from(key);
    view.secret = Some(secret);
    Ok((StatusCode::CREATED, Json(view)))
}

/// The workspace's live keys, without secrets.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/keys", tag = "keys", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = List<KeyView>)))]
async fn list_keys(
    State(st): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    params: Params,
) -> ApiResult<Json<List<KeyView>>> {
    let w = ws_ctx(&st, &caller, &ws).await?;
    w.require(Permission::ReadWorkspace)?;
    let (limit, cursor) = params.page(IdKind::Key)?;
    Ok(Json(List::from_page(st.store.list_keys(&w.ws.id, limit, cursor).await?, KeyView::from)))
}

/// Finds a live key the calling user may manage: its creator, or a manager of its workspace.
async fn manageable_key(st: &AppState, caller: &Caller, id: &str) -> ApiResult<ApiKey> {
    keys_need_users(caller)?;
    check_id(IdKind::Key, id)?;
    let Some(key) = st.store.key_by_id(id).await?.filter(|k| k.revoked_at.is_none()) else {
        return not_found_after_access_check(st, caller).await;
    };
    let w = ws_ctx(st, caller, &key.workspace_id).await?;
    if key.created_by != caller.actor().id {
        w.require(Permission::ManageWorkspace)?;
    }
    Ok(key)
}

/// Body of `POST /v1/keys/{id}/rotate`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// How long the old secret keeps working (default 0, at most 30 days).
    grace_seconds: Option<i64>,
}

/// The new secret of a rotated key.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rotated {
    id: String,
    secret: String,
    prefix: String,
    /// Until when the old secret works (RFC 3339), if a grace period was asked for.
    old_secret_valid_until: Option<String>,
}

/// Gives a key a new secret; the old one works for `grace_seconds`, then gets 401.
#[utoipa::path(post, path = "/v1/keys/{id}/rotate", tag = "keys", security(("bearer" = [])), request_body = RotateKey,
    responses((status = 200, body = Rotated), (status = 404, description = "not_found", body = Problem)))]
async fn rotate_key(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<RotateKey>,
) -> ApiResult<Json<Rotated>> {
    let grace = b.grace_seconds.unwrap_or(0);
    if !(0..=2_592_000).contains(&grace) {
        return Err(ApiError::invalid_field("grace_seconds", "must be from 0 to 2592000"));
    }
    let key = manageable_key(&st, &caller, &id).await?;
    let now = st.clock.now_ms();
    let grace_until = (grace > 0).then(|| now + grace * 1000);
    let secret = tokens::generate(API_KEY_PREFIX);
    let (k, hash, ctx) = (key.clone(), tokens::hash(&secret), caller.ctx(now));
    revoking(
        &st,
        move |st| async move { st.store.rotate_key(&k, &hash, grace_until, &ctx).await.map(|()| vec![k.id]) },
    )
    .await?;
    Ok(Json(Rotated {
        id: key.id,
        prefix: tokens::display_prefix(&secret),
        secret,
        old_secret_valid_until: grace_until.map(roost_domain::time::to_rfc3339),
    }))
}

/// Revokes a key: the very next request with it gets 401.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", security(("bearer" = [])),
    responses((status = 204), (status = 404, description = "not_found", body = Problem)))]
async fn revoke_key(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let key = manageable_key(&st, &caller, &id).await?;
    let ctx = caller.ctx(st.clock.now_ms());
    revoking(&st, move |st| async move { st.store.revoke_key(&key, &ctx).await.map(|()| vec![key.id]) }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A key's `rpm`: from 1 to [`MAX_RPM`], and never above the org plan's (422 otherwise).
fn check_rpm(st: &AppState, e: &mut Errors, plan: &str, rpm: Option<i64>) {
    let Some(rpm) = rpm else { return };
    let org_rpm = st.settings.catalog.get(plan).and_then(|p| p.rpm);
    if !(1..=i64::from(MAX_RPM)).contains(&rpm) {
        e.add("rpm", format!("must be from 1 to {MAX_RPM}"));
    } else if let Some(max) = org_rpm.filter(|m| rpm > i64::from(*m)) {
        e.add("rpm", format!("must not be above the organization's plan rpm of {max}"));
    }
}

/// Body of `PATCH /v1/keys/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKey {
    /// The key's own requests per minute (at most the org plan's), or `null` for none. Required.
    #[serde(default, deserialize_with = "super::credits::present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 60_000_000)]
    rpm: Option<Option<i64>>,
}

/// Sets a key's own rate limit. It applies on every replica at once (their cached copy of the key
/// is dropped).
#[utoipa::path(patch, path = "/v1/keys/{id}", tag = "keys", security(("bearer" = [])), request_body = UpdateKey,
    responses((status = 200, body = KeyView), (status = 404, description = "not_found", body = Problem),
        (status = 422, description = "invalid_request: `rpm` below 1 or above the org plan's", body = Problem)))]
async fn update_key(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<UpdateKey>,
) -> ApiResult<Json<KeyView>> {
    let mut key = manageable_key(&st, &caller, &id).await?;
    let (_, org) = st.store.workspace_by_id(&key.workspace_id).await?.ok_or_else(ApiError::not_found)?;
    let mut e = Errors::default();
    let Some(rpm) = b.rpm else {
        return Err(ApiError::invalid_field("rpm", "is required (null removes the key's own limit)"));
    };
    check_rpm(&st, &mut e, &org.plan, rpm);
    e.finish().map_err(ApiError::invalid)?;
    let (k, ctx) = (key.clone(), caller.ctx(st.clock.now_ms()));
    revoking(&st, move |st| async move { st.store.set_key_rpm(&k, rpm, &ctx).await.map(|()| vec![k.id]) }).await?;
    key.rpm = rpm;
    Ok(Json(KeyView::from(key)))
}

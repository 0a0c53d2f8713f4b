//! State: JSON documents by key, with versions (ETags) and conditional writes.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use roost_domain::Permission;
use roost_domain::records::{self, DocumentError, MAX_KEY, etag, parse_etag, precondition};
use roost_domain::time::to_rfc3339;
use roost_store::StateMeta;
use serde::Serialize;
use utoipa::ToSchema;

use super::{header, read_body, too_large};
use crate::AppState;
use crate::api::ws_scope;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::Params;
use crate::views::List;

/// What a write answers, and what a list shows of each document.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateVersion {
    pub key: String,
    /// The document's version; its `ETag` is `"<version>"`.
    pub version: i64,
    pub updated_at: String,
}

/// A document in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateItem {
    pub key: String,
    pub version: i64,
    /// Bytes of the stored (minified) document.
    pub size: i64,
    pub updated_at: String,
}

impl From<StateMeta> for StateItem {
    fn from(m: StateMeta) -> Self {
        Self { key: m.key, version: m.version, size: m.size, updated_at: to_rfc3339(m.updated_at) }
    }
}

/// 422 unless `key` is a state key.
fn check_key(key: &str) -> ApiResult<()> {
    if records::valid_key(key) {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "key",
            &format!("must be 1–{MAX_KEY} characters of A-Z, a-z, 0-9, `.`, `:`, `/`, `-`"),
        ))
    }
}

fn etag_value(version: i64) -> HeaderValue {
    HeaderValue::from_str(&etag(version)).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// The document stored under `key`, with its version as `ETag`. With `If-None-Match` naming the
/// current version: 304 and no body.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/state/{key}", tag = "records", security(("bearer" = [])),
    params(("key" = String, Path, description = "1–200 characters of `[A-Za-z0-9._:/-]`", pattern = r"^[A-Za-z0-9.:/-]{1,200}$"),
           ("If-None-Match" = Option<String>, Header, description = "an ETag: 304 when it is still current", pattern = r"^[\x20-\x7e]*$")),
    responses((status = 200, description = "the document, as stored (whitespace outside strings removed)", body = serde_json::Value,
               headers(("ETag" = String, description = "`\"<version>\"`"))),
              (status = 304, description = "Not Modified: the ETag named is current"),
              (status = 404, description = "not_found: no document under this key, or another tenant's workspace", body = Problem),
              (status = 422, description = "invalid_request: a malformed key", body = Problem)))]
pub(super) async fn get_state(
    State(st): State<AppState>,
    caller: Caller,
    Path((ws, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let s = ws_scope(&st, &caller, &ws, Permission::ReadWorkspace).await?;
    check_key(&key)?;
    let doc = st.store.state_get(&s.org_id, &s.workspace_id, &key).await?.ok_or_else(ApiError::not_found)?;
    let current = header(&headers, "if-none-match")?
        .is_some_and(|v| v.trim() == "*" || v.split(',').any(|t| parse_etag(t) == Some(doc.version)));
    if current {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value(doc.version))]).into_response());
    }
    let mut res = Response::new(Body::from(doc.doc));
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut().insert(header::ETAG, etag_value(doc.version));
    Ok(res)
}

/// Stores a JSON document (any JSON value, at most 256 KiB) under `key`. `If-Match: "<version>"`
/// writes only over that version, `If-Match: *` only over an existing document, and
/// `If-None-Match: *` only where there is none; otherwise 412 `version_conflict`.
#[utoipa::path(put, path = "/v1/workspaces/{ws}/state/{key}", tag = "records", security(("bearer" = [])),
    params(("key" = String, Path, description = "1–200 characters of `[A-Za-z0-9._:/-]`", pattern = r"^[A-Za-z0-9.:/-]{1,200}$"),
           ("If-Match" = Option<String>, Header, description = "`\"<version>\"` or `*`", pattern = r#"^(\*|(W/)?"[1-9][0-9]{0,17}")$"#),
           ("If-None-Match" = Option<String>, Header, description = "`*`: create only", pattern = r"^\*$")),
    request_body(content = serde_json::Value, description = "any JSON value, at most 256 KiB", content_type = "application/json"),
    responses((status = 200, body = StateVersion, headers(("ETag" = String, description = "`\"<version>\"`"))),
              (status = 400, description = "malformed_json", body = Problem),
              (status = 403, description = "forbidden (viewers), or plan_limit with `limit: \"state_bytes\"`", body = Problem),
              (status = 412, description = "version_conflict: the condition does not hold", body = Problem),
              (status = 413, description = "payload_too_large: over 256 KiB", body = Problem),
              (status = 422, description = "invalid_request: a malformed key, If-Match or If-None-Match", body = Problem)))]
pub(super) async fn put_state(
    State(st): State<AppState>,
    caller: Caller,
    Path((ws, key)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let s = ws_scope(&st, &caller, &ws, Permission::UseWorkspace).await?;
    check_key(&key)?;
    let pre = precondition(header(&headers, "if-match")?, header(&headers, "if-none-match")?).map_err(|e| {
        let field =
            if matches!(e, records::PreconditionError::MalformedIfNoneMatch) { "If-None-Match" } else { "If-Match" };
        ApiError::invalid_field(field, &e.to_string())
    })?;
    let bytes = read_body(body).await?;
    let doc = records::document(&bytes).map_err(|e| match e {
        DocumentError::TooLarge => too_large(),
        DocumentError::Malformed(m) => {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not valid JSON: {m}"))
        }
    })?;
    let now = st.clock.now_ms();
    let author = caller.actor_id().to_string();
    let m = st.store.state_put(&s.org_id, &s.workspace_id, &key, &doc, pre, &st.settings.catalog, &author, now).await?;
    let version = m.version;
    let body = StateVersion { key: m.key, version, updated_at: to_rfc3339(m.updated_at) };
    Ok(([(header::ETAG, etag_value(version))], Json(body)).into_response())
}

/// Deletes the document under `key` (`If-Match` makes it conditional).
#[utoipa::path(delete, path = "/v1/workspaces/{ws}/state/{key}", tag = "records", security(("bearer" = [])),
    params(("key" = String, Path, description = "1–200 characters of `[A-Za-z0-9._:/-]`", pattern = r"^[A-Za-z0-9.:/-]{1,200}$"),
           ("If-Match" = Option<String>, Header, description = "`\"<version>\"` or `*`", pattern = r#"^(\*|(W/)?"[1-9][0-9]{0,17}")$"#)),
    responses((status = 204),
              (status = 404, description = "not_found: no document under this key, or another tenant's workspace", body = Problem),
              (status = 412, description = "version_conflict: the condition does not hold", body = Problem),
              (status = 422, description = "invalid_request: a malformed key or If-Match", body = Problem)))]
pub(super) async fn delete_state(
    State(st): State<AppState>,
    caller: Caller,
    Path((ws, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let s = ws_scope(&st, &caller, &ws, Permission::UseWorkspace).await?;
    check_key(&key)?;
    let pre = precondition(header(&headers, "if-match")?, None)
        .map_err(|e| ApiError::invalid_field("If-Match", &e.to_string()))?;
    if header(&headers, "if-none-match")?.is_some() {
        return Err(ApiError::invalid_field("If-None-Match", "a delete takes only If-Match"));
    }
    st.store.state_delete(&s.org_id, &s.workspace_id, &key, pre).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The workspace's documents whose keys start with `?prefix=`, by key (without their bodies).
#[utoipa::path(get, path = "/v1/workspaces/{ws}/state", tag = "records", security(("bearer" = [])),
    params(("prefix" = Option<String>, Query, description = "only keys that start with this", pattern = r"^[A-Za-z0-9.:/-]{0,200}$"),
           ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = List<StateItem>),
              (status = 422, description = "invalid_request: a malformed prefix or cursor", body = Problem)))]
pub(super) async fn list_state(
    State(st): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    params: Params,
) -> ApiResult<Json<List<StateItem>>> {
    let s = ws_scope(&st, &caller, &ws, Permission::ReadWorkspace).await?;
    let limit = params.limit()?;
    let prefix = params.get("prefix").unwrap_or("");
    if !records::valid_prefix(prefix) {
        return Err(ApiError::invalid_field("prefix", "must be what a key may be: up to 200 of `[A-Za-z0-9._:/-]`"));
    }
    let cursor = params.get("cursor");
    if cursor.is_some_and(|c| !records::valid_key(c)) {
        return Err(ApiError::invalid_field("cursor", "is not a cursor this server issued"));
    }
    let page = st.store.state_list(&s.org_id, &s.workspace_id, prefix, limit, cursor).await?;
    Ok(Json(List::from_page(page, StateItem::from)))
}

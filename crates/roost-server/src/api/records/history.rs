//! History: an append-only stream of entries per workspace, newest first, with retention by the
//! plan's `history_days`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use roost_domain::records::{self, MAX_DOCUMENT, MAX_KIND, MAX_REF};
use roost_domain::time::{parse_rfc3339, to_rfc3339};
use roost_domain::{IdKind, Permission};
use roost_store::{Actor, HistoryEntry, HistoryFilter, NewHistory};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::header;
use crate::AppState;
use crate::api::ws_scope;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{HeadersAndJson, Params};
use crate::views::List;

/// Body of `POST /v1/workspaces/{ws}/history`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppendBody {
    /// 1–64 of `a-z`, `0-9`, `_`, `.`, `:`, `-` (e.g. `conversation.turn`).
    #[schema(pattern = r"^[a-z0-9_.:-]{1,64}$")]
    kind: String,
    /// Any JSON value, at most 256 KiB.
    data: Value,
    /// What the entry is about (a conversation, a run …): 1–200 characters; filter on it with `?ref=`.
    #[serde(rename = "ref", default)]
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]{1,200}$")]
    ref_: Option<String>,
}

/// A history entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    /// `his_…`
    pub id: String,
    pub kind: String,
    /// Any JSON value.
    pub data: Value,
    #[serde(rename = "ref")]
    pub ref_: Option<String>,
    pub actor: Actor,
    pub at: String,
}

impl From<HistoryEntry> for HistoryView {
    fn from(e: HistoryEntry) -> Self {
        Self {
            id: e.id,
            kind: e.kind,
            data: serde_json::from_str(&e.data).unwrap_or(Value::Null),
            ref_: e.ref_,
            actor: e.actor,
            at: to_rfc3339(e.at),
        }
    }
}

/// Longest `Idempotency-Key`.
const MAX_IDEM_KEY: usize = 255;

/// The request's `Idempotency-Key` and the fingerprint of what it asks: SHA-256 (hex) over the
/// workspace, the actor and the body.
fn idempotency(headers: &HeaderMap, ws: &str, actor: &str, body: &AppendBody) -> ApiResult<(String, String)> {
    let key = header(headers, "idempotency-key")?
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEM_KEY && !k.chars().any(char::is_control))
        .ok_or_else(|| {
            ApiError::invalid_field(
                "Idempotency-Key",
                "this request needs an Idempotency-Key header of 1–255 characters",
            )
        })?;
    let mut h = Sha256::new();
    for part in ["history", ws, actor] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(serde_json::to_vec(body).map_err(ApiError::internal)?);
    let fp = h.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>();
    Ok((key.to_string(), fp))
}

/// Appends an entry to the workspace's history (idempotent by `Idempotency-Key`: a retry answers
/// the first entry). Members and keys.
#[utoipa::path(post, path = "/v1/workspaces/{ws}/history", tag = "records", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header)),
    request_body = AppendBody,
    responses((status = 201, body = HistoryView),
              (status = 403, description = "forbidden (viewers)", body = Problem),
              (status = 409, description = "idempotency_conflict", body = Problem),
              (status = 413, description = "payload_too_large: `data` over 256 KiB", body = Problem)))]
pub(super) async fn append_history(
    State(st): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    HeadersAndJson(headers, b): HeadersAndJson<AppendBody>,
) -> ApiResult<(StatusCode, Json<HistoryView>)> {
    let s = ws_scope(&st, &caller, &ws, Permission::UseWorkspace).await?;
    let (idem_key, idem_fp) = idempotency(&headers, &s.workspace_id, caller.actor_id(), &b)?;
    if !records::valid_kind(&b.kind) {
        return Err(ApiError::invalid_field("kind", &format!("must be 1–{MAX_KIND} of a-z, 0-9, `_`, `.`, `:`, `-`")));
    }
    if b.ref_.as_deref().is_some_and(|r| !records::valid_ref(r)) {
        return Err(ApiError::invalid_field("ref", &format!("must be 1–{MAX_REF} characters, no control characters")));
    }
    let data = b.data.to_string();
    if data.len() > MAX_DOCUMENT {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("`data` is limited to {MAX_DOCUMENT} bytes"),
        ));
    }
    let entry = HistoryEntry {
        id: IdKind::History.generate(),
        org_id: s.org_id,
        workspace_id: s.workspace_id,
        kind: b.kind,
        ref_: b.ref_,
        data,
        actor: caller.actor(),
        at: st.clock.now_ms(),
    };
    let (e, _replayed) = st.store.history_append(&NewHistory { entry, idem_key, idem_fp }).await?;
    Ok((StatusCode::CREATED, Json(e.into())))
}

/// A time parameter (RFC 3339), if given.
fn time_param(params: &Params, name: &str) -> ApiResult<Option<i64>> {
    params
        .get(name)
        .map(|v| parse_rfc3339(v).ok_or_else(|| ApiError::invalid_field(name, "must be an RFC 3339 timestamp")))
        .transpose()
}

/// The workspace's history, newest first: `?kind=`, `?ref=`, `?actor=` (a `usr_…` or `key_…`
/// id), `?from=` (inclusive) and `?to=` (exclusive, RFC 3339) narrow it.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/history", tag = "records", security(("bearer" = [])),
    params(("kind" = Option<String>, Query, max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"),
           ("ref" = Option<String>, Query, max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"),
           ("actor" = Option<String>, Query, pattern = r"^((usr|key)_[0-7][0-9a-hjkmnp-tv-z]{25})?$"),
           ("from" = Option<String>, Query, description = "RFC 3339, inclusive"),
           ("to" = Option<String>, Query, description = "RFC 3339, exclusive"),
           ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = List<HistoryView>)))]
pub(super) async fn list_history(
    State(st): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    params: Params,
) -> ApiResult<Json<List<HistoryView>>> {
    let s = ws_scope(&st, &caller, &ws, Permission::ReadWorkspace).await?;
    let (limit, cursor) = params.page(IdKind::History)?;
    let kind = params.text("kind")?.map(str::to_string);
    let ref_ = params.text("ref")?.map(str::to_string);
    let actor_id = params.get("actor").map(str::to_string);
    if actor_id.as_deref().is_some_and(|a| !IdKind::User.is_valid(a) && !IdKind::Key.is_valid(a)) {
        return Err(ApiError::invalid_field("actor", "must be a user id (usr_…) or an API key id (key_…)"));
    }
    let f = HistoryFilter { kind, ref_, actor_id, from: time_param(&params, "from")?, to: time_param(&params, "to")? };
    let page = st.store.history_list(&s.org_id, &s.workspace_id, &f, limit, cursor).await?;
    Ok(Json(List::from_page(page, HistoryView::from)))
}

/// What a deletion of old history removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryDeleted {
    /// How many entries were removed.
    pub deleted: u64,
}

/// Removes the workspace's history entries from before `?before=` (RFC 3339); audited as
/// `history.deleted`. Workspace admins.
#[utoipa::path(delete, path = "/v1/workspaces/{ws}/history", tag = "records", security(("bearer" = [])),
    params(("before" = String, Query, format = DateTime, description = "RFC 3339: entries before this go")),
    responses((status = 200, body = HistoryDeleted)))]
pub(super) async fn delete_history(
    State(st): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    params: Params,
) -> ApiResult<Json<HistoryDeleted>> {
    let s = ws_scope(&st, &caller, &ws, Permission::ManageWorkspace).await?;
    let before = time_param(&params, "before")?
        .ok_or_else(|| ApiError::invalid_field("before", "is required: an RFC 3339 timestamp"))?;
    let now = st.clock.now_ms();
    let deleted = st.store.history_delete_before(&s.org_id, &s.workspace_id, before, &caller.ctx(now)).await?;
    Ok(Json(HistoryDeleted { deleted }))
}

/// One round of history retention (the background job calls it on every tick).
pub(crate) async fn retention(st: &AppState, now: i64) -> Result<u64, roost_store::StoreError> {
    let gone = st.store.purge_expired_history(now, &st.settings.catalog).await?;
    if gone > 0 {
        tracing::info!(entries = gone, "history retention removed expired entries");
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fingerprint_depends_on_every_part() {
        let mut h = axum::http::HeaderMap::new();
        h.insert("idempotency-key", "k1".parse().expect("header"));
        let b = |kind: &str| super::AppendBody { kind: kind.into(), data: serde_json::json!({"a": 1}), ref_: None };
        let (k, a) = super::idempotency(&h, "ws_a", "usr_a", &b("x")).expect("fp");
        assert_eq!(k, "k1");
        assert_ne!(a, super::idempotency(&h, "ws_b", "usr_a", &b("x")).expect("fp").1);
        assert_ne!(a, super::idempotency(&h, "ws_a", "usr_b", &b("x")).expect("fp").1);
        assert_ne!(a, super::idempotency(&h, "ws_a", "usr_a", &b("y")).expect("fp").1);
        assert_eq!(a, super::idempotency(&h, "ws_a", "usr_a", &b("x")).expect("fp").1);
    }
}

//! Workspace records (API.md "Workspace records"): JSON state by key with versions and ETags, an
//! append-only history, and an export of both as JSON lines. Everything is scoped to one
//! workspace: the caller must see the workspace (another tenant's, or one of the caller's org
//! they are not in, is 404); viewers read, members and keys write, workspace admins delete history
//! and export.

mod export;
mod history;
mod state;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use roost_domain::records::MAX_DOCUMENT;
use utoipa::openapi::{Components, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::MAX_BODY;

pub(crate) use history::retention;

/// The records routes.
pub(super) fn router() -> OpenApiRouter<AppState> {
    // A state key may hold `/`: axum matches it with a catch-all segment, while the document
    // describes the path as the contract writes it, `{key}`.
    let (schemas, paths, method_router) = routes!(state::get_state, state::put_state, state::delete_state);
    let mut doc = OpenApi::default();
    doc.paths = paths;
    let mut components = Components::new();
    components.schemas.extend(schemas);
    doc.components = Some(components);
    OpenApiRouter::with_openapi(doc)
        .route("/v1/workspaces/{ws}/state/{*key}", method_router)
        .routes(routes!(state::list_state))
        .routes(routes!(history::append_history, history::list_history, history::delete_history))
        .routes(routes!(export::export))
}

/// 413 `payload_too_large` for a document over [`MAX_DOCUMENT`].
fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("documents are limited to {MAX_DOCUMENT} bytes (whitespace outside strings not counted)"),
    )
}

/// Beyond this, an oversized body is not read to its end: the connection is simply closed.
const DRAIN_LIMIT: usize = 8 * MAX_BODY;

/// Reads a body of at most [`MAX_BODY`] bytes (whitespace may make a document's body larger than
/// the document). An oversized body is still read and dropped up to [`DRAIN_LIMIT`], so that a
/// client still writing it gets the 413 rather than a reset connection.
async fn read_body(mut body: Body) -> Result<Bytes, ApiError> {
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", format!("cannot read the body: {e}"))
        })?;
        let Ok(data) = frame.into_data() else { continue };
        seen = seen.saturating_add(data.len());
        if seen > DRAIN_LIMIT {
            break;
        }
        if seen <= MAX_BODY {
            buf.extend_from_slice(&data);
        }
    }
    if seen > MAX_BODY {
        return Err(too_large());
    }
    Ok(Bytes::from(buf))
}

/// A header's value as text, if present (not visible ASCII: 422 naming it).
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| ApiError::invalid_field(name, "must be visible ASCII")),
    }
}

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
use roost_domain::records::MAX_DOCUMENT;
use utoipa::openapi::{Components, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

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

/// Reads a body of at most [`MAX_BODY`](crate::extract::MAX_BODY) bytes (whitespace may make a document's body larger than
/// the document), answering 413 in the documents' words.
async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    crate::extract::body_bytes(body, too_large).await
}

/// A header's value as text, if present (not visible ASCII: 422 naming it).
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| ApiError::invalid_field(name, "must be visible ASCII")),
    }
}

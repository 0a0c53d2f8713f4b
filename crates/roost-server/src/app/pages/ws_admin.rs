//! Administering a workspace from its page: who is in it and with which role, its name, deleting it.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

use super::workspace::after;
use super::{done, problem_page, whole_page};
use crate::AppState;
use crate::app::call::Problem;
use crate::app::session::Posted;

/// The workspace administration routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/app/w/{ws}/members", post(put_member))
        .route("/app/w/{ws}/members/{user}/remove", post(remove_member))
        .route("/app/w/{ws}/rename", post(rename))
        .route("/app/w/{ws}/delete", post(delete))
}

/// Adds an org member to the workspace, or changes their role: `PUT /v1/workspaces/{ws}/members/{user}`.
async fn put_member(State(st): State<AppState>, Path(ws): Path<String>, p: Posted) -> Response {
    let user = p.f.get("user_id");
    let body = json!({"role": p.f.get("role")});
    let path = format!("/v1/workspaces/{ws}/members/{user}");
    let r: Result<Value, Problem> = p.s.call().send(Method::PUT, &path, Some(body), None).await;
    after(&st, &p.s, &ws, "ws_members", r, "role").await
}

async fn remove_member(State(st): State<AppState>, Path((ws, user)): Path<(String, String)>, p: Posted) -> Response {
    let path = format!("/v1/workspaces/{ws}/members/{user}");
    let r: Result<Value, Problem> = p.s.call().send(Method::DELETE, &path, None, None).await;
    after(&st, &p.s, &ws, "ws_members", r, "removed").await
}

async fn rename(State(st): State<AppState>, Path(ws): Path<String>, p: Posted) -> Response {
    let body = json!({"name": p.f.get("name")});
    let r: Result<Value, Problem> =
        p.s.call().send(Method::PATCH, &format!("/v1/workspaces/{ws}"), Some(body), None).await;
    after(&st, &p.s, &ws, "ws_settings", r, "renamed").await
}

/// Deletes the workspace (org owner; never the primary or a personal one), then back to the org.
async fn delete(State(st): State<AppState>, Path(ws): Path<String>, p: Posted) -> Response {
    let org = p.s.me.ws(&ws).map(|(m, _)| m.org_id.clone());
    let r: Result<Value, Problem> = p.s.call().send(Method::DELETE, &format!("/v1/workspaces/{ws}"), None, None).await;
    match (r, org) {
        (Ok(_), Some(org)) => done(&format!("/app/o/{org}"), "deleted"),
        (Ok(_), None) => done("/app", "deleted"),
        (Err(e), _) if whole_page(&e) => problem_page(&e),
        (Err(e), _) => after(&st, &p.s, &ws, "ws_settings", Err(e), "").await,
    }
}

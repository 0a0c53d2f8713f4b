//! The audit log of an org, with filters and paging. Owners and admins see everything; everyone
//! else their own actions (the API decides).

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use roost_domain::Permission;

use super::{Layout, problem_page, query};
use crate::AppState;
use crate::app::model::{AuditEvent, List, Workspace};
use crate::app::session::Session;

/// The audit routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/app/o/{org}/audit", get(show))
}

/// The audit page.
#[derive(Template, WebTemplate)]
#[template(path = "app/audit.html")]
pub struct AuditPage {
    l: Layout,
    org_id: String,
    all: bool,
    workspaces: Vec<Workspace>,
    f_ws: String,
    f_actor: String,
    f_action: String,
    events: Vec<AuditEvent>,
    older: Option<String>,
}

async fn show(State(st): State<AppState>, s: Session, Path(org): Path<String>, RawQuery(q): RawQuery) -> Response {
    let c = s.call();
    let f_ws = query(&q, "workspace").unwrap_or_default();
    let f_actor = query(&q, "actor").unwrap_or_default();
    let f_action = query(&q, "action").unwrap_or_default();
    let cursor = query(&q, "cursor").unwrap_or_default();
    let qs = |cursor: &str| {
        let pairs = [("workspace", &f_ws), ("actor", &f_actor), ("action", &f_action), ("cursor", &cursor.to_string())];
        let kept: Vec<_> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        serde_urlencoded::to_string(kept).unwrap_or_default()
    };
    let events: List<AuditEvent> = match c.get(&format!("/v1/orgs/{org}/audit?limit=50&{}", qs(&cursor))).await {
        Ok(e) => e,
        Err(e) => return problem_page(&e),
    };
    let workspaces = c.get::<List<Workspace>>(&format!("/v1/orgs/{org}/workspaces?limit=500")).await;
    let all = s.me.org(&org).is_some_and(|m| m.may(Permission::ReadAllAudit));
    let here = format!("/app/o/{org}/audit");
    let l = Layout::new(&st, &s, "Audit log", Some(&org), &here);
    let page = AuditPage {
        l,
        org_id: org,
        all,
        workspaces: workspaces.map(|w| w.items).unwrap_or_default(),
        older: events.next_cursor.as_deref().map(qs),
        events: events.items,
        f_ws,
        f_actor,
        f_action,
    };
    page.into_response()
}

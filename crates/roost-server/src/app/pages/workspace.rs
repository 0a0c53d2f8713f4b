//! A workspace's page: its API keys, resources, budget and member budgets.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use roost_domain::Permission;
use serde_json::{Value, json};

use super::{Flash, Layout, done, notice_for, problem_page, query, whole_page};
use crate::AppState;
use crate::app::call::Problem;
use crate::app::model::{Budget, Key, List, Member, Resource, Workspace};
use crate::app::session::{Posted, Session};

/// The workspace routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/app/w/{ws}", get(show))
        .route("/app/w/{ws}/keys", post(create_key))
        .route("/app/w/{ws}/keys/{id}/rotate", post(rotate_key))
        .route("/app/w/{ws}/keys/{id}/revoke", post(revoke_key))
        .route("/app/w/{ws}/resources", post(create_resource))
        .route("/app/w/{ws}/resources/{id}/delete", post(delete_resource))
        .route("/app/w/{ws}/budget", post(set_budget))
        .route("/app/w/{ws}/members/{user}/budget", post(set_member_budget))
}

/// A secret shown once, right after it was made.
pub struct Shown {
    pub what: &'static str,
    pub secret: String,
}

/// A member of the workspace with their budget.
pub struct MemberRow {
    pub m: Member,
    pub budget: Option<Budget>,
}

/// The workspace page.
#[derive(Template, WebTemplate)]
#[template(path = "app/workspace.html")]
pub struct WorkspacePage {
    l: Layout,
    ws: Workspace,
    org_name: String,
    role: String,
    me_id: String,
    keys: Vec<Key>,
    resources: Vec<Resource>,
    budget: Option<Budget>,
    members: Vec<MemberRow>,
    /// Org members not in this workspace yet (offered to admins).
    addable: Vec<Member>,
    may_delete: bool,
    may_read: bool,
    may_use: bool,
    may_manage: bool,
    shown: Option<Shown>,
    flash: Flash,
}

impl WorkspacePage {
    /// Whether the person may rotate or revoke `k` (its creator, or a workspace admin).
    fn may_manage_key(&self, k: &Key) -> bool {
        self.may_manage || (self.may_use && k.created_by == self.me_id)
    }
}

async fn render(
    st: &AppState,
    s: &Session,
    ws_id: &str,
    flash: Flash,
    shown: Option<Shown>,
    notice: Option<String>,
) -> Response {
    let c = s.call();
    let ws: Workspace = match c.get(&format!("/v1/workspaces/{ws_id}")).await {
        Ok(w) => w,
        Err(e) => return problem_page(&e),
    };
    let me = &s.me;
    // Billing members see every workspace, but not what is inside (the role matrix): no lists.
    let may_read = me.may_in(&ws.id, Permission::ReadWorkspace);
    let (keys, resources, ms) = if may_read {
        let keys: List<Key> = match c.get(&format!("/v1/workspaces/{}/keys?limit=200", ws.id)).await {
            Ok(k) => k,
            Err(e) => return problem_page(&e),
        };
        let resources: List<Resource> = match c.get(&format!("/v1/workspaces/{}/resources?limit=200", ws.id)).await {
            Ok(r) => r,
            Err(e) => return problem_page(&e),
        };
        let ms: List<Member> =
            c.get(&format!("/v1/workspaces/{}/members?limit=200", ws.id)).await.unwrap_or_else(|_| empty_list());
        (keys, resources, ms)
    } else {
        (empty_list(), empty_list(), empty_list())
    };
    let budget = if may_read { c.get::<Budget>(&format!("/v1/workspaces/{}/budget", ws.id)).await.ok() } else { None };
    let mut members = Vec::new();
    for m in ms.items {
        let budget = c.get::<Budget>(&format!("/v1/workspaces/{}/members/{}/budget", ws.id, m.user_id)).await.ok();
        members.push(MemberRow { m, budget });
    }
    let addable = if me.may_in(&ws.id, Permission::ManageWorkspace) {
        let org_members = c.get::<List<Member>>(&format!("/v1/orgs/{}/members?limit=500", ws.org_id)).await;
        let org_members = org_members.map(|l| l.items).unwrap_or_default();
        org_members.into_iter().filter(|m| !members.iter().any(|r| r.m.user_id == m.user_id)).collect()
    } else {
        vec![]
    };
    let may_delete =
        !ws.primary && !ws.personal && me.ws(&ws.id).is_some_and(|(m, _)| m.may(Permission::DeleteWorkspace));
    let (org_name, role) =
        me.ws(&ws.id).map(|(m, w)| (m.org_name.clone(), w.role.clone())).unwrap_or_else(|| (String::new(), "".into()));
    let here = format!("/app/w/{}", ws.id);
    let l = Layout::new(st, s, &ws.name, Some(&ws.org_id), &here).notice(notice);
    let page = WorkspacePage {
        addable,
        may_delete,
        may_read,
        may_use: me.may_in(&ws.id, Permission::UseWorkspace),
        may_manage: me.may_in(&ws.id, Permission::ManageWorkspace),
        l,
        org_name,
        role,
        me_id: me.user.id.clone(),
        keys: keys.items,
        resources: resources.items,
        budget,
        members,
        ws,
        shown,
        flash,
    };
    let status = page.flash.status();
    (status, page).into_response()
}

async fn show(State(st): State<AppState>, s: Session, Path(ws): Path<String>, RawQuery(q): RawQuery) -> Response {
    render(&st, &s, &ws, Flash::default(), None, notice_for(query(&q, "done").as_deref())).await
}

/// A number from a form: sent as a number when it is one, else as the text (so the API names the
/// field in its 422), and as `null` when empty.
pub fn num(v: &str) -> Value {
    if v.is_empty() { Value::Null } else { v.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(v)) }
}

async fn create_key(State(st): State<AppState>, Path(ws): Path<String>, p: Posted) -> Response {
    let mut body = json!({"name": p.f.get("name")});
    if let Some(l) = p.f.opt("spend_limit") {
        body["spend_limit"] = num(l);
    }
    let r: Result<Value, Problem> =
        p.s.call().send(Method::POST, &format!("/v1/workspaces/{ws}/keys"), Some(body), None).await;
    match r {
        Ok(v) => {
            let shown = Shown { what: "key", secret: v["secret"].as_str().unwrap_or("").to_string() };
            render(&st, &p.s, &ws, Flash::default(), Some(shown), Some("Key created.".into())).await
        }
        Err(e) if whole_page(&e) => problem_page(&e),
        Err(e) => render(&st, &p.s, &ws, Flash::for_form("key", e), None, None).await,
    }
}

async fn rotate_key(State(st): State<AppState>, Path((ws, id)): Path<(String, String)>, p: Posted) -> Response {
    let body = json!({"grace_seconds": num(p.f.get("grace_seconds"))});
    let body = if body["grace_seconds"].is_null() { json!({}) } else { body };
    let r: Result<Value, Problem> =
        p.s.call().send(Method::POST, &format!("/v1/keys/{id}/rotate"), Some(body), None).await;
    match r {
        Ok(v) => {
            let shown = Shown { what: "rotated key", secret: v["secret"].as_str().unwrap_or("").to_string() };
            render(&st, &p.s, &ws, Flash::default(), Some(shown), Some("Key rotated.".into())).await
        }
        Err(e) if whole_page(&e) => problem_page(&e),
        Err(e) => render(&st, &p.s, &ws, Flash::for_form("keys", e), None, None).await,
    }
}

async fn revoke_key(State(st): State<AppState>, Path((ws, id)): Path<(String, String)>, p: Posted) -> Response {
    let r: Result<Value, Problem> = p.s.call().send(Method::DELETE, &format!("/v1/keys/{id}"), None, None).await;
    after(&st, &p.s, &ws, "keys", r, "revoked").await
}

async fn create_resource(State(st): State<AppState>, Path(ws): Path<String>, p: Posted) -> Response {
    let body = json!({"kind": p.f.get("kind"), "name": p.f.get("name")});
    let r: Result<Value, Problem> =
        p.s.call().send(Method::POST, &format!("/v1/workspaces/{ws}/resources"), Some(body), None).await;
    after(&st, &p.s, &ws, "resource", r, "resource").await
}

async fn delete_resource(State(st): State<AppState>, Path((ws, id)): Path<(String, String)>, p: Posted) -> Response {
    let r: Result<Value, Problem> = p.s.call().send(Method::DELETE, &format!("/v1/resources/{id}"), None, None).await;
    after(&st, &p.s, &ws, "resources", r, "deleted").await
}

async fn set_budget(State(st): State<AppState>, Path(ws): Path<String>, p: Posted) -> Response {
    let body = json!({"limit": num(p.f.get("limit"))});
    let r: Result<Value, Problem> =
        p.s.call().send(Method::PUT, &format!("/v1/workspaces/{ws}/budget"), Some(body), None).await;
    after(&st, &p.s, &ws, "budget", r, "budget").await
}

async fn set_member_budget(
    State(st): State<AppState>,
    Path((ws, user)): Path<(String, String)>,
    p: Posted,
) -> Response {
    let body = json!({"limit": num(p.f.get("limit"))});
    let path = format!("/v1/workspaces/{ws}/members/{user}/budget");
    let r: Result<Value, Problem> = p.s.call().send(Method::PUT, &path, Some(body), None).await;
    after(&st, &p.s, &ws, "member_budget", r, "budget").await
}

/// After an action: back to the page with a confirmation, or the page with the refusal next to
/// `form` (a thing in another tenant: the 404 page, as the API answers).
pub(super) async fn after(
    st: &AppState,
    s: &Session,
    ws: &str,
    form: &'static str,
    r: Result<Value, Problem>,
    what: &str,
) -> Response {
    match r {
        Ok(_) => done(&format!("/app/w/{ws}"), what),
        Err(e) if whole_page(&e) => problem_page(&e),
        Err(e) => render(st, s, ws, Flash::for_form(form, e), None, None).await,
    }
}

fn empty_list<T>() -> List<T> {
    List { items: vec![], next_cursor: None }
}

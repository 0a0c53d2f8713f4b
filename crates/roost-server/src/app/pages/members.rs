//! Members and roles of an org, invitations, and the page an invitation link opens.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use roost_domain::Permission;
use serde_json::{Value, json};

use super::{Flash, Layout, done, notice_for, problem_page, query, whole_page};
use crate::AppState;
use crate::app::call::Problem;
use crate::app::model::{Invitation, List, Member, Workspace};
use crate::app::session::{self, Posted, Session};

/// The member routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/app/o/{org}/members", get(show))
        .route("/app/o/{org}/invitations", post(invite))
        .route("/app/o/{org}/invitations/{id}/revoke", post(revoke_invitation))
        .route("/app/o/{org}/members/{user}/role", post(change_role))
        .route("/app/o/{org}/members/{user}/remove", post(remove))
        .route("/app/o/{org}/transfer", post(transfer))
        .route("/app/invitations/accept", get(accept_page).post(accept))
}

/// The members page.
#[derive(Template, WebTemplate)]
#[template(path = "app/members.html")]
pub struct MembersPage {
    l: Layout,
    org_id: String,
    me_id: String,
    personal: bool,
    members: Vec<Member>,
    invitations: Vec<Invitation>,
    workspaces: Vec<Workspace>,
    /// The roles this person may grant (only the owner grants admin and billing).
    grantable: Vec<&'static str>,
    may_manage: bool,
    may_transfer: bool,
    /// The accept link of an invitation just made, shown once.
    link: Option<String>,
    flash: Flash,
}

async fn render(
    st: &AppState,
    s: &Session,
    org: &str,
    flash: Flash,
    link: Option<String>,
    notice: Option<String>,
) -> Response {
    let c = s.call();
    let members: List<Member> = match c.get(&format!("/v1/orgs/{org}/members?limit=500")).await {
        Ok(m) => m,
        Err(e) => return problem_page(&e),
    };
    let m = s.me.org(org);
    let may = |p| m.is_some_and(|m| m.may(p));
    let personal = m.is_some_and(|m| m.personal());
    let may_manage = may(Permission::ManageMembers) && !personal;
    let invitations: Vec<Invitation> = if may_manage {
        c.get::<List<Invitation>>(&format!("/v1/orgs/{org}/invitations?limit=500"))
            .await
            .map(|l| l.items.into_iter().filter(|i| i.status == "pending").collect())
            .unwrap_or_default()
    } else {
        vec![]
    };
    let workspaces = c.get::<List<Workspace>>(&format!("/v1/orgs/{org}/workspaces?limit=500")).await.map(|l| l.items);
    let owner = m.is_some_and(|m| m.org_role == "owner");
    let here = format!("/app/o/{org}/members");
    let l = Layout::new(st, s, "Members", Some(org), &here).notice(notice);
    let page = MembersPage {
        l,
        org_id: org.to_string(),
        me_id: s.me.user.id.clone(),
        personal,
        members: members.items,
        invitations,
        workspaces: workspaces.unwrap_or_default(),
        grantable: if owner { vec!["member", "admin", "billing"] } else { vec!["member"] },
        may_manage,
        may_transfer: may(Permission::TransferOwnership) && !personal,
        link,
        flash,
    };
    (page.flash.status(), page).into_response()
}

async fn show(State(st): State<AppState>, s: Session, Path(org): Path<String>, RawQuery(q): RawQuery) -> Response {
    render(&st, &s, &org, Flash::default(), None, notice_for(query(&q, "done").as_deref())).await
}

async fn after(
    st: &AppState,
    s: &Session,
    org: &str,
    form: &'static str,
    r: Result<Value, Problem>,
    what: &str,
) -> Response {
    match r {
        Ok(_) => done(&format!("/app/o/{org}/members"), what),
        Err(e) if whole_page(&e) => problem_page(&e),
        Err(e) => render(st, s, org, Flash::for_form(form, e), None, None).await,
    }
}

/// This server as the person reached it (`Host`), so the link they pass on opens the same place.
fn origin(st: &AppState, headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or(&st.settings.listen);
    let scheme = if session::secure(st, headers) { "https" } else { "http" };
    format!("{scheme}://{host}")
}

async fn invite(State(st): State<AppState>, Path(org): Path<String>, headers: HeaderMap, p: Posted) -> Response {
    let f = &p.f;
    let workspaces: Vec<Value> = f
        .all("ws")
        .into_iter()
        .map(|id| json!({"workspace_id": id, "role": f.opt(&format!("ws_role_{id}")).unwrap_or("member")}))
        .collect();
    let body = json!({"email": f.get("email"), "role": f.opt("role").unwrap_or("member"), "workspaces": workspaces});
    let r: Result<Value, Problem> =
        p.s.call().send(Method::POST, &format!("/v1/orgs/{org}/invitations"), Some(body), None).await;
    match r {
        Ok(v) => {
            let token = v["token"].as_str().unwrap_or("");
            let query = serde_urlencoded::to_string([("token", token)]).unwrap_or_default();
            let link = format!("{}/app/invitations/accept?{query}", origin(&st, &headers));
            render(&st, &p.s, &org, Flash::default(), Some(link), Some("Invitation created.".into())).await
        }
        Err(e) if whole_page(&e) => problem_page(&e),
        Err(e) => render(&st, &p.s, &org, Flash::for_form("invite", e), None, None).await,
    }
}

async fn revoke_invitation(State(st): State<AppState>, Path((org, id)): Path<(String, String)>, p: Posted) -> Response {
    let r = p.s.call().send(Method::DELETE, &format!("/v1/orgs/{org}/invitations/{id}"), None, None).await;
    after(&st, &p.s, &org, "invitations", r, "revoked").await
}

async fn change_role(State(st): State<AppState>, Path((org, user)): Path<(String, String)>, p: Posted) -> Response {
    let body = json!({"role": p.f.get("role")});
    let r = p.s.call().send(Method::PATCH, &format!("/v1/orgs/{org}/members/{user}"), Some(body), None).await;
    after(&st, &p.s, &org, "members", r, "role").await
}

async fn remove(State(st): State<AppState>, Path((org, user)): Path<(String, String)>, p: Posted) -> Response {
    let leaving = user == p.s.me.user.id;
    let r: Result<Value, Problem> =
        p.s.call().send(Method::DELETE, &format!("/v1/orgs/{org}/members/{user}"), None, None).await;
    match r {
        // Whoever leaves can no longer see the org: back to their own workspace.
        Ok(_) if leaving => done("/app", "removed"),
        r => after(&st, &p.s, &org, "members", r, "removed").await,
    }
}

async fn transfer(State(st): State<AppState>, Path(org): Path<String>, p: Posted) -> Response {
    let body = json!({"user_id": p.f.get("user_id")});
    let r = p.s.call().send(Method::POST, &format!("/v1/orgs/{org}/transfer-ownership"), Some(body), None).await;
    after(&st, &p.s, &org, "transfer", r, "owner").await
}

/// The page an invitation link opens.
#[derive(Template, WebTemplate)]
#[template(path = "app/accept.html")]
pub struct AcceptPage {
    l: Layout,
    token: String,
    email: String,
    flash: Flash,
}

fn accept_view(st: &AppState, s: &Session, token: &str, flash: Flash) -> Response {
    let l = Layout::new(st, s, "Join an organization", None, "/app/invitations/accept");
    let page = AcceptPage { l, token: token.into(), email: s.me.user.email.clone(), flash };
    (page.flash.status(), page).into_response()
}

async fn accept_page(State(st): State<AppState>, s: Session, RawQuery(q): RawQuery) -> Response {
    accept_view(&st, &s, &query(&q, "token").unwrap_or_default(), Flash::default())
}

async fn accept(State(st): State<AppState>, p: Posted) -> Response {
    let token = p.f.get("token");
    let body = json!({"token": token});
    let r: Result<Value, Problem> = p.s.call().send(Method::POST, "/v1/invitations/accept", Some(body), None).await;
    match r {
        Ok(v) => done(&format!("/app/o/{}", v["org_id"].as_str().unwrap_or("")), "joined"),
        Err(e) => accept_view(&st, &p.s, token, Flash::for_form("accept", e)),
    }
}

//! Account settings: who is signed in, and their password (`PUT /v1/me/password`, which ends every
//! other session). Name changes wait for an API that makes them; two-factor and sessions have their
//! API (docs/identity.md) and no page yet.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Flash, Layout, done, notice_for, query};
use crate::AppState;
use crate::app::call::Problem;
use crate::app::session::{Posted, Session};

/// The account routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/app/account", get(show)).route("/app/account/password", post(change_password))
}

/// The account page.
#[derive(Template, WebTemplate)]
#[template(path = "app/account.html")]
pub struct AccountPage {
    l: Layout,
    flash: Flash,
    name: String,
    email: String,
    orgs: Vec<(String, String)>,
}

fn render(st: &AppState, s: &Session, flash: Flash, notice: Option<String>) -> Response {
    let l = Layout::new(st, s, "Account", None, "/app/account").notice(notice);
    let orgs = s.me.memberships.iter().map(|m| (m.org_name.clone(), m.org_role.clone())).collect();
    let page = AccountPage { l, flash, name: s.me.user.name.clone(), email: s.me.user.email.clone(), orgs };
    (page.flash.status(), page).into_response()
}

async fn show(State(st): State<AppState>, s: Session, RawQuery(q): RawQuery) -> Response {
    render(&st, &s, Flash::default(), notice_for(query(&q, "done").as_deref()))
}

async fn change_password(State(st): State<AppState>, p: Posted) -> Response {
    let body = json!({"current_password": p.f.get("current_password"), "password": p.f.get("password")});
    let r: Result<Value, Problem> = p.s.call().send(Method::PUT, "/v1/me/password", Some(body), None).await;
    match r {
        Ok(_) => done("/app/account", "password"),
        Err(e) => render(&st, &p.s, Flash::for_form("password", e), None),
    }
}

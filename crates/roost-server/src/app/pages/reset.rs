//! Password reset without signing in: "forgot your password?" asks for a mail
//! (`POST /v1/password-reset`, answered alike whether or not the address has an account), and the
//! page the mail links to sets a new password (`POST /v1/password-reset/confirm`; every session of
//! that user ends). Both forms are tied to the browser's pre-session cookie like sign-in.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use roost_domain::tokens;
use serde_json::{Value, json};

use super::{Flash, query};
use crate::AppState;
use crate::app::call::{Call, Problem};
use crate::app::session::{self, AnonPosted, PRE_COOKIE, cookie, csrf_for, set_cookie};

/// The password-reset routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/app/forgot-password", get(forgot_page).post(forgot))
        .route("/app/reset-password", get(reset_page).post(reset))
}

/// Both steps of a reset.
#[derive(Template, WebTemplate)]
#[template(path = "app/reset.html")]
pub struct ResetPage {
    product: String,
    logo_url: Option<String>,
    csrf: String,
    /// `None`: the "send me a link" step; else the token of the mailed link.
    token: Option<String>,
    email: String,
    /// The mail was asked for.
    sent: bool,
    /// The new password is set.
    changed: bool,
    flash: Flash,
}

/// What a step has done.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Done {
    Nothing,
    Sent,
    Changed,
}

fn page(st: &AppState, headers: &HeaderMap, token: Option<String>, email: &str, done: Done, flash: Flash) -> Response {
    let existing = cookie(headers, PRE_COOKIE).map(str::to_string);
    let pre = existing.clone().unwrap_or_else(|| tokens::generate("pre_"));
    let d = &st.settings.dashboard;
    let p = ResetPage {
        product: d.product_name.clone(),
        logo_url: d.logo_url.clone(),
        csrf: csrf_for(&pre),
        token,
        email: email.to_string(),
        sent: done == Done::Sent,
        changed: done == Done::Changed,
        flash,
    };
    let mut res = (p.flash.status(), p).into_response();
    if existing.is_none()
        && let Ok(v) = set_cookie(PRE_COOKIE, &pre, 86_400, session::secure(st, headers)).parse()
    {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

async fn forgot_page(State(st): State<AppState>, headers: HeaderMap) -> Response {
    page(&st, &headers, None, "", Done::Nothing, Flash::default())
}

/// Asks for the mail; says the same whether or not the address has an account.
async fn forgot(State(st): State<AppState>, p: AnonPosted) -> Response {
    let email = p.f.get("email");
    let r: Result<Value, Problem> = Call::new(&p.api, None, p.ip)
        .send(Method::POST, "/v1/password-reset", Some(json!({"email": email})), None)
        .await;
    match r {
        Ok(_) => page(&st, &p.headers, None, email, Done::Sent, Flash::default()),
        Err(e) => page(&st, &p.headers, None, email, Done::Nothing, Flash::for_form("reset", e)),
    }
}

async fn reset_page(State(st): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    page(&st, &headers, Some(query(&q, "token").unwrap_or_default()), "", Done::Nothing, Flash::default())
}

/// Sets the new password, and says so with a way to sign in.
async fn reset(State(st): State<AppState>, p: AnonPosted) -> Response {
    let token = p.f.get("token");
    let body = json!({"token": token, "password": p.f.raw("password")});
    let r: Result<Value, Problem> =
        Call::new(&p.api, None, p.ip).send(Method::POST, "/v1/password-reset/confirm", Some(body), None).await;
    match r {
        Ok(_) => page(&st, &p.headers, Some(String::new()), "", Done::Changed, Flash::default()),
        Err(e) => page(&st, &p.headers, Some(token.to_string()), "", Done::Nothing, Flash::for_form("reset", e)),
    }
}

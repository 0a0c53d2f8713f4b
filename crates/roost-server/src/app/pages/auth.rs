//! Sign-in, sign-up, sign-out and the workspace switcher.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Redirect, Response};
use roost_domain::tokens;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Flash, done, problem_page, query, two_factor};
use crate::AppState;
use crate::app::call::{Call, Problem};
use crate::app::session::{self, AnonPosted, PRE_COOKIE, Posted, SESSION_COOKIE, cookie, csrf_for, set_cookie};

/// The sign-in and sign-up page.
#[derive(Template, WebTemplate)]
#[template(path = "app/auth.html")]
pub struct AuthPage {
    signup: bool,
    product: String,
    logo_url: Option<String>,
    csrf: String,
    next: String,
    next_q: String,
    name: String,
    email: String,
    flash: Flash,
    /// Single sign-on providers: `(id, name)`, one button each.
    providers: Vec<(String, String)>,
}

/// Where to go after signing in: a dashboard path only (never another site).
pub(super) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/app") && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/app".into(),
    }
}

pub(super) fn auth_page(
    st: &AppState,
    headers: &HeaderMap,
    signup: bool,
    next: &str,
    form: Option<(&str, &str, Flash)>,
) -> Response {
    // A pre-session secret ties this form to this browser (login CSRF); kept if it exists.
    let existing = cookie(headers, PRE_COOKIE).map(str::to_string);
    let pre = existing.clone().unwrap_or_else(|| tokens::generate("pre_"));
    let (name, email, flash) = form.unwrap_or(("", "", Flash::default()));
    let next_q = format!("?{}", serde_urlencoded::to_string([("next", next)]).unwrap_or_default());
    let d = &st.settings.dashboard;
    let page = AuthPage {
        signup,
        product: d.product_name.clone(),
        logo_url: d.logo_url.clone(),
        csrf: csrf_for(&pre),
        next: next.to_string(),
        next_q,
        name: name.to_string(),
        email: email.to_string(),
        flash,
        providers: st.oidc.all().into_iter().map(|p| (p.id.clone(), p.display_name().to_string())).collect(),
    };
    let status = page.flash.status();
    let mut res = (status, page).into_response();
    if existing.is_none()
        && let Ok(v) = set_cookie(PRE_COOKIE, &pre, 86_400, session::secure(st, headers)).parse()
    {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// `GET /app/sign-in`.
pub async fn sign_in_page(State(st): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    auth_page(&st, &headers, false, &safe_next(query(&q, "next").as_deref()), None)
}

/// `GET /app/sign-up`.
pub async fn sign_up_page(State(st): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    auth_page(&st, &headers, true, &safe_next(query(&q, "next").as_deref()), None)
}

/// The token of a sign-in or sign-up.
#[derive(Deserialize)]
pub(super) struct TokenAnswer {
    pub token: String,
}

/// Signs in with the token and goes on to `next`.
pub(super) fn signed_in(st: &AppState, headers: &HeaderMap, token: &str, next: &str) -> Response {
    let mut res = Redirect::to(next).into_response();
    let secure = session::secure(st, headers);
    let max_age = i64::from(st.settings.session_ttl_days) * 86_400;
    for c in [set_cookie(SESSION_COOKIE, token, max_age, secure), set_cookie(PRE_COOKIE, "", 0, secure)] {
        if let Ok(v) = c.parse() {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

/// `POST /app/sign-in`: `POST /v1/sessions`.
pub async fn sign_in(State(st): State<AppState>, p: AnonPosted) -> Response {
    let f = &p.f;
    let next = safe_next(Some(f.get("next")));
    let body = json!({"email": f.get("email"), "password": f.raw("password")});
    let ua = p.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let r: Result<TokenAnswer, Problem> =
        Call::new(&p.api, None, p.ip).user_agent(ua).send(Method::POST, "/v1/sessions", Some(body), None).await;
    match r {
        Ok(t) => signed_in(&st, &p.headers, &t.token, &next),
        // The password was right and two-factor is on: ask for the code.
        Err(e) if e.code == "totp_required" => {
            let sealed = two_factor::sealed_for(&p.headers, f.raw("password"));
            two_factor::code_step(&st, &p.headers, &next, f.get("email"), sealed, None)
        }
        Err(e) => auth_page(&st, &p.headers, false, &next, Some(("", f.get("email"), Flash::for_form("auth", e)))),
    }
}

/// `POST /app/sign-up`: `POST /v1/signup`.
pub async fn sign_up(State(st): State<AppState>, p: AnonPosted) -> Response {
    let f = &p.f;
    let next = safe_next(Some(f.get("next")));
    let body = json!({"email": f.get("email"), "password": f.raw("password"), "name": f.get("name")});
    let ua = p.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let r: Result<TokenAnswer, Problem> =
        Call::new(&p.api, None, p.ip).user_agent(ua).send(Method::POST, "/v1/signup", Some(body), None).await;
    match r {
        Ok(t) => signed_in(&st, &p.headers, &t.token, &next),
        Err(e) => {
            auth_page(&st, &p.headers, true, &next, Some((f.get("name"), f.get("email"), Flash::for_form("auth", e))))
        }
    }
}

/// `POST /app/sign-out`: ends the session on the server (`DELETE /v1/sessions/current`).
pub async fn sign_out(State(st): State<AppState>, headers: HeaderMap, p: Posted) -> Response {
    let r: Result<Value, Problem> = p.s.call().send(Method::DELETE, "/v1/sessions/current", None, None).await;
    if let Err(e) = r {
        return problem_page(&e);
    }
    let mut res = Redirect::to("/app/sign-in").into_response();
    if let Ok(v) = set_cookie(SESSION_COOKIE, "", 0, session::secure(&st, &headers)).parse() {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// `POST /app/switch`: `PUT /v1/me/active-workspace`, then that workspace's page.
pub async fn switch(p: Posted) -> Response {
    let ws = p.f.get("workspace_id");
    let body = json!({"workspace_id": ws});
    let r: Result<Value, Problem> = p.s.call().send(Method::PUT, "/v1/me/active-workspace", Some(body), None).await;
    match r {
        Ok(v) => done(&format!("/app/w/{}", v["active_workspace_id"].as_str().unwrap_or(ws)), "switched"),
        Err(e) => problem_page(&e),
    }
}

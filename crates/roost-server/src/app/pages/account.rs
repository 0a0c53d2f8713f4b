//! Account settings: who is signed in, email verification, the password (`PUT /v1/me/password`,
//! which ends every other session), two-factor sign-in (its forms are in [`super::two_factor`]),
//! and the person's sessions (`GET /v1/me/sessions`, end one). The API has no call that renames a
//! user, so the name is shown, not edited.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::two_factor::Enrol;
use super::{Flash, Layout, done, notice_for, problem_page, query, whole_page};
use crate::AppState;
use crate::app::call::Problem;
use crate::app::model::{List, Me, SessionInfo};
use crate::app::session::{Posted, Session};

/// The account routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/app/account", get(show))
        .route("/app/account/password", post(change_password))
        .route("/app/account/sessions/{id}/end", post(end_session))
        .route("/app/account/verify-email", post(send_verification))
        .route("/app/verify-email", get(verify_page).post(verify))
}

/// What an action adds to the account page.
#[derive(Default)]
pub struct Extras {
    pub flash: Flash,
    pub notice: Option<String>,
    /// Two-factor being turned on: the secret to enter into an app.
    pub enrol: Option<Enrol>,
    /// Two-factor just turned on: the recovery codes, shown this once.
    pub recovery: Option<Vec<String>>,
}

impl Extras {
    /// Only a refusal.
    pub fn flash(flash: Flash) -> Self {
        Self { flash, ..Self::default() }
    }
}

/// The account page.
#[derive(Template, WebTemplate)]
#[template(path = "app/account.html")]
pub struct AccountPage {
    l: Layout,
    name: String,
    email: String,
    email_verified: bool,
    totp_enabled: bool,
    sessions: Vec<SessionInfo>,
    orgs: Vec<(String, String)>,
    x: Extras,
}

/// The account page with `x`.
pub async fn render(st: &AppState, s: &Session, x: Extras) -> Response {
    let c = s.call();
    // Read again: an action of this request (two-factor on or off) may have changed it.
    let me: Me = match c.get("/v1/me").await {
        Ok(m) => m,
        Err(e) => return problem_page(&e),
    };
    let sessions = c.get::<List<SessionInfo>>("/v1/me/sessions?limit=100").await.map(|l| l.items).unwrap_or_default();
    let l = Layout::new(st, s, "Account", None, "/app/account").notice(x.notice.clone());
    let orgs = me.memberships.iter().map(|m| (m.org_name.clone(), m.org_role.clone())).collect();
    let page = AccountPage {
        l,
        name: me.user.name,
        email: me.user.email,
        email_verified: me.email_verified,
        totp_enabled: me.totp_enabled,
        sessions,
        orgs,
        x,
    };
    (page.x.flash.status(), page).into_response()
}

async fn show(State(st): State<AppState>, s: Session, RawQuery(q): RawQuery) -> Response {
    render(&st, &s, Extras { notice: notice_for(query(&q, "done").as_deref()), ..Extras::default() }).await
}

async fn change_password(State(st): State<AppState>, p: Posted) -> Response {
    let body = json!({"current_password": p.f.get("current_password"), "password": p.f.get("password")});
    let r: Result<Value, Problem> = p.s.call().send(Method::PUT, "/v1/me/password", Some(body), None).await;
    match r {
        Ok(_) => done("/app/account", "password"),
        Err(e) => render(&st, &p.s, Extras::flash(Flash::for_form("password", e))).await,
    }
}

/// Ends one of the person's sessions (`DELETE /v1/me/sessions/{id}`); another person's is 404.
async fn end_session(State(st): State<AppState>, Path(id): Path<String>, p: Posted) -> Response {
    let r: Result<Value, Problem> = p.s.call().send(Method::DELETE, &format!("/v1/me/sessions/{id}"), None, None).await;
    match r {
        Ok(_) => done("/app/account", "session_ended"),
        Err(e) if whole_page(&e) => problem_page(&e),
        Err(e) => render(&st, &p.s, Extras::flash(Flash::for_form("sessions", e))).await,
    }
}

/// Sends a verification link to the person's address (`POST /v1/me/email-verification`).
async fn send_verification(State(st): State<AppState>, p: Posted) -> Response {
    let r: Result<Value, Problem> = p.s.call().send(Method::POST, "/v1/me/email-verification", None, None).await;
    match r {
        Ok(_) => done("/app/account", "verification_sent"),
        Err(e) => render(&st, &p.s, Extras::flash(Flash::for_form("verify", e))).await,
    }
}

/// The page the verification mail links to: one button that confirms.
#[derive(Template, WebTemplate)]
#[template(path = "app/verify_email.html")]
pub struct VerifyPage {
    l: Layout,
    token: String,
    email: String,
    flash: Flash,
}

fn verify_view(st: &AppState, s: &Session, token: &str, flash: Flash) -> Response {
    let l = Layout::new(st, s, "Verify your email address", None, "/app/verify-email");
    let page = VerifyPage { l, token: token.to_string(), email: s.me.user.email.clone(), flash };
    (page.flash.status(), page).into_response()
}

async fn verify_page(State(st): State<AppState>, s: Session, RawQuery(q): RawQuery) -> Response {
    verify_view(&st, &s, &query(&q, "token").unwrap_or_default(), Flash::default())
}

/// `POST /v1/email-verification/confirm` with the link's token.
async fn verify(State(st): State<AppState>, p: Posted) -> Response {
    let body = json!({"token": p.f.get("token")});
    let r: Result<Value, Problem> =
        p.s.call().send(Method::POST, "/v1/email-verification/confirm", Some(body), None).await;
    match r {
        Ok(_) => done("/app/account", "verified"),
        Err(e) => verify_view(&st, &p.s, p.f.get("token"), Flash::for_form("verify", e)),
    }
}

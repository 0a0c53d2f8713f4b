//! Single sign-on from the dashboard. The sign-in page has a button per `[[oidc]]` provider that
//! leads to `/app/oidc/{provider}`, which starts the API's flow with `/app/oidc/done` as its
//! `redirect_uri`; there the one-time code is exchanged (`POST /v1/oidc/exchange`) and the session
//! cookie set. The `redirect_uri` carries a check derived from this browser's pre-session cookie,
//! so a code is taken only by the browser that started the sign-in (no login CSRF).

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Router, http::Method};
use roost_domain::tokens;
use serde::Deserialize;
use serde_json::json;

use super::auth::{auth_page, safe_next, signed_in};
use super::{Flash, error_page, query};
use crate::AppState;
use crate::app::call::{Call, Problem};
use crate::app::session::{self, PRE_COOKIE, api_of, cookie, csrf_for, peer, set_cookie};

/// The routes of single sign-on in the dashboard.
pub fn router() -> Router<AppState> {
    Router::new().route("/app/oidc/done", get(done)).route("/app/oidc/{provider}", get(start))
}

/// `GET /app/oidc/{provider}?next=`: on to the API's start, back to `/app/oidc/done`.
async fn start(State(st): State<AppState>, Path(provider): Path<String>, parts: Parts) -> Response {
    if st.oidc.settings(&provider).is_none() {
        return error_page(StatusCode::NOT_FOUND, "There is no such sign-in provider.");
    }
    let existing = cookie(&parts.headers, PRE_COOKIE).map(str::to_string);
    let pre = existing.clone().unwrap_or_else(|| tokens::generate("pre_"));
    let q = parts.uri.query().map(str::to_string);
    let next = safe_next(query(&q, "next").as_deref());
    let done = format!(
        "/app/oidc/done?{}",
        serde_urlencoded::to_string([("next", next.as_str()), ("check", csrf_for(&pre).as_str())]).unwrap_or_default()
    );
    let to = format!(
        "/v1/oidc/{provider}/start?{}",
        serde_urlencoded::to_string([("redirect_uri", done.as_str())]).unwrap_or_default()
    );
    let mut res = Redirect::to(&to).into_response();
    if existing.is_none()
        && let Ok(v) = set_cookie(PRE_COOKIE, &pre, 3600, session::secure(&st, &parts.headers)).parse()
    {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: String,
}

/// `GET /app/oidc/done?code=&check=&next=` (or `?error=`): signs in and goes on to `next`.
async fn done(State(st): State<AppState>, parts: Parts) -> Response {
    let q = parts.uri.query().map(str::to_string);
    let next = safe_next(query(&q, "next").as_deref());
    let check = query(&q, "check").unwrap_or_default();
    let ours = cookie(&parts.headers, PRE_COOKIE).is_some_and(|pre| tokens::ct_eq(&check, &csrf_for(pre)));
    if !ours {
        return error_page(
            StatusCode::FORBIDDEN,
            "This sign-in was started in another browser (or its cookie is gone). Start it again from the sign-in page.",
        );
    }
    let api = match api_of(&parts) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let refused = |p: Problem| auth_page(&st, &parts.headers, false, &next, Some(("", "", Flash::for_form("auth", p))));
    if let Some(code) = query(&q, "error") {
        let status = match code.as_str() {
            "forbidden" => StatusCode::FORBIDDEN,
            "provider_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        };
        let detail = query(&q, "error_description").unwrap_or_else(|| "The sign-in did not succeed.".into());
        // The provider's reason as it is, not the generic sentence for the API's code.
        return refused(Problem::local(status, "sso_refused", &format!("Single sign-on failed: {detail}.")));
    }
    let Some(code) = query(&q, "code") else {
        return refused(Problem::local(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "The sign-in came back empty.",
        ));
    };
    let r: Result<TokenAnswer, Problem> = Call::new(&api, None, peer(&parts))
        .send(Method::POST, "/v1/oidc/exchange", Some(json!({"code": code})), None)
        .await;
    match r {
        Ok(t) => signed_in(&st, &parts.headers, &t.token, &next),
        Err(p) => refused(p),
    }
}

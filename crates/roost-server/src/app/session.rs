//! The dashboard's session: a cookie holding the user's token, and the CSRF token every form carries.
//!
//! The cookie holds an ordinary user token (`rsu_`, made by `POST /v1/sessions`), `HttpOnly` so no
//! script can read it, `SameSite=Lax` so other sites' forms do not carry it, `Secure` behind TLS.
//! Signing out deletes the session on the server (`DELETE /v1/sessions/current`), so a copied cookie
//! stops working too. The CSRF token is derived from the session token (a hash with its own
//! label): unguessable without the cookie, different for every session, and nothing to store.
//! Forms shown before sign-in are tied to a random pre-session cookie the same way.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use http_body_util::BodyExt;
use roost_domain::tokens;

use super::call::{Api, Call};
use super::model::Me;
use super::pages::error_page;
use crate::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "roost_session";
/// The pre-session cookie that ties the sign-in and sign-up forms to one browser.
pub const PRE_COOKIE: &str = "roost_pre";
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";
/// Largest form body the dashboard reads.
const MAX_FORM: usize = 64 * 1024;

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The CSRF token of a session (or pre-session) secret.
pub fn csrf_for(secret: &str) -> String {
    tokens::hash(&format!("roost-dashboard-csrf\0{secret}"))
}

/// Whether cookies get `Secure`: as configured, else when the request came over TLS (a proxy in
/// front says so with `X-Forwarded-Proto: https`).
pub fn secure(st: &AppState, headers: &HeaderMap) -> bool {
    st.settings.dashboard.secure_cookies.unwrap_or_else(|| {
        headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("https"))
    })
}

/// A `Set-Cookie` value (`max_age` in seconds; 0 removes the cookie).
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    let s = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/app; HttpOnly; SameSite=Lax; Max-Age={max_age}{s}")
}

/// A signed-in person on a dashboard page.
pub struct Session {
    pub token: String,
    pub csrf: String,
    pub me: Me,
    pub api: Api,
    pub ip: Option<SocketAddr>,
}

impl Session {
    /// An API call as this person.
    pub fn call(&self) -> Call<'_> {
        Call::new(&self.api, Some(&self.token), self.ip)
    }
}

/// The API router the dashboard calls, from the request's extensions.
pub fn api_of(parts: &Parts) -> Result<Api, Box<Response>> {
    parts.extensions.get::<Api>().cloned().ok_or_else(|| {
        tracing::error!("dashboard: the API router is missing from the request");
        Box::new(error_page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on our side."))
    })
}

/// The peer's address, for audit.
pub fn peer(parts: &Parts) -> Option<SocketAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

fn to_sign_in(parts: &Parts, clear: bool, secure: bool) -> Response {
    let here = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/app");
    let next = serde_urlencoded::to_string([("next", here)]).unwrap_or_default();
    let mut res = Redirect::to(&format!("/app/sign-in?{next}")).into_response();
    if clear && let Ok(v) = set_cookie(SESSION_COOKIE, "", 0, secure).parse() {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let secure = secure(st, &parts.headers);
        // Only a user token is a session (an API key in the cookie is not one).
        let token = cookie(&parts.headers, SESSION_COOKIE).filter(|t| t.starts_with(tokens::USER_TOKEN_PREFIX));
        let Some(token) = token.map(str::to_string) else {
            return Err(to_sign_in(parts, false, secure));
        };
        let api = api_of(parts).map_err(|e| *e)?;
        let ip = peer(parts);
        let me = Call::new(&api, Some(&token), ip).get::<Me>("/v1/me").await;
        match me {
            Ok(me) => Ok(Session { csrf: csrf_for(&token), token, me, api, ip }),
            Err(p) if p.status == StatusCode::UNAUTHORIZED => Err(to_sign_in(parts, true, secure)),
            Err(p) => Err(error_page(p.status, &p.detail)),
        }
    }
}

/// A submitted form's fields, in order.
#[derive(Debug, Default)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// A field's value, trimmed (empty when missing).
    pub fn get(&self, k: &str) -> &str {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim()).unwrap_or("")
    }

    /// A field's value exactly as sent (passwords keep their spaces).
    pub fn raw(&self, k: &str) -> &str {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    /// A field, or `None` when empty.
    pub fn opt(&self, k: &str) -> Option<&str> {
        Some(self.get(k)).filter(|v| !v.is_empty())
    }

    /// Every value of a repeated field (checkboxes).
    pub fn all(&self, k: &str) -> Vec<&str> {
        self.0.iter().filter(|(n, _)| n == k).map(|(_, v)| v.trim()).collect()
    }
}

async fn read_fields(body: Body) -> Result<Fields, Response> {
    let bad = || error_page(StatusCode::BAD_REQUEST, "That form could not be read. Go back and try again.");
    let bytes = http_body_util::Limited::new(body, MAX_FORM).collect().await.map_err(|_| bad())?.to_bytes();
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes).map(Fields).map_err(|_| bad())
}

fn csrf_refused() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "This form was not sent from this page, or it has expired. Go back, reload the page and try again.",
    )
}

/// A form posted by a signed-in person, its CSRF token checked against their session.
pub struct Posted {
    pub s: Session,
    pub f: Fields,
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let s = Session::from_request_parts(&mut parts, st).await?;
        let f = read_fields(body).await?;
        if !tokens::ct_eq(f.get(CSRF_FIELD), &s.csrf) {
            return Err(csrf_refused());
        }
        Ok(Posted { s, f })
    }
}

/// A form posted before sign-in (sign-in, sign-up), its CSRF token checked against the
/// pre-session cookie.
pub struct AnonPosted {
    pub f: Fields,
    pub api: Api,
    pub ip: Option<SocketAddr>,
    pub headers: HeaderMap,
}

impl FromRequest<AppState> for AnonPosted {
    type Rejection = Response;

    async fn from_request(req: Request, _: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let api = api_of(&parts).map_err(|e| *e)?;
        let f = read_fields(body).await?;
        let ok = cookie(&parts.headers, PRE_COOKIE).is_some_and(|pre| tokens::ct_eq(f.get(CSRF_FIELD), &csrf_for(pre)));
        if !ok {
            return Err(csrf_refused());
        }
        Ok(AnonPosted { f, api, ip: peer(&parts), headers: parts.headers })
    }
}

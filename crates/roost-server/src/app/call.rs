//! The dashboard's one way to act: requests to the API router, in process, as the signed-in user.
//!
//! Every page reads and every form acts through the very handlers that serve `/v1`, with the
//! session's own user token. So the role matrix, tenancy (404 for other tenants' ids), plan limits,
//! validation and audit are decided once, below both, and a form can never do what the API would
//! refuse: a forged post meets the same checks as a forged API call.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::ServiceExt;

/// The API router the dashboard calls (the same routes and state as `/v1`).
#[derive(Clone)]
pub struct Api(pub Router);

/// A refusal from the API: its status and problem document, to show next to what caused it.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub code: String,
    pub detail: String,
    /// The problem document itself (extension members such as `available` or `errors`).
    pub body: Value,
}

impl Problem {
    /// A problem made by the dashboard itself (never by the API).
    pub fn local(status: StatusCode, code: &str, detail: &str) -> Self {
        Self { status, code: code.into(), detail: detail.into(), body: Value::Null }
    }

    /// The message of `errors[]` for one field of a 422, if any.
    pub fn field(&self, field: &str) -> Option<String> {
        self.body["errors"].as_array()?.iter().find(|e| e["field"] == field)?["message"].as_str().map(str::to_string)
    }
}

/// One API request made for the dashboard.
pub struct Call<'a> {
    api: &'a Api,
    token: Option<&'a str>,
    ip: Option<SocketAddr>,
    user_agent: Option<&'a str>,
}

impl<'a> Call<'a> {
    /// Acting with `token` (a user token), from the peer `ip` (so audit records the person's address).
    pub fn new(api: &'a Api, token: Option<&'a str>, ip: Option<SocketAddr>) -> Self {
        Self { api, token, ip, user_agent: None }
    }

    /// Passes the person's `User-Agent` on (sign-in records it with the session it opens).
    pub fn user_agent(mut self, ua: Option<&'a str>) -> Self {
        self.user_agent = ua;
        self
    }

    /// `GET path`, decoded as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Problem> {
        self.send(Method::GET, path, None, None).await
    }

    /// A request with a JSON body (or none), decoded as `T` (use `Value` when the answer is not needed).
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> Result<T, Problem> {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(ua) = self.user_agent {
            req = req.header(header::USER_AGENT, ua);
        }
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let mut req = req.body(body).map_err(|e| internal(&e))?;
        if let Some(ip) = self.ip {
            req.extensions_mut().insert(ConnectInfo(ip));
        }
        let res = self.api.0.clone().oneshot(req).await.map_err(|e| internal(&e))?;
        let status = res.status();
        let bytes = res.into_body().collect().await.map_err(|e| internal(&e))?.to_bytes();
        if status.is_success() {
            let bytes = if bytes.is_empty() { &b"null"[..] } else { &bytes[..] };
            return serde_json::from_slice(bytes).map_err(|e| internal(&e));
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let code = body["code"].as_str().unwrap_or(if status == StatusCode::NOT_FOUND { "not_found" } else { "error" });
        let detail = body["detail"].as_str().unwrap_or("the request was refused");
        Err(Problem { status, code: code.to_string(), detail: detail.to_string(), body })
    }
}

fn internal(e: &dyn std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "dashboard: an API call failed");
    Problem::local(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
}

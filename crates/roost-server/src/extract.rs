//! Extractors that turn every kind of bad input into the documented problem response.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest accepted request body.
pub const MAX_BODY: usize = 1024 * 1024;

/// A JSON body: malformed → 400 `malformed_json`; wrong shape, missing or unknown fields → 422
/// `invalid_request` naming the field; over 1 MiB → 413 `payload_too_large`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// Like [`ApiJson`], but an empty body means `T::default()` (for bodies whose fields are all optional).
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("request bodies are limited to {MAX_BODY} bytes"),
    )
}

/// Beyond this, an oversized body is not read to its end: the connection is simply closed.
const DRAIN_LIMIT: usize = 8 * MAX_BODY;

/// Reads the body, up to [`MAX_BODY`]. An oversized body is still read (and dropped) up to
/// [`DRAIN_LIMIT`], so that a client still writing it gets the 413 (`too_large`, which says what
/// the route limits) instead of a reset connection.
pub(crate) async fn body_bytes(mut body: Body, too_large: fn() -> ApiError) -> Result<Bytes, ApiError> {
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", format!("cannot read the body: {e}"))
        })?;
        let Ok(data) = frame.into_data() else { continue };
        seen = seen.saturating_add(data.len());
        if seen > DRAIN_LIMIT {
            break;
        }
        if seen <= MAX_BODY {
            buf.extend_from_slice(&data);
        }
    }
    if seen > MAX_BODY {
        return Err(too_large());
    }
    Ok(Bytes::from(buf))
}

/// Parses JSON, classifying failures the way the API promises.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let malformed = |e: serde_json::Error| {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not valid JSON: {e}"))
    };
    // Syntax first, over the whole body: a body that is not JSON at all is 400 whatever its shape.
    let raw: serde_json::Value = serde_json::from_slice(bytes).map_err(malformed)?;
    // serde would read a struct from an array of its fields in order: every body is an object.
    if raw.is_array() {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    }
    let value = serde_path_to_error::deserialize::<_, T>(raw);
    value.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let msg = inner.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                // A missing field is reported by serde at the parent's path: name the field itself.
                let field = match msg.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
                    Some(f) if path == "." || path.is_empty() => f.to_string(),
                    Some(f) => format!("{path}.{f}"),
                    None if path == "." => "body".to_string(),
                    None => path,
                };
                ApiError::invalid_field(&field, &msg)
            }
            _ => malformed(inner),
        }
    })
}

/// A required JSON body, parsed as [`ApiJson`] does.
async fn required<T: DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    let bytes = body_bytes(body, too_large).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", "a JSON body is required"));
    }
    parse(&bytes)
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        required(req.into_body()).await.map(ApiJson)
    }
}

/// The request's headers and its JSON body (as [`ApiJson`]). The headers are moved out of the
/// request: axum's `HeaderMap` extractor would copy every one of them for each request.
#[derive(Debug)]
pub struct HeadersAndJson<T>(pub HeaderMap, pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for HeadersAndJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        Ok(HeadersAndJson(parts.headers, required(body).await?))
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req.into_body(), too_large).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        parse(&bytes).map(OptionalJson)
    }
}

/// The query string as key/value pairs, with helpers that answer 422 for bad values.
#[derive(Debug, Default)]
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_query", format!("the query string is malformed: {e}"))
        })?;
        Ok(Params(pairs.into_iter().collect()))
    }
}

/// Page size when `?limit=` is not given, and the largest accepted.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
pub const MAX_LIMIT: u32 = 500;

impl Params {
    /// A text parameter, if present and not empty.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// A text parameter that must be at most 200 characters without control characters (a NUL
    /// byte, for one, is not text PostgreSQL will take): 422 naming it otherwise.
    pub fn text(&self, k: &str) -> Result<Option<&str>, ApiError> {
        match self.get(k) {
            Some(v) if v.chars().count() > 200 || v.chars().any(char::is_control) => {
                Err(ApiError::invalid_field(k, "must be at most 200 characters, without control characters"))
            }
            other => Ok(other),
        }
    }

    /// `?limit=` (1–500, default 50) and `?cursor=`, which must be a cursor of this list: the id
    /// (of `kind`) of the last item of a page the server gave out.
    pub fn page(&self, kind: roost_domain::IdKind) -> Result<(u32, Option<&str>), ApiError> {
        let limit = self.limit()?;
        let cursor = self.get("cursor");
        if cursor.is_some_and(|c| !kind.is_valid(c)) {
            return Err(ApiError::invalid_field("cursor", "is not a cursor this server issued"));
        }
        Ok((limit, cursor))
    }

    /// For a list that is always one page: any `?cursor=` is one the server did not issue.
    pub fn no_cursor(&self) -> Result<(), ApiError> {
        match self.get("cursor") {
            Some(_) => {
                Err(ApiError::invalid_field("cursor", "is not a cursor this server issued (this list has one page)"))
            }
            None => Ok(()),
        }
    }

    /// `?limit=`: 1–500, default 50. Given but empty (`?limit=`) is not a number either.
    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.0.get("limit").map(String::as_str) {
            None => Ok(DEFAULT_LIMIT),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| ApiError::invalid_field("limit", "must be a whole number from 1 to 500")),
        }
    }
}

/// The peer's IP address, when the server was started with connect info.
#[derive(Debug, Clone, Default)]
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(c) = parts.extensions.get::<crate::ops::observe::ClientAddr>() {
            return Ok(ClientIp(Some(c.0.to_string())));
        }
        Ok(ClientIp(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only parsed")]
    struct Body {
        email: String,
        n: Option<i64>,
    }

    fn code(bytes: &[u8]) -> (&'static str, String) {
        let e = parse::<Body>(bytes).expect_err("must fail");
        let field = e.ext.get("errors").and_then(|v| v[0]["field"].as_str()).unwrap_or("").to_string();
        (e.code, field)
    }

    #[test]
    fn classifies_bad_bodies() {
        assert!(parse::<Body>(br#"{"email":"a@b.c"}"#).is_ok());
        assert_eq!(code(b"{not json").0, "malformed_json");
        assert_eq!(code(br#"{"email":"a"} trailing"#).0, "malformed_json");
        assert_eq!(code(br#"{"n": 1}"#), ("invalid_request", "email".into()));
        assert_eq!(code(br#"{"email":"a","emial":"b"}"#).0, "invalid_request");
        assert_eq!(code(br#"{"email":"a","n":"x"}"#), ("invalid_request", "n".into()));
        assert_eq!(code(br#"{"email":"a","n":1e400}"#).0, "malformed_json");
        assert_eq!(code(b"[1,2").0, "malformed_json");
        assert_eq!(code(br#"{"emial": 5, "#).0, "malformed_json");
        assert_eq!(code(b"[]").0, "invalid_request");
        assert_eq!(code(br#"["a@b.c", 1]"#), ("invalid_request", "body".into()));
    }
}

//! Cross-origin requests from browsers (CORS), off unless `cors_origins` lists the origins a web
//! client is served from. roost's API authenticates with bearer tokens, never cookies, so
//! credentials are not allowed: a page of another origin can call the API only with a token it
//! holds itself. The dashboard is same-origin and needs none of this.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The headers a browser client may send: the token, JSON, and roost's own request headers.
const ALLOW_HEADERS: [HeaderName; 7] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    HeaderName::from_static("idempotency-key"),
    HeaderName::from_static("roost-workspace"),
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    HeaderName::from_static("x-request-id"),
];

/// The response headers a browser client may read besides the CORS-safelisted ones.
const EXPOSE_HEADERS: [HeaderName; 9] = [
    HeaderName::from_static("ratelimit-limit"),
    HeaderName::from_static("ratelimit-remaining"),
    HeaderName::from_static("ratelimit-reset"),
    header::RETRY_AFTER,
    HeaderName::from_static("roost-credits-available"),
    HeaderName::from_static("roost-budget-remaining"),
    HeaderName::from_static("x-request-id"),
    header::ETAG,
    header::LOCATION,
];

/// How long a browser may cache a preflight's answer.
pub const MAX_AGE: Duration = Duration::from_secs(600);

/// Checks one `cors_origins` entry: `*`, or `http(s)://host[:port]` with nothing after it.
pub fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let rest = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| {
        !r.is_empty()
            && r.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
            && HeaderValue::from_str(origin).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "cors_origins: `{origin}` must be `*` or an origin like https://app.example.com (scheme, host, optional port, no path)"
        ))
    }
}

/// The CORS layer for `origins` (checked by [`check_origin`]), or `None` when the list is empty.
pub fn layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers(ALLOW_HEADERS)
            .expose_headers(EXPOSE_HEADERS)
            .max_age(MAX_AGE),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked() {
        for ok in ["*", "https://app.example.com", "http://127.0.0.1:3000", "http://[::1]:8080"] {
            assert!(check_origin(ok).is_ok(), "{ok}");
        }
        for bad in ["", "app.example.com", "https://app.example.com/", "https://a.b/path", "ftp://x", "https://"] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }
}

//! The middleware every request passes: its request id and span, the client's address, the
//! access log line, the HTTP metrics, and the circuit that answers at once while the database is
//! down.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::Label;
use tracing::Instrument;

use crate::AppState;
use crate::error::ApiError;

/// The header carrying the request id, accepted from the client when sane and always echoed.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The client's address as the server decided it (see [`super::proxy::client_ip`]).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::IpAddr);

/// Marks a response answered because the database was unavailable: it opens the circuit.
#[derive(Debug, Clone, Copy)]
pub struct DatabaseDown;

/// How long the circuit stays open after the database failed a request: requests in that time are
/// answered 503 at once instead of each waiting out the pool's acquire timeout; the first request
/// after it tries the database again.
const OPEN_FOR: Duration = Duration::from_secs(1);

/// A circuit breaker over the database.
#[derive(Debug, Default)]
pub struct Breaker {
    open_until: Mutex<Option<Instant>>,
}

impl Breaker {
    /// Whether requests should be refused without trying the database.
    pub fn is_open(&self) -> bool {
        let guard = self.open_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.is_some_and(|t| Instant::now() < t)
    }

    fn trip(&self) {
        let mut guard = self.open_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_none_or(|t| Instant::now() >= t) {
            tracing::warn!("the database is unavailable: answering 503 for {}ms", OPEN_FOR.as_millis());
        }
        *guard = Some(Instant::now() + OPEN_FOR);
    }

    fn close(&self) {
        let mut guard = self.open_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.take().is_some() {
            tracing::info!("the database answers again");
        }
    }
}

/// A request id the client sent, if it is 1–128 characters of letters, digits, `-`, `_`, `.`.
fn sane_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    ok.then(|| s.to_string())
}

/// Everything around a request (outermost layer).
pub async fn around(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id =
        req.headers().get(&REQUEST_ID).and_then(sane_id).unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let client = peer.map(|peer| {
        let xff: Vec<&str> = req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        super::proxy::client_ip(peer, &xff, &st.settings.trusted_proxies)
    });
    if let Some(ip) = client {
        req.extensions_mut().insert(ClientAddr(ip));
    }
    let route =
        req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!("request", id = %id, method = %method, route = %route);
    let guarded = route.starts_with("/v1/") && route != crate::api::contract::OPENAPI_PATH;
    let mut res = async {
        if guarded && st.breaker.is_open() {
            return database_unavailable();
        }
        let res = next.run(req).await;
        if guarded {
            if res.extensions().get::<DatabaseDown>().is_some() {
                st.breaker.trip();
            } else {
                st.breaker.close();
            }
        }
        res
    }
    .instrument(span.clone())
    .await;
    let elapsed = started.elapsed();
    let status = res.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            ip = client.map(|c| c.to_string()).unwrap_or_default(),
            path = %path,
            "request"
        );
    });
    if res.extensions().get::<DatabaseDown>().is_some() {
        st.telemetry.count("roost_database_unavailable_total", vec![], 1);
    }
    let labels = vec![Label::new("route", route.clone()), Label::new("method", method.to_string())];
    let mut with_status = labels.clone();
    with_status.push(Label::new("status", status.to_string()));
    st.telemetry.count("roost_http_requests_total", with_status, 1);
    st.telemetry.observe("roost_http_request_duration_seconds", labels, elapsed.as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    res
}

/// The answer while the circuit is open.
pub fn database_unavailable() -> Response {
    ApiError::unavailable("database_unavailable", "the database is unavailable; retry shortly", 1).into_response()
}

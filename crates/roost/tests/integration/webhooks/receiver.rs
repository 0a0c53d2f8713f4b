//! A real webhook receiver (axum on 127.0.0.1:0) that verifies every delivery with its own
//! implementation of the Standard Webhooks scheme (hmac, sha2 and base64 used directly), and can
//! be told to fail, to answer slowly, or to redirect.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    pub id: String,
    pub timestamp: i64,
    /// The `v1,…` signatures of the header.
    pub signatures: Vec<String>,
    pub body: Value,
    /// Which of the known secrets (by index) signed it.
    pub signed_by: Vec<usize>,
    /// What the receiver answered.
    pub status: u16,
}

#[derive(Default)]
pub struct Inner {
    pub got: Mutex<Vec<Got>>,
    /// Secrets the receiver knows (`whsec_…`).
    pub secrets: Mutex<Vec<String>>,
    /// Answer 500 to this many requests first.
    pub fail_first: AtomicUsize,
    /// Answer 500 to everything while set.
    pub down: std::sync::atomic::AtomicBool,
    /// Wait this long before answering.
    pub delay_ms: AtomicU64,
    /// Requests on `/elsewhere` (where `/redirect` points).
    pub elsewhere: AtomicUsize,
}

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub base: String,
    pub inner: Arc<Inner>,
}

/// The Standard Webhooks signature, computed here independently of roost.
pub fn expected_signature(secret: &str, id: &str, ts: i64, body: &[u8]) -> String {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").expect("whsec_ prefix")).expect("base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(ts.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

async fn hook(State(r): State<Arc<Inner>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (id, ts) = (h("webhook-id"), h("webhook-timestamp").parse::<i64>().unwrap_or(-1));
    let signatures: Vec<String> =
        h("webhook-signature").split(' ').filter(|s| !s.is_empty()).map(String::from).collect();
    let secrets = r.secrets.lock().unwrap().clone();
    let signed_by = secrets
        .iter()
        .enumerate()
        .filter(|(_, s)| signatures.contains(&expected_signature(s, &id, ts, &body)))
        .map(|(i, _)| i)
        .collect();
    let delay = r.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let failing = r.down.load(Ordering::SeqCst)
        || r.fail_first.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let status = if failing { 500 } else { 204 };
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    r.got.lock().unwrap().push(Got { id, timestamp: ts, signatures, body, signed_by, status });
    StatusCode::from_u16(status).unwrap().into_response()
}

impl Receiver {
    /// Starts a receiver; deliveries go to `{base}/hook`.
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .route(
                "/redirect",
                axum::routing::post(|| async { (StatusCode::FOUND, [("location", "/elsewhere")]).into_response() }),
            )
            .route(
                "/elsewhere",
                axum::routing::any(|State(r): State<Arc<Inner>>| async move {
                    r.elsewhere.fetch_add(1, Ordering::SeqCst);
                    StatusCode::NO_CONTENT
                }),
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url: format!("{base}/hook"), base, inner }
    }

    /// Everything received so far.
    pub fn got(&self) -> Vec<Got> {
        self.inner.got.lock().unwrap().clone()
    }

    /// Deliveries answered 2xx, in arrival order.
    pub fn accepted(&self) -> Vec<Got> {
        self.got().into_iter().filter(|g| g.status < 300).collect()
    }

    /// Teaches the receiver a secret; returns its index.
    pub fn know(&self, secret: &str) -> usize {
        let mut s = self.inner.secrets.lock().unwrap();
        s.push(secret.to_string());
        s.len() - 1
    }
}

//! One delivery: the event as JSON, signed with the Standard Webhooks headers, POSTed with connect
//! and total timeouts, no redirects followed and no private targets (see `target`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use roost_domain::time::to_rfc3339;
use roost_store::{EventRow, Webhook};
use serde_json::{Value, json};

use super::sign;
use super::target::{self, GuardedResolver};
use crate::Settings;

/// The HTTP client deliveries go out through.
pub fn client(s: &Settings) -> reqwest::Client {
    // HTTPS endpoints: rustls with the ring provider (process-wide; a second install is refused
    // harmlessly).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let total = Duration::from_millis(s.webhooks_timeout_ms);
    reqwest::Client::builder()
        .connect_timeout(total.min(Duration::from_secs(5)))
        .timeout(total)
        // A redirect is an answer other than 2xx, so a failure: following it could lead anywhere.
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { allow_private: s.webhooks_allow_private }))
        .user_agent(concat!("roost-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// The body of an event's delivery (the same fields as `GET /v1/orgs/{org}/events`).
pub fn event_body(e: &EventRow) -> Value {
    json!({
        "id": e.id,
        "type": e.kind.as_str(),
        "created_at": to_rfc3339(e.created_at),
        "org_id": e.org_id,
        "workspace_id": e.workspace_id,
        "data": serde_json::from_str::<Value>(&e.data).unwrap_or(Value::Null),
    })
}

/// What one attempt got.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ok: bool,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// POSTs `body` (the event `event_id`) to the endpoint, signed with its secrets as of `now`.
pub async fn send(
    http: &reqwest::Client,
    allow_private: bool,
    w: &Webhook,
    event_id: &str,
    body: &Value,
    now: i64,
) -> Outcome {
    let started = Instant::now();
    let done = |status_code: Option<i64>, error: Option<String>| Outcome {
        ok: status_code.is_some_and(|c| (200..300).contains(&c)),
        status_code,
        error,
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
    };
    // Names are checked by the client's resolver at connect time; addresses written in the URL
    // never reach a resolver, so they are checked here.
    if let Err(e) = literal_check(&w.url, allow_private) {
        return done(None, Some(e.to_string()));
    }
    let text = body.to_string();
    let ts = now.div_euclid(1000);
    let mut secrets = vec![w.secret.as_str()];
    if let (Some(old), Some(until)) = (&w.old_secret, w.old_secret_until)
        && until > now
    {
        secrets.push(old);
    }
    let req = http
        .post(&w.url)
        .header("content-type", "application/json")
        .header("webhook-id", event_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sign::header(&secrets, event_id, ts, &text))
        .body(text);
    match req.send().await {
        Ok(res) => {
            let code = i64::from(res.status().as_u16());
            let error = (!res.status().is_success()).then(|| format!("the endpoint answered {}", res.status()));
            done(Some(code), error)
        }
        Err(e) => done(None, Some(describe(&e))),
    }
}

fn literal_check(url: &str, allow_private: bool) -> Result<(), target::TargetError> {
    let Ok(u) = reqwest::Url::parse(url) else { return Err(target::TargetError::Invalid("not a URL")) };
    let host = u.host_str().unwrap_or("");
    match host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>() {
        Ok(ip) if !allow_private && !target::is_public(ip) => Err(target::TargetError::Private(ip.to_string())),
        _ => Ok(()),
    }
}

/// A short, stable description of a failed request, with its innermost cause.
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    format!("{what}: {cause}")
}

//! Running roost in production: liveness and readiness, metrics, the request middleware, the
//! client's address behind proxies, and the HTTP connection loop.

pub mod cors;
pub mod http;
pub mod observe;
pub mod proxy;
pub mod telemetry;

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics::Label;
use serde_json::json;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, Problem};

/// The operations routes, outside `/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}

/// How long the readiness check waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// `GET /healthz`: the process is alive. Cheap: it does not touch the database.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is alive", body = Object)))]
pub async fn healthz(State(st): State<AppState>) -> Response {
    axum::Json(json!({"status": "ok", "database": st.store.backend()})).into_response()
}

/// `GET /readyz`: 200 when the database answers, its migrations are current and the ledger
/// writers run; 503 naming the failing check otherwise.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready: every check passed", body = Object),
    (status = 503, description = "`not_ready`: `check` names the failing check, `checks` lists all", body = Problem,
     content_type = "application/problem+json")))]
pub async fn readyz(State(st): State<AppState>) -> Response {
    let database = match tokio::time::timeout(READY_TIMEOUT, st.store.schema_versions()).await {
        Err(_) => Err(format!("no answer within {}ms", READY_TIMEOUT.as_millis())),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(v)) => Ok(v),
    };
    let mut checks = serde_json::Map::new();
    let mut failing = None;
    match &database {
        Ok(_) => {
            checks.insert("database".into(), json!("ok"));
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            checks.insert("database".into(), json!("unavailable"));
            failing.get_or_insert("database");
        }
    }
    match database {
        Ok((applied, known)) if applied == known => {
            checks.insert("migrations".into(), json!("ok"));
        }
        Ok((applied, known)) => {
            checks.insert("migrations".into(), json!(format!("schema version {applied}, this roost expects {known}")));
            failing.get_or_insert("migrations");
        }
        Err(_) => {
            checks.insert("migrations".into(), json!("unknown"));
        }
    }
    if st.ledger.running() && st.store.ledger_writer_running() {
        checks.insert("ledger".into(), json!("ok"));
    } else {
        checks.insert("ledger".into(), json!("stopped"));
        failing.get_or_insert("ledger");
    }
    match failing {
        None => axum::Json(json!({"status": "ready", "checks": checks})).into_response(),
        Some(check) => ApiError::unavailable("not_ready", format!("the {check} check failed"), 1)
            .with("check", check)
            .with("checks", serde_json::Value::Object(checks))
            .into_response(),
    }
}

/// `GET /metrics`: Prometheus text format; 404 when `metrics = false`.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses(
    (status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain"),
    (status = 404, description = "Metrics are switched off (`metrics = false`)", body = Problem,
     content_type = "application/problem+json")))]
pub async fn metrics(State(st): State<AppState>) -> Response {
    if !st.settings.metrics {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route").into_response();
    }
    let t = &st.telemetry;
    let ledger = st.ledger.stats();
    t.total("roost_ledger_batches_total", ledger.batches);
    t.total("roost_ledger_batch_commands_total", ledger.commands);
    t.total("roost_ledger_batches_failed_total", ledger.failed);
    t.total("roost_ledger_batches_redone_total", ledger.redone);
    t.gauge("roost_ledger_mean_batch_size", vec![], ledger.mean_batch());
    let (open, idle, max) = st.store.pool_use();
    let state = |s: &'static str| vec![Label::new("state", s)];
    t.gauge("roost_db_pool_connections", state("idle"), f64::from(idle));
    t.gauge("roost_db_pool_connections", state("in_use"), f64::from(open.saturating_sub(idle)));
    t.gauge("roost_db_pool_max_connections", vec![], f64::from(max));
    let mut res = t.render().into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    res
}

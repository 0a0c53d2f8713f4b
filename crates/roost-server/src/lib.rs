#![doc = include_str!("../README.md")]

pub mod api;
pub mod app;
pub mod auth;
pub mod billing;
pub mod billing_html;
pub mod clock;
pub mod dns;
pub mod error;
pub mod extract;
pub mod jobs;
pub mod limits;
pub mod mail;
pub mod oidc;
pub mod operator;
pub mod ops;
pub mod settings;
pub mod throttle;
pub mod views;
pub mod webhooks;

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

pub use clock::{Clock, ManualClock, SystemClock};
pub use settings::Settings;

use auth::{KeyCache, Passwords};
use error::ApiError;
use roost_store::Store;

/// Shared state of a running server.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What every handler can reach.
pub struct Inner {
    pub store: Store,
    pub settings: Settings,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<KeyCache>,
    pub passwords: Passwords,
    pub ledger: roost_ledger::Ledger,
    /// What `GET /metrics` reports.
    pub telemetry: ops::telemetry::Telemetry,
    /// Fails requests fast while the database is down.
    pub breaker: ops::observe::Breaker,
    /// Wakes the mail sender after a transaction that queued mail commits.
    pub mailer: Arc<mail::Mailer>,
    /// Failed sign-ins per account and per IP.
    pub throttle: throttle::Throttle,
    /// The HTTP client webhook deliveries go out through.
    pub webhook_http: reqwest::Client,
    /// The rate limits of API-key traffic.
    pub limiter: limits::Limiter,
    /// The single sign-on providers (`[[oidc]]`) and what was fetched from them.
    pub oidc: oidc::Oidc,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Connects the store, runs migrations, and prepares the state.
    pub async fn new(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        settings.validate()?;
        let store = Store::connect_with(&settings.database_url, settings.pool()).await?;
        store.migrate().await?;
        if let Some(role) = store.db_role().await?
            && let Some(why) = role.unbound_reason()
        {
            tracing::warn!(role = %role.name, "{why}");
        }
        check_plans_in_use(&store, &settings).await?;
        let passwords = Passwords::new(settings.password_hash_memory_kib, settings.password_hash_iterations)?;
        let mailer = mail::Mailer::new(&settings)?;
        let keys = Arc::new(KeyCache::default());
        if store.backend() == "postgres" {
            auth::spawn_key_listener(settings.database_url.clone(), keys.clone());
        }
        let ledger_cfg = roost_ledger::LedgerConfig {
            kinds: settings.wallet_kinds.clone(),
            shards: settings.ledger_shards,
            max_batch: settings.ledger_batch_max,
            catalog: settings.catalog.clone(),
            ..roost_ledger::LedgerConfig::default()
        };
        let c = clock.clone();
        let ledger = roost_ledger::Ledger::start(store.clone(), ledger_cfg, Arc::new(move || c.now_ms()));
        let (telemetry, breaker) = (ops::telemetry::Telemetry::new(), ops::observe::Breaker::default());
        let webhook_http = webhooks::send::client(&settings);
        let limiter =
            limits::Limiter::new(settings.rate_limits, settings.redis_url.as_deref(), &settings.redis_key_prefix)?;
        let oidc = oidc::Oidc::new(&settings.oidc);
        Ok(Self(Arc::new(Inner {
            store,
            settings,
            clock,
            keys,
            passwords,
            ledger,
            telemetry,
            breaker,
            mailer,
            throttle: Default::default(),
            webhook_http,
            limiter,
            oidc,
        })))
    }
}

/// Refuses to start when orgs are on a plan the catalog no longer offers: their pages and their
/// ledger would fail on every request instead.
async fn check_plans_in_use(store: &Store, settings: &Settings) -> anyhow::Result<()> {
    let missing: Vec<String> = store
        .plans_in_use()
        .await?
        .into_iter()
        .filter(|(plan, _)| settings.catalog.get(plan).is_none())
        .map(|(plan, n)| format!("`{plan}` ({n} org{})", if n == 1 { "" } else { "s" }))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "the plan catalog no longer has plans that organizations are on: {}. Put them back in roost.toml's [[plans]] (a plan can be kept but no longer offered to new orgs only by keeping it listed), or move those orgs to another plan first",
        missing.join(", ")
    )
}

/// The whole HTTP application over `state`.
pub fn app(state: AppState) -> axum::Router {
    let (router, openapi) = api::router().merge(ops::router()).split_for_parts();
    let plans: Vec<&str> = state.settings.catalog.all().iter().map(|p| p.id.as_str()).collect();
    let openapi = Arc::new(api::finish_openapi(openapi, &plans, &state.settings.wallet_kinds));
    // The dashboard acts through the same routes, in process (see `app::call`).
    let dashboard = app::router(router.clone().with_state(state.clone()));
    let cors = ops::cors::layer(&state.settings.cors_origins);
    let app = router
        .merge(dashboard)
        .route(
            api::contract::OPENAPI_PATH,
            axum::routing::get(move || async move { axum::Json(openapi.as_ref().clone()) }),
        )
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
        })
        // The JSON extractor enforces MAX_BODY itself (draining what it refuses); this caps any other
        // body reader to the same size.
        .layer(DefaultBodyLimit::max(extract::MAX_BODY))
        .layer(axum::middleware::map_response(problem_for_plain_errors))
        .layer(axum::middleware::from_fn(limits::headers))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal("handler panicked").into_response()))
        .layer(axum::middleware::from_fn_with_state(state.clone(), ops::observe::around))
        .with_state(state);
    // Outermost: preflights are answered before anything else, and every answer (a 503 of the
    // database circuit too) carries the CORS headers a browser needs to read it.
    match cors {
        Some(cors) => app.layer(cors),
        None => app,
    }
}

/// Makes sure no error leaves the server as plain text. The extractors of roost answer problems
/// themselves (and `/healthz` answers JSON); what is left is axum's own rejection of a path segment that
/// is not valid percent-encoded UTF-8 (400 text/plain): such a path names nothing, so 404.
async fn problem_for_plain_errors(res: axum::response::Response) -> axum::response::Response {
    let status = res.status();
    let is_problem = res.headers().get(axum::http::header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        // The dashboard's pages answer errors as HTML pages of their own.
        v.starts_with(b"application/problem+json") || v.starts_with(b"application/json") || v.starts_with(b"text/html")
    });
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return res;
    }
    let err = match status {
        StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND => ApiError::not_found(),
        StatusCode::INTERNAL_SERVER_ERROR => ApiError::internal("a response without a problem body"),
        other => ApiError::new(other, "http_error", other.canonical_reason().unwrap_or("error")),
    };
    err.into_response()
}

/// Runs the server on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with_clock(settings, listener, shutdown, Arc::new(SystemClock)).await
}

/// [`serve`] with an injected clock.
pub async fn serve_with_clock(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    let state = AppState::new(settings, clock).await?;
    serve_state(state, listener, shutdown).await
}

/// Serves a prepared [`AppState`] (connected and migrated) on `listener` until `shutdown`.
pub async fn serve_state(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = state.store.clone();
    let jobs = tokio::spawn(jobs::run(state.clone()));
    let mail_sender = tokio::spawn(mail::sender::run(state.clone()));
    let deliveries = tokio::spawn(webhooks::run(state.clone()));
    let addr = listener.local_addr()?;
    tracing::info!(%addr, backend = store.backend(), "roost listening");
    let s = &state.settings;
    let limits = ops::http::Limits {
        header_timeout: std::time::Duration::from_millis(s.http_header_timeout_ms),
        idle_timeout: std::time::Duration::from_millis(s.http_idle_timeout_ms),
        max_connections: s.http_max_connections,
    };
    ops::http::serve(listener, app(state), limits, shutdown).await?;
    jobs.abort();
    mail_sender.abort();
    deliveries.abort();
    store.close().await;
    tracing::info!("roost stopped");
    Ok(())
}

//! The dashboard at `/app`: server-rendered pages for people, acting through the API itself.
//!
//! Pages are askama templates compiled into the binary; the little JavaScript there is and the
//! stylesheet are files embedded with rust-embed; charts are SVG drawn here. Every form works with
//! JavaScript off. Reads and actions go through [`call`], the `/v1` router in process, so the
//! dashboard obeys exactly the rules of the API. Every response carries a Content-Security-Policy
//! that allows no inline script.

pub mod call;
mod chart;
pub mod model;
pub mod pages;
pub mod session;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use rust_embed::RustEmbed;

use crate::AppState;
use call::Api;
use pages::error_page;

/// The stylesheet and script, embedded in the binary.
#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

/// What every dashboard response may load: its own files only (the operator's logo from anywhere),
/// no inline script, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's routes, acting through `api` (the `/v1` router with its state).
pub fn router(api: Router) -> Router<AppState> {
    Router::new()
        .route("/app", get(home))
        .route("/app/", get(home))
        .route("/app/static/{file}", get(asset))
        .route("/app/theme.css", get(theme))
        .route("/app/sign-in", get(pages::auth::sign_in_page).post(pages::auth::sign_in))
        .route("/app/sign-up", get(pages::auth::sign_up_page).post(pages::auth::sign_up))
        .route("/app/sign-out", post(pages::auth::sign_out))
        .route("/app/switch", post(pages::auth::switch))
        .merge(pages::workspace::router())
        .merge(pages::ws_admin::router())
        .merge(pages::orgs::router())
        .merge(pages::members::router())
        .merge(pages::credits::router())
        .merge(pages::account::router())
        .merge(pages::audit::router())
        .merge(pages::invoices::router())
        .merge(pages::sso::router())
        .merge(pages::two_factor::router())
        .merge(pages::signals::router())
        .merge(pages::webhooks::router())
        .merge(pages::reset::router())
        .route("/app/{*rest}", get(not_found).post(not_found))
        .layer(axum::Extension(Api(api)))
        .layer(axum::middleware::from_fn(plain_paths))
        .layer(axum::middleware::map_response(headers))
}

/// 404 for a path with percent-escapes: no dashboard path has one (ids are letters, digits and
/// `_`), and a decoded `/` or space in an id must never reach the API call built from it.
async fn plain_paths(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if req.uri().path().contains('%') {
        return not_found().await;
    }
    next.run(req).await
}

/// The security headers of every dashboard response.
async fn headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    // Invitation links carry their token in the query: never send it on to another site.
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// `/app`: the active workspace, or sign-in.
async fn home(s: Result<session::Session, Response>) -> Response {
    match s {
        Ok(s) => Redirect::to(&format!("/app/w/{}", s.me.active_workspace_id)).into_response(),
        Err(r) => r,
    }
}

async fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "There is no such page.")
}

async fn asset(Path(file): Path<String>) -> Response {
    let Some(f) = Assets::get(&file) else { return not_found().await };
    let mime = match file.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "public, max-age=3600")], f.data.into_owned())
        .into_response()
}

/// The operator's accent colour as CSS (checked at startup to be `#hex`, so it cannot break out).
async fn theme(State(st): State<AppState>) -> Response {
    let css = format!(":root {{ --accent: {}; }}\n", st.settings.dashboard.accent_color);
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=300")], css)
        .into_response()
}

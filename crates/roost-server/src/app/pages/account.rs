//! Account settings: who is signed in, and the place for name, password, two-factor and sessions.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Layout;
use crate::AppState;
use crate::app::session::Session;

/// The account routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/app/account", get(show))
}

/// The account page.
#[derive(Template, WebTemplate)]
#[template(path = "app/account.html")]
pub struct AccountPage {
    l: Layout,
    name: String,
    email: String,
    orgs: Vec<(String, String)>,
}

async fn show(State(st): State<AppState>, s: Session) -> Response {
    let l = Layout::new(&st, &s, "Account", None, "/app/account");
    let orgs = s.me.memberships.iter().map(|m| (m.org_name.clone(), m.org_role.clone())).collect();
    AccountPage { l, name: s.me.user.name.clone(), email: s.me.user.email.clone(), orgs }.into_response()
}

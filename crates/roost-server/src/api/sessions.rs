//! A person's sessions: list them, end one, change the password (which ends the others).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use roost_domain::IdKind;
use roost_domain::time::to_rfc3339;
use roost_domain::validate::Errors;
use roost_store::{Session, SessionMeta};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::check_id;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, Params};
use crate::views::List;

/// The longest user agent kept with a session.
const MAX_USER_AGENT: usize = 512;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_sessions)).routes(routes!(end_session)).routes(routes!(change_password))
}

/// What a new session records about where it was opened.
pub(crate) fn session_meta(ip: Option<String>, headers: &HeaderMap) -> SessionMeta {
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|ua| {
        let ua: String = ua.chars().filter(|c| !c.is_control()).collect();
        ua.chars().take(MAX_USER_AGENT).collect()
    });
    SessionMeta { ip, user_agent, ..SessionMeta::new() }
}

/// One of the caller's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    id: String,
    created_at: String,
    last_used_at: String,
    expires_at: String,
    ip: Option<String>,
    user_agent: Option<String>,
    /// Whether this is the session making the request.
    current: bool,
}

/// The caller's live sessions, oldest first.
#[utoipa::path(get, path = "/v1/me/sessions", tag = "identity", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = List<SessionView>), (status = 401, description = "unauthenticated", body = Problem)))]
async fn list_sessions(
    State(st): State<AppState>,
    caller: Caller,
    params: Params,
) -> ApiResult<Json<List<SessionView>>> {
    let user = caller.user()?;
    let (limit, cursor) = params.page(roost_domain::IdKind::Session)?;
    let now = st.clock.now_ms();
    let page = st.store.list_sessions(&user.id, now, st.settings.session_idle_after(now), limit, cursor).await?;
    let current = caller.session_id.as_deref();
    Ok(Json(List::from_page(page, |s: Session| SessionView {
        current: current == Some(s.id.as_str()),
        id: s.id,
        created_at: to_rfc3339(s.created_at),
        last_used_at: to_rfc3339(s.last_used_at),
        expires_at: to_rfc3339(s.expires_at),
        ip: s.ip,
        user_agent: s.user_agent,
    })))
}

/// Ends one of the caller's sessions (their current one included); anyone else's is not found.
#[utoipa::path(delete, path = "/v1/me/sessions/{id}", tag = "identity", security(("bearer" = [])),
    responses((status = 204), (status = 404, description = "not_found", body = Problem)))]
async fn end_session(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let user = caller.user()?;
    check_id(IdKind::Session, &id)?;
    st.store.end_session(&user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `PUT /v1/me/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    current_password: String,
    /// At least 10 characters.
    #[schema(min_length = 10, max_length = 1024)]
    password: String,
}

/// What a password change did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordChanged {
    /// How many other sessions ended.
    sessions_ended: u64,
}

/// Changes the caller's password and ends every other session. A wrong current password is a 422
/// on `current_password`; after `login_failures_per_account` of them, 429 until the window ends.
#[utoipa::path(put, path = "/v1/me/password", tag = "identity", security(("bearer" = [])), request_body = ChangePassword,
    responses((status = 200, body = PasswordChanged), (status = 422, description = "invalid_request", body = Problem),
              (status = 429, description = "rate_limited (too many wrong current passwords)", body = Problem)))]
async fn change_password(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<ChangePassword>,
) -> ApiResult<Json<PasswordChanged>> {
    let user = caller.user()?;
    let mut e = Errors::default();
    e.password("password", &b.password);
    e.finish().map_err(ApiError::invalid)?;
    // Guesses of the current password (a session taken over, a shared screen) are throttled per
    // account like sign-ins, on a count of their own so they cannot lock the account's sign-ins.
    let now = st.clock.now_ms();
    let throttle_key = format!("password:{}", user.id);
    if let Some(s) = st.throttle.retry_after(&throttle_key, st.settings.login_failures_per_account, now) {
        return Err(ApiError::login_throttled("account", s));
    }
    let current_ok = b.current_password.len() <= 4 * roost_domain::validate::MAX_PASSWORD
        && st.passwords.verify(b.current_password, Some(user.password_hash.clone())).await;
    if !current_ok {
        st.throttle.fail(&throttle_key, now);
        return Err(ApiError::invalid_field("current_password", "is not your current password"));
    }
    st.throttle.clear(&throttle_key);
    let hash = st.passwords.hash(b.password).await?;
    let keep = caller.session_id.clone().unwrap_or_default();
    let sessions_ended = st.store.change_password(&user.id, &hash, &keep).await?;
    Ok(Json(PasswordChanged { sessions_ended }))
}

//! Signup, sessions, `me` and the active workspace.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use roost_domain::time::DAY_MS;
use roost_domain::tokens::{self, USER_TOKEN_PREFIX};
use roost_domain::validate::Errors;
use roost_domain::{IdKind, OrgRole};
use roost_store::NewSignup;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domains::match_domains;
use super::sessions::session_meta;
use super::totp::{account_key, second_factor};
use super::{acting_ws, ws_ctx};
use crate::auth::{Caller, Who};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ClientIp};
use crate::views::{UserView, WorkspaceView};
use crate::{AppState, mail};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me, rename_me))
        .routes(routes!(set_active_workspace))
        .routes(routes!(current_workspace))
}

/// Signup body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    #[schema(
        min_length = 3,
        max_length = 254,
        pattern = r"^[^@\s\u0000-\u001f\u007f-\u009f]+@[^@\s.\u0000-\u001f\u007f-\u009f][^@\s\u0000-\u001f\u007f-\u009f]*$"
    )]
    email: String,
    /// At least 10 characters.
    #[schema(min_length = 10, max_length = 1024)]
    password: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    name: String,
}

/// The personal org and workspace made at signup.
#[derive(Debug, Serialize, ToSchema)]
pub struct Personal {
    org_id: String,
    workspace_id: String,
}

/// Signup answer: the user, a user token, and where they landed.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignupResponse {
    user: UserView,
    token: String,
    personal: Personal,
}

/// Creates a user with a personal org and workspace, and logs them in.
#[utoipa::path(post, path = "/v1/signup", tag = "accounts", request_body = SignupRequest,
    responses((status = 201, body = SignupResponse), (status = 409, description = "email_taken", body = Problem),
              (status = 422, description = "invalid_request", body = Problem)))]
async fn signup(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(b): ApiJson<SignupRequest>,
) -> ApiResult<(StatusCode, Json<SignupResponse>)> {
    let mut e = Errors::default();
    let email = e.email("email", &b.email);
    let name = e.name("name", &b.name);
    e.password("password", &b.password);
    e.finish().map_err(ApiError::invalid)?;
    let now = st.clock.now_ms();
    let token = tokens::generate(USER_TOKEN_PREFIX);
    let s = NewSignup {
        user_id: IdKind::User.generate(),
        email,
        name: name.clone(),
        password_hash: st.passwords.hash(b.password).await?,
        org_id: IdKind::Org.generate(),
        org_name: format!("{name} (personal)"),
        plan: st.settings.personal_plan.clone(),
        workspace_id: IdKind::Workspace.generate(),
        workspace_name: "Personal".into(),
        token_hash: tokens::hash(&token),
        session_expires_at: now + i64::from(st.settings.session_ttl_days) * DAY_MS,
    };
    let meta = session_meta(ip.clone(), &headers);
    let ctx = roost_store::Ctx { actor: roost_store::Actor::user(&s.user_id), ip, now };
    st.store.signup_with_session(&s, &meta, &ctx).await?;
    let user = UserView { id: s.user_id, email: s.email, name: s.name };
    Ok((
        StatusCode::CREATED,
        Json(SignupResponse { user, token, personal: Personal { org_id: s.org_id, workspace_id: s.workspace_id } }),
    ))
}

/// Login body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
    /// The current code of the authenticator app, when two-factor is on.
    totp_code: Option<String>,
    /// Instead of `totp_code`: one of the recovery codes (each works once).
    recovery_code: Option<String>,
}

/// Login answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    token: String,
    user: UserView,
}

/// Logs in with email and password (and a second factor when two-factor is on). Unknown email and
/// wrong password get the same answer; failures are throttled per account and per IP.
#[utoipa::path(post, path = "/v1/sessions", tag = "accounts", request_body = LoginRequest,
    responses((status = 201, body = LoginResponse), (status = 401, description = "invalid_credentials or totp_required", body = Problem),
              (status = 429, description = "rate_limited (too many failures for the account or the IP)", body = Problem)))]
async fn login(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(b): ApiJson<LoginRequest>,
) -> ApiResult<(StatusCode, Json<LoginResponse>)> {
    let email = b.email.trim().to_lowercase();
    let bad = || ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "wrong email or password");
    if b.password.len() > 4 * roost_domain::validate::MAX_PASSWORD
        || email.len() > 254
        || email.chars().any(char::is_control)
    {
        return Err(bad());
    }
    let now = st.clock.now_ms();
    let (acct_key, ip_key) = (account_key(&email), format!("ip:{}", ip.as_deref().unwrap_or("-")));
    if let Some(s) = st.throttle.retry_after(&acct_key, st.settings.login_failures_per_account, now) {
        return Err(ApiError::login_throttled("account", s));
    }
    if let Some(s) = st.throttle.retry_after(&ip_key, st.settings.login_failures_per_ip, now) {
        return Err(ApiError::login_throttled("ip", s));
    }
    let failed = || {
        st.throttle.fail(&acct_key, now);
        st.throttle.fail(&ip_key, now);
        bad()
    };
    let user = st.store.user_by_email(&email).await?;
    let ok = st.passwords.verify(b.password, user.as_ref().map(|u| u.password_hash.clone())).await;
    let user = user.filter(|_| ok).ok_or_else(failed)?;
    if user.totp_enabled_at.is_some() {
        if b.totp_code.is_none() && b.recovery_code.is_none() {
            let detail = "two-factor is on: send totp_code (or a recovery_code) with the password";
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "totp_required", detail));
        }
        if !second_factor(&st, &user, b.totp_code.as_deref(), b.recovery_code.as_deref()).await? {
            return Err(failed());
        }
    }
    st.throttle.clear(&acct_key);
    let token = tokens::generate(USER_TOKEN_PREFIX);
    let expires = now + i64::from(st.settings.session_ttl_days) * DAY_MS;
    let meta = session_meta(ip.clone(), &headers);
    let at = roost_domain::time::to_rfc3339(now);
    let notice =
        mail::new_sign_in(&st.settings, &user.email, meta.ip.as_deref(), meta.user_agent.as_deref(), &at).into_outbox();
    if st.store.open_session_with_notice(&tokens::hash(&token), &user.id, now, expires, &meta, &notice).await? {
        st.mailer.wake();
    }
    // Joining orgs through a verified domain is a side effect: it never fails the sign-in.
    if let Err(e) = match_domains(&st, &user, ip).await {
        tracing::warn!(user = %user.id, code = e.code, detail = %e.detail, "joining orgs by verified domain");
    }
    Ok((StatusCode::CREATED, Json(LoginResponse { token, user: (&user).into() })))
}

/// Logs out: the token stops working at once.
#[utoipa::path(delete, path = "/v1/sessions/current", tag = "accounts", security(("bearer" = [])),
    responses((status = 204), (status = 401, description = "unauthenticated", body = Problem)))]
async fn logout(State(st): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    caller.user()?;
    st.store.delete_session(&caller.token_hash).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who the caller is: a user with their memberships, or an API key.
#[utoipa::path(get, path = "/v1/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = Value, description = "`{user, email_verified, totp_enabled, active_workspace_id, memberships}` or, for an API key, `{key}`"),
              (status = 401, description = "unauthenticated", body = Problem)))]
async fn me(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let user = match &caller.who {
        Who::Key(k) => {
            return Ok(Json(
                json!({"key": {"id": k.id, "name": k.name, "workspace_id": k.workspace_id, "org_id": k.org_id}}),
            ));
        }
        Who::User(u) => u,
    };
    let memberships = st.store.memberships(&user.id).await?;
    let workspaces = st.store.visible_workspaces(&user.id).await?;
    // A member held out of their active workspace (its org requires two-factor) still sees who
    // they are: the active workspace is named, not entered.
    let active_id = match acting_ws(&st, &caller, &HeaderMap::new()).await {
        Ok(w) => Some(w.ws.id),
        Err(e) if e.code == "two_factor_required" => user.active_workspace_id.clone(),
        Err(e) => return Err(e),
    };
    let memberships: Vec<Value> = memberships
        .iter()
        .map(|m| {
            // Without a role of their own in a workspace, owners and admins act as its admin;
            // billing members see it for billing only.
            let org_wide = if m.role == "billing" { "billing" } else { "admin" };
            let ws: Vec<Value> = workspaces
                .iter()
                .filter(|(w, _)| w.org_id == m.org.id)
                .map(|(w, role)| {
                    let role = role.clone().unwrap_or_else(|| org_wide.to_string());
                    json!({"id": w.id, "name": w.name, "role": role, "primary": w.primary})
                })
                .collect();
            json!({"org_id": m.org.id, "org_name": m.org.name, "org_kind": m.org.kind, "org_role": m.role, "plan": m.org.plan, "workspaces": ws})
        })
        .collect();
    Ok(Json(json!({
        "user": UserView::from(user),
        "email_verified": user.email_verified_at.is_some(),
        "totp_enabled": user.totp_enabled_at.is_some(),
        "active_workspace_id": active_id,
        "memberships": memberships
    })))
}

/// Body of `PATCH /v1/me`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameMe {
    /// The name other members see (1–200 characters).
    name: String,
}

/// Changes the signed-in person's name (API keys cannot).
#[utoipa::path(patch, path = "/v1/me", tag = "accounts", security(("bearer" = [])), request_body = RenameMe,
    responses((status = 200, body = UserView), (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "forbidden: an API key", body = Problem),
              (status = 422, description = "invalid_request", body = Problem)))]
async fn rename_me(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<RenameMe>,
) -> ApiResult<Json<UserView>> {
    let user = caller.user()?;
    let mut e = Errors::default();
    let name = e.name("name", &b.name);
    e.finish().map_err(ApiError::invalid)?;
    st.store.rename_user(&user.id, &name).await?;
    Ok(Json(UserView { id: user.id.clone(), email: user.email.clone(), name }))
}

/// Body of `PUT /v1/me/active-workspace`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActiveWorkspaceRequest {
    workspace_id: String,
}

/// The active workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveWorkspace {
    active_workspace_id: String,
}

/// Switches the user's active workspace; they must be able to enter it.
#[utoipa::path(put, path = "/v1/me/active-workspace", tag = "accounts", security(("bearer" = [])), request_body = ActiveWorkspaceRequest,
    responses((status = 200, body = ActiveWorkspace), (status = 404, description = "not_found", body = Problem)))]
async fn set_active_workspace(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<ActiveWorkspaceRequest>,
) -> ApiResult<Json<ActiveWorkspace>> {
    let user = caller.user()?;
    let ws = ws_ctx(&st, &caller, b.workspace_id.trim()).await?;
    st.store.set_active_workspace(&user.id, &ws.ws.id).await?;
    Ok(Json(ActiveWorkspace { active_workspace_id: ws.ws.id }))
}

/// The workspace a workspace-scoped call would act in now (honours `Roost-Workspace`).
#[utoipa::path(get, path = "/v1/workspaces/current", tag = "workspaces", security(("bearer" = [])),
    params(("Roost-Workspace" = Option<String>, Header, description = "act in this workspace for this request")),
    responses((status = 200, body = WorkspaceView), (status = 404, description = "not_found", body = Problem)))]
async fn current_workspace(State(st): State<AppState>, caller: Caller, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let ws = acting_ws(&st, &caller, &headers).await?;
    let role = match (&ws.ws_role, &ws.org_role) {
        (Some(r), _) => r.as_str(),
        (None, Some(OrgRole::Billing)) => "billing",
        (None, Some(_)) => "admin",
        (None, None) => "member",
    };
    let mut v = serde_json::to_value(WorkspaceView::from(&ws.ws)).map_err(ApiError::internal)?;
    v["role"] = role.into();
    Ok(Json(v))
}

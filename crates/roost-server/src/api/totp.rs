//! Two-factor (TOTP, RFC 6238): enrolment, confirmation with recovery codes, turning it off, and
//! the second factor of a sign-in. A code is accepted once: its time step must be later than the
//! last one accepted for the user.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use roost_domain::totp;
use roost_store::User;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;
use crate::mail;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(start_totp, disable_totp)).routes(routes!(confirm_totp))
}

/// The throttle key of an account: its email, as typed at sign-in.
pub(crate) fn account_key(email: &str) -> String {
    format!("acct:{}", email.trim().to_lowercase())
}

/// Whether the second factor given is good for `user` now: a TOTP code not used before (its step
/// is then spent), or an unused recovery code (then spent).
pub(crate) async fn second_factor(
    st: &AppState,
    user: &User,
    code: Option<&str>,
    recovery_code: Option<&str>,
) -> ApiResult<bool> {
    let now = st.clock.now_ms();
    if let Some(code) = code {
        let state = st.store.totp_state(&user.id).await?;
        let step = state.secret.as_deref().and_then(|s| totp::check(s, code, now));
        return match step {
            Some(step) if step > state.last_step => Ok(st.store.use_totp_step(&user.id, step).await?),
            _ => Ok(false),
        };
    }
    if let Some(rc) = recovery_code.filter(|rc| rc.len() <= 64) {
        return Ok(st.store.use_recovery_code(&user.id, &totp::recovery_hash(rc), now).await?);
    }
    Ok(false)
}

/// 429 while the account has used up its failed attempts; else awaits `ok` and counts a failure
/// when it says no.
async fn throttled(st: &AppState, user: &User, ok: impl Future<Output = ApiResult<bool>>) -> ApiResult<bool> {
    let key = account_key(&user.email);
    let now = st.clock.now_ms();
    if let Some(s) = st.throttle.retry_after(&key, st.settings.login_failures_per_account, now) {
        return Err(ApiError::login_throttled("account", s));
    }
    let ok = ok.await?;
    if !ok {
        st.throttle.fail(&key, now);
    }
    Ok(ok)
}

/// A new enrolment: the secret for an authenticator app.
#[derive(Debug, Serialize, ToSchema)]
pub struct Enrolment {
    /// Base32, for typing into an app.
    secret: String,
    /// `otpauth://totp/…`, for a QR code.
    otpauth_url: String,
}

/// Starts two-factor enrolment (again, replacing an unconfirmed secret). Two-factor is on only after
/// `POST /v1/me/totp/confirm` with a code from the app.
#[utoipa::path(post, path = "/v1/me/totp", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = Enrolment), (status = 409, description = "totp_enabled", body = Problem)))]
async fn start_totp(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<Enrolment>> {
    let user = caller.user()?;
    let secret = totp::new_secret();
    let otpauth_url = totp::otpauth_url(&secret, &st.settings.product_name, &user.email)
        .ok_or_else(|| ApiError::internal("building the otpauth URL"))?;
    st.store.start_totp(&user.id, &secret).await?;
    Ok(Json(Enrolment { secret, otpauth_url }))
}

/// A code from the authenticator app (or, to turn two-factor off, a recovery code).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    code: String,
}

/// The recovery codes: shown once, each usable once instead of a code.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

fn wrong_code() -> ApiError {
    ApiError::invalid_field("code", "is not a current code from your authenticator app")
}

/// Confirms enrolment with a code from the app: two-factor is on, and ten recovery codes are
/// handed out (once). A notice goes to the account's address.
#[utoipa::path(post, path = "/v1/me/totp/confirm", tag = "identity", security(("bearer" = [])), request_body = CodeRequest,
    responses((status = 200, body = RecoveryCodes), (status = 409, description = "totp_enabled or totp_not_started", body = Problem),
              (status = 422, description = "invalid_request (a wrong code)", body = Problem),
              (status = 429, description = "rate_limited", body = Problem)))]
async fn confirm_totp(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<CodeRequest>,
) -> ApiResult<Json<RecoveryCodes>> {
    let user = caller.user()?;
    if user.totp_enabled_at.is_some() {
        return Err(roost_store::StoreError::Rule(roost_store::Rule::TotpEnabled).into());
    }
    let state = st.store.totp_state(&user.id).await?;
    let secret = state.secret.ok_or(roost_store::StoreError::Rule(roost_store::Rule::TotpNotStarted))?;
    let now = st.clock.now_ms();
    let step = totp::check(&secret, &b.code, now).filter(|&s| s > state.last_step);
    let found = step.is_some();
    let (true, Some(step)) = (throttled(&st, user, async move { Ok(found) }).await?, step) else {
        return Err(wrong_code());
    };
    let codes: Vec<String> = (0..totp::RECOVERY_CODES).map(|_| totp::new_recovery_code()).collect();
    let hashes: Vec<String> = codes.iter().map(|c| totp::recovery_hash(c)).collect();
    let notice = mail::two_factor_changed(&st.settings, &user.email, true).into_outbox();
    if !st.store.enable_totp(&user.id, step, &hashes, &notice, now).await? {
        return Err(wrong_code());
    }
    st.mailer.wake();
    Ok(Json(RecoveryCodes { recovery_codes: codes }))
}

/// Turns two-factor off, given a current code or a recovery code. A notice goes to the account's
/// address.
#[utoipa::path(delete, path = "/v1/me/totp", tag = "identity", security(("bearer" = [])), request_body = CodeRequest,
    responses((status = 204), (status = 409, description = "totp_not_started (two-factor is off)", body = Problem),
              (status = 422, description = "invalid_request (a wrong code)", body = Problem),
              (status = 429, description = "rate_limited", body = Problem)))]
async fn disable_totp(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<CodeRequest>,
) -> ApiResult<StatusCode> {
    let user = caller.user()?;
    if user.totp_enabled_at.is_none() {
        return Err(roost_store::StoreError::Rule(roost_store::Rule::TotpNotStarted).into());
    }
    let is_totp = b.code.trim().len() == 6;
    let (code, recovery) = if is_totp { (Some(b.code.as_str()), None) } else { (None, Some(b.code.as_str())) };
    if !throttled(&st, user, second_factor(&st, user, code, recovery)).await? {
        return Err(wrong_code());
    }
    let notice = mail::two_factor_changed(&st.settings, &user.email, false).into_outbox();
    st.store.disable_totp(&user.id, &notice, st.clock.now_ms()).await?;
    st.mailer.wake();
    Ok(StatusCode::NO_CONTENT)
}

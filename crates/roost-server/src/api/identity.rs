//! Email verification and password reset: tokens that travel by mail, each single use, for an hour.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use roost_domain::tokens::{self, PASSWORD_RESET_PREFIX, VERIFY_EMAIL_PREFIX};
use roost_domain::validate::Errors;
use roost_store::{NewUserToken, Rule, StoreError, TokenPurpose};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ClientIp};
use crate::mail;

/// How long a verification or reset link works.
pub const LINK_TTL_MS: i64 = 3_600_000;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_verification))
        .routes(routes!(confirm_verification))
        .routes(routes!(request_reset))
        .routes(routes!(confirm_reset))
}

/// Where the caller's email address stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmailState {
    email: String,
    email_verified: bool,
}

/// Mails the caller a link (an `rsv_` token) that proves they receive mail at their address.
#[utoipa::path(post, path = "/v1/me/email-verification", tag = "identity", security(("bearer" = [])),
    responses((status = 202, body = EmailState, description = "a link is on its way (none when already verified)"),
              (status = 401, description = "unauthenticated", body = Problem)))]
async fn request_verification(State(st): State<AppState>, caller: Caller) -> ApiResult<(StatusCode, Json<EmailState>)> {
    let user = caller.user()?;
    let verified = user.email_verified_at.is_some();
    if !verified {
        let now = st.clock.now_ms();
        let token = tokens::generate(VERIFY_EMAIL_PREFIX);
        let t = NewUserToken {
            token_hash: tokens::hash(&token),
            purpose: TokenPurpose::VerifyEmail,
            user_id: Some(user.id.clone()),
            email: user.email.clone(),
            expires_at: now + LINK_TTL_MS,
        };
        let m = mail::email_verification(&st.settings, &user.email, &user.name, &token).into_outbox();
        st.store.issue_user_token(&t, &m, now).await?;
        st.mailer.wake();
    }
    Ok((StatusCode::ACCEPTED, Json(EmailState { email: user.email.clone(), email_verified: verified })))
}

/// A token from a mail.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    token: String,
}

/// What confirming did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Confirmed {
    user_id: String,
    email_verified: bool,
}

/// The hash of a mailed token, or `token_invalid` for anything that cannot be one.
fn mailed_token_hash(token: &str, prefix: &str) -> ApiResult<String> {
    let token = token.trim();
    if token.len() > 200 || !token.starts_with(prefix) {
        return Err(StoreError::Rule(Rule::TokenInvalid).into());
    }
    Ok(tokens::hash(token))
}

/// Confirms an email address with the token from the verification mail (no sign-in needed).
#[utoipa::path(post, path = "/v1/email-verification/confirm", tag = "identity", request_body = TokenRequest,
    responses((status = 200, body = Confirmed), (status = 410, description = "token_invalid", body = Problem)))]
async fn confirm_verification(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(b): ApiJson<TokenRequest>,
) -> ApiResult<Json<Confirmed>> {
    let hash = mailed_token_hash(&b.token, VERIFY_EMAIL_PREFIX)?;
    let user_id = st.store.confirm_email(&hash, st.clock.now_ms()).await?;
    // A newly verified address may take its owner into orgs with a verified domain.
    if let Some(user) = st.store.user_by_id(&user_id).await? {
        super::domains::match_domains(&st, &user, ip).await?;
    }
    Ok(Json(Confirmed { user_id, email_verified: true }))
}

/// Body of `POST /v1/password-reset`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    #[schema(
        min_length = 3,
        max_length = 254,
        pattern = r"^[^@\s\u0000-\u001f\u007f-\u009f]+@[^@\s.\u0000-\u001f\u007f-\u009f][^@\s\u0000-\u001f\u007f-\u009f]*$"
    )]
    email: String,
}

/// The same answer for every well-formed address.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetRequested {
    detail: String,
}

/// Mails a reset link (an `rsr_` token, one hour, single use) if the address has an account. The
/// answer, and the work done before it, are the same whether or not it has one.
#[utoipa::path(post, path = "/v1/password-reset", tag = "identity", request_body = ResetRequest,
    responses((status = 202, body = ResetRequested), (status = 422, description = "invalid_request", body = Problem)))]
async fn request_reset(
    State(st): State<AppState>,
    ApiJson(b): ApiJson<ResetRequest>,
) -> ApiResult<(StatusCode, Json<ResetRequested>)> {
    let mut e = Errors::default();
    let email = e.email("email", &b.email);
    e.finish().map_err(ApiError::invalid)?;
    let user = st.store.user_by_email(&email).await?;
    // Known or not: one lookup, one token, one rendered mail and one transaction writing a token row
    // and an outbox row. Only the sender, after the answer, tells them apart (it skips a
    // suppressed mail).
    let now = st.clock.now_ms();
    let token = tokens::generate(PASSWORD_RESET_PREFIX);
    let t = NewUserToken {
        token_hash: tokens::hash(&token),
        purpose: TokenPurpose::PasswordReset,
        user_id: user.map(|u| u.id),
        email: email.clone(),
        expires_at: now + LINK_TTL_MS,
    };
    let m = mail::password_reset(&st.settings, &email, &token).into_outbox();
    st.store.issue_user_token(&t, &m, now).await?;
    st.mailer.wake();
    let detail = "if this address has an account, a reset link is on its way".to_string();
    Ok((StatusCode::ACCEPTED, Json(ResetRequested { detail })))
}

/// Body of `POST /v1/password-reset/confirm`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    token: String,
    /// At least 10 characters.
    #[schema(min_length = 10, max_length = 1024)]
    password: String,
}

/// What a reset did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetDone {
    user_id: String,
    /// Every session of the user ended; sign in again with the new password.
    sessions_ended: bool,
}

/// Sets a new password with the token from the reset mail, and ends every session of the user.
#[utoipa::path(post, path = "/v1/password-reset/confirm", tag = "identity", request_body = ResetConfirm,
    responses((status = 200, body = ResetDone), (status = 410, description = "token_invalid", body = Problem),
              (status = 422, description = "invalid_request", body = Problem)))]
async fn confirm_reset(State(st): State<AppState>, ApiJson(b): ApiJson<ResetConfirm>) -> ApiResult<Json<ResetDone>> {
    let mut e = Errors::default();
    e.password("password", &b.password);
    e.finish().map_err(ApiError::invalid)?;
    let hash = mailed_token_hash(&b.token, PASSWORD_RESET_PREFIX)?;
    let password_hash = st.passwords.hash(b.password).await?;
    let user_id = st.store.reset_password(&hash, &password_hash, st.clock.now_ms()).await?;
    Ok(Json(ResetDone { user_id, sessions_ended: true }))
}

//! Single sign-on (OpenID Connect): `start` sends the person to the provider (authorization code
//! flow with PKCE S256, `state` and `nonce`, all single use), `callback` takes them back, checks
//! everything, finds or makes their account by the verified email, and hands the client a one-time
//! `code`; `exchange` turns the code into a session.
//!
//! Codes used in answers: unknown provider 404 `not_found`; a `redirect_uri` that is neither the
//! dashboard nor a loopback port 422 `invalid_request`; a `state` that is unknown, used or expired
//! 410 `token_invalid` (as a used link is); the provider unreachable 503 `provider_unavailable`.
//! Once the state is known, failures go back to the client's `redirect_uri` as `error` (a problem
//! code: `invalid_credentials`, `forbidden` for an email the provider has not verified,
//! `provider_unavailable`) and `error_description`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use roost_domain::IdKind;
use roost_domain::time::DAY_MS;
use roost_domain::tokens::{self, USER_TOKEN_PREFIX};
use roost_domain::validate::MAX_NAME;
use roost_store::{NewSignup, OidcLogin, Rule, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domains::match_domains;
use super::sessions::session_meta;
use crate::AppState;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ClientIp, Params};
use crate::oidc::jwt::Identity;
use crate::oidc::{OidcError, pkce_challenge, random_secret, redirect};
use crate::views::{List, UserView};

/// How long a person has at the provider to sign in.
const LOGIN_TTL_MS: i64 = 10 * 60_000;
/// How long the one-time code waits to be exchanged.
const CODE_TTL_MS: i64 = 2 * 60_000;
/// Prefix of the one-time sign-in codes.
pub const CODE_PREFIX: &str = "rsc_";

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(providers))
        .routes(routes!(start))
        .routes(routes!(callback))
        .routes(routes!(exchange))
}

impl From<OidcError> for ApiError {
    fn from(e: OidcError) -> Self {
        match e {
            OidcError::Unavailable(..) => {
                tracing::warn!(error = %e, "single sign-on");
                ApiError::unavailable("provider_unavailable", e.to_string(), 5)
            }
            OidcError::Refused(d) => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", d),
            OidcError::EmailUnverified => ApiError::forbidden(e.to_string()),
        }
    }
}

/// A configured identity provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    id: String,
    name: String,
}

/// The identity providers people can sign in with (no sign-in needed).
#[utoipa::path(get, path = "/v1/oidc/providers", tag = "identity", responses((status = 200, body = List<ProviderView>)))]
async fn providers(State(st): State<AppState>) -> Json<List<ProviderView>> {
    let items = st
        .oidc
        .all()
        .into_iter()
        .map(|p| ProviderView { id: p.id.clone(), name: p.display_name().to_string() })
        .collect();
    Json(List { items, next_cursor: None })
}

/// Where the provider sends people back to.
fn callback_url(st: &AppState, provider: &str) -> String {
    format!("{}/v1/oidc/{provider}/callback", st.settings.public_url)
}

fn found(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_string())]).into_response()
}

/// Starts a sign-in: 302 to the provider's authorization endpoint. `redirect_uri` is where the
/// one-time code goes afterwards: this server's dashboard (`/app/…`) or `http://127.0.0.1:PORT/…`.
#[utoipa::path(get, path = "/v1/oidc/{provider}/start", tag = "identity",
    params(("provider" = String, Path), ("redirect_uri" = String, Query)),
    responses((status = 302, description = "to the provider"), (status = 404, description = "not_found", body = Problem),
              (status = 422, description = "invalid_request (redirect_uri)", body = Problem),
              (status = 503, description = "provider_unavailable", body = Problem)))]
async fn start(State(st): State<AppState>, Path(provider): Path<String>, q: Params) -> ApiResult<Response> {
    let p = st.oidc.settings(&provider).ok_or_else(ApiError::not_found)?;
    let redirect_uri = q.get("redirect_uri").ok_or_else(|| ApiError::invalid_field("redirect_uri", "is required"))?;
    redirect::check(redirect_uri, &st.settings.public_url).map_err(|m| ApiError::invalid_field("redirect_uri", m))?;
    let d = st.oidc.discovery(&provider).await?;
    let (state, nonce, verifier) = (random_secret(), random_secret(), random_secret());
    let now = st.clock.now_ms();
    let login = OidcLogin {
        state_hash: tokens::hash(&state),
        provider: provider.clone(),
        nonce: nonce.clone(),
        code_verifier: verifier.clone(),
        redirect_uri: redirect_uri.to_string(),
        expires_at: now + LOGIN_TTL_MS,
    };
    st.store.oidc_begin(&login, now).await?;
    let callback = callback_url(&st, &provider);
    let challenge = pkce_challenge(&verifier);
    let scope = p.scope();
    let params = [
        ("response_type", "code"),
        ("client_id", p.client_id.as_str()),
        ("redirect_uri", callback.as_str()),
        ("scope", scope.as_str()),
        ("state", state.as_str()),
        ("nonce", nonce.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    Ok(found(&redirect::with_params(&d.authorization_endpoint, &params)))
}

/// The provider's answer: 302 to the sign-in's `redirect_uri` with a one-time `code` (or with
/// `error` and `error_description`).
#[utoipa::path(get, path = "/v1/oidc/{provider}/callback", tag = "identity",
    params(("provider" = String, Path), ("code" = Option<String>, Query), ("state" = String, Query)),
    responses((status = 302, description = "to the sign-in's redirect_uri, with `code` or `error`"),
              (status = 404, description = "not_found", body = Problem),
              (status = 410, description = "token_invalid (state unknown, used or expired)", body = Problem)))]
async fn callback(
    State(st): State<AppState>,
    Path(provider): Path<String>,
    ClientIp(ip): ClientIp,
    q: Params,
) -> ApiResult<Response> {
    st.oidc.settings(&provider).ok_or_else(ApiError::not_found)?;
    let now = st.clock.now_ms();
    let state = q.get("state").filter(|s| s.len() <= 200).ok_or(StoreError::Rule(Rule::TokenInvalid))?;
    let login = st.store.oidc_take_login(&tokens::hash(state), &provider, now).await?;
    let back = |e: ApiError| {
        tracing::info!(provider, code = e.code, detail = %e.detail, "single sign-on refused");
        let params = [("error", e.code), ("error_description", e.detail.as_str())];
        found(&redirect::with_params(&login.redirect_uri, &params))
    };
    let code = match (q.get("error"), q.get("code")) {
        (None, Some(code)) => code,
        (err, _) => {
            let why = err.unwrap_or("no code");
            let detail = format!("the identity provider did not sign you in: {why}");
            return Ok(back(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", detail)));
        }
    };
    let callback = callback_url(&st, &provider);
    let identity = match st.oidc.finish(&provider, code, &callback, &login.code_verifier, &login.nonce, now).await {
        Ok(i) => i,
        Err(e) => return Ok(back(e.into())),
    };
    match sign_in(&st, &provider, identity, ip, now).await {
        Ok(code) => Ok(found(&redirect::with_params(&login.redirect_uri, &[("code", &code)]))),
        Err(e) => Ok(back(e)),
    }
}

/// Finds or makes the account of `identity`, runs domain auto-join, and issues a one-time code.
async fn sign_in(st: &AppState, provider: &str, identity: Identity, ip: Option<String>, now: i64) -> ApiResult<String> {
    let name = identity
        .name
        .filter(|n| !n.chars().any(char::is_control))
        .unwrap_or_else(|| identity.email.split('@').next().unwrap_or("").to_string());
    let name: String = name.chars().take(MAX_NAME).collect();
    // A new account gets no usable password: it signs in through the provider (or sets one by
    // password reset); an existing one whose address was never verified gets it too (see
    // `Store::oidc_account`). A verified one keeps its own, and the hash is not needed for it.
    let unusable = match st.store.user_by_email(&identity.email).await? {
        Some(u) if u.email_verified_at.is_some() => String::new(),
        _ => st.passwords.hash(random_secret()).await?,
    };
    let account = NewSignup {
        user_id: IdKind::User.generate(),
        email: identity.email,
        name: name.clone(),
        password_hash: unusable,
        org_id: IdKind::Org.generate(),
        org_name: format!("{name} (personal)"),
        plan: st.settings.personal_plan.clone(),
        workspace_id: IdKind::Workspace.generate(),
        workspace_name: "Personal".into(),
        token_hash: String::new(),
        session_expires_at: 0,
    };
    let ctx = roost_store::Ctx { actor: roost_store::Actor::user(&account.user_id), ip: ip.clone(), now };
    let (user, created) = st.store.oidc_account(&account, &ctx).await?;
    tracing::info!(provider, user = %user.id, created, "single sign-on");
    // Joining orgs through a verified domain is a side effect: it never fails the sign-in.
    if let Err(e) = match_domains(st, &user, ip).await {
        tracing::warn!(user = %user.id, code = e.code, detail = %e.detail, "joining orgs by verified domain");
    }
    let code = tokens::generate(CODE_PREFIX);
    st.store.oidc_issue_code(&tokens::hash(&code), &user.id, provider, now, now + CODE_TTL_MS).await?;
    Ok(code)
}

/// Body of `POST /v1/oidc/exchange`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeRequest {
    /// The one-time `code` the sign-in's `redirect_uri` received.
    code: String,
}

/// A session, as `POST /v1/sessions` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExchangeResponse {
    token: String,
    user: UserView,
}

/// Turns the one-time code of a finished single sign-on into a session (once).
#[utoipa::path(post, path = "/v1/oidc/exchange", tag = "identity", request_body = ExchangeRequest,
    responses((status = 201, body = ExchangeResponse),
              (status = 410, description = "token_invalid (unknown, used or expired code)", body = Problem)))]
async fn exchange(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(b): ApiJson<ExchangeRequest>,
) -> ApiResult<(StatusCode, Json<ExchangeResponse>)> {
    let code = b.code.trim();
    if code.len() > 200 || !code.starts_with(CODE_PREFIX) {
        return Err(StoreError::Rule(Rule::TokenInvalid).into());
    }
    let now = st.clock.now_ms();
    let token = tokens::generate(USER_TOKEN_PREFIX);
    let expires = now + i64::from(st.settings.session_ttl_days) * DAY_MS;
    let meta = session_meta(ip.clone(), &headers);
    let user = st.store.oidc_exchange(&tokens::hash(code), &tokens::hash(&token), expires, &meta, ip, now).await?;
    Ok((StatusCode::CREATED, Json(ExchangeResponse { token, user: (&user).into() })))
}

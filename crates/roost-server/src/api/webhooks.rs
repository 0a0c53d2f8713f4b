//! Webhook endpoints (API.md "Events and webhooks"): created, changed and deleted by owners and
//! admins; the secret shown once and rotated with a 24 h overlap; a test event; the delivery log.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roost_domain::ledger::EventType;
use roost_domain::time::to_rfc3339;
use roost_domain::{IdKind, Permission};
use roost_store::{Attempt, Delivery, EventRow, Webhook, WebhookPatch};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{check_id, not_found_after_access_check, org_ctx};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, Params};
use crate::views::List;
use crate::webhooks::target;
use crate::webhooks::{send, sign};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, patch_webhook, delete_webhook))
        .routes(routes!(rotate_secret))
        .routes(routes!(test_webhook))
        .routes(routes!(list_deliveries))
}

/// How long a rotated-out secret keeps signing (API.md: 24 h).
const OLD_SECRET_SIGNS_MS: i64 = 24 * 3_600_000;

/// A webhook endpoint. `secret` is present only when it is created.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub org_id: String,
    pub url: String,
    /// Event types it receives, or `["*"]`.
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub created_at: String,
    /// Failed attempts at the event delivery is waiting on (0: none is being retried).
    pub failed_attempts: i64,
    /// When that event is tried again (`null`: no retry pending).
    pub next_retry_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<Webhook> for WebhookView {
    fn from(w: Webhook) -> Self {
        let retrying = w.enabled && w.attempt > 0 && w.next_at > 0;
        Self {
            failed_attempts: w.attempt,
            next_retry_at: retrying.then(|| to_rfc3339(w.next_at)),
            id: w.id,
            org_id: w.org_id,
            url: w.url,
            events: w.events,
            description: w.description,
            enabled: w.enabled,
            created_at: to_rfc3339(w.created_at),
            secret: None,
        }
    }
}

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub event_id: String,
    pub attempt: i64,
    pub at: String,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            event_id: d.event_id,
            attempt: d.attempt,
            at: to_rfc3339(d.at),
            status_code: d.status_code,
            error: d.error,
            duration_ms: d.duration_ms,
        }
    }
}

/// Body of `POST /v1/orgs/{org}/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    url: String,
    /// Event types, or `["*"]` for all.
    events: Vec<String>,
    description: Option<String>,
}

/// Body of `PATCH /v1/webhooks/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchWebhook {
    url: Option<String>,
    events: Option<Vec<String>>,
    enabled: Option<bool>,
}

/// The new secret of `POST /v1/webhooks/{id}/rotate-secret`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    secret: String,
    /// Until when the previous secret signs alongside (RFC 3339).
    old_secret_valid_until: String,
}

/// Checks an event list: `["*"]`, or known event types without repeats.
fn check_events(events: &[String]) -> ApiResult<Vec<String>> {
    let bad = |m: &str| ApiError::invalid_field("events", m);
    if events.is_empty() || events.len() > 50 {
        return Err(bad("must list 1–50 event types, or [\"*\"] for all"));
    }
    if events.iter().any(|e| e == "*") {
        return if events.len() == 1 { Ok(events.to_vec()) } else { Err(bad("\"*\" must be alone")) };
    }
    let mut out: Vec<String> = Vec::with_capacity(events.len());
    for e in events {
        if EventType::parse(e).is_none() || e == EventType::WebhookTest.as_str() {
            return Err(bad(&format!("`{e}` is not an event type")));
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    Ok(out)
}

/// Checks a URL and where it leads (422 `webhook_url_private` / `webhook_url_unresolvable`).
async fn check_url(st: &AppState, url: &str) -> ApiResult<String> {
    if url.len() > 2_000 {
        return Err(ApiError::invalid_field("url", "must be at most 2000 characters"));
    }
    Ok(target::check(url, st.settings.webhooks_allow_private).await?.to_string())
}

/// Creates an endpoint; the secret is in this response only. Owner or admin.
#[utoipa::path(post, path = "/v1/orgs/{org}/webhooks", tag = "webhooks", security(("bearer" = [])), request_body = CreateWebhook,
    responses((status = 201, body = WebhookView), (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "invalid_request, webhook_url_private, webhook_url_unresolvable", body = Problem, content_type = "application/problem+json")))]
async fn create_webhook(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(b): ApiJson<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<WebhookView>)> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ManageWebhooks)?;
    let events = check_events(&b.events)?;
    let description = b.description.map(|d| d.trim().to_string()).filter(|d| !d.is_empty());
    if description.as_ref().is_some_and(|d| d.chars().count() > 500) {
        return Err(ApiError::invalid_field("description", "must be at most 500 characters"));
    }
    let url = check_url(&st, &b.url).await?;
    let now = st.clock.now_ms();
    let w = Webhook {
        id: IdKind::Webhook.generate(),
        org_id: o.org.id.clone(),
        url,
        events,
        description,
        enabled: true,
        secret: sign::new_secret(),
        old_secret: None,
        old_secret_until: None,
        created_at: now,
        // It receives what happens from now on.
        cursor: IdKind::Event.generate(),
        attempt: 0,
        next_at: 0,
    };
    st.store.create_webhook(&w, &caller.ctx(now)).await?;
    let secret = w.secret.clone();
    let mut view = WebhookView::from(w);
    view.secret = Some(secret);
    Ok((StatusCode::CREATED, Json(view)))
}

/// The org's endpoints, without secrets. Owner or admin.
#[utoipa::path(get, path = "/v1/orgs/{org}/webhooks", tag = "webhooks", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = List<WebhookView>), (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json")))]
async fn list_webhooks(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    params: Params,
) -> ApiResult<Json<List<WebhookView>>> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ManageWebhooks)?;
    let (limit, cursor) = params.page(IdKind::Webhook)?;
    Ok(Json(List::from_page(st.store.list_webhooks(&o.org.id, limit, cursor).await?, WebhookView::from)))
}

/// An endpoint the caller may manage: 404 for another tenant's, 403 for a member without the right.
async fn manageable(st: &AppState, caller: &Caller, id: &str) -> ApiResult<Webhook> {
    check_id(IdKind::Webhook, id)?;
    let Some(w) = st.store.webhook_by_id(id).await? else {
        return not_found_after_access_check(st, caller).await;
    };
    org_ctx(st, caller, &w.org_id).await?.require(Permission::ManageWebhooks)?;
    Ok(w)
}

/// One endpoint.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = WebhookView), (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json")))]
async fn get_webhook(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookView>> {
    Ok(Json(manageable(&st, &caller, &id).await?.into()))
}

/// Changes an endpoint's URL, events or whether it is enabled (enabling retries the failed event).
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])), request_body = PatchWebhook,
    responses((status = 200, body = WebhookView), (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "invalid_request, webhook_url_private, webhook_url_unresolvable", body = Problem, content_type = "application/problem+json")))]
async fn patch_webhook(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<PatchWebhook>,
) -> ApiResult<Json<WebhookView>> {
    let w = manageable(&st, &caller, &id).await?;
    let events = b.events.as_deref().map(check_events).transpose()?;
    let url = match &b.url {
        Some(u) => Some(check_url(&st, u).await?),
        None => None,
    };
    let patch = WebhookPatch { url, events, enabled: b.enabled };
    let w = st.store.update_webhook(&w.id, &patch, &caller.ctx(st.clock.now_ms())).await?;
    Ok(Json(w.into()))
}

/// Deletes an endpoint and its delivery log.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    responses((status = 204), (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json")))]
async fn delete_webhook(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let w = manageable(&st, &caller, &id).await?;
    st.store.delete_webhook(&w, &caller.ctx(st.clock.now_ms())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives the endpoint a new secret; the old one keeps signing alongside for 24 hours.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = RotatedSecret), (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json")))]
async fn rotate_secret(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<RotatedSecret>> {
    let w = manageable(&st, &caller, &id).await?;
    let now = st.clock.now_ms();
    let (secret, until) = (sign::new_secret(), now + OLD_SECRET_SIGNS_MS);
    st.store.rotate_webhook_secret(&w, &secret, until, &caller.ctx(now)).await?;
    Ok(Json(RotatedSecret { secret, old_secret_valid_until: to_rfc3339(until) }))
}

/// Sends a `webhook.test` event to this endpoint only, now, and answers how it went (also logged
/// with the deliveries). The event is not stored among the org's events.
#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = DeliveryView), (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json")))]
async fn test_webhook(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<DeliveryView>> {
    let w = manageable(&st, &caller, &id).await?;
    let at = st.clock.now_ms();
    let e = EventRow {
        org_id: w.org_id.clone(),
        id: IdKind::Event.generate(),
        kind: EventType::WebhookTest,
        workspace_id: None,
        data: json!({"webhook_id": w.id}).to_string(),
        created_at: at,
    };
    let out =
        send::send(&st.webhook_http, st.settings.webhooks_allow_private, &w, &e.id, &send::event_body(&e), at).await;
    let log = Attempt {
        event_id: e.id,
        attempt: 1,
        at,
        status_code: out.status_code,
        error: out.error,
        duration_ms: out.duration_ms,
    };
    st.store.finish_attempt(&w.id, &w.org_id, "", &log, None, 0).await?;
    Ok(Json(DeliveryView {
        event_id: log.event_id,
        attempt: 1,
        at: to_rfc3339(at),
        status_code: log.status_code,
        error: log.error,
        duration_ms: log.duration_ms,
    }))
}

/// The endpoint's delivery attempts, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = List<DeliveryView>), (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json")))]
async fn list_deliveries(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Json<List<DeliveryView>>> {
    let w = manageable(&st, &caller, &id).await?;
    let (limit, cursor) = params.page(IdKind::Event)?;
    let page = st.store.list_deliveries(&w.id, limit, cursor).await?;
    // The page's cursor is the delivery row's own id (event-shaped), not an event id.
    Ok(Json(List::from_page(page, DeliveryView::from)))
}

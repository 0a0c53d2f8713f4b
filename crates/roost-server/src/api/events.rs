//! Events: facts about an org, newest first (API.md "Events and webhooks"). Owners, admins and
//! billing members read them.

use axum::Json;
use axum::extract::{Path, State};
use roost_domain::ledger::EventType;
use roost_domain::time::to_rfc3339;
use roost_domain::{IdKind, Permission};
use roost_store::EventRow;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::org_ctx;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::Params;
use crate::views::List;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

/// An event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    /// `credits.low_balance`, `credits.depleted`, `budget.threshold`, `budget.exceeded`,
    /// `wallet.topped_up`, `wallet.auto_reloaded`, `wallet.auto_reload_failed`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: String,
    pub org_id: String,
    pub workspace_id: Option<String>,
    #[schema(value_type = Object)]
    pub data: Value,
}

impl From<EventRow> for EventView {
    fn from(e: EventRow) -> Self {
        Self {
            id: e.id,
            kind: e.kind.as_str().to_string(),
            created_at: to_rfc3339(e.created_at),
            org_id: e.org_id,
            workspace_id: e.workspace_id,
            data: serde_json::from_str(&e.data).unwrap_or(Value::Null),
        }
    }
}

/// The org's events, newest first; `?type=` keeps one type. Owner, admin or billing.
#[utoipa::path(get, path = "/v1/orgs/{org}/events", tag = "events", security(("bearer" = [])),
    params(("type" = Option<String>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500),
           ("cursor" = Option<String>, Query)),
    responses((status = 200, body = List<EventView>), (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json")))]
async fn list_events(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    params: Params,
) -> ApiResult<Json<List<EventView>>> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::WatchCredits)?;
    let (limit, cursor) = params.page(IdKind::Event)?;
    let kind = match params.text("type")? {
        None => None,
        Some(t) => Some(EventType::parse(t).ok_or_else(|| ApiError::invalid_field("type", "is not an event type"))?),
    };
    let page = st.store.list_events(&o.org.id, kind, limit, cursor).await?;
    Ok(Json(List::from_page(page, EventView::from)))
}

//! The plan catalog.

use axum::Json;
use axum::extract::State;
use roost_domain::Plan;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_plans))
}

/// The plans on offer (no authentication). `null` means unlimited.
#[utoipa::path(get, path = "/v1/plans", tag = "plans", responses((status = 200, body = Vec<Plan>)))]
async fn list_plans(State(st): State<AppState>) -> Json<Vec<Plan>> {
    // Every price is in the catalog's one currency: say so on each plan.
    let currency = st.settings.catalog.currency().to_string();
    Json(st.settings.catalog.all().iter().cloned().map(|p| Plan { currency: Some(currency.clone()), ..p }).collect())
}

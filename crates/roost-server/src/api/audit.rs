//! The audit log: owners and admins read all of it, everyone else their own actions.

use axum::Json;
use axum::extract::{Path, State};
use roost_domain::{IdKind, Permission};
use roost_store::AuditFilter;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::org_ctx;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::Params;
use crate::views::{AuditVerifyView, AuditView, List};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit)).routes(routes!(verify_audit))
}

/// The org's audit log, newest first.
#[utoipa::path(get, path = "/v1/orgs/{org}/audit", tag = "audit", security(("bearer" = [])),
    params(("workspace" = Option<String>, Query), ("actor" = Option<String>, Query), ("action" = Option<String>, Query),
           ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = List<AuditView>), (status = 404, description = "not_found", body = Problem)))]
async fn list_audit(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    params: Params,
) -> ApiResult<Json<List<AuditView>>> {
    let o = org_ctx(&st, &caller, &org).await?;
    let (limit, cursor) = params.page(IdKind::Audit)?;
    let mut f = AuditFilter {
        workspace_id: params.text("workspace")?.map(str::to_string),
        actor_id: params.text("actor")?.map(str::to_string),
        action: params.text("action")?.map(str::to_string),
    };
    if !o.role.allows(Permission::ReadAllAudit) {
        let me = caller.user()?.id.clone();
        if f.actor_id.as_ref().is_some_and(|a| *a != me) {
            return Ok(Json(List { items: vec![], next_cursor: None }));
        }
        f.actor_id = Some(me);
    }
    let page = st.store.list_audit(&o.org.id, &f, limit, cursor).await?;
    Ok(Json(List::from_page(page, AuditView::from)))
}

/// Walks the org's audit hash chain (owner or admin): whether any event was changed or removed,
/// and the first place it breaks.
#[utoipa::path(get, path = "/v1/orgs/{org}/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = AuditVerifyView), (status = 403, description = "forbidden", body = Problem),
              (status = 404, description = "not_found", body = Problem)))]
async fn verify_audit(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<AuditVerifyView>> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ReadAllAudit)?;
    let report = st.store.verify_audit(&o.org.id).await?;
    Ok(Json(AuditVerifyView::from(report)))
}

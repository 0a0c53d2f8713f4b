use crate::AppState;
use utoipa_axum::router::OpenApiRouter;
pub(super) fn router() -> OpenApiRouter<AppState> { OpenApiRouter::new() }

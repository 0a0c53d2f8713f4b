//! Charges: drawing credits now, from the wallet of the acting workspace's org.

use axum::extract::State;
use axum::response::Response;
use roost_domain::Permission;
use roost_domain::validate::Errors;
use roost_ledger::{Command, Op};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::views::ChargeView;
use super::{MAX_METADATA, actor_ref, check_draw, idem, idem_key, run};
use crate::AppState;
use crate::api::acting_scope;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::HeadersAndJson;

/// Body of a charge.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargeBody {
    /// Credits to charge (≥ 1).
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_i64)]
    amount: i64,
    /// What the credits paid for, e.g. `llm.tokens` (1–100 characters).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    action: String,
    /// The wallet kind (default `credits`).
    wallet: Option<String>,
    /// Anything to keep with the charge (a JSON object, at most 4 KiB).
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

fn check_metadata(e: &mut Errors, m: Option<&Value>) -> Option<String> {
    let m = m?;
    if m.is_null() {
        return None;
    }
    let s = m.to_string();
    if !m.is_object() || s.len() > MAX_METADATA {
        e.add("metadata", "must be a JSON object of at most 4 KiB");
        return None;
    }
    Some(s)
}

/// Charges the org wallet of the acting workspace. Needs an `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/charges", tag = "credits", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header), ("Roost-Workspace" = Option<String>, Header, description = "act in this workspace")),
    request_body = ChargeBody,
    responses((status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json"), (status = 201, body = ChargeView), (status = 402, description = "insufficient_credits, with `available`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden, or budget_exceeded with `scope`, `limit`, `used`, `resets_at`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "idempotency_conflict", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn charge(
    State(st): State<AppState>,
    caller: Caller,
    HeadersAndJson(headers, b): HeadersAndJson<ChargeBody>,
) -> ApiResult<Response> {
    idem_key(&headers)?;
    let w = acting_scope(&st, &caller, &headers, Permission::UseWorkspace).await?;
    let mut e = Errors::default();
    let (action, wallet) = check_draw(&st, &mut e, b.amount, &b.action, b.wallet.as_deref());
    let metadata = check_metadata(&mut e, b.metadata.as_ref());
    e.finish().map_err(ApiError::invalid)?;
    let idem = idem(&headers, "charge", &w.workspace_id, &caller, &b)?;
    let op = Op::Charge { workspace_id: w.workspace_id, wallet, amount: b.amount, action, metadata };
    run(&st, Command { org_id: w.org_id, actor: actor_ref(&caller), op, idem: Some(idem) }).await
}

//! The operator's routes (`/v1/admin`, API.md "Billing"): every org listed, promotional grants,
//! plans given without payment, invoices and purchases marked paid. Operator keys only; every
//! action is audited in the org it touches with actor `{type: "operator", id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use roost_domain::time::{parse_rfc3339, to_rfc3339};
use roost_domain::validate::Errors;
use roost_domain::{IdKind, OrgRole};
use roost_ledger::{ActorRef, Command, Idem, Op, Source};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::credits::wallets::wallet_param;
use super::{OrgCtx, check_id};
use crate::AppState;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, HeadersAndJson, Params};
use crate::operator::Operator;
use crate::views::{List, OrgView};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(admin_list_orgs))
        .routes(routes!(admin_grant))
        .routes(routes!(admin_give_plan))
        .routes(routes!(admin_mark_invoice_paid))
        .routes(routes!(admin_mark_purchase_paid))
}

/// One org as the operator sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminOrgView {
    id: String,
    name: String,
    /// `personal` or `org`.
    kind: String,
    plan: String,
    owner_id: String,
    members: i64,
    /// The sum of its wallets' balances.
    balance: i64,
    created_at: String,
}

/// Every org, in id order.
#[utoipa::path(get, path = "/v1/admin/orgs", tag = "admin", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = List<AdminOrgView>), (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "forbidden: not an operator key", body = Problem)))]
async fn admin_list_orgs(
    State(st): State<AppState>,
    _op: Operator,
    params: Params,
) -> ApiResult<Json<List<AdminOrgView>>> {
    let (limit, cursor) = params.page(IdKind::Org)?;
    let page = st.store.admin_orgs(limit, cursor).await?;
    Ok(Json(List::from_page(page, |o| AdminOrgView {
        id: o.id,
        name: o.name,
        kind: o.kind,
        plan: o.plan,
        owner_id: o.owner_id,
        members: o.members,
        balance: o.balance,
        created_at: to_rfc3339(o.created_at),
    })))
}

/// The org `org` for an operator (any org; deleted ones are not found).
async fn org_of(st: &AppState, org: &str) -> ApiResult<OrgCtx> {
    check_id(IdKind::Org, org)?;
    let org = st.store.org_by_id(org).await?.ok_or_else(ApiError::not_found)?;
    // The operator acts with the owner's reach inside the org.
    Ok(OrgCtx { org, role: OrgRole::Owner })
}

/// Body of an operator grant.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    /// Credits to give (> 0) or take away (< 0, never below what is held).
    #[schema(minimum = -1_000_000_000_000_000_i64, maximum = 1_000_000_000_000_000_i64)]
    amount: i64,
    /// When given credits expire (default: never).
    expires_at: Option<String>,
    /// Why (promotion, goodwill, correction): kept in the journal and the audit log.
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
}

/// Grants promotional or goodwill credits (or takes credits away). An `Idempotency-Key` is optional.
#[utoipa::path(post, path = "/v1/admin/orgs/{org}/wallets/{wallet}/grants", tag = "admin", security(("bearer" = [])),
    params(("wallet" = String, Path, description = "wallet id or kind"), ("Idempotency-Key" = Option<String>, Header)),
    request_body = GrantBody,
    responses((status = 201, description = "`{grant}` for a credit, `{adjustment}` for a debit", body = Object),
              (status = 402, description = "insufficient_credits", body = Problem), (status = 404, description = "not_found", body = Problem),
              (status = 422, description = "invalid_request", body = Problem)))]
async fn admin_grant(
    State(st): State<AppState>,
    op: Operator,
    Path((org, wallet)): Path<(String, String)>,
    HeadersAndJson(headers, b): HeadersAndJson<GrantBody>,
) -> ApiResult<Response> {
    let o = org_of(&st, &org).await?;
    let wallet = wallet_param(&st, &o, &wallet).await?;
    let mut e = Errors::default();
    let max = super::credits::MAX_AMOUNT;
    if b.amount.checked_abs().is_none_or(|a| a == 0 || a > max) {
        e.add("amount", format!("must be a non-zero whole number within ±{max}"));
    }
    let reason = b.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 500 || reason.chars().any(char::is_control) {
        e.add("reason", "must be 1–500 characters without control characters");
    }
    let now = st.clock.now_ms();
    let expires_at = match &b.expires_at {
        None => None,
        Some(s) => match parse_rfc3339(s) {
            Some(t) if t > now && b.amount > 0 => Some(t),
            _ => {
                e.add("expires_at", "must be a future RFC 3339 time, and only on a credit");
                None
            }
        },
    };
    e.finish().map_err(ApiError::invalid)?;
    let idem = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if !k.is_empty() && k.len() <= 255 && !k.chars().any(char::is_control) => {
            let body = serde_json::to_string(&b).map_err(ApiError::internal)?;
            Some(Idem {
                key: format!("operator:{k}"),
                fingerprint: format!("admin-grant\0{wallet}\0{}\0{body}", op.key.id),
            })
        }
        Some(_) => return Err(ApiError::invalid_field("Idempotency-Key", "must be 1–255 characters")),
    };
    let actor = ActorRef {
        actor: roost_store::Actor::operator(&op.key.id),
        member_id: String::new(),
        key_id: String::new(),
        spend_limit: None,
        ip: op.ip.clone(),
    };
    let op = Op::Grant { wallet, source: Source::Adjustment, amount: b.amount, expires_at, reason: Some(reason) };
    super::credits::run(&st, Command { org_id: o.org.id, actor, op, idem }).await
}

/// Body of `PUT /v1/admin/orgs/{org}/plan`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GivePlan {
    plan: String,
}

/// Puts an org on a plan without payment (shown as given on its invoices).
#[utoipa::path(put, path = "/v1/admin/orgs/{org}/plan", tag = "admin", security(("bearer" = [])), request_body = GivePlan,
    responses((status = 200, body = OrgView), (status = 404, description = "not_found", body = Problem),
              (status = 409, description = "plan_limit", body = Problem), (status = 422, description = "invalid_request", body = Problem)))]
async fn admin_give_plan(
    State(st): State<AppState>,
    op: Operator,
    Path(org): Path<String>,
    ApiJson(b): ApiJson<GivePlan>,
) -> ApiResult<Json<OrgView>> {
    let o = org_of(&st, &org).await?;
    let plan = st
        .settings
        .catalog
        .get(&b.plan)
        .ok_or_else(|| ApiError::invalid_field("plan", "is not a plan of this server"))?;
    let now = st.clock.now_ms();
    match st.store.change_plan(&o.org.id, plan, None, &op.ctx(now)).await {
        Err(roost_store::StoreError::Limit(l)) => return Err(ApiError::plan_limit(StatusCode::CONFLICT, &l)),
        other => other?,
    }
    crate::billing::plan_changed(&st, &o.org, &plan.id, None, true).await?;
    let tick = Command { org_id: o.org.id.clone(), actor: ActorRef::system(), op: Op::Tick, idem: None };
    if let Err(e) = st.ledger.submit(tick).await {
        tracing::warn!(error = %e, "the ledger will apply the plan change at its next batch");
    }
    let org = st.store.org_by_id(&o.org.id).await?.ok_or_else(ApiError::not_found)?;
    Ok(Json(OrgView::new(&org, None)))
}

/// Body of a mark-paid.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkPaid {
    /// How it was paid (a bank transfer's reference, a receipt number).
    #[schema(min_length = 1, max_length = 200)]
    reference: String,
}

async fn mark(st: &AppState, op: &Operator, kind: IdKind, id: &str, b: &MarkPaid) -> ApiResult<Response> {
    check_id(kind, id)?;
    let reference = b.reference.trim();
    if reference.is_empty() || reference.chars().count() > 200 || reference.chars().any(char::is_control) {
        return Err(ApiError::invalid_field("reference", "must be 1–200 characters without control characters"));
    }
    let org = st.store.billing_owner(id).await?.ok_or_else(ApiError::not_found)?;
    let (status, body, to_grant) = st.store.mark_paid(&org, id, reference, &op.ctx(st.clock.now_ms())).await?;
    crate::billing::grant_all(st, &to_grant).await?;
    Ok(super::billing::reply(status, body))
}

/// Marks an open invoice paid by hand (for operators without a payment system); purchases still
/// owed on it are paid with it and their credits granted.
#[utoipa::path(post, path = "/v1/admin/invoices/{id}/mark-paid", tag = "admin", security(("bearer" = [])), request_body = MarkPaid,
    responses((status = 200, description = "`{outcome, invoice_id, status}`", body = Object), (status = 404, description = "not_found", body = Problem),
              (status = 409, description = "invoice_not_open", body = Problem)))]
async fn admin_mark_invoice_paid(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<MarkPaid>,
) -> ApiResult<Response> {
    mark(&st, &op, IdKind::Invoice, &id, &b).await
}

/// Marks a purchase paid by hand: its credits are granted (once).
#[utoipa::path(post, path = "/v1/admin/purchases/{id}/mark-paid", tag = "admin", security(("bearer" = [])), request_body = MarkPaid,
    responses((status = 200, description = "`{outcome, purchase_id, status, credits}`", body = Object), (status = 404, description = "not_found", body = Problem)))]
async fn admin_mark_purchase_paid(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<MarkPaid>,
) -> ApiResult<Response> {
    mark(&st, &op, IdKind::Purchase, &id, &b).await
}

//! Billing for owners and billing members (API.md "Billing"): invoices (JSON, or printable HTML),
//! purchases of credit packs, and the payment intake the operator's payment system reports to.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use roost_domain::billing::Line;
use roost_domain::time::to_rfc3339;
use roost_domain::tokens::ct_eq;
use roost_domain::validate::Errors;
use roost_domain::{IdKind, Permission};
use roost_store::{Intake, Invoice, NewPurchase, PaymentReport, Purchase, PurchaseMade};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::credits::wallets::wallet_param;
use super::{OrgCtx, check_id, org_ctx};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{HeadersAndJson, Params};
use crate::views::List;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_invoices))
        .routes(routes!(get_invoice))
        .routes(routes!(buy))
        .routes(routes!(payments))
}

/// Who an invoice is addressed to.
#[derive(Debug, Serialize, ToSchema)]
pub struct BilledTo {
    name: String,
    email: String,
}

/// An invoice: one org's billing cycle.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceView {
    /// `bill_…`.
    id: String,
    org_id: String,
    /// Sequential per operator, gapless; `null` while a draft.
    number: Option<i64>,
    period_start: String,
    period_end: String,
    /// `draft`, `open`, `paid` or `void`.
    status: String,
    currency: String,
    lines: Vec<Line>,
    /// The sum of the lines.
    total: i64,
    /// What is still to pay: the total less purchases on it already paid.
    amount_due: i64,
    billed_to: BilledTo,
    issued_at: Option<String>,
    paid_at: Option<String>,
}

impl From<Invoice> for InvoiceView {
    fn from(i: Invoice) -> Self {
        Self {
            id: i.id,
            org_id: i.org_id,
            number: i.number,
            period_start: to_rfc3339(i.period_start),
            period_end: to_rfc3339(i.period_end),
            status: i.status,
            currency: i.currency,
            lines: i.lines,
            total: i.total,
            amount_due: i.amount_due,
            billed_to: BilledTo { name: i.billed_name, email: i.billed_email },
            issued_at: i.issued_at.map(to_rfc3339),
            paid_at: i.paid_at.map(to_rfc3339),
        }
    }
}

/// A purchase of credits: pending until paid, then its credits are granted.
#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseView {
    /// `pur_…`.
    id: String,
    /// `pending`, `paid` or `failed`.
    status: String,
    invoice_id: String,
    credits: i64,
    packs: i64,
    /// The price, in `currency` minor units.
    amount: i64,
    currency: String,
    wallet: String,
    /// `purchase`, `topup` or `auto_reload`.
    origin: String,
}

impl From<Purchase> for PurchaseView {
    fn from(p: Purchase) -> Self {
        Self {
            id: p.id,
            status: p.status,
            invoice_id: p.invoice_id,
            credits: p.credits,
            packs: p.packs,
            amount: p.amount,
            currency: p.currency,
            wallet: p.wallet_kind,
            origin: p.origin,
        }
    }
}

/// A top-up made into a purchase (billing on).
#[derive(Debug, Serialize, ToSchema)]
pub struct TopupPurchase {
    purchase: PurchaseView,
}

/// The org's invoices, newest first; the current cycle's draft as it stands. Owner or billing.
#[utoipa::path(get, path = "/v1/orgs/{org}/invoices", tag = "billing", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = List<InvoiceView>), (status = 403, description = "forbidden", body = Problem),
              (status = 404, description = "not_found", body = Problem)))]
async fn list_invoices(
    State(st): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    params: Params,
) -> ApiResult<Json<List<InvoiceView>>> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ManageBilling)?;
    let (limit, cursor) = params.page(IdKind::Invoice)?;
    if !st.settings.billing_on() {
        return Ok(Json(List { items: Vec::new(), next_cursor: None }));
    }
    crate::billing::record_reloads(&st, &o.org.id).await?;
    let page = st.store.list_invoices(&o.org.id, &st.settings.catalog, st.clock.now_ms(), limit, cursor).await?;
    Ok(Json(List::from_page(page, InvoiceView::from)))
}

/// One invoice: JSON, or a printable HTML page when the request accepts `text/html` first.
/// Owner or billing of its org.
#[utoipa::path(get, path = "/v1/invoices/{id}", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = InvoiceView), (status = 403, description = "forbidden", body = Problem),
              (status = 404, description = "not_found", body = Problem)))]
async fn get_invoice(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    check_id(IdKind::Invoice, &id)?;
    let org = st.store.billing_owner(&id).await?.ok_or_else(ApiError::not_found)?;
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ManageBilling)?;
    crate::billing::record_reloads(&st, &o.org.id).await?;
    let inv = st.store.invoice(&o.org.id, &id, &st.settings.catalog).await?.ok_or_else(ApiError::not_found)?;
    let wants_html = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.split(',').next().is_some_and(|first| first.trim().starts_with("text/html")));
    if wants_html {
        return Ok(Html(crate::billing_html::invoice(&inv, &st.settings.product_name, &o.org.name)).into_response());
    }
    Ok(Json(InvoiceView::from(inv)).into_response())
}

/// Body of a purchase.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuyBody {
    /// Credit packs to buy (the plan's `credit_pack`), 1–1000.
    #[schema(minimum = 1, maximum = 1000)]
    packs: i64,
}

/// Buys credit packs: a pending purchase on the cycle's invoice whose credits are granted when
/// the payment is confirmed. Owner or billing; needs an `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/orgs/{org}/wallets/{wallet}/purchases", tag = "billing", security(("bearer" = [])),
    params(("wallet" = String, Path, description = "wallet id or kind"), ("Idempotency-Key" = String, Header)),
    request_body = BuyBody,
    responses((status = 201, body = PurchaseView), (status = 402, description = "payment_required", body = Problem),
              (status = 403, description = "forbidden", body = Problem), (status = 404, description = "not_found", body = Problem),
              (status = 409, description = "idempotency_conflict", body = Problem), (status = 422, description = "invalid_request", body = Problem)))]
async fn buy(
    State(st): State<AppState>,
    caller: Caller,
    Path((org, wallet)): Path<(String, String)>,
    HeadersAndJson(headers, b): HeadersAndJson<BuyBody>,
) -> ApiResult<Response> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ManageBilling)?;
    let wallet = wallet_param(&st, &o, &wallet).await?;
    idem_key(&headers)?;
    if !(1..=1000).contains(&b.packs) {
        return Err(ApiError::invalid_field("packs", "must be a whole number from 1 to 1000"));
    }
    if !st.settings.billing_on() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "billing is off on this server: owners top up directly (POST …/topups)",
        ));
    }
    let pack = pack_of(&st, &o)?;
    let credits = b.packs * pack.credits;
    let amount = b.packs.checked_mul(pack.price).ok_or_else(|| ApiError::invalid_field("packs", "too many"))?;
    let made = purchase(&st, &caller, &o, &headers, ("purchase", &wallet, b.packs, credits, amount), &b).await?;
    Ok((StatusCode::CREATED, Json(PurchaseView::from(made))).into_response())
}

fn pack_of(st: &AppState, o: &OrgCtx) -> ApiResult<roost_domain::plans::CreditPack> {
    st.settings
        .catalog
        .get(&o.org.plan)
        .and_then(|p| p.credit_pack)
        .ok_or_else(|| ApiError::invalid_field("packs", "the org's plan sells no credit packs"))
}

/// A top-up by amount with billing on: a pending purchase of that many credits.
pub(crate) async fn topup_purchase(
    st: &AppState,
    caller: &Caller,
    o: &OrgCtx,
    wallet: &str,
    credits: i64,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let pack = pack_of(st, o)?;
    let amount = roost_domain::billing::price_of_credits(pack, credits)
        .ok_or_else(|| ApiError::invalid_field("amount", "too large to price"))?;
    let body = serde_json::json!({"amount": credits});
    let made = purchase(st, caller, o, headers, ("topup", wallet, 0, credits, amount), &body).await?;
    Ok((StatusCode::CREATED, Json(TopupPurchase { purchase: made.into() })).into_response())
}

/// Records a purchase `(origin, wallet, packs, credits, amount)` for the request `body`.
async fn purchase(
    st: &AppState,
    caller: &Caller,
    o: &OrgCtx,
    headers: &HeaderMap,
    (origin, wallet, packs, credits, amount): (&str, &str, i64, i64, i64),
    body: &impl Serialize,
) -> ApiResult<Purchase> {
    let key = idem_key(headers)?;
    if crate::billing::past_due(st, &o.org.id).await? {
        return Err(crate::billing::payment_required());
    }
    let mut h = Sha256::new();
    for part in [origin, wallet, caller.actor_id(), &serde_json::to_string(body).map_err(ApiError::internal)?] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let fp = hex(&h.finalize());
    let p = NewPurchase {
        org_id: o.org.id.clone(),
        wallet_kind: wallet.to_string(),
        origin: origin.to_string(),
        packs,
        credits,
        amount,
        currency: st.settings.catalog.currency().to_string(),
        idem: Some((key.to_string(), fp)),
    };
    match st.store.create_purchase(&p, &caller.ctx(st.clock.now_ms())).await? {
        PurchaseMade::Created(p) | PurchaseMade::Replayed(p) => Ok(p),
        PurchaseMade::Conflict => Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_conflict",
            "this Idempotency-Key was used with another request",
        )),
    }
}

/// The request's `Idempotency-Key` (1–255 characters, no control characters).
fn idem_key(headers: &HeaderMap) -> ApiResult<&str> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= 255 && !k.chars().any(char::is_control))
        .ok_or_else(|| {
            ApiError::invalid_field(
                "Idempotency-Key",
                "this request needs an Idempotency-Key header of 1–255 characters",
            )
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A payment report of the operator's payment system.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentBody {
    /// The invoice paid (`bill_…`); give this or `purchase_id`.
    invoice_id: Option<String>,
    /// The purchase paid (`pur_…`).
    purchase_id: Option<String>,
    /// `succeeded` or `failed`.
    status: String,
    /// In `currency` minor units: must be what is owed.
    amount: i64,
    currency: String,
    /// The payment system's own id of the payment.
    reference: String,
}

/// How far a report's `webhook-timestamp` may be from the server's clock.
const TIMESTAMP_TOLERANCE_MS: i64 = 5 * 60_000;

/// Checks the Standard Webhooks headers against the operator's `billing_intake_secret`; returns
/// the `webhook-id`.
fn verify(st: &AppState, secret: &str, headers: &HeaderMap, body: &[u8]) -> ApiResult<String> {
    let bad = |detail: &str| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", detail.to_string());
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let id = get("webhook-id")
        .filter(|v| !v.is_empty() && v.len() <= 255 && !v.chars().any(char::is_control))
        .ok_or_else(|| bad("webhook-id is missing or malformed"))?;
    let ts: i64 =
        get("webhook-timestamp").and_then(|v| v.parse().ok()).ok_or_else(|| bad("webhook-timestamp is missing"))?;
    if (ts.saturating_mul(1000) - st.clock.now_ms()).abs() > TIMESTAMP_TOLERANCE_MS {
        return Err(bad("webhook-timestamp is more than 5 minutes from the server's clock"));
    }
    let body = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8"))?;
    let expected =
        crate::webhooks::sign::sign(secret, id, ts, body).ok_or_else(|| ApiError::internal("intake secret"))?;
    let sigs = get("webhook-signature").ok_or_else(|| bad("webhook-signature is missing"))?;
    if !sigs.split(' ').any(|s| ct_eq(s, &expected)) {
        return Err(bad("no signature in webhook-signature matches"));
    }
    Ok(id.to_string())
}

/// The payment intake: the operator's payment system reports a payment's outcome, signed with the
/// Standard Webhooks scheme and `billing_intake_secret`. Idempotent by `webhook-id`; an amount or
/// currency that is not what is owed is refused (422 `payment_mismatch`) and recorded.
#[utoipa::path(post, path = "/v1/billing/payments", tag = "billing",
    request_body = PaymentBody,
    params(("webhook-id" = String, Header), ("webhook-timestamp" = String, Header), ("webhook-signature" = String, Header)),
    responses((status = 200, description = "`{outcome, invoice_id|purchase_id, status}`", body = Object),
              (status = 401, description = "invalid_signature", body = Problem), (status = 404, description = "not_found", body = Problem),
              (status = 409, description = "idempotency_conflict or invoice_not_open", body = Problem),
              (status = 422, description = "invalid_request or payment_mismatch", body = Problem)))]
async fn payments(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let Some(secret) = st.settings.billing_intake_secret.clone() else {
        // Unsigned reports are refused as such whether or not billing is on.
        if ["webhook-id", "webhook-timestamp", "webhook-signature"].iter().any(|h| !headers.contains_key(*h)) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
                "the Standard Webhooks headers are missing",
            ));
        }
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "billing is off on this server"));
    };
    let webhook_id = verify(&st, &secret, &headers, &body)?;
    let b: PaymentBody = crate::extract::parse(&body)?;
    let mut e = Errors::default();
    let target = match (&b.invoice_id, &b.purchase_id) {
        (Some(i), None) if IdKind::Invoice.is_valid(i) => i.clone(),
        (None, Some(p)) if IdKind::Purchase.is_valid(p) => p.clone(),
        _ => {
            e.add("invoice_id", "give exactly one of invoice_id (bill_…) and purchase_id (pur_…)");
            String::new()
        }
    };
    let succeeded = match b.status.as_str() {
        "succeeded" => true,
        "failed" => false,
        _ => {
            e.add("status", "must be succeeded or failed");
            false
        }
    };
    if b.amount < 0 {
        e.add("amount", "must be a whole number of minor units, not negative");
    }
    if b.currency.len() != 3 || !b.currency.bytes().all(|c| c.is_ascii_uppercase()) {
        e.add("currency", "must be an ISO 4217 code such as IDR");
    }
    let reference = b.reference.trim();
    if reference.is_empty() || reference.chars().count() > 200 || reference.chars().any(char::is_control) {
        e.add("reference", "must be 1–200 characters without control characters");
    }
    e.finish().map_err(ApiError::invalid)?;
    let report = PaymentReport {
        webhook_id,
        body_hash: hex(&Sha256::digest(&body)),
        target,
        succeeded,
        amount: b.amount,
        currency: b.currency.clone(),
        reference: reference.to_string(),
    };
    let now = st.clock.now_ms();
    let (status, body) = match st.store.payment_intake(&report, now).await? {
        Intake::Replay { status, body } => (status, body),
        Intake::Conflict => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                "this webhook-id was reported before with another body",
            ));
        }
        Intake::Done { status, body, to_grant, org_id } => {
            crate::billing::grant_all(&st, &to_grant).await?;
            if org_id.is_some() && !succeeded {
                crate::billing::sync_pauses(&st, now).await?;
            }
            (status, body)
        }
    };
    Ok(reply(status, body))
}

/// A stored answer as a response (`application/problem+json` for a refusal).
pub(crate) fn reply(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let ct = if status.is_success() { "application/json" } else { "application/problem+json" };
    let mut res = (status, Json(body)).into_response();
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    res
}

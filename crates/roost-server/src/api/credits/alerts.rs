//! Wallet alerts and auto-reload (API.md "Wallet alerts and auto-reload"): settings that live on
//! the wallet, changed through the ledger so that the crossing they watch is judged under the org's
//! lock with the balance itself.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use roost_domain::Permission;
use roost_domain::validate::Errors;
use roost_ledger::book::ReloadSettings;
use roost_ledger::{Command, Op, Outcome};
use roost_store::WalletRow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::wallets::wallet_param;
use super::{MAX_AMOUNT, actor_ref, present, refresh, submit_counted};
use crate::AppState;
use crate::api::org_ctx;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;

/// Body of `PUT …/alerts`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertsBody {
    /// `credits.low_balance` is sent when available credits fall below this; `null` turns it off.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, required, minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    low_balance: Option<Option<i64>>,
}

/// A wallet's alert settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertsView {
    pub wallet_id: String,
    pub kind: String,
    pub low_balance: Option<i64>,
}

/// Auto-reload settings, as set and as shown.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoReloadBody {
    enabled: bool,
    /// A charge or hold that leaves available credits below this reloads once.
    #[schema(minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    threshold: i64,
    /// Credits one reload adds (a top-up that never expires).
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_i64)]
    amount: i64,
    /// The most reloads may add in one calendar month (UTC).
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_i64)]
    monthly_max: i64,
}

/// A wallet's auto-reload.
#[derive(Debug, Serialize, ToSchema)]
pub struct AutoReloadView {
    pub wallet_id: String,
    pub kind: String,
    pub enabled: bool,
    pub threshold: i64,
    pub amount: i64,
    pub monthly_max: i64,
    /// What reloads added this calendar month.
    pub reloaded_this_month: i64,
}

impl AutoReloadView {
    fn of(w: &WalletRow, now: i64) -> Self {
        let this_month = w.reload.month == roost_domain::time::month_start(now);
        Self {
            wallet_id: w.id.clone(),
            kind: w.kind.clone(),
            enabled: w.reload.enabled,
            threshold: w.reload.threshold,
            amount: w.reload.amount,
            monthly_max: w.reload.monthly_max,
            reloaded_this_month: if this_month { w.reload.month_total } else { 0 },
        }
    }
}

/// Runs a settings command and answers with the wallet it changed.
async fn settle(st: &AppState, cmd: Command) -> ApiResult<WalletRow> {
    match submit_counted(st, cmd).await?? {
        Outcome::Wallet { wallet } => Ok(wallet),
        other => Err(ApiError::internal(format!("a wallet setting answered {other:?}"))),
    }
}

/// Sets the low-balance alert threshold of a wallet. Owner, admin or billing.
#[utoipa::path(put, path = "/v1/orgs/{org}/wallets/{wallet}/alerts", tag = "credits", security(("bearer" = [])),
    params(("wallet" = String, Path, description = "wallet id or kind")), request_body = AlertsBody,
    responses((status = 200, body = AlertsView), (status = 400, description = "malformed_json", body = Problem, content_type = "application/problem+json"), (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn put_alerts(
    State(st): State<AppState>,
    caller: Caller,
    Path((org, wallet)): Path<(String, String)>,
    ApiJson(b): ApiJson<AlertsBody>,
) -> ApiResult<Response> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::WatchCredits)?;
    let wallet = wallet_param(&st, &o, &wallet).await?;
    let mut e = Errors::default();
    let low_balance = match b.low_balance {
        None => {
            e.add("low_balance", "is required (null turns the alert off)");
            None
        }
        Some(Some(t)) if !(0..=MAX_AMOUNT).contains(&t) => {
            e.add("low_balance", format!("must be from 0 to {MAX_AMOUNT}, or null"));
            None
        }
        Some(t) => t,
    };
    e.finish().map_err(ApiError::invalid)?;
    let op = Op::SetAlerts { wallet, low_balance };
    let w = settle(&st, Command { org_id: o.org.id, actor: actor_ref(&caller), op, idem: None }).await?;
    let view = AlertsView { wallet_id: w.id, kind: w.kind, low_balance: w.low_balance };
    Ok((StatusCode::OK, Json(view)).into_response())
}

/// A wallet's auto-reload settings. Owner or billing.
#[utoipa::path(get, path = "/v1/orgs/{org}/wallets/{wallet}/auto-reload", tag = "credits", security(("bearer" = [])),
    params(("wallet" = String, Path, description = "wallet id or kind")),
    responses((status = 200, body = AutoReloadView), (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn get_auto_reload(
    State(st): State<AppState>,
    caller: Caller,
    Path((org, wallet)): Path<(String, String)>,
) -> ApiResult<Json<AutoReloadView>> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ManageBilling)?;
    let kind = wallet_param(&st, &o, &wallet).await?;
    refresh(&st, &o.org.id).await?;
    let (wallets, _) = st.store.wallets_of(&o.org.id).await?;
    let w = wallets.iter().find(|w| w.kind == kind).ok_or_else(ApiError::not_found)?;
    Ok(Json(AutoReloadView::of(w, st.clock.now_ms())))
}

/// Sets a wallet's auto-reload. Owner or billing.
#[utoipa::path(put, path = "/v1/orgs/{org}/wallets/{wallet}/auto-reload", tag = "credits", security(("bearer" = [])),
    params(("wallet" = String, Path, description = "wallet id or kind")), request_body = AutoReloadBody,
    responses((status = 200, body = AutoReloadView), (status = 400, description = "malformed_json", body = Problem, content_type = "application/problem+json"), (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"), (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"), (status = 404, description = "not_found, also for another tenant's ids", body = Problem, content_type = "application/problem+json"), (status = 422, description = "invalid_request", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn put_auto_reload(
    State(st): State<AppState>,
    caller: Caller,
    Path((org, wallet)): Path<(String, String)>,
    ApiJson(b): ApiJson<AutoReloadBody>,
) -> ApiResult<Json<AutoReloadView>> {
    let o = org_ctx(&st, &caller, &org).await?;
    o.require(Permission::ManageBilling)?;
    let wallet = wallet_param(&st, &o, &wallet).await?;
    let mut e = Errors::default();
    if !(0..=MAX_AMOUNT).contains(&b.threshold) {
        e.add("threshold", format!("must be from 0 to {MAX_AMOUNT}"));
    }
    for (field, v) in [("amount", b.amount), ("monthly_max", b.monthly_max)] {
        if !(1..=MAX_AMOUNT).contains(&v) {
            e.add(field, format!("must be from 1 to {MAX_AMOUNT}"));
        }
    }
    if b.amount > b.monthly_max {
        e.add("monthly_max", "must be at least one reload's amount");
    }
    e.finish().map_err(ApiError::invalid)?;
    let settings =
        ReloadSettings { enabled: b.enabled, threshold: b.threshold, amount: b.amount, monthly_max: b.monthly_max };
    let op = Op::SetAutoReload { wallet, settings };
    let w = settle(&st, Command { org_id: o.org.id, actor: actor_ref(&caller), op, idem: None }).await?;
    Ok(Json(AutoReloadView::of(&w, st.clock.now_ms())))
}

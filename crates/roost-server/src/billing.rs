//! Billing's moving parts outside the HTTP handlers: granting paid purchases through the ledger
//! (exactly once), recording plan changes, and the background round that finalizes invoices whose
//! cycle ended, bills auto-reloads and pauses them while their payments fail or are overdue.
//!
//! A paid purchase's credits are a ledger grant carrying an idempotency key of its own
//! (`\u{1}purchase:{id}`: a control character, which no client's `Idempotency-Key` may hold), so
//! the ledger's transaction grants them once however often a payment is reported, retried or
//! picked up again by the background round after a crash.

use roost_domain::Plan;
use roost_ledger::{ActorRef, Command, Idem, Op, Outcome, Source};
use roost_store::{Org, PlanChange, Purchase, StoreError};

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// Grants a paid purchase's credits (once) and records it completed.
pub async fn grant_purchase(st: &AppState, p: &Purchase) -> ApiResult<()> {
    let key = format!("\u{1}purchase:{}", p.id);
    let op = Op::Grant {
        wallet: p.wallet_kind.clone(),
        source: Source::Topup,
        amount: p.credits,
        expires_at: None,
        reason: Some(format!("purchase {}", p.id)),
    };
    let idem = Idem { key: key.clone(), fingerprint: format!("purchase:{}:{}", p.id, p.credits) };
    let cmd = Command { org_id: p.org_id.clone(), actor: ActorRef::system(), op, idem: Some(idem) };
    let answer =
        st.ledger.submit(cmd).await.map_err(|e| ApiError::unavailable("ledger_unavailable", e.to_string(), 1))?;
    match answer {
        Ok(Outcome::Granted { grant }) => {
            st.store.purchase_granted(&p.org_id, &p.id, &grant.id, st.clock.now_ms()).await?;
            Ok(())
        }
        Ok(other) => Err(ApiError::internal(format!("purchase grant answered {other:?}"))),
        Err(r) => Err(ApiError::internal(format!("purchase {} could not be granted: {r}", p.id))),
    }
}

/// Grants every purchase in `paid` (payment reports and marks answer only after this).
pub async fn grant_all(st: &AppState, paid: &[Purchase]) -> ApiResult<()> {
    for p in paid {
        grant_purchase(st, p).await?;
    }
    Ok(())
}

/// Records a plan change for the invoices (when billing is on). `before` is the org as it was.
pub async fn plan_changed(
    st: &AppState,
    before: &Org,
    new: &str,
    new_trial: Option<i64>,
    given: bool,
) -> ApiResult<()> {
    if !st.settings.billing_on() {
        return Ok(());
    }
    let change = PlanChange { old: &before.plan, old_trial: before.trial_ends_at, new, new_trial, given };
    let now = st.clock.now_ms();
    st.store.billing_plan_changed(&before.id, &change, st.settings.catalog.currency(), now).await?;
    Ok(())
}

/// Counts the org's members towards its cycle's most (billing on); called when members join.
pub async fn members_changed(st: &AppState, org_id: &str) {
    if !st.settings.billing_on() {
        return;
    }
    if let Err(e) = st.store.billing_touch(org_id, st.settings.catalog.currency(), st.clock.now_ms()).await {
        tracing::warn!(error = %e, org_id, "counting members for the invoice");
    }
}

/// The price of `credits` credits on `plan` (0 when the plan sells no packs).
pub fn price_of(plan: Option<&Plan>, credits: i64) -> i64 {
    plan.and_then(|p| p.credit_pack)
        .and_then(|pack| roost_domain::billing::price_of_credits(pack, credits))
        .unwrap_or(0)
}

/// 402 `payment_required`: the org is past due.
pub fn payment_required() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PAYMENT_REQUIRED,
        "payment_required",
        "an invoice of this organization is past due: pay it first (GET /v1/orgs/{org}/invoices)",
    )
}

/// Whether the org is past due now.
pub async fn past_due(st: &AppState, org_id: &str) -> ApiResult<bool> {
    if !st.settings.billing_on() {
        return Ok(false);
    }
    Ok(st.store.past_due(org_id, st.clock.now_ms() - st.settings.payment_grace_ms()).await?)
}

/// One background round (billing on): bill auto-reloads, grant paid purchases left ungranted,
/// finalize the drafts whose cycle ended, and pause or resume auto-reloads by their payments.
pub async fn tick(st: &AppState) -> Result<(), StoreError> {
    if !st.settings.billing_on() {
        return Ok(());
    }
    let now = st.clock.now_ms();
    let catalog = &st.settings.catalog;
    // One org's trouble (say, deleted meanwhile) never stops the round for the others.
    for org_id in st.store.orgs_with_unbilled_reloads(500).await? {
        if let Err(e) = record_reloads(st, &org_id).await {
            tracing::warn!(error = %e, org_id, "billing an auto-reload; retrying next round");
        }
    }
    for p in st.store.purchases_to_grant(500).await? {
        if let Err(e) = grant_purchase(st, &p).await {
            tracing::warn!(purchase = %p.id, detail = %e.detail, "granting a paid purchase; retrying next round");
        }
    }
    for (org_id, id) in st.store.due_invoices(now, 500).await? {
        // Reloads of the ending cycle are billed on it before it is closed.
        if let Err(e) = record_reloads(st, &org_id).await {
            tracing::warn!(error = %e, org_id, "billing an auto-reload; retrying next round");
        }
        match st.store.finalize_invoice(&org_id, &id, catalog, now).await {
            Ok(Some(number)) => tracing::info!(org_id, invoice = id, number, "invoice finalized"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, org_id, invoice = id, "finalizing an invoice; retrying next round"),
        }
    }
    sync_pauses(st, now).await
}

/// Records the org's auto-reloads not yet billed.
pub async fn record_reloads(st: &AppState, org_id: &str) -> Result<(), StoreError> {
    let plan = match st.store.org_by_id(org_id).await? {
        Some(o) => st.settings.catalog.get(&o.plan).cloned(),
        None => return Ok(()),
    };
    let price = move |credits: i64| price_of(plan.as_ref(), credits);
    st.store.record_auto_reloads(org_id, st.settings.catalog.currency(), &price, st.clock.now_ms()).await?;
    Ok(())
}

/// Pauses the auto-reload of wallets with a reload whose payment failed or is overdue, and
/// resumes those that no longer have one.
pub async fn sync_pauses(st: &AppState, now: i64) -> Result<(), StoreError> {
    let (want, have) = st.store.reload_pauses(now - st.settings.payment_grace_ms()).await?;
    let mut changes: Vec<(String, String, Option<String>)> = Vec::new();
    for (org, kind, reason) in &want {
        if !have.iter().any(|(o, k, r)| o == org && k == kind && r == reason) {
            changes.push((org.clone(), kind.clone(), Some(reason.clone())));
        }
    }
    for (org, kind, _) in &have {
        if !want.iter().any(|(o, k, _)| o == org && k == kind) {
            changes.push((org.clone(), kind.clone(), None));
        }
    }
    for (org_id, wallet, reason) in changes {
        let cmd = Command { org_id, actor: ActorRef::system(), op: Op::PauseAutoReload { wallet, reason }, idem: None };
        if let Err(e) = st.ledger.submit(cmd).await {
            tracing::warn!(error = %e, "pausing an auto-reload; retrying next round");
        }
    }
    Ok(())
}

//! The ledger's rows, typed, and their mapping from database rows: the one place where the
//! vocabulary's names are read back (an unknown name is a decode error, never a fallback).

use std::collections::HashMap;

use roost_domain::credits::Source;
use roost_domain::ledger::{ActorKind, BudgetScope, EntryKind, EventType, HoldStatus, Splits};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

/// An org as the ledger sees it, read under its lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerOrg {
    pub id: String,
    pub kind: String,
    pub plan: String,
    pub plan_started_at: i64,
    pub trial_ends_at: Option<i64>,
    pub deleted: bool,
    /// The ledger version (`None` before the first batch).
    pub version: Option<i64>,
}

/// A wallet: one kind of credits of one org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletRow {
    pub org_id: String,
    pub id: String,
    pub kind: String,
    pub balance: i64,
    pub held: i64,
    pub granted: i64,
    pub charged: i64,
    pub expired: i64,
    pub anchor_at: i64,
    pub cycle: i64,
    /// The allowance the current cycle's allocation was made under.
    pub allowance: i64,
    pub created_at: i64,
    /// The `credits.low_balance` threshold of available credits, if set.
    pub low_balance: Option<i64>,
    /// `credits.depleted` was sent and the wallet has not been funded since.
    pub depleted: bool,
    pub reload: AutoReload,
}

/// A wallet's auto-reload settings, and this calendar month's reloads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoReload {
    pub enabled: bool,
    /// A charge or hold that leaves available credits below this reloads once.
    pub threshold: i64,
    pub amount: i64,
    /// The most credits reloads may add in one calendar month.
    pub monthly_max: i64,
    /// The first millisecond (UTC) of the month `month_total` counts.
    pub month: i64,
    pub month_total: i64,
    /// Whether the next charge or hold that leaves available credits below the threshold reloads:
    /// cleared by a reload (or its failure), set again once available is back at or above it.
    pub armed: bool,
    /// Why reloads are held back (`payment_failed`, `payment_pending`: a reload's payment failed
    /// or is overdue, API.md "Billing"); `None` while they may happen.
    #[serde(default)]
    pub paused: Option<String>,
}

/// An event (API.md "Events and webhooks"), written in the transaction of its cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub org_id: String,
    pub id: String,
    pub kind: EventType,
    pub workspace_id: Option<String>,
    /// The event's `data`, as JSON text.
    pub data: String,
    pub created_at: i64,
}

/// A grant of credits to a wallet, drawn down by charges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRow {
    pub org_id: String,
    pub id: String,
    pub wallet_id: String,
    pub source: Source,
    pub amount: i64,
    pub remaining: i64,
    pub reserved: i64,
    pub expired: i64,
    pub effective_at: i64,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    /// `alloc:{anchor}:{cycle}`, `roll:…` or `trial`: unique per wallet, so a turn happens once.
    pub cycle_key: Option<String>,
    pub reason: Option<String>,
    pub actor_type: ActorKind,
    pub actor_id: String,
}

/// One journal line: a charge (also settlements), a debit adjustment, a grant, or an expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRow {
    pub org_id: String,
    pub id: String,
    pub kind: EntryKind,
    pub wallet_id: String,
    /// Empty for entries of no workspace (grants, expiries, adjustments).
    pub workspace_id: String,
    pub actor_type: ActorKind,
    pub actor_id: String,
    /// The member charged for (a key's creator); empty where none.
    pub member_id: String,
    pub key_id: String,
    pub amount: i64,
    pub action: String,
    /// The caller's JSON metadata, as sent.
    pub metadata: Option<String>,
    pub splits: Splits,
    pub hold_id: Option<String>,
    pub balance_after: i64,
    pub at: i64,
    /// Order of application within the org (set by the engine when it writes the batch).
    pub seq: i64,
    /// For a charge: the headroom it was answered with (JSON `{available, budget}`), kept so that
    /// a replay answers the same. `None` for other entries and charges from before it was kept.
    #[serde(default)]
    pub headroom: Option<String>,
    /// The `Idempotency-Key` of the charge this entry answered (`None` for any other entry): a
    /// charge's idempotency record is kept on its entry, not in the `idempotency` table. Written
    /// only; reads leave it `None` (answers never show it).
    #[serde(skip)]
    pub idem_key: Option<String>,
    /// The fingerprint of the request that `idem_key` came with.
    #[serde(skip)]
    pub idem_fp: Option<String>,
}

/// A hold: credits reserved until settled, released or expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRow {
    pub org_id: String,
    pub id: String,
    pub wallet_id: String,
    pub workspace_id: String,
    pub actor_type: ActorKind,
    pub actor_id: String,
    pub member_id: String,
    pub key_id: String,
    pub action: String,
    pub amount: i64,
    /// Which grants the reservation came from.
    pub splits: Splits,
    pub status: HoldStatus,
    /// The budget period the hold counted toward.
    pub period_start: i64,
    pub expires_at: i64,
    pub created_at: i64,
    pub closed_at: Option<i64>,
    pub charge_id: Option<String>,
}

/// A per-cycle cap on what a workspace, or a member in a workspace, may draw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetRow {
    pub org_id: String,
    pub scope: BudgetScope,
    pub workspace_id: String,
    /// Empty for a workspace budget.
    pub user_id: String,
    pub limit: i64,
    /// Percentages of the limit at which an alert is written, ascending.
    pub alert_percents: Vec<u32>,
    pub updated_at: i64,
}

/// A stored answer to an idempotent command: the request's fingerprint and the answer as the
/// engine serialized it (its outcome or refusal, never an HTTP body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdemRow {
    pub org_id: String,
    pub key: String,
    pub fingerprint: String,
    pub record: String,
    pub created_at: i64,
}

/// An audit event written by the engine.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub org_id: String,
    pub id: String,
    pub at: i64,
    pub actor_type: ActorKind,
    pub actor_id: String,
    pub action: String,
    pub workspace_id: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub detail: String,
}

/// A new ledger head: `(org, version, next_event_at)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadRow {
    pub org_id: String,
    pub version: i64,
    pub next_event_at: Option<i64>,
}

/// Key of a budget counter: `(org, scope, subject, period_start)`.
pub type UsageKey = (String, BudgetScope, String, i64);
/// Key of an hourly rollup: `(org, hour, wallet, workspace, member, key, action)`.
pub type RollupKey = (String, i64, String, String, String, String, String);

/// Everything one batch writes.
#[derive(Debug, Default)]
pub struct LedgerWrites {
    pub heads: Vec<HeadRow>,
    pub wallets: Vec<WalletRow>,
    pub grants: Vec<GrantRow>,
    pub entries: Vec<EntryRow>,
    pub holds: Vec<HoldRow>,
    pub budgets: Vec<BudgetRow>,
    /// `(org, scope, workspace, user)` of budgets removed.
    pub budgets_removed: Vec<(String, BudgetScope, String, String)>,
    /// Budget counter deltas.
    pub usage: HashMap<UsageKey, i64>,
    /// Hourly rollup deltas: `(amount, count)`.
    pub rollups: HashMap<RollupKey, (i64, i64)>,
    pub idempotency: Vec<IdemRow>,
    pub audit: Vec<AuditRow>,
    pub events: Vec<EventRow>,
    /// `(org, scope, subject, period_start)` of budgets that sent `budget.exceeded` this period.
    pub exceeded: Vec<(String, BudgetScope, String, i64)>,
}

/// Reads a column holding one of the vocabulary's names.
fn named<T>(r: &AnyRow, col: &str, parse: fn(&str) -> Option<T>) -> Result<T, sqlx::Error> {
    let s: String = r.try_get(col)?;
    parse(&s).ok_or_else(|| sqlx::Error::Decode(format!("{col}: unknown value {s:?}").into()))
}

fn splits(r: &AnyRow) -> Result<Splits, sqlx::Error> {
    named(r, "splits", Splits::decode)
}

/// The stored form of alert percentages: `50,80,100`.
pub(crate) fn encode_percents(p: &[u32]) -> String {
    p.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn percents(s: &str) -> Option<Vec<u32>> {
    if s.is_empty() {
        return Some(Vec::new());
    }
    s.split(',').map(|p| p.parse().ok()).collect()
}

pub(crate) fn wallet_from(r: &AnyRow) -> Result<WalletRow, sqlx::Error> {
    Ok(WalletRow {
        org_id: r.try_get("org_id")?,
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        balance: r.try_get("balance")?,
        held: r.try_get("held")?,
        granted: r.try_get("granted")?,
        charged: r.try_get("charged")?,
        expired: r.try_get("expired")?,
        anchor_at: r.try_get("anchor_at")?,
        cycle: r.try_get("cycle")?,
        allowance: r.try_get("allowance")?,
        created_at: r.try_get("created_at")?,
        low_balance: r.try_get("low_balance")?,
        depleted: r.try_get::<i64, _>("depleted")? != 0,
        reload: AutoReload {
            enabled: r.try_get::<i64, _>("reload_enabled")? != 0,
            threshold: r.try_get("reload_threshold")?,
            amount: r.try_get("reload_amount")?,
            monthly_max: r.try_get("reload_monthly_max")?,
            month: r.try_get("reload_month")?,
            month_total: r.try_get("reload_month_total")?,
            armed: r.try_get::<i64, _>("reload_armed")? != 0,
            paused: r.try_get("reload_paused")?,
        },
    })
}

pub(crate) fn grant_from(r: &AnyRow) -> Result<GrantRow, sqlx::Error> {
    Ok(GrantRow {
        org_id: r.try_get("org_id")?,
        id: r.try_get("id")?,
        wallet_id: r.try_get("wallet_id")?,
        source: named(r, "source", Source::parse)?,
        amount: r.try_get("amount")?,
        remaining: r.try_get("remaining")?,
        reserved: r.try_get("reserved")?,
        expired: r.try_get("expired")?,
        effective_at: r.try_get("effective_at")?,
        expires_at: r.try_get("expires_at")?,
        created_at: r.try_get("created_at")?,
        cycle_key: r.try_get("cycle_key")?,
        reason: r.try_get("reason")?,
        actor_type: named(r, "actor_type", ActorKind::parse)?,
        actor_id: r.try_get("actor_id")?,
    })
}

pub(crate) fn hold_from(r: &AnyRow) -> Result<HoldRow, sqlx::Error> {
    Ok(HoldRow {
        org_id: r.try_get("org_id")?,
        id: r.try_get("id")?,
        wallet_id: r.try_get("wallet_id")?,
        workspace_id: r.try_get("workspace_id")?,
        actor_type: named(r, "actor_type", ActorKind::parse)?,
        actor_id: r.try_get("actor_id")?,
        member_id: r.try_get("member_id")?,
        key_id: r.try_get("key_id")?,
        action: r.try_get("action")?,
        amount: r.try_get("amount")?,
        splits: splits(r)?,
        status: named(r, "status", HoldStatus::parse)?,
        period_start: r.try_get("period_start")?,
        expires_at: r.try_get("expires_at")?,
        created_at: r.try_get("created_at")?,
        closed_at: r.try_get("closed_at")?,
        charge_id: r.try_get("charge_id")?,
    })
}

pub(crate) fn entry_from(r: &AnyRow) -> Result<EntryRow, sqlx::Error> {
    Ok(EntryRow {
        org_id: r.try_get("org_id")?,
        id: r.try_get("id")?,
        kind: named(r, "type", EntryKind::parse)?,
        wallet_id: r.try_get("wallet_id")?,
        workspace_id: r.try_get("workspace_id")?,
        actor_type: named(r, "actor_type", ActorKind::parse)?,
        actor_id: r.try_get("actor_id")?,
        member_id: r.try_get("member_id")?,
        key_id: r.try_get("key_id")?,
        amount: r.try_get("amount")?,
        action: r.try_get("action")?,
        metadata: r.try_get("metadata")?,
        splits: splits(r)?,
        hold_id: r.try_get("hold_id")?,
        balance_after: r.try_get("balance_after")?,
        at: r.try_get("at")?,
        seq: r.try_get("seq")?,
        headroom: r.try_get("headroom")?,
        idem_key: None,
        idem_fp: None,
    })
}

pub(crate) fn budget_from(r: &AnyRow) -> Result<BudgetRow, sqlx::Error> {
    Ok(BudgetRow {
        org_id: r.try_get("org_id")?,
        scope: named(r, "scope", BudgetScope::parse)?,
        workspace_id: r.try_get("workspace_id")?,
        user_id: r.try_get("user_id")?,
        limit: r.try_get("amount_limit")?,
        alert_percents: named(r, "alert_percents", percents)?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub(crate) const WALLET_COLS: &str = "org_id, id, kind, balance, held, granted, charged, expired, anchor_at, cycle, allowance, created_at, low_balance, depleted, reload_enabled, reload_threshold, reload_amount, reload_monthly_max, reload_month, reload_month_total, reload_armed, reload_paused";
pub(crate) const GRANT_COLS: &str = "org_id, id, wallet_id, source, amount, remaining, reserved, expired, effective_at, expires_at, created_at, cycle_key, reason, actor_type, actor_id";
pub(crate) const HOLD_COLS: &str = "org_id, id, wallet_id, workspace_id, actor_type, actor_id, member_id, key_id, action, amount, splits, status, period_start, expires_at, created_at, closed_at, charge_id";
pub(crate) const ENTRY_COLS: &str = "org_id, id, type, wallet_id, workspace_id, actor_type, actor_id, member_id, key_id, amount, action, metadata, splits, hold_id, balance_after, at, seq, headroom";
pub(crate) const BUDGET_COLS: &str = "org_id, scope, workspace_id, user_id, amount_limit, alert_percents, updated_at";

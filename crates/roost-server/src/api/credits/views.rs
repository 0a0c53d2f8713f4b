//! The JSON the credits endpoints send, as types: each view is built from the ledger's rows and
//! outcomes, and the same types describe it in the OpenAPI document.

use axum::http::StatusCode;
use roost_domain::credits::Source;
use roost_domain::ledger::{Actor, BudgetScope, EntryKind, HoldStatus, Split, UsageGroup};
use roost_domain::time::to_rfc3339;
use roost_ledger::{BudgetState, Outcome};
use roost_store::{EntryRow, GrantRow, HoldRow, WalletRow};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::headroom::Headroom;

/// A charge.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChargeView {
    pub id: String,
    pub amount: i64,
    pub action: String,
    pub wallet_id: String,
    /// `null` for journal entries of no workspace (grants, expiries, adjustments).
    pub workspace_id: Option<String>,
    pub org_id: String,
    pub actor: Actor,
    /// Which grants paid, in draw-down order.
    pub splits: Vec<Split>,
    pub balance_after: i64,
    pub at: String,
    /// What the caller kept with the charge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// The hold this charge settled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<String>,
    /// In the answer to a charge: what it left (absent elsewhere, e.g. in the journal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headroom: Option<Headroom>,
}

impl From<&EntryRow> for ChargeView {
    fn from(e: &EntryRow) -> Self {
        Self {
            id: e.id.clone(),
            amount: e.amount,
            action: e.action.clone(),
            wallet_id: e.wallet_id.clone(),
            workspace_id: (!e.workspace_id.is_empty()).then(|| e.workspace_id.clone()),
            org_id: e.org_id.clone(),
            actor: Actor { kind: e.actor_type, id: e.actor_id.clone() },
            splits: e.splits.0.clone(),
            balance_after: e.balance_after,
            at: to_rfc3339(e.at),
            metadata: e.metadata.as_deref().map(|m| serde_json::from_str(m).unwrap_or(Value::Null)),
            hold_id: e.hold_id.clone(),
            headroom: None,
        }
    }
}

/// A journal entry: `charge`, `adjustment` (a debit), `grant` or `expiry`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionView {
    #[serde(rename = "type")]
    pub kind: EntryKind,
    #[serde(flatten)]
    pub entry: ChargeView,
}

impl From<&EntryRow> for TransactionView {
    fn from(e: &EntryRow) -> Self {
        Self { kind: e.kind, entry: e.into() }
    }
}

/// A hold.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldView {
    pub id: String,
    pub amount: i64,
    pub action: String,
    pub wallet_id: String,
    pub workspace_id: String,
    pub org_id: String,
    pub status: HoldStatus,
    pub actor: Actor,
    pub expires_at: String,
    pub created_at: String,
    /// The charge that settled it.
    pub charge_id: Option<String>,
    /// In the answer to a new hold: what it left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headroom: Option<Headroom>,
}

impl From<&HoldRow> for HoldView {
    fn from(h: &HoldRow) -> Self {
        Self {
            id: h.id.clone(),
            amount: h.amount,
            action: h.action.clone(),
            wallet_id: h.wallet_id.clone(),
            workspace_id: h.workspace_id.clone(),
            org_id: h.org_id.clone(),
            status: h.status,
            actor: Actor { kind: h.actor_type, id: h.actor_id.clone() },
            expires_at: to_rfc3339(h.expires_at),
            created_at: to_rfc3339(h.created_at),
            charge_id: h.charge_id.clone(),
            headroom: None,
        }
    }
}

/// The answer to a settle.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettleView {
    pub charge: ChargeView,
    pub hold: HoldView,
    /// What went back to the wallet.
    pub released: i64,
}

/// A grant.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantView {
    pub id: String,
    pub wallet_id: String,
    pub source: Source,
    pub amount: i64,
    pub remaining: i64,
    /// Reserved by open holds.
    pub reserved: i64,
    pub effective_at: String,
    /// `null`: never expires.
    pub expires_at: Option<String>,
    pub created_at: String,
    pub reason: Option<String>,
    /// `auto_reload` for a top-up that auto-reload made; `null` otherwise.
    pub origin: Option<String>,
}

impl From<&GrantRow> for GrantView {
    fn from(g: &GrantRow) -> Self {
        Self {
            id: g.id.clone(),
            wallet_id: g.wallet_id.clone(),
            source: g.source,
            amount: g.amount,
            remaining: g.remaining,
            reserved: g.reserved,
            effective_at: to_rfc3339(g.effective_at),
            expires_at: g.expires_at.map(to_rfc3339),
            created_at: to_rfc3339(g.created_at),
            reason: g.reason.clone(),
            origin: g.cycle_key.as_deref().filter(|k| k.starts_with("reload:")).map(|_| "auto_reload".to_string()),
        }
    }
}

/// A top-up or credit adjustment made.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantCreated {
    pub grant: GrantView,
}

/// A debit adjustment made.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdjustmentCreated {
    pub adjustment: TransactionView,
}

/// An owner's adjustment: `{grant}` for a credit, `{adjustment}` for a debit.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Adjusted {
    Credit(GrantCreated),
    Debit(AdjustmentCreated),
}

/// A wallet: `balance` counts what is held; `available` = `balance` − `held`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WalletView {
    pub id: String,
    pub kind: String,
    pub balance: i64,
    pub held: i64,
    pub available: i64,
    /// Lifetime totals: balance = granted − charged − expired.
    pub granted: i64,
    pub charged: i64,
    pub expired: i64,
    /// Live grants, in draw-down order.
    pub grants: Vec<GrantView>,
    /// The billing cycle, for the wallet that receives the plan's credits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle_started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle_ends_at: Option<String>,
    /// The `credits.low_balance` alert threshold (`null`: no alert); set with `PUT …/alerts`.
    pub low_balance: Option<i64>,
}

impl WalletView {
    /// Wallet `w` with its grants among `grants`, and its cycle `(start, end)` if it has one.
    pub fn new(w: &WalletRow, grants: &[GrantRow], cycle: Option<(i64, i64)>) -> Self {
        let mut gs: Vec<&GrantRow> = grants.iter().filter(|g| g.wallet_id == w.id).collect();
        gs.sort_by(|a, b| {
            a.expires_at
                .unwrap_or(i64::MAX)
                .cmp(&b.expires_at.unwrap_or(i64::MAX))
                .then(a.created_at.cmp(&b.created_at))
        });
        Self {
            id: w.id.clone(),
            kind: w.kind.clone(),
            balance: w.balance,
            held: w.held,
            available: w.balance - w.held,
            granted: w.granted,
            charged: w.charged,
            expired: w.expired,
            grants: gs.into_iter().map(GrantView::from).collect(),
            cycle_started_at: cycle.map(|c| to_rfc3339(c.0)),
            cycle_ends_at: cycle.map(|c| to_rfc3339(c.1)),
            low_balance: w.low_balance,
        }
    }
}

/// One group of `GET …/usage`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageGroupView {
    /// The workspace, member, key or action id (`null`: charges not made through a key).
    pub key: Option<String>,
    pub amount: i64,
    pub count: i64,
    /// This group's fraction of `total` (0–1).
    pub share: f64,
}

/// What an org spent in a window.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageView {
    pub total: i64,
    pub count: i64,
    pub from: String,
    pub to: String,
    pub group_by: UsageGroup,
    pub wallet_id: Option<String>,
    pub groups: Vec<UsageGroupView>,
}

/// A budget and what it drew this cycle.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetView {
    pub scope: BudgetScope,
    pub workspace_id: String,
    /// The member, for a member budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// `null`: no budget.
    pub limit: Option<i64>,
    /// Alert thresholds, for a workspace budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_percents: Option<Vec<u32>>,
    /// Drawn this cycle.
    pub used: i64,
    pub resets_at: String,
}

impl From<BudgetState> for BudgetView {
    fn from(b: BudgetState) -> Self {
        let member = b.scope == BudgetScope::Member;
        Self {
            scope: b.scope,
            workspace_id: b.workspace_id,
            user_id: b.user_id,
            limit: b.limit,
            alert_percents: (!member).then_some(b.alert_percents),
            used: b.used,
            resets_at: to_rfc3339(b.resets_at),
        }
    }
}

/// An empty object (a tick).
#[derive(Debug, Serialize, ToSchema)]
pub struct Empty {}

/// What a ledger outcome renders as.
#[derive(Debug, Serialize)]
#[serde(untagged)]
#[expect(clippy::large_enum_variant, reason = "a view is built, serialized once and dropped")]
pub enum OutcomeView {
    Charge(ChargeView),
    Hold(HoldView),
    Settle(SettleView),
    Adjusted(Adjusted),
    Budget(BudgetView),
    Wallet(WalletSettings),
    Empty(Empty),
}

/// A wallet's alert and auto-reload settings (what a settings command answers).
#[derive(Debug, Serialize, ToSchema)]
pub struct WalletSettings {
    pub wallet_id: String,
    pub kind: String,
    pub low_balance: Option<i64>,
    pub auto_reload_enabled: bool,
}

impl OutcomeView {
    /// The status and body of an outcome: 201 for what a command creates, 200 otherwise.
    pub fn of(o: Outcome) -> (StatusCode, Self) {
        match o {
            Outcome::Charged { charge } => {
                let mut view = ChargeView::from(&charge);
                view.headroom = Headroom::parse(charge.headroom.as_deref());
                (StatusCode::CREATED, Self::Charge(view))
            }
            Outcome::Held { hold, headroom } => {
                let mut view = HoldView::from(&hold);
                view.headroom = Headroom::parse(headroom.as_deref());
                (StatusCode::CREATED, Self::Hold(view))
            }
            Outcome::Settled { charge, hold, released } => {
                (StatusCode::OK, Self::Settle(SettleView { charge: (&charge).into(), hold: (&hold).into(), released }))
            }
            Outcome::Released { hold } => (StatusCode::OK, Self::Hold((&hold).into())),
            Outcome::Granted { grant } => {
                (StatusCode::CREATED, Self::Adjusted(Adjusted::Credit(GrantCreated { grant: (&grant).into() })))
            }
            Outcome::Debited { entry } => (
                StatusCode::CREATED,
                Self::Adjusted(Adjusted::Debit(AdjustmentCreated { adjustment: (&entry).into() })),
            ),
            Outcome::Budget(b) => (StatusCode::OK, Self::Budget(b.into())),
            Outcome::Wallet { wallet: w } => (
                StatusCode::OK,
                Self::Wallet(WalletSettings {
                    wallet_id: w.id,
                    kind: w.kind,
                    low_balance: w.low_balance,
                    auto_reload_enabled: w.reload.enabled,
                }),
            ),
            Outcome::Ticked => (StatusCode::OK, Self::Empty(Empty {})),
        }
    }
}

#![doc = include_str!("../README.md")]

pub mod book;
mod engine;
mod outcome;

pub use book::{Book, CREDITS, MAX_GRANTED};
pub use engine::{Ledger, LedgerConfig, LedgerStats};
pub use outcome::{Answer, BudgetState, Outcome};
pub use roost_domain::credits::Source;
pub use roost_domain::ledger::{Actor, ActorKind, BudgetScope, Refusal};

/// Who a command acts for, as the ledger records and budgets it: the actor, and the member its
/// charges are attributed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorRef {
    pub actor: Actor,
    /// The member charges are attributed to: the user, or the key's creator.
    pub member_id: String,
    /// The key, for key actors; empty otherwise.
    pub key_id: String,
    /// The key's per-cycle spend limit.
    pub spend_limit: Option<i64>,
    pub ip: Option<String>,
}

impl ActorRef {
    /// A user acting.
    pub fn user(id: &str, ip: Option<String>) -> Self {
        Self { actor: Actor::user(id), member_id: id.into(), key_id: String::new(), spend_limit: None, ip }
    }

    /// An API key acting, attributed to its creator.
    pub fn key(id: &str, created_by: &str, spend_limit: Option<i64>, ip: Option<String>) -> Self {
        Self { actor: Actor::key(id), member_id: created_by.into(), key_id: id.into(), spend_limit, ip }
    }

    /// roost itself (the background job, a plan change's catch-up).
    pub fn system() -> Self {
        Self { actor: Actor::system(), member_id: String::new(), key_id: String::new(), spend_limit: None, ip: None }
    }
}

/// What a command does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Charge `amount` now.
    Charge { workspace_id: String, wallet: String, amount: i64, action: String, metadata: Option<String> },
    /// Reserve `amount` until settled, released or expired.
    Hold { workspace_id: String, wallet: String, amount: i64, action: String, ttl_ms: i64 },
    /// Charge `amount` (≤ held) of a hold and release the rest.
    Settle { hold_id: String, amount: i64 },
    /// Release a hold.
    Release { hold_id: String },
    /// Add credits (`Topup`, `Adjustment`); a negative adjustment takes them away.
    Grant { wallet: String, source: Source, amount: i64, expires_at: Option<i64>, reason: Option<String> },
    /// Set (`Some`) or remove (`None`) a workspace budget, or a member's budget in a workspace.
    SetBudget { workspace_id: String, user_id: Option<String>, limit: Option<i64>, alert_percents: Vec<u32> },
    /// Set (`Some`) or clear a wallet's low-balance alert threshold.
    SetAlerts { wallet: String, low_balance: Option<i64> },
    /// Set a wallet's auto-reload.
    SetAutoReload { wallet: String, settings: crate::book::ReloadSettings },
    /// Hold a wallet's auto-reloads back (`Some(reason)`) while a reload's payment failed or is
    /// overdue, or let them happen again (`None`). Billing's background job decides.
    PauseAutoReload { wallet: String, reason: Option<String> },
    /// Bring the org's ledger up to the clock: cycle turns and expiries.
    Tick,
}

/// An `Idempotency-Key` and the fingerprint of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idem {
    pub key: String,
    pub fingerprint: String,
}

/// One command for one org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub org_id: String,
    pub actor: ActorRef,
    pub op: Op,
    pub idem: Option<Idem>,
}

/// The engine could not answer: nothing of the command happened, and it may be retried.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    #[error("the ledger is unavailable: {0}")]
    Unavailable(String),
}

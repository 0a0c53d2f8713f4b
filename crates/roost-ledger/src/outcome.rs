//! What the ledger answers: an [`Outcome`] or a [`Refusal`], in the ledger's own terms. The server
//! renders them; idempotency records keep them, so a replay renders exactly the first answer.

use roost_domain::ledger::{BudgetScope, Refusal};
use roost_store::{EntryRow, GrantRow, HoldRow, WalletRow};
use serde::{Deserialize, Serialize};

/// The answer to a command.
pub type Answer = Result<Outcome, Refusal>;

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[expect(clippy::large_enum_variant, reason = "an answer is moved once, to its caller")]
pub enum Outcome {
    /// A charge was journaled.
    Charged { charge: EntryRow },
    /// Credits were reserved; `headroom` is what the hold left (JSON, see the charge's entry).
    Held {
        hold: HoldRow,
        #[serde(default)]
        headroom: Option<String>,
    },
    /// A hold was settled: `charge` took part of it, `released` went back.
    Settled { charge: EntryRow, hold: HoldRow, released: i64 },
    /// A hold was given back whole.
    Released { hold: HoldRow },
    /// Credits were added (a top-up or a credit adjustment).
    Granted { grant: GrantRow },
    /// Credits were taken away by a debit adjustment.
    Debited { entry: EntryRow },
    /// A budget as it now stands.
    Budget(BudgetState),
    /// A wallet's settings (alerts, auto-reload) as they now stand.
    Wallet { wallet: WalletRow },
    /// The ledger was brought up to the clock.
    Ticked,
}

/// A budget and what its subject drew this cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetState {
    pub scope: BudgetScope,
    pub workspace_id: String,
    /// The member, for a member budget.
    pub user_id: Option<String>,
    /// `None`: no budget.
    pub limit: Option<i64>,
    pub alert_percents: Vec<u32>,
    pub used: i64,
    /// When the cycle ends and `used` starts again from zero (Unix ms).
    pub resets_at: i64,
}

/// How an idempotency record keeps an answer. A charge's answer is rebuilt on replay from its
/// journal entry (which never changes), so its record only names the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[expect(clippy::large_enum_variant, reason = "a record is decoded, used once and dropped")]
pub(crate) enum Stored {
    Entry {
        #[serde(rename = "$entry")]
        entry: String,
    },
    Done {
        ok: Outcome,
    },
    Refused {
        refused: Refusal,
    },
}

impl Stored {
    /// The record of `answer`.
    pub(crate) fn of(answer: &Answer) -> Self {
        match answer {
            Ok(Outcome::Charged { charge }) => Stored::Entry { entry: charge.id.clone() },
            Ok(o) => Stored::Done { ok: o.clone() },
            Err(r) => Stored::Refused { refused: r.clone() },
        }
    }

    pub(crate) fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub(crate) fn decode(s: &str) -> Option<Self> {
        serde_json::from_str(s).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roost_domain::ledger::HoldStatus;

    #[test]
    fn records_round_trip() {
        for s in [
            Stored::Entry { entry: "chg_1".into() },
            Stored::Refused { refused: Refusal::InsufficientCredits { needed: 5, available: 2 } },
            Stored::Refused { refused: Refusal::HoldClosed { status: HoldStatus::Settled } },
            Stored::Refused { refused: Refusal::IdempotencyConflict },
            Stored::Done { ok: Outcome::Ticked },
        ] {
            assert_eq!(Stored::decode(&s.encode()), Some(s.clone()), "{}", s.encode());
        }
        assert_eq!(Stored::decode(r#"{"$entry":"chg_x"}"#), Some(Stored::Entry { entry: "chg_x".into() }));
    }
}

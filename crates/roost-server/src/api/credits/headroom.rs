//! Headroom: what a 201 charge or hold leaves the actor — the wallet's available credits and the
//! tightest budget in force — in the body and in the `Roost-Credits-Available` and
//! `Roost-Budget-Remaining` headers. The ledger computes it at the moment of the draw and keeps it
//! (on the charge's journal entry, in a hold's idempotency record), so a replay answers the same.

use axum::http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a draw left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Headroom {
    /// The wallet's available credits after the draw (balance − held).
    pub available: i64,
    /// The tightest budget in force for the actor (least remaining), or `null` when none applies.
    pub budget: Option<BudgetHeadroom>,
}

/// A budget as a draw left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BudgetHeadroom {
    /// `key` (its `spend_limit`), `member` or `workspace`.
    pub scope: String,
    pub limit: i64,
    pub used: i64,
    pub remaining: i64,
    /// The end of the cycle (RFC 3339).
    pub resets_at: String,
}

impl Headroom {
    /// The headroom the ledger kept (`None`: a charge from before headroom was kept).
    pub fn parse(stored: Option<&str>) -> Option<Self> {
        stored.and_then(|s| serde_json::from_str(s).ok())
    }

    /// Writes the headroom headers.
    pub fn write_headers(&self, h: &mut HeaderMap) {
        h.insert("roost-credits-available", HeaderValue::from(self.available));
        if let Some(b) = &self.budget {
            h.insert("roost-budget-remaining", HeaderValue::from(b.remaining));
        }
    }
}

//! The ledger's vocabulary as types: who acts, what a journal entry is, a hold's state, a budget's
//! scope, how usage is grouped, which grants paid for a charge — and the refusals the ledger can
//! answer. Strings appear only where rows are mapped (`as_str` / `parse`).

use serde::{Deserialize, Serialize};

/// Declares a closed set of names: the enum, its `as_str` and `parse`, and serde as that name.
macro_rules! vocabulary {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $text)] $variant),+ }

        // By hand: utoipa's derive does not see a `serde(rename)` whose name comes through the
        // macro, and would publish the variants' Rust names instead of the wire names.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The value with this name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary!(
    /// Who made a ledger change.
    ActorKind {
        /// A signed-in user.
        User = "user",
        /// An API key (charges count for its creator too).
        Key = "key",
        /// roost itself: cycle turns, expiries.
        System = "system",
        /// Whoever runs roost, through an operator key (`rso_`).
        Operator = "operator",
    }
);

vocabulary!(
    /// What a journal entry records.
    EntryKind {
        /// Credits drawn by a charge (or a settled hold).
        Charge = "charge",
        /// Credits taken away by an owner's debit adjustment.
        Adjustment = "adjustment",
        /// Credits added: allocation, rollover, top-up, trial, credit adjustment.
        Grant = "grant",
        /// Credits that expired unused.
        Expiry = "expiry",
    }
);

vocabulary!(
    /// Where a hold stands.
    HoldStatus {
        /// Reserved and waiting.
        Open = "open",
        /// Charged (in part or whole); the rest went back.
        Settled = "settled",
        /// Given back whole.
        Released = "released",
        /// Given back whole because its time ran out.
        Expired = "expired",
    }
);

vocabulary!(
    /// What a budget caps, per billing cycle.
    BudgetScope {
        /// Everything drawn in one workspace.
        Workspace = "workspace",
        /// One member's draws in one workspace (their keys' included).
        Member = "member",
        /// One API key's draws (its `spend_limit`).
        Key = "key",
    }
);

vocabulary!(
    /// How `GET …/usage` groups what was spent.
    UsageGroup {
        Workspace = "workspace",
        /// Key charges count for the key's creator.
        Member = "member",
        Key = "key",
        Action = "action",
    }
);

vocabulary!(
    /// What an event (API.md "Events and webhooks") says happened.
    EventType {
        /// A wallet's available credits fell below its alert threshold (once per crossing).
        LowBalance = "credits.low_balance",
        /// A charge or hold was refused for insufficient credits (once until funded again).
        Depleted = "credits.depleted",
        /// A budget crossed one of its alert percents (once per percent per cycle).
        BudgetThreshold = "budget.threshold",
        /// A charge was refused by a budget (once per budget per cycle).
        BudgetExceeded = "budget.exceeded",
        ToppedUp = "wallet.topped_up",
        AutoReloaded = "wallet.auto_reloaded",
        AutoReloadFailed = "wallet.auto_reload_failed",
        CycleStarted = "cycle.started",
        MemberJoined = "member.joined",
        MemberRemoved = "member.removed",
        KeyCreated = "key.created",
        KeyRevoked = "key.revoked",
        PlanChanged = "plan.changed",
        WebhookDisabled = "webhook.disabled",
        /// An invoice was finalized at its cycle's end (numbered, now owed).
        InvoiceFinalized = "invoice.finalized",
        InvoicePaid = "invoice.paid",
        /// The payment system reported a failed payment.
        PaymentFailed = "payment.failed",
        /// A purchase was paid and its credits granted.
        PurchaseCompleted = "purchase.completed",
        /// Sent by `POST /v1/webhooks/{id}/test`; never stored.
        WebhookTest = "webhook.test",
    }
);

/// Who did something: a user, an API key, or roost itself. Audit events and the journal name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    #[serde(rename = "type")]
    pub kind: ActorKind,
    pub id: String,
}

impl Actor {
    /// A user.
    pub fn user(id: &str) -> Self {
        Self { kind: ActorKind::User, id: id.into() }
    }

    /// An API key.
    pub fn key(id: &str) -> Self {
        Self { kind: ActorKind::Key, id: id.into() }
    }

    /// The operator, through the operator key `id`.
    pub fn operator(id: &str) -> Self {
        Self { kind: ActorKind::Operator, id: id.into() }
    }

    /// roost itself (cycle turns, expiries, background jobs).
    pub fn system() -> Self {
        Self { kind: ActorKind::System, id: "roost".into() }
    }
}

impl BudgetScope {
    /// The counter subject of this scope for a draw in workspace `ws` by `member` through `key`:
    /// the workspace id, `ws:member`, or the key id.
    pub fn subject(self, ws: &str, member: &str, key: &str) -> String {
        match self {
            BudgetScope::Workspace => ws.to_string(),
            BudgetScope::Member => format!("{ws}:{member}"),
            BudgetScope::Key => key.to_string(),
        }
    }
}

/// One grant's part in paying for a charge (or reserved by a hold).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Split {
    pub grant_id: String,
    pub amount: i64,
}

/// Which grants paid, in draw-down order. Stored as `grt_a:10,grt_b:5`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Splits(pub Vec<Split>);

impl Splits {
    /// A split list from `(grant, amount)` pairs.
    pub fn from_pairs(parts: impl IntoIterator<Item = (String, i64)>) -> Self {
        Self(parts.into_iter().map(|(grant_id, amount)| Split { grant_id, amount }).collect())
    }

    /// The stored form.
    pub fn encode(&self) -> String {
        self.0.iter().map(|s| format!("{}:{}", s.grant_id, s.amount)).collect::<Vec<_>>().join(",")
    }

    /// The inverse of [`Splits::encode`]; `None` if any part is malformed (a stored row that
    /// cannot be read is an error, never a silently shorter list).
    pub fn decode(s: &str) -> Option<Self> {
        if s.is_empty() {
            return Some(Self::default());
        }
        s.split(',')
            .map(|p| {
                let (g, a) = p.rsplit_once(':')?;
                (!g.is_empty()).then_some(())?;
                Some(Split { grant_id: g.to_string(), amount: a.parse().ok()? })
            })
            .collect::<Option<Vec<_>>>()
            .map(Self)
    }

    /// The first `amount` of these splits, in order (what a settle of part of a hold charges).
    pub fn take(&self, amount: i64) -> Self {
        let mut left = amount;
        let mut out = Vec::new();
        for s in &self.0 {
            let take = s.amount.min(left);
            if take > 0 {
                out.push(Split { grant_id: s.grant_id.clone(), amount: take });
            }
            left -= take;
        }
        Self(out)
    }

    /// The sum of the parts.
    pub fn total(&self) -> i64 {
        self.0.iter().map(|s| s.amount).sum()
    }
}

/// Why the ledger refused a command. Nothing of a refused command happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    /// The wallet cannot cover the amount.
    #[error("the wallet has {available} available, {needed} needed")]
    InsufficientCredits { needed: i64, available: i64 },
    /// A budget would be passed; `used` is what the scope drew this cycle.
    #[error("the {scope} budget for this cycle would be passed")]
    BudgetExceeded { scope: BudgetScope, limit: Option<i64>, used: i64, resets_at: i64 },
    /// The hold is no longer open.
    #[error("the hold is {status}")]
    HoldClosed { status: HoldStatus },
    /// A settle asked for more than the hold reserved.
    #[error("{amount} is more than the {held} held")]
    SettleExceedsHold { amount: i64, held: i64 },
    /// The `Idempotency-Key` came with a different request before.
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyConflict,
    /// No such org, wallet or hold here (also for another tenant's).
    #[error("no such thing here")]
    NotFound,
    /// The actor's role does not allow it (read under the org's lock).
    #[error("your role in this workspace does not allow this")]
    Forbidden,
    /// The wallet kind named does not exist.
    #[error("wallet: no such wallet kind")]
    UnknownWallet,
    /// A grant would pass the most a wallet may ever be granted.
    #[error("amount: the wallet would pass the most it may ever be granted")]
    GrantCapExceeded { max: i64 },
}

impl Refusal {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::InsufficientCredits { .. } => "insufficient_credits",
            Refusal::BudgetExceeded { .. } => "budget_exceeded",
            Refusal::HoldClosed { .. } => "hold_closed",
            Refusal::SettleExceedsHold { .. } => "settle_exceeds_hold",
            Refusal::IdempotencyConflict => "idempotency_conflict",
            Refusal::NotFound => "not_found",
            Refusal::Forbidden => "forbidden",
            Refusal::UnknownWallet | Refusal::GrantCapExceeded { .. } => "invalid_request",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_round_trip() {
        for k in ActorKind::ALL {
            assert_eq!(ActorKind::parse(k.as_str()), Some(*k));
        }
        for k in EntryKind::ALL {
            assert_eq!(EntryKind::parse(k.as_str()), Some(*k));
        }
        for k in HoldStatus::ALL {
            assert_eq!(HoldStatus::parse(k.as_str()), Some(*k));
        }
        for k in BudgetScope::ALL {
            assert_eq!(BudgetScope::parse(k.as_str()), Some(*k));
        }
        for k in UsageGroup::ALL {
            assert_eq!(UsageGroup::parse(k.as_str()), Some(*k));
        }
        assert_eq!(HoldStatus::parse("Open"), None);
        assert_eq!(serde_json::to_value(HoldStatus::Settled).ok(), Some(serde_json::json!("settled")));
        // The serde name is the stored and wire name, also where it is not the variant's snake case.
        for k in EventType::ALL {
            assert_eq!(EventType::parse(k.as_str()), Some(*k));
            assert_eq!(serde_json::to_value(k).ok(), Some(serde_json::json!(k.as_str())));
            assert_eq!(serde_json::from_value::<EventType>(serde_json::json!(k.as_str())).ok(), Some(*k));
        }
    }

    #[test]
    fn malformed_splits_are_an_error_not_a_shorter_list() {
        assert_eq!(Splits::decode(""), Some(Splits::default()));
        assert_eq!(Splits::decode("grt_a:10,grt_b:5").map(|s| s.total()), Some(15));
        assert_eq!(Splits::decode("grt_a:10,grt_b"), None);
        assert_eq!(Splits::decode("grt_a:x"), None);
        assert_eq!(Splits::decode(":5"), None);
    }

    #[test]
    fn taking_part_of_splits_keeps_the_order() {
        let s = Splits::from_pairs([("a".into(), 10), ("b".into(), 5)]);
        assert_eq!(s.take(12), Splits::from_pairs([("a".into(), 10), ("b".into(), 2)]));
        assert_eq!(s.take(0), Splits::default());
        assert_eq!(s.take(99), s);
    }

    proptest! {
        #[test]
        fn splits_round_trip(parts in proptest::collection::vec(("grt_[a-z0-9]{1,8}", 0i64..i64::MAX), 0..6)) {
            let s = Splits::from_pairs(parts);
            prop_assert_eq!(Splits::decode(&s.encode()), Some(s));
        }
    }
}

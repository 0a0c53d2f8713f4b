//! One org's ledger in memory, and the rules that change it. The engine loads a [`Book`] under the
//! org's lock (or trusts its cached copy when the stored version says nobody else wrote since),
//! applies commands in order, and writes what changed. Nothing here does I/O.
//!
//! - `apply`: one command → [`Outcome`](crate::Outcome) or [`Refusal`](crate::Refusal);
//! - `cycles`: bringing a book to the clock (allocations, rollover, expiries);
//! - `draw`: admitting a charge or hold (budgets, draw-down, attribution counters);
//! - `holds`: closing holds; `budgets`: budget checks, alerts and changes.

mod apply;
mod budgets;
mod cycles;
mod draw;
mod holds;
mod signals;

pub use signals::ReloadSettings;

use std::collections::{HashMap, HashSet};

use roost_domain::IdKind;
use roost_domain::credits::{self, Drawable, Source};
use roost_domain::ledger::{Actor, BudgetScope, EntryKind, Splits};
use roost_store::{BudgetRow, EntryRow, GrantRow, LedgerOrg, LedgerWrites, WalletRow};

/// The most a wallet may be granted over its life: every sum the ledger keeps (balances, counters,
/// rollups) stays far from `i64` overflow.
pub const MAX_GRANTED: i64 = 1_000_000_000_000_000_000;

/// The wallet kind that receives the plan's monthly credits.
pub const CREDITS: &str = "credits";

/// A grant as the draw-down order sees it.
struct G<'a>(&'a GrantRow);

impl Drawable for G<'_> {
    fn remaining(&self) -> i64 {
        self.0.remaining
    }
    fn effective_at(&self) -> i64 {
        self.0.effective_at
    }
    fn expires_at(&self) -> Option<i64> {
        self.0.expires_at
    }
    fn created_at(&self) -> i64 {
        self.0.created_at
    }
    fn id(&self) -> &str {
        &self.0.id
    }
    fn rank(&self) -> u8 {
        u8::from(self.0.source != Source::Rollover)
    }
}

/// A budget's key in a book: `(scope, workspace, user)` (user empty for a workspace budget).
pub type BudgetKey = (BudgetScope, String, String);

/// An org's ledger state: its wallets, their live grants, its budgets and this cycle's counters.
#[derive(Debug, Clone)]
pub struct Book {
    pub org: LedgerOrg,
    pub version: i64,
    pub wallets: Vec<WalletRow>,
    /// Grants with credits left or reserved.
    pub grants: Vec<GrantRow>,
    pub budgets: HashMap<BudgetKey, BudgetRow>,
    /// The budget period (the org's billing cycle) the counters are for.
    pub period: (i64, i64),
    /// What each budget subject drew this period, by `(scope, subject)`.
    pub counters: HashMap<(BudgetScope, String), i64>,
    /// The budgets `(scope, subject)` that sent `budget.exceeded` this period.
    pub exceeded: HashSet<(BudgetScope, String)>,
    /// When the next open hold expires, as far as known.
    pub next_hold_expiry: Option<i64>,
}

/// What a batch has changed so far, beyond the books themselves.
#[derive(Debug, Default)]
pub struct Out {
    pub writes: LedgerWrites,
    pub dirty_wallets: HashSet<(String, String)>,
    pub dirty_grants: HashSet<(String, String)>,
    pub dirty_orgs: HashSet<String>,
}

/// A new grant: where its credits come from and when they count.
struct NewGrant {
    source: Source,
    amount: i64,
    effective_at: i64,
    expires_at: Option<i64>,
    cycle_key: Option<String>,
    reason: Option<String>,
}

impl Book {
    /// A book with nothing in it yet (the engine fills it from the store).
    pub fn empty(org: LedgerOrg) -> Self {
        Self {
            version: org.version.unwrap_or(0),
            org,
            wallets: Vec::new(),
            grants: Vec::new(),
            budgets: HashMap::new(),
            period: (0, 0),
            counters: HashMap::new(),
            exceeded: HashSet::new(),
            next_hold_expiry: None,
        }
    }

    /// The budget period containing `now` (the org's billing cycle).
    pub fn period_at(&self, now: i64) -> (i64, i64) {
        let (_, s, e) = credits::cycle_at(self.org.plan_started_at, now);
        (s, e)
    }

    fn wallet_idx(&self, kind_or_id: &str) -> Option<usize> {
        self.wallets.iter().position(|w| w.kind == kind_or_id || w.id == kind_or_id)
    }

    fn touch_wallet(&self, out: &mut Out, i: usize) {
        out.dirty_wallets.insert((self.org.id.clone(), self.wallets[i].id.clone()));
    }

    fn touch_grant(&self, out: &mut Out, i: usize) {
        out.dirty_grants.insert((self.org.id.clone(), self.grants[i].id.clone()));
    }

    /// A journal line of wallet `w` with no workspace, member, key, metadata or hold (callers set
    /// those that apply).
    #[expect(clippy::too_many_arguments, reason = "the columns every journal line has")]
    fn entry(
        &self,
        id: String,
        kind: EntryKind,
        w: usize,
        actor: &Actor,
        amount: i64,
        action: &str,
        splits: Splits,
        at: i64,
    ) -> EntryRow {
        let wal = &self.wallets[w];
        EntryRow {
            org_id: self.org.id.clone(),
            id,
            kind,
            wallet_id: wal.id.clone(),
            workspace_id: String::new(),
            actor_type: actor.kind,
            actor_id: actor.id.clone(),
            member_id: String::new(),
            key_id: String::new(),
            amount,
            action: action.into(),
            metadata: None,
            splits,
            hold_id: None,
            balance_after: wal.balance,
            at,
            seq: 0,
            headroom: None,
            idem_key: None,
            idem_fp: None,
        }
    }

    /// Journals `amount` of grant `grant` expiring from wallet `w` at `at` (the caller has taken
    /// it out of the grant and the wallet).
    fn journal_expiry(&self, out: &mut Out, w: usize, grant: &str, amount: i64, at: i64) {
        let splits = Splits::from_pairs([(grant.to_string(), amount)]);
        let e =
            self.entry(IdKind::Event.generate(), EntryKind::Expiry, w, &Actor::system(), amount, "expired", splits, at);
        out.writes.entries.push(e);
    }

    /// Records an audit event of this org, by the command's actor.
    #[expect(clippy::too_many_arguments, reason = "the columns of an audit event")]
    fn audit(
        &self,
        out: &mut Out,
        a: &crate::ActorRef,
        action: &str,
        workspace_id: Option<String>,
        target: (&str, String),
        detail: serde_json::Value,
        at: i64,
    ) {
        out.writes.audit.push(roost_store::AuditRow {
            org_id: self.org.id.clone(),
            id: IdKind::Audit.generate(),
            at,
            actor_type: a.actor.kind,
            actor_id: a.actor.id.clone(),
            action: action.into(),
            workspace_id,
            target_type: Some(target.0.into()),
            target_id: Some(target.1),
            ip: a.ip.clone(),
            detail: detail.to_string(),
        });
    }

    /// Adds a grant to wallet `wallet`, journaled; returns its index.
    fn add_grant(&mut self, out: &mut Out, wallet: usize, g: NewGrant, actor: &Actor, at: i64) -> usize {
        let w = &mut self.wallets[wallet];
        let row = GrantRow {
            org_id: self.org.id.clone(),
            id: IdKind::Grant.generate(),
            wallet_id: w.id.clone(),
            source: g.source,
            amount: g.amount,
            remaining: g.amount,
            reserved: 0,
            expired: 0,
            effective_at: g.effective_at,
            expires_at: g.expires_at,
            created_at: at,
            cycle_key: g.cycle_key,
            reason: g.reason,
            actor_type: actor.kind,
            actor_id: actor.id.clone(),
        };
        w.balance += g.amount;
        w.granted += g.amount;
        // Funded again: the next refusal for insufficient credits says so once more.
        w.depleted &= g.amount <= 0;
        let e = self.entry(
            row.id.clone(),
            EntryKind::Grant,
            wallet,
            actor,
            g.amount,
            g.source.as_str(),
            Splits::default(),
            at,
        );
        out.writes.entries.push(e);
        self.grants.push(row);
        let i = self.grants.len() - 1;
        self.touch_grant(out, i);
        self.touch_wallet(out, wallet);
        i
    }

    /// When something next falls due in this book: a cycle turn, a grant expiry or a hold expiry.
    pub fn next_event(&self) -> Option<i64> {
        let mut next = self.next_hold_expiry;
        let mut consider = |t: i64| next = Some(next.map_or(t, |n: i64| n.min(t)));
        for w in &self.wallets {
            if w.kind == CREDITS {
                consider(credits::cycle_start(w.anchor_at, w.cycle + 1));
            }
        }
        for g in &self.grants {
            if let Some(e) = g.expires_at.filter(|_| g.remaining > 0) {
                consider(e);
            }
        }
        next
    }

    /// Moves what changed into the batch's writes and drops grants with nothing left.
    pub fn flush(&mut self, out: &mut Out) {
        for w in &self.wallets {
            if out.dirty_wallets.remove(&(self.org.id.clone(), w.id.clone())) {
                out.writes.wallets.push(w.clone());
            }
        }
        for g in &self.grants {
            if out.dirty_grants.remove(&(self.org.id.clone(), g.id.clone())) {
                out.writes.grants.push(g.clone());
            }
        }
        self.grants.retain(|g| g.remaining > 0 || g.reserved > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActorRef, Command, Op, Refusal};

    fn book() -> Book {
        let org = LedgerOrg {
            id: "org_x".into(),
            kind: "org".into(),
            plan: "business".into(),
            plan_started_at: 0,
            trial_ends_at: None,
            deleted: false,
            version: None,
        };
        let mut b = Book::empty(org);
        let mut out = Out::default();
        b.refresh(1, &roost_domain::Catalog::builtin(), &[CREDITS.to_string()], Vec::new(), &mut out);
        b
    }

    fn topup(amount: i64) -> Command {
        Command {
            org_id: "org_x".into(),
            actor: ActorRef::user("usr_x", None),
            op: Op::Grant { wallet: CREDITS.into(), source: Source::Topup, amount, expires_at: None, reason: None },
            idem: None,
        }
    }

    #[test]
    fn a_wallet_is_never_granted_past_the_cap() {
        let mut b = book();
        assert_eq!((b.wallets[0].granted, b.wallets[0].balance), (5_000, 5_000), "business allocation");
        let mut out = Out::default();
        let mut holds = HashMap::new();
        let room = MAX_GRANTED - 5_000;
        assert!(b.apply(&topup(room), &mut holds, 2, &mut out).is_ok());
        let r = b.apply(&topup(1), &mut holds, 2, &mut out);
        assert_eq!(r, Err(Refusal::GrantCapExceeded { max: MAX_GRANTED }));
        assert_eq!((b.wallets[0].granted, b.wallets[0].balance), (MAX_GRANTED, MAX_GRANTED), "nothing changed");
    }
}

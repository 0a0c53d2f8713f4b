//! Bringing a book to the clock: wallets made on first use, cycle turns (allocation and capped
//! rollover, once per wallet and cycle), plan changes, grant expiries and holds that ran out, all in
//! time order.

use std::collections::VecDeque;

use roost_domain::credits::{self, Source};
use roost_domain::ledger::{Actor, HoldStatus};
use roost_domain::{Catalog, IdKind};
use roost_store::{HoldRow, WalletRow};

use super::{Book, CREDITS, NewGrant, Out};

impl Book {
    /// Expires what is left of every grant of `wallet` that expired by `t`.
    pub(super) fn expire_grants(&mut self, out: &mut Out, wallet: usize, t: i64) {
        let wid = self.wallets[wallet].id.clone();
        for i in 0..self.grants.len() {
            let g = &self.grants[i];
            if g.wallet_id != wid || g.remaining == 0 || g.expires_at.is_none_or(|e| e > t) {
                continue;
            }
            let left = g.remaining;
            let at = g.expires_at.unwrap_or(t);
            let gid = g.id.clone();
            self.grants[i].remaining = 0;
            self.grants[i].expired += left;
            let w = &mut self.wallets[wallet];
            w.balance -= left;
            w.expired += left;
            self.journal_expiry(out, wallet, &gid, left, at);
            self.touch_grant(out, i);
            self.touch_wallet(out, wallet);
        }
    }

    /// Brings the book to `now`: creates missing wallets, turns cycles (allocation and capped
    /// rollover, each exactly once per wallet and cycle), expires grants, and closes expired holds
    /// (`due_holds`, loaded by the engine).
    pub fn refresh(&mut self, now: i64, catalog: &Catalog, kinds: &[String], due_holds: Vec<HoldRow>, out: &mut Out) {
        let plan = catalog.get(&self.org.plan).cloned();
        let monthly = plan.as_ref().and_then(|p| p.monthly_credits).unwrap_or(0);
        let cap = plan.as_ref().and_then(|p| p.rollover_cap);
        let anchor = self.org.plan_started_at;
        for kind in kinds {
            if self.wallet_idx(kind).is_some() {
                continue;
            }
            let (cycle, start, end) = credits::cycle_at(anchor, now.max(anchor));
            self.wallets.push(WalletRow {
                org_id: self.org.id.clone(),
                id: IdKind::Wallet.generate(),
                kind: kind.clone(),
                balance: 0,
                held: 0,
                granted: 0,
                charged: 0,
                expired: 0,
                anchor_at: anchor,
                cycle,
                allowance: 0,
                created_at: now,
                low_balance: None,
                depleted: false,
                reload: roost_store::AutoReload::default(),
            });
            let w = self.wallets.len() - 1;
            self.touch_wallet(out, w);
            if kind == CREDITS && monthly > 0 {
                match self.org.trial_ends_at {
                    Some(t) if t > now => {
                        let g = NewGrant {
                            source: Source::Trial,
                            amount: monthly,
                            effective_at: now,
                            expires_at: Some(t),
                            cycle_key: Some("trial".into()),
                            reason: None,
                        };
                        self.add_grant(out, w, g, &Actor::system(), now);
                    }
                    _ => {
                        let g = NewGrant {
                            source: Source::Allocation,
                            amount: monthly,
                            effective_at: start,
                            expires_at: Some(end),
                            cycle_key: Some(format!("alloc:{anchor}:{cycle}")),
                            reason: None,
                        };
                        self.add_grant(out, w, g, &Actor::system(), now);
                        self.wallets[w].allowance = monthly;
                    }
                }
            }
        }
        // Everything that fell due since the last batch, in time order: hold expiries (a hold
        // expiring at or before a turn gives its credits back before the rollover is computed),
        // cycle turns, grant expiries.
        let mut due: Vec<HoldRow> =
            due_holds.into_iter().filter(|h| h.status == HoldStatus::Open && h.expires_at <= now).collect();
        due.sort_by_key(|h| h.expires_at);
        let mut due = VecDeque::from(due);
        if let Some(w) = self.wallet_idx(CREDITS) {
            if self.wallets[w].anchor_at != anchor && anchor <= now {
                // A plan change restarts the cycle at the change: the turns that fell before it
                // first; then the current allocation ends, and the new plan's allocation is its
                // allowance less what this cycle already used of the old one (so changing plans
                // back and forth mints nothing).
                self.run_turns(w, anchor, monthly, cap, &mut due, out);
                self.close_due(&mut due, anchor, out);
                let old = (self.wallets[w].anchor_at, self.wallets[w].cycle);
                let end = credits::cycle_start(anchor, 1);
                self.change_turn(w, old, anchor, end, monthly, out);
                self.wallets[w].anchor_at = anchor;
                self.wallets[w].cycle = 0;
                self.touch_wallet(out, w);
            }
            self.run_turns(w, now, monthly, cap, &mut due, out);
        }
        self.close_due(&mut due, now, out);
        for w in 0..self.wallets.len() {
            self.expire_grants(out, w, now);
        }
    }

    /// Closes, in order, the expired holds of `due` that expired by `t`. Grants that expired before
    /// a hold are expired first, so what the hold returns to them expires (journaled).
    fn close_due(&mut self, due: &mut VecDeque<HoldRow>, t: i64, out: &mut Out) {
        while due.front().is_some_and(|h| h.expires_at <= t) {
            let Some(h) = due.pop_front() else { break };
            let te = h.expires_at;
            for w in 0..self.wallets.len() {
                self.expire_grants(out, w, te - 1);
            }
            self.close_hold(h, HoldStatus::Expired, 0, None, te, true, out);
        }
    }

    /// Turns the cycles of wallet `w` that start by `until`, closing the holds that expired before
    /// each turn first.
    fn run_turns(
        &mut self,
        w: usize,
        until: i64,
        monthly: i64,
        cap: Option<i64>,
        due: &mut VecDeque<HoldRow>,
        out: &mut Out,
    ) {
        loop {
            let (a, c) = (self.wallets[w].anchor_at, self.wallets[w].cycle);
            let t = credits::cycle_start(a, c + 1);
            if t > until {
                break;
            }
            self.close_due(due, t, out);
            let end = credits::cycle_start(a, c + 2);
            self.turn(w, (a, c), (a, c + 1), t, end, monthly, cap, out);
            self.wallets[w].cycle = c + 1;
            self.touch_wallet(out, w);
            let wal = &self.wallets[w];
            let data = serde_json::json!({"wallet_id": wal.id, "kind": wal.kind, "cycle": c + 1,
                "allocation": monthly, "started_at": roost_domain::time::to_rfc3339(t),
                "ends_at": roost_domain::time::to_rfc3339(end)});
            self.event(out, roost_domain::ledger::EventType::CycleStarted, None, data, t);
        }
    }

    /// Ends cycle `from`'s allocation of wallet `w` at `t` (even when a plan change cuts its cycle
    /// short, and written even when all it has left is reserved by holds), expires what expired by
    /// `t`, and returns what the allocation had left.
    fn end_allocation(&mut self, w: usize, from: (i64, i64), t: i64, out: &mut Out) -> i64 {
        let wid = self.wallets[w].id.clone();
        let from_key = format!("alloc:{}:{}", from.0, from.1);
        let mut left = 0;
        if let Some(i) =
            self.grants.iter().position(|g| g.wallet_id == wid && g.cycle_key.as_deref() == Some(from_key.as_str()))
        {
            let g = &mut self.grants[i];
            g.expires_at = Some(g.expires_at.map_or(t, |e| e.min(t)));
            left = g.remaining;
            self.touch_grant(out, i);
        }
        self.expire_grants(out, w, t);
        left
    }

    /// The turn a plan change makes at `t`: the cycle `from`'s allocation ends (what is left of it
    /// expires, no rollover), and the new allocation is `monthly` less what the cycle used of the
    /// old allowance; the next cycle turns at `end`.
    fn change_turn(&mut self, w: usize, from: (i64, i64), t: i64, end: i64, monthly: i64, out: &mut Out) {
        let left = self.end_allocation(w, from, t, out);
        let used = (self.wallets[w].allowance - left).max(0);
        let amount = (monthly - used).max(0);
        if amount > 0 {
            let g = NewGrant {
                source: Source::Allocation,
                amount,
                effective_at: t,
                expires_at: Some(end),
                cycle_key: Some(format!("alloc:{t}:0")),
                reason: Some(format!("plan change: allowance {monthly}, {used} already used this cycle")),
            };
            self.add_grant(out, w, g, &Actor::system(), t);
        }
        self.wallets[w].allowance = monthly;
    }

    /// One cycle turn at `t`: roll over what is left of cycle `from`'s allocation (capped), expire
    /// what expired by `t`, grant cycle `to`'s allocation. Both new grants expire at `end`.
    #[expect(clippy::too_many_arguments, reason = "a turn's cycle, times and plan terms")]
    fn turn(
        &mut self,
        w: usize,
        from: (i64, i64),
        to: (i64, i64),
        t: i64,
        end: i64,
        monthly: i64,
        cap: Option<i64>,
        out: &mut Out,
    ) {
        let left = self.end_allocation(w, from, t, out);
        let rolled = credits::rollover(left, cap);
        let next = |source, amount, key: String| NewGrant {
            source,
            amount,
            effective_at: t,
            expires_at: Some(end),
            cycle_key: Some(key),
            reason: None,
        };
        if rolled > 0 {
            let g = next(Source::Rollover, rolled, format!("roll:{}:{}", to.0, to.1));
            self.add_grant(out, w, g, &Actor::system(), t);
        }
        if monthly > 0 {
            let g = next(Source::Allocation, monthly, format!("alloc:{}:{}", to.0, to.1));
            self.add_grant(out, w, g, &Actor::system(), t);
        }
        self.wallets[w].allowance = monthly;
    }
}

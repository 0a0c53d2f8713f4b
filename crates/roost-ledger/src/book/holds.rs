//! Holds: reserving credits, settling part or all of them as a charge, releasing them, and
//! giving back what a hold reserved when it closes (to grants that may have expired meanwhile).

use std::collections::HashMap;

use roost_domain::IdKind;
use roost_domain::ledger::{HoldStatus, Refusal};
use roost_store::{EntryRow, HoldRow};

use super::draw::ChargeLine;
use super::{Book, Out};
use crate::ActorRef;

/// The holds a batch refers to, by id, as the batch has changed them so far.
pub type Holds = HashMap<String, HoldRow>;

impl Book {
    /// Closes an open hold as `status`: takes `charged` of it out of the wallet (the caller
    /// journals that charge; its balance after is returned), returns the rest to its grants, where
    /// what returns to a grant that expired meanwhile expires (journaled), and takes the hold out
    /// of `held` and the budget counters.
    #[expect(clippy::too_many_arguments, reason = "how and when the hold closes")]
    pub(super) fn close_hold(
        &mut self,
        mut h: HoldRow,
        status: HoldStatus,
        charged: i64,
        charge_id: Option<String>,
        at: i64,
        // Expiring by time: a grant expiring at the very instant the hold does still takes back
        // its part (a cycle turn at that instant then rolls it over).
        strict: bool,
        out: &mut Out,
    ) -> (HoldRow, i64) {
        let Some(w) = self.wallet_idx(&h.wallet_id) else {
            return (h, 0);
        };
        let wal = &mut self.wallets[w];
        wal.held -= h.amount;
        wal.balance -= charged;
        wal.charged += charged;
        let after_charge = wal.balance;
        self.touch_wallet(out, w);
        let mut to_charge = charged;
        for part in &h.splits.0 {
            let take = part.amount.min(to_charge);
            to_charge -= take;
            let back = part.amount - take;
            let Some(i) = self.grants.iter().position(|g| g.id == part.grant_id) else { continue };
            let g = &mut self.grants[i];
            g.reserved -= part.amount;
            if back > 0 {
                if g.expires_at.is_some_and(|e| if strict { e < at } else { e <= at }) {
                    g.expired += back;
                    let wal = &mut self.wallets[w];
                    wal.balance -= back;
                    wal.expired += back;
                    self.journal_expiry(out, w, &part.grant_id, back, at);
                } else {
                    g.remaining += back;
                }
            }
            self.touch_grant(out, i);
        }
        let delta = charged - h.amount;
        self.count(out, &h.workspace_id, &h.member_id, &h.key_id, h.period_start, delta);
        h.status = status;
        h.closed_at = Some(at);
        h.charge_id = charge_id;
        out.writes.holds.push(h.clone());
        out.dirty_orgs.insert(self.org.id.clone());
        (h, after_charge)
    }

    /// The open hold `hold_id` of this org (closing it first if it expired).
    fn open_hold(&mut self, holds: &mut Holds, hold_id: &str, now: i64, out: &mut Out) -> Result<HoldRow, Refusal> {
        let Some(mut h) = holds.get(hold_id).filter(|h| h.org_id == self.org.id).cloned() else {
            return Err(Refusal::NotFound);
        };
        if h.status == HoldStatus::Open && h.expires_at <= now {
            let at = h.expires_at;
            h = self.close_hold(h, HoldStatus::Expired, 0, None, at, false, out).0;
            holds.insert(h.id.clone(), h.clone());
        }
        if h.status != HoldStatus::Open {
            return Err(Refusal::HoldClosed { status: h.status });
        }
        Ok(h)
    }

    /// Reserves `amount` for `ttl_ms`.
    #[expect(clippy::too_many_arguments, reason = "the fields of a hold")]
    pub(super) fn hold(
        &mut self,
        out: &mut Out,
        holds: &mut Holds,
        a: &ActorRef,
        workspace_id: &str,
        wallet: &str,
        amount: i64,
        action: &str,
        ttl_ms: i64,
        now: i64,
    ) -> Result<HoldRow, Refusal> {
        let (w, splits) = self.admit(out, workspace_id, a, wallet, amount, now, true)?;
        self.wallets[w].held += amount;
        let expires_at = now.saturating_add(ttl_ms);
        let h = HoldRow {
            org_id: self.org.id.clone(),
            id: IdKind::Hold.generate(),
            wallet_id: self.wallets[w].id.clone(),
            workspace_id: workspace_id.to_string(),
            actor_type: a.actor.kind,
            actor_id: a.actor.id.clone(),
            member_id: a.member_id.clone(),
            key_id: a.key_id.clone(),
            action: action.to_string(),
            amount,
            splits,
            status: HoldStatus::Open,
            period_start: self.period.0,
            expires_at,
            created_at: now,
            closed_at: None,
            charge_id: None,
        };
        self.next_hold_expiry = Some(self.next_hold_expiry.map_or(expires_at, |e| e.min(expires_at)));
        out.writes.holds.push(h.clone());
        holds.insert(h.id.clone(), h.clone());
        Ok(h)
    }

    /// Charges `amount` (≤ held) of a hold, as its creator, and gives back the rest.
    pub(super) fn settle(
        &mut self,
        out: &mut Out,
        holds: &mut Holds,
        hold_id: &str,
        amount: i64,
        now: i64,
    ) -> Result<(EntryRow, HoldRow, i64), Refusal> {
        let h = self.open_hold(holds, hold_id, now, out)?;
        if amount > h.amount {
            return Err(Refusal::SettleExceedsHold { amount, held: h.amount });
        }
        let w = self.wallet_idx(&h.wallet_id).ok_or(Refusal::NotFound)?;
        let splits = h.splits.take(amount);
        let charge_id = IdKind::Charge.generate();
        let mark = out.writes.entries.len();
        let (closed, after_charge) =
            self.close_hold(h, HoldStatus::Settled, amount, Some(charge_id.clone()), now, false, out);
        holds.insert(closed.id.clone(), closed.clone());
        // The charge is made as the hold's creator.
        let creator = ActorRef {
            actor: roost_domain::ledger::Actor { kind: closed.actor_type, id: closed.actor_id.clone() },
            member_id: closed.member_id.clone(),
            key_id: closed.key_id.clone(),
            spend_limit: None,
            ip: None,
        };
        let line = ChargeLine {
            id: charge_id,
            workspace_id: &closed.workspace_id,
            actor: &creator,
            amount,
            action: &closed.action,
            metadata: None,
            splits,
            hold_id: Some(closed.id.clone()),
            balance_after: after_charge,
            headroom: None,
        };
        let e = self.journal_charge(out, w, line, now);
        // The charge comes before the expiries of what it returned.
        out.writes.entries[mark..].rotate_right(1);
        let released = closed.amount - amount;
        Ok((e, closed, released))
    }

    /// Gives a hold back whole.
    pub(super) fn release(
        &mut self,
        out: &mut Out,
        holds: &mut Holds,
        hold_id: &str,
        now: i64,
    ) -> Result<HoldRow, Refusal> {
        let h = self.open_hold(holds, hold_id, now, out)?;
        let (closed, _) = self.close_hold(h, HoldStatus::Released, 0, None, now, false, out);
        holds.insert(closed.id.clone(), closed.clone());
        Ok(closed)
    }
}

//! Drawing credits: admitting a charge or a hold (the wallet exists, no budget is passed, the
//! grants can cover it), the draw-down itself, and journaling a charge with its attribution.

use roost_domain::IdKind;
use roost_domain::credits;
use roost_domain::ledger::{BudgetScope, EntryKind, Refusal, Splits};
use roost_store::EntryRow;

use super::{Book, G, Out};
use crate::ActorRef;

/// A charge to journal: who, where, what for, paid by which grants.
pub(super) struct ChargeLine<'a> {
    pub id: String,
    pub workspace_id: &'a str,
    pub actor: &'a ActorRef,
    pub amount: i64,
    pub action: &'a str,
    pub metadata: Option<String>,
    pub splits: Splits,
    pub hold_id: Option<String>,
    /// The wallet's balance right after this charge.
    pub balance_after: i64,
    /// What the charge's answer says is left (see `Book::headroom`), for a charge made directly.
    pub headroom: Option<String>,
}

impl Book {
    /// Draws `amount` from wallet `w` in draw-down order (reserving it, for a hold), or refuses
    /// with what is available.
    pub(super) fn draw(
        &mut self,
        out: &mut Out,
        w: usize,
        amount: i64,
        now: i64,
        reserve: bool,
    ) -> Result<Splits, Refusal> {
        let wid = self.wallets[w].id.clone();
        let idx: Vec<usize> = (0..self.grants.len()).filter(|&i| self.grants[i].wallet_id == wid).collect();
        let view: Vec<G<'_>> = idx.iter().map(|&i| G(&self.grants[i])).collect();
        let Some(plan) = credits::plan_draw(&view, amount, now) else {
            return Err(Refusal::InsufficientCredits { needed: amount, available: credits::available(&view, now) });
        };
        let mut parts = Vec::with_capacity(plan.len());
        for (vi, take) in plan {
            let i = idx[vi];
            let g = &mut self.grants[i];
            g.remaining -= take;
            if reserve {
                g.reserved += take;
            }
            parts.push((g.id.clone(), take));
            self.touch_grant(out, i);
        }
        Ok(Splits::from_pairs(parts))
    }

    /// Admits a charge or a hold of `amount` by `a` in workspace `ws`: the wallet exists, no budget
    /// is passed, the wallet can cover it. Draws it (reserving it, for a hold) and counts it toward
    /// the budgets. Returns the wallet and the splits.
    #[expect(clippy::too_many_arguments, reason = "what a draw needs to know")]
    pub(super) fn admit(
        &mut self,
        out: &mut Out,
        ws: &str,
        a: &ActorRef,
        wallet: &str,
        amount: i64,
        now: i64,
        reserve: bool,
    ) -> Result<(usize, Splits), Refusal> {
        let w = self.wallet_idx(wallet).ok_or(Refusal::UnknownWallet)?;
        self.check_budgets(ws, a, amount)?;
        let parts = self.draw(out, w, amount, now, reserve)?;
        self.touch_wallet(out, w);
        let before = self.used(BudgetScope::Workspace, ws);
        self.count(out, ws, &a.member_id, &a.key_id, self.period.0, amount);
        self.alerts(out, ws, before, before + amount, now);
        Ok((w, parts))
    }

    /// Journals a charge of wallet `w` (whose balance the caller has already lowered) and adds it
    /// to the batch's hourly rollups.
    pub(super) fn journal_charge(&mut self, out: &mut Out, w: usize, c: ChargeLine<'_>, at: i64) -> EntryRow {
        let a = c.actor;
        let mut e = self.entry(c.id, EntryKind::Charge, w, &a.actor, c.amount, c.action, c.splits, at);
        e.workspace_id = c.workspace_id.to_string();
        e.member_id.clone_from(&a.member_id);
        e.key_id.clone_from(&a.key_id);
        e.metadata = c.metadata;
        e.hold_id = c.hold_id;
        e.balance_after = c.balance_after;
        e.headroom = c.headroom;
        let hour = at.div_euclid(3_600_000) * 3_600_000;
        let r = out
            .writes
            .rollups
            .entry((
                self.org.id.clone(),
                hour,
                e.wallet_id.clone(),
                e.workspace_id.clone(),
                e.member_id.clone(),
                e.key_id.clone(),
                e.action.clone(),
            ))
            .or_default();
        r.0 += c.amount;
        r.1 += 1;
        out.writes.entries.push(e.clone());
        e
    }

    /// A charge: admitted, taken out of the wallet, journaled.
    #[expect(clippy::too_many_arguments, reason = "the fields of a charge")]
    pub(super) fn charge(
        &mut self,
        out: &mut Out,
        a: &ActorRef,
        workspace_id: &str,
        wallet: &str,
        amount: i64,
        action: &str,
        metadata: Option<String>,
        now: i64,
    ) -> Result<EntryRow, Refusal> {
        let (w, splits) = self.admit(out, workspace_id, a, wallet, amount, now, false)?;
        let wal = &mut self.wallets[w];
        wal.balance -= amount;
        wal.charged += amount;
        let headroom = Some(self.headroom(&self.wallets[w].id, workspace_id, a));
        let line = ChargeLine {
            id: IdKind::Charge.generate(),
            workspace_id,
            actor: a,
            amount,
            action,
            metadata,
            splits,
            hold_id: None,
            balance_after: self.wallets[w].balance,
            headroom,
        };
        Ok(self.journal_charge(out, w, line, now))
    }
}

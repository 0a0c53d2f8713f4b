//! One command applied to a book: its [`Outcome`], or the [`Refusal`] that leaves the book as it
//! was. Top-ups and adjustments live here; the other commands' rules have their own files.

use roost_domain::IdKind;
use roost_domain::credits::Source;
use roost_domain::ledger::{EntryKind, EventType, Refusal};
use serde_json::json;

use super::holds::Holds;
use super::{Book, MAX_GRANTED, NewGrant, Out};
use crate::{ActorRef, Answer, Command, Op, Outcome};

impl Book {
    /// Applies one command at `now`. `holds` carries the holds the batch refers to, as changed by
    /// the batch so far.
    pub fn apply(&mut self, cmd: &Command, holds: &mut Holds, now: i64, out: &mut Out) -> Answer {
        out.dirty_orgs.insert(self.org.id.clone());
        // What the wallets had, for the alerts and reloads that watch them; most books have none,
        // and then the charge path skips the draw-down scan this takes.
        let before = if self.watched() { self.availables(now) } else { Vec::new() };
        let mut answer = self.apply_op(cmd, holds, now, out);
        match &answer {
            Ok(_) => self.after_success(out, cmd, &before, now),
            Err(r) => self.after_refusal(out, cmd, r, now),
        }
        if !before.is_empty() {
            self.count_the_reload(&mut answer, cmd, out);
        }
        answer
    }

    /// What the answer of a charge or hold says is left counts a reload the same command made
    /// (found by review: the answer and `Roost-Credits-Available` were short by the reload). The
    /// charge's `balance_after` stays what the journal says: the reload is the entry after it.
    fn count_the_reload(&self, answer: &mut Answer, cmd: &Command, out: &mut Out) {
        match answer {
            Ok(Outcome::Charged { charge }) => {
                let h = self.headroom(&charge.wallet_id, &charge.workspace_id, &cmd.actor);
                if let Some(e) = out.writes.entries.iter_mut().rev().find(|e| e.id == charge.id) {
                    e.headroom = Some(h.clone());
                }
                charge.headroom = Some(h);
            }
            Ok(Outcome::Held { hold, headroom }) => {
                *headroom = Some(self.headroom(&hold.wallet_id, &hold.workspace_id, &cmd.actor));
            }
            _ => {}
        }
    }

    fn apply_op(&mut self, cmd: &Command, holds: &mut Holds, now: i64, out: &mut Out) -> Answer {
        let a = &cmd.actor;
        match &cmd.op {
            Op::Charge { workspace_id, wallet, amount, action, metadata } => self
                .charge(out, a, workspace_id, wallet, *amount, action, metadata.clone(), now)
                .map(|charge| Outcome::Charged { charge }),
            Op::Hold { workspace_id, wallet, amount, action, ttl_ms } => {
                self.hold(out, holds, a, workspace_id, wallet, *amount, action, *ttl_ms, now).map(|hold| {
                    let headroom = Some(self.headroom(&hold.wallet_id, workspace_id, a));
                    Outcome::Held { hold, headroom }
                })
            }
            Op::Settle { hold_id, amount } => self
                .settle(out, holds, hold_id, *amount, now)
                .map(|(charge, hold, released)| Outcome::Settled { charge, hold, released }),
            Op::Release { hold_id } => self.release(out, holds, hold_id, now).map(|hold| Outcome::Released { hold }),
            Op::Grant { wallet, source, amount, expires_at, reason } => {
                self.grant(out, a, wallet, *source, *amount, *expires_at, reason.as_ref(), now)
            }
            Op::SetBudget { workspace_id, user_id, limit, alert_percents } => Ok(Outcome::Budget(self.set_budget(
                out,
                a,
                workspace_id,
                user_id.as_deref(),
                *limit,
                alert_percents,
                now,
            ))),
            Op::SetAlerts { wallet, low_balance } => {
                let w = self.set_alerts(out, a, wallet, *low_balance, now)?;
                Ok(Outcome::Wallet { wallet: self.wallets[w].clone() })
            }
            Op::SetAutoReload { wallet, settings } => {
                let w = self.set_auto_reload(out, a, wallet, *settings, now)?;
                Ok(Outcome::Wallet { wallet: self.wallets[w].clone() })
            }
            Op::PauseAutoReload { wallet, reason } => {
                let w = self.pause_auto_reload(out, a, wallet, reason.clone(), now)?;
                Ok(Outcome::Wallet { wallet: self.wallets[w].clone() })
            }
            Op::Tick => Ok(Outcome::Ticked),
        }
    }

    /// A top-up or an owner's adjustment: a positive amount is a new grant, a negative one is drawn
    /// like a charge (outside budgets and usage) and journaled as an adjustment. Audited.
    #[expect(clippy::too_many_arguments, reason = "the fields of a grant")]
    fn grant(
        &mut self,
        out: &mut Out,
        a: &ActorRef,
        wallet: &str,
        source: Source,
        amount: i64,
        expires_at: Option<i64>,
        reason: Option<&String>,
        now: i64,
    ) -> Answer {
        let w = self.wallet_idx(wallet).ok_or(Refusal::NotFound)?;
        if amount.checked_abs().is_none() || self.wallets[w].granted.checked_add(amount).is_none_or(|g| g > MAX_GRANTED)
        {
            return Err(Refusal::GrantCapExceeded { max: MAX_GRANTED });
        }
        let action = if source == Source::Topup { "wallet.topped_up" } else { "wallet.adjusted" };
        let (target, outcome) = if amount >= 0 {
            let g =
                NewGrant { source, amount, effective_at: now, expires_at, cycle_key: None, reason: reason.cloned() };
            let i = self.add_grant(out, w, g, &a.actor, now);
            let grant = self.grants[i].clone();
            (grant.id.clone(), Outcome::Granted { grant })
        } else {
            let splits = self.draw(out, w, -amount, now, false)?;
            let wal = &mut self.wallets[w];
            wal.balance += amount;
            wal.charged -= amount;
            self.touch_wallet(out, w);
            let mut e = self.entry(
                IdKind::Charge.generate(),
                EntryKind::Adjustment,
                w,
                &a.actor,
                -amount,
                "adjustment",
                splits,
                now,
            );
            e.member_id.clone_from(&a.member_id);
            e.metadata = reason.map(|r| json!({"reason": r}).to_string());
            out.writes.entries.push(e.clone());
            (e.id.clone(), Outcome::Debited { entry: e })
        };
        if source == Source::Topup && amount > 0 {
            let data = json!({"wallet_id": self.wallets[w].id, "amount": amount, "grant_id": target});
            self.event(out, EventType::ToppedUp, None, data, now);
        }
        let detail = json!({"amount": amount, "source": source.as_str(), "reason": reason, "entry": target});
        self.audit(out, a, action, None, ("wallet", self.wallets[w].id.clone()), detail, now);
        Ok(outcome)
    }
}

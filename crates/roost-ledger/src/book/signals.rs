//! What a book tells the world as it changes (API.md "Events and webhooks", "Wallet alerts and
//! auto-reload"): events written with the batch, each once per crossing — decided here, on the book
//! the org's lock makes current, so concurrent charges and several processes cannot send one twice —
//! and the auto-reload that a crossing triggers, in the same transaction.

use roost_domain::credits::Source;
use roost_domain::ledger::{Actor, EventType, Refusal};
use roost_domain::{IdKind, credits, time};
use roost_store::{AutoReload, EventRow};
use serde_json::{Value, json};

use super::{Book, G, MAX_GRANTED, NewGrant, Out};
use crate::{Command, Op};

/// Auto-reload settings as set through the API (the month's tally is the book's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadSettings {
    pub enabled: bool,
    pub threshold: i64,
    pub amount: i64,
    pub monthly_max: i64,
}

impl Book {
    /// Records an event of this org.
    pub(super) fn event(&self, out: &mut Out, kind: EventType, ws: Option<&str>, data: Value, at: i64) {
        out.writes.events.push(EventRow {
            org_id: self.org.id.clone(),
            id: IdKind::Event.generate(),
            kind,
            workspace_id: ws.map(str::to_string),
            data: data.to_string(),
            created_at: at,
        });
    }

    /// Wallet `w`'s available credits at `now`.
    pub(super) fn available(&self, w: usize, now: i64) -> i64 {
        let id = &self.wallets[w].id;
        let view: Vec<G<'_>> = self.grants.iter().filter(|g| &g.wallet_id == id).map(G).collect();
        credits::available(&view, now)
    }

    /// Whether any wallet has something watching its available credits: a low-balance threshold,
    /// an auto-reload, or a reload waiting to be armed again. Without one, nothing after a command
    /// can fire.
    pub(super) fn watched(&self) -> bool {
        self.wallets.iter().any(|w| w.low_balance.is_some() || w.reload.enabled || !w.reload.armed)
    }

    /// Every wallet's available credits, before a command.
    pub(super) fn availables(&self, now: i64) -> Vec<i64> {
        (0..self.wallets.len()).map(|w| self.available(w, now)).collect()
    }

    /// After a command that succeeded (`before`: empty when nothing is [`Book::watched`]): a charge or hold that leaves a wallet's available credits
    /// below its auto-reload threshold reloads it once (or says why not) while the reload is armed
    /// — it is disarmed by the reload and armed again once available is back at or above the
    /// threshold, so many charges crossing together reload once, and a wallet that fell below it
    /// some other way (an expiry, an adjustment) reloads at its next charge. Then a wallet whose
    /// available credits crossed its low-balance threshold downward, the reload counted, sends
    /// `credits.low_balance`.
    pub(super) fn after_success(&mut self, out: &mut Out, cmd: &Command, before: &[i64], now: i64) {
        let drew = matches!(cmd.op, Op::Charge { .. } | Op::Hold { .. });
        for (w, &was) in before.iter().enumerate() {
            let mut is = self.available(w, now);
            let r = &self.wallets[w].reload;
            if drew && is < was && r.enabled && r.armed && is < r.threshold {
                self.reload(out, w, is, now);
                is = self.available(w, now);
            }
            let wal = &self.wallets[w];
            if let Some(t) = wal.low_balance.filter(|t| was >= *t && is < *t) {
                let data = json!({"wallet_id": wal.id, "kind": wal.kind, "available": is, "threshold": t});
                self.event(out, EventType::LowBalance, None, data, now);
            }
        }
        // Re-arming looks at every disarmed wallet, also after a command that started with nothing
        // watched (setting auto-reload may reload, and disarm, at once).
        for w in 0..self.wallets.len() {
            if !self.wallets[w].reload.armed && self.available(w, now) >= self.wallets[w].reload.threshold {
                self.wallets[w].reload.armed = true;
                self.touch_wallet(out, w);
            }
        }
    }

    /// One auto-reload of wallet `w`, or the event that says why there was none.
    fn reload(&mut self, out: &mut Out, w: usize, available: i64, now: i64) {
        let month = time::month_start(now);
        let wal = &mut self.wallets[w];
        if wal.reload.month != month {
            wal.reload.month = month;
            wal.reload.month_total = 0;
        }
        wal.reload.armed = false;
        let r = wal.reload.clone();
        let wallet_id = wal.id.clone();
        let over_cap = wal.granted.checked_add(r.amount).is_none_or(|g| g > MAX_GRANTED);
        self.touch_wallet(out, w);
        let refused = if let Some(p) = r.paused.as_deref() {
            Some(if p == "payment_failed" { "payment_failed" } else { "payment_pending" })
        } else if r.month_total.saturating_add(r.amount) > r.monthly_max {
            Some("monthly_max")
        } else if over_cap {
            Some("grant_cap")
        } else {
            None
        };
        if let Some(reason) = refused {
            let data = json!({"wallet_id": wallet_id, "reason": reason, "amount": r.amount,
                "monthly_max": r.monthly_max, "reloaded_this_month": r.month_total, "available": available});
            self.event(out, EventType::AutoReloadFailed, None, data, now);
            return;
        }
        let g = NewGrant {
            source: Source::Topup,
            amount: r.amount,
            effective_at: now,
            expires_at: None,
            cycle_key: Some(format!("reload:{}", IdKind::Event.generate())),
            reason: Some("auto_reload".into()),
        };
        let i = self.add_grant(out, w, g, &Actor::system(), now);
        self.wallets[w].reload.month_total += r.amount;
        let grant_id = self.grants[i].id.clone();
        let data = json!({"wallet_id": wallet_id, "amount": r.amount, "grant_id": grant_id, "threshold": r.threshold,
            "reloaded_this_month": r.month_total + r.amount, "monthly_max": r.monthly_max});
        self.event(out, EventType::AutoReloaded, None, data, now);
    }

    /// After a refusal: `credits.depleted` once until the wallet is funded again, and
    /// `budget.exceeded` once per budget per cycle.
    pub(super) fn after_refusal(&mut self, out: &mut Out, cmd: &Command, refusal: &Refusal, now: i64) {
        let (Op::Charge { workspace_id, wallet, .. } | Op::Hold { workspace_id, wallet, .. }) = &cmd.op else {
            return;
        };
        match refusal {
            Refusal::InsufficientCredits { needed, available } => {
                let Some(w) = self.wallet_idx(wallet) else { return };
                if self.wallets[w].depleted {
                    return;
                }
                self.wallets[w].depleted = true;
                self.touch_wallet(out, w);
                let wal = &self.wallets[w];
                let data = json!({"wallet_id": wal.id, "kind": wal.kind, "needed": needed, "available": available});
                self.event(out, EventType::Depleted, Some(workspace_id), data, now);
            }
            Refusal::BudgetExceeded { scope, limit, used, resets_at } => {
                let a = &cmd.actor;
                let subject = scope.subject(workspace_id, &a.member_id, &a.key_id);
                if !self.exceeded.insert((*scope, subject.clone())) {
                    return;
                }
                out.writes.exceeded.push((self.org.id.clone(), *scope, subject.clone(), self.period.0));
                let data = json!({"scope": scope.as_str(), "workspace_id": workspace_id, "subject": subject,
                    "limit": limit, "used": used, "resets_at": time::to_rfc3339(*resets_at)});
                self.event(out, EventType::BudgetExceeded, Some(workspace_id), data, now);
            }
            _ => {}
        }
    }

    /// Sets (`Some`) or clears the low-balance threshold of a wallet; audited.
    pub(super) fn set_alerts(
        &mut self,
        out: &mut Out,
        a: &crate::ActorRef,
        wallet: &str,
        low_balance: Option<i64>,
        now: i64,
    ) -> Result<usize, Refusal> {
        let w = self.wallet_idx(wallet).ok_or(Refusal::NotFound)?;
        self.wallets[w].low_balance = low_balance;
        self.touch_wallet(out, w);
        let target = ("wallet", self.wallets[w].id.clone());
        self.audit(out, a, "wallet.alerts_set", None, target, json!({"low_balance": low_balance}), now);
        Ok(w)
    }

    /// Pauses (or resumes) a wallet's auto-reloads for billing; audited when it changes anything.
    pub(super) fn pause_auto_reload(
        &mut self,
        out: &mut Out,
        a: &crate::ActorRef,
        wallet: &str,
        reason: Option<String>,
        now: i64,
    ) -> Result<usize, Refusal> {
        let w = self.wallet_idx(wallet).ok_or(Refusal::NotFound)?;
        if self.wallets[w].reload.paused == reason {
            return Ok(w);
        }
        self.wallets[w].reload.paused.clone_from(&reason);
        self.touch_wallet(out, w);
        let target = ("wallet", self.wallets[w].id.clone());
        let action = if reason.is_some() { "wallet.auto_reload_paused" } else { "wallet.auto_reload_resumed" };
        self.audit(out, a, action, None, target, json!({"reason": reason}), now);
        Ok(w)
    }

    /// Sets a wallet's auto-reload, armed; audited. This month's tally stays. A wallet already below
    /// the new threshold reloads at once (else nothing would lift it: a wallet with nothing left
    /// refuses every charge, and only a charge that succeeds can trigger a reload).
    pub(super) fn set_auto_reload(
        &mut self,
        out: &mut Out,
        a: &crate::ActorRef,
        wallet: &str,
        s: ReloadSettings,
        now: i64,
    ) -> Result<usize, Refusal> {
        let w = self.wallet_idx(wallet).ok_or(Refusal::NotFound)?;
        let r = &mut self.wallets[w].reload;
        *r = AutoReload {
            enabled: s.enabled,
            threshold: s.threshold,
            amount: s.amount,
            monthly_max: s.monthly_max,
            armed: true,
            ..r.clone()
        };
        self.touch_wallet(out, w);
        let target = ("wallet", self.wallets[w].id.clone());
        let detail =
            json!({"enabled": s.enabled, "threshold": s.threshold, "amount": s.amount, "monthly_max": s.monthly_max});
        self.audit(out, a, "wallet.auto_reload_set", None, target, detail, now);
        let available = self.available(w, now);
        if s.enabled && available < s.threshold {
            self.reload(out, w, available, now);
        }
        Ok(w)
    }
}

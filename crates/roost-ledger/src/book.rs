//! One org's ledger in memory, and the rules that change it. The engine loads a [`Book`] under the
//! org's lock (or trusts its cached copy when the stored version says nobody else wrote since),
//! applies commands in order, and writes what changed. Nothing here does I/O.

use std::collections::{HashMap, HashSet};

use roost_domain::credits::{self, Drawable, Source};
use roost_domain::time::to_rfc3339;
use roost_domain::{Catalog, IdKind};
use roost_store::{AuditRow, BudgetRow, EntryRow, GrantRow, HoldRow, IdemRow, LedgerOrg, LedgerWrites, WalletRow};
use serde_json::{Value, json};

use crate::{ActorRef, Command, Op, Reply};

/// The most a wallet may be granted over its life: every sum the ledger keeps (balances, counters,
/// rollups) stays far from `i64` overflow.
pub const MAX_GRANTED: i64 = 1_000_000_000_000_000_000;

/// The member of a stored idempotency response that names the journal entry it answers with.
pub const ENTRY_REF: &str = "$entry";

/// The wallet kind that receives the plan's monthly credits.
pub const CREDITS: &str = "credits";

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
        u8::from(self.0.source != "rollover")
    }
}

/// An org's ledger state: its wallets, their live grants, its budgets and this cycle's counters.
#[derive(Debug, Clone)]
pub struct Book {
    pub org: LedgerOrg,
    pub version: i64,
    pub wallets: Vec<WalletRow>,
    /// Grants with credits left or reserved.
    pub grants: Vec<GrantRow>,
    /// By `(scope, workspace, user)`.
    pub budgets: HashMap<(String, String, String), BudgetRow>,
    /// The budget period (the org's billing cycle) the counters are for.
    pub period: (i64, i64),
    /// By `(scope, subject)`.
    pub counters: HashMap<(&'static str, String), i64>,
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

/// A rejected command: its problem response.
pub fn problem(status: u16, code: &str, detail: &str, ext: Value) -> Reply {
    let title = match status {
        400 => "Bad Request",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        422 => "Unprocessable Entity",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let mut body = json!({"type": "about:blank", "title": title, "status": status, "code": code, "detail": detail});
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), ext) {
        b.extend(e);
    }
    Reply { status, body }
}

fn not_found() -> Reply {
    problem(404, "not_found", "no such thing here", json!({}))
}

/// `grt_a:10,grt_b:5`
pub fn encode_splits(parts: &[(String, i64)]) -> String {
    parts.iter().map(|(g, a)| format!("{g}:{a}")).collect::<Vec<_>>().join(",")
}

/// The inverse of [`encode_splits`].
pub fn decode_splits(s: &str) -> Vec<(String, i64)> {
    s.split(',')
        .filter_map(|p| p.split_once(':'))
        .filter_map(|(g, a)| a.parse().ok().map(|a| (g.to_string(), a)))
        .collect()
}

/// Splits as the API shows them.
pub fn splits_json(s: &str) -> Value {
    Value::Array(decode_splits(s).into_iter().map(|(g, a)| json!({"grant_id": g, "amount": a})).collect())
}

/// The API view of a journal entry.
pub fn entry_json(e: &EntryRow) -> Value {
    let mut v = json!({
        "id": e.id, "type": e.kind, "amount": e.amount, "action": e.action,
        "actor": {"type": e.actor_type, "id": e.actor_id},
        "at": to_rfc3339(e.at), "splits": splits_json(&e.splits),
        "wallet_id": e.wallet_id, "org_id": e.org_id, "balance_after": e.balance_after,
        "workspace_id": if e.workspace_id.is_empty() { Value::Null } else { e.workspace_id.clone().into() },
    });
    if let Some(m) = &e.metadata {
        v["metadata"] = serde_json::from_str(m).unwrap_or(Value::Null);
    }
    if let Some(h) = &e.hold_id {
        v["hold_id"] = h.clone().into();
    }
    v
}

pub fn charge_json(e: &EntryRow) -> Value {
    let mut v = entry_json(e);
    if let Some(o) = v.as_object_mut() {
        o.remove("type");
    }
    v
}

/// The API view of a hold.
pub fn hold_json(h: &HoldRow) -> Value {
    json!({
        "id": h.id, "amount": h.amount, "action": h.action, "wallet_id": h.wallet_id,
        "workspace_id": h.workspace_id, "org_id": h.org_id, "status": h.status,
        "actor": {"type": h.actor_type, "id": h.actor_id},
        "expires_at": to_rfc3339(h.expires_at), "created_at": to_rfc3339(h.created_at),
        "charge_id": h.charge_id,
    })
}

/// The API view of a grant.
pub fn grant_json(g: &GrantRow) -> Value {
    json!({
        "id": g.id, "wallet_id": g.wallet_id, "source": g.source, "amount": g.amount, "remaining": g.remaining,
        "reserved": g.reserved,
        "effective_at": to_rfc3339(g.effective_at), "expires_at": g.expires_at.map(to_rfc3339),
        "created_at": to_rfc3339(g.created_at), "reason": g.reason,
    })
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

    #[allow(clippy::too_many_arguments)]
    fn add_grant(
        &mut self,
        out: &mut Out,
        wallet: usize,
        source: Source,
        amount: i64,
        effective_at: i64,
        expires_at: Option<i64>,
        cycle_key: Option<String>,
        reason: Option<String>,
        actor: (&str, &str),
        at: i64,
    ) -> usize {
        let w = &mut self.wallets[wallet];
        let g = GrantRow {
            org_id: self.org.id.clone(),
            id: IdKind::Grant.generate(),
            wallet_id: w.id.clone(),
            source: source.as_str().into(),
            amount,
            remaining: amount,
            reserved: 0,
            expired: 0,
            effective_at,
            expires_at,
            created_at: at,
            cycle_key,
            reason,
            actor_type: actor.0.into(),
            actor_id: actor.1.into(),
        };
        w.balance += amount;
        w.granted += amount;
        out.writes.entries.push(EntryRow {
            org_id: self.org.id.clone(),
            id: g.id.clone(),
            kind: "grant".into(),
            wallet_id: w.id.clone(),
            workspace_id: String::new(),
            actor_type: actor.0.into(),
            actor_id: actor.1.into(),
            member_id: String::new(),
            key_id: String::new(),
            amount,
            action: source.as_str().into(),
            metadata: None,
            splits: String::new(),
            hold_id: None,
            balance_after: w.balance,
            at,
            seq: 0,
        });
        self.grants.push(g);
        let i = self.grants.len() - 1;
        self.touch_grant(out, i);
        self.touch_wallet(out, wallet);
        i
    }

    /// Expires what is left of every grant of `wallet` that expired by `t`.
    fn expire_grants(&mut self, out: &mut Out, wallet: usize, t: i64) {
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
            out.writes.entries.push(EntryRow {
                org_id: self.org.id.clone(),
                id: IdKind::Event.generate(),
                kind: "expiry".into(),
                wallet_id: wid.clone(),
                workspace_id: String::new(),
                actor_type: "system".into(),
                actor_id: "roost".into(),
                member_id: String::new(),
                key_id: String::new(),
                amount: left,
                action: "expired".into(),
                metadata: None,
                splits: encode_splits(&[(gid, left)]),
                hold_id: None,
                balance_after: w.balance,
                at,
                seq: 0,
            });
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
            });
            let w = self.wallets.len() - 1;
            self.touch_wallet(out, w);
            if kind == CREDITS && monthly > 0 {
                match self.org.trial_ends_at {
                    Some(t) if t > now => {
                        let key = Some("trial".to_string());
                        self.add_grant(
                            out,
                            w,
                            Source::Trial,
                            monthly,
                            now,
                            Some(t),
                            key,
                            None,
                            ("system", "roost"),
                            now,
                        );
                    }
                    _ => {
                        let key = Some(format!("alloc:{anchor}:{cycle}"));
                        let sys = ("system", "roost");
                        self.add_grant(out, w, Source::Allocation, monthly, start, Some(end), key, None, sys, now);
                        self.wallets[w].allowance = monthly;
                    }
                }
            }
        }
        // Everything that fell due since the last batch, in time order: hold expiries (a hold
        // expiring at or before a turn gives its credits back before the rollover is computed),
        // cycle turns, grant expiries.
        let mut due: Vec<HoldRow> =
            due_holds.into_iter().filter(|h| h.status == "open" && h.expires_at <= now).collect();
        due.sort_by_key(|h| h.expires_at);
        let mut due = std::collections::VecDeque::from(due);
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
    fn close_due(&mut self, due: &mut std::collections::VecDeque<HoldRow>, t: i64, out: &mut Out) {
        while due.front().is_some_and(|h| h.expires_at <= t) {
            let Some(h) = due.pop_front() else { break };
            let te = h.expires_at;
            for w in 0..self.wallets.len() {
                self.expire_grants(out, w, te - 1);
            }
            self.close_hold(h, "expired", 0, None, te, true, out);
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
        due: &mut std::collections::VecDeque<HoldRow>,
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
        }
    }

    /// The turn a plan change makes at `t`: the cycle `from`'s allocation ends (what is left of it
    /// expires, no rollover), and the new allocation is `monthly` less what the cycle used of the
    /// old allowance; the next cycle turns at `end`.
    fn change_turn(&mut self, w: usize, from: (i64, i64), t: i64, end: i64, monthly: i64, out: &mut Out) {
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
        let used = (self.wallets[w].allowance - left).max(0);
        let amount = (monthly - used).max(0);
        if amount > 0 {
            let key = Some(format!("alloc:{t}:0"));
            let reason = Some(format!("plan change: allowance {monthly}, {used} already used this cycle"));
            self.add_grant(out, w, Source::Allocation, amount, t, Some(end), key, reason, ("system", "roost"), t);
        }
        self.wallets[w].allowance = monthly;
    }

    /// One cycle turn at `t`: roll over what is left of cycle `from`'s allocation (capped), expire
    /// what expired by `t`, grant cycle `to`'s allocation. Both new grants expire at `end`.
    #[allow(clippy::too_many_arguments)]
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
        let wid = self.wallets[w].id.clone();
        let from_key = format!("alloc:{}:{}", from.0, from.1);
        let mut left = 0;
        if let Some(i) =
            self.grants.iter().position(|g| g.wallet_id == wid && g.cycle_key.as_deref() == Some(from_key.as_str()))
        {
            // The allocation ends here, even when a plan change cuts its cycle short (and that is
            // written even when all it has left is reserved by holds).
            let g = &mut self.grants[i];
            g.expires_at = Some(g.expires_at.map_or(t, |e| e.min(t)));
            left = g.remaining;
            self.touch_grant(out, i);
        }
        self.expire_grants(out, w, t);
        let sys = ("system", "roost");
        let rolled = credits::rollover(left, cap);
        if rolled > 0 {
            let key = Some(format!("roll:{}:{}", to.0, to.1));
            self.add_grant(out, w, Source::Rollover, rolled, t, Some(end), key, None, sys, t);
        }
        if monthly > 0 {
            let key = Some(format!("alloc:{}:{}", to.0, to.1));
            self.add_grant(out, w, Source::Allocation, monthly, t, Some(end), key, None, sys, t);
        }
        self.wallets[w].allowance = monthly;
    }

    /// Closes an open hold: takes `charged` of it out of the wallet (the caller journals that
    /// charge; its balance after is returned), returns the rest to its grants, where what returns
    /// to a grant that expired meanwhile expires (journaled), and takes the hold out of `held` and
    /// the budget counters.
    #[allow(clippy::too_many_arguments)]
    fn close_hold(
        &mut self,
        mut h: HoldRow,
        status: &str,
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
        for (gid, part) in decode_splits(&h.splits) {
            let take = part.min(to_charge);
            to_charge -= take;
            let back = part - take;
            let Some(i) = self.grants.iter().position(|g| g.id == gid) else { continue };
            let g = &mut self.grants[i];
            g.reserved -= part;
            if back > 0 {
                if g.expires_at.is_some_and(|e| if strict { e < at } else { e <= at }) {
                    g.expired += back;
                    let wal = &mut self.wallets[w];
                    wal.balance -= back;
                    wal.expired += back;
                    out.writes.entries.push(EntryRow {
                        org_id: self.org.id.clone(),
                        id: IdKind::Event.generate(),
                        kind: "expiry".into(),
                        wallet_id: wal.id.clone(),
                        workspace_id: String::new(),
                        actor_type: "system".into(),
                        actor_id: "roost".into(),
                        member_id: String::new(),
                        key_id: String::new(),
                        amount: back,
                        action: "expired".into(),
                        metadata: None,
                        splits: encode_splits(&[(gid.clone(), back)]),
                        hold_id: None,
                        balance_after: wal.balance,
                        at,
                        seq: 0,
                    });
                } else {
                    g.remaining += back;
                }
            }
            self.touch_grant(out, i);
        }
        let delta = charged - h.amount;
        self.count(out, &h.workspace_id, &h.member_id, &h.key_id, h.period_start, delta);
        h.status = status.into();
        h.closed_at = Some(at);
        h.charge_id = charge_id;
        out.writes.holds.push(h.clone());
        out.dirty_orgs.insert(self.org.id.clone());
        (h, after_charge)
    }

    fn count(&mut self, out: &mut Out, ws: &str, member: &str, key: &str, period: i64, delta: i64) {
        let mut subjects: Vec<(&'static str, String)> = vec![("workspace", ws.to_string())];
        if !member.is_empty() {
            subjects.push(("member", format!("{ws}:{member}")));
        }
        if !key.is_empty() {
            subjects.push(("key", key.to_string()));
        }
        for (scope, subject) in subjects {
            if period == self.period.0 {
                *self.counters.entry((scope, subject.clone())).or_default() += delta;
            }
            *out.writes.usage.entry((self.org.id.clone(), scope, subject, period)).or_default() += delta;
        }
    }

    /// The first budget that drawing `amount` more would pass, as a 403.
    fn check_budgets(&self, ws: &str, a: &ActorRef, amount: i64) -> Result<(), Reply> {
        let mut checks: Vec<(&str, Option<i64>, i64)> = Vec::new();
        if !a.key_id.is_empty() {
            checks.push(("key", a.spend_limit, self.used("key", &a.key_id)));
        }
        if !a.member_id.is_empty() {
            let b = self.budgets.get(&("member".to_string(), ws.to_string(), a.member_id.clone()));
            checks.push(("member", b.map(|b| b.limit), self.used("member", &format!("{ws}:{}", a.member_id))));
        }
        let b = self.budgets.get(&("workspace".to_string(), ws.to_string(), String::new()));
        checks.push(("workspace", b.map(|b| b.limit), self.used("workspace", ws)));
        for (scope, limit, used) in checks {
            if let Err(used) = credits::within_budget(limit, used, amount) {
                return Err(problem(
                    403,
                    "budget_exceeded",
                    &format!("the {scope} budget for this cycle would be passed"),
                    json!({"scope": scope, "limit": limit, "used": used, "resets_at": to_rfc3339(self.period.1)}),
                ));
            }
        }
        Ok(())
    }

    fn used(&self, scope: &'static str, subject: &str) -> i64 {
        self.counters.get(&(scope, subject.to_string())).copied().unwrap_or(0)
    }

    /// Audit events for workspace budget alert thresholds crossed by going from `before` to `after`.
    fn alerts(&self, out: &mut Out, ws: &str, before: i64, after: i64, at: i64) {
        let Some(b) = self.budgets.get(&("workspace".to_string(), ws.to_string(), String::new())) else {
            return;
        };
        for p in b.alert_percents.split(',').filter_map(|p| p.parse::<i64>().ok()) {
            let mark = b.limit.saturating_mul(p) / 100;
            if before < mark && after >= mark {
                out.writes.audit.push(AuditRow {
                    org_id: self.org.id.clone(),
                    id: IdKind::Audit.generate(),
                    at,
                    actor_type: "system".into(),
                    actor_id: "roost".into(),
                    action: "budget.alert".into(),
                    workspace_id: Some(ws.to_string()),
                    target_type: Some("workspace".into()),
                    target_id: Some(ws.to_string()),
                    ip: None,
                    detail: json!({"percent": p, "limit": b.limit, "used": after}).to_string(),
                });
            }
        }
    }

    /// Draws `amount` from wallet `w` in draw-down order, or answers 402.
    fn draw(
        &mut self,
        out: &mut Out,
        w: usize,
        amount: i64,
        now: i64,
        reserve: bool,
    ) -> Result<Vec<(String, i64)>, Reply> {
        let wid = self.wallets[w].id.clone();
        let idx: Vec<usize> = (0..self.grants.len()).filter(|&i| self.grants[i].wallet_id == wid).collect();
        let view: Vec<G<'_>> = idx.iter().map(|&i| G(&self.grants[i])).collect();
        let Some(plan) = credits::plan_draw(&view, amount, now) else {
            let available = credits::available(&view, now);
            return Err(problem(
                402,
                "insufficient_credits",
                &format!("the wallet has {available} available, {amount} needed"),
                json!({"available": available}),
            ));
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
        Ok(parts)
    }

    fn idx_for_charge(&self, kind: &str) -> Result<usize, Reply> {
        self.wallet_idx(kind).ok_or_else(|| {
            problem(
                422,
                "invalid_request",
                "wallet: no such wallet kind",
                json!({"errors": [{"field": "wallet", "message": "no such wallet kind"}]}),
            )
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn journal_charge(
        &mut self,
        out: &mut Out,
        w: usize,
        balance_after: i64,
        id: String,
        ws: &str,
        a: (&str, &str, &str, &str),
        amount: i64,
        action: &str,
        metadata: Option<String>,
        parts: &[(String, i64)],
        hold_id: Option<String>,
        at: i64,
    ) -> EntryRow {
        let wal = &self.wallets[w];
        let e = EntryRow {
            org_id: self.org.id.clone(),
            id,
            kind: "charge".into(),
            wallet_id: wal.id.clone(),
            workspace_id: ws.to_string(),
            actor_type: a.0.into(),
            actor_id: a.1.into(),
            member_id: a.2.into(),
            key_id: a.3.into(),
            amount,
            action: action.into(),
            metadata,
            splits: encode_splits(parts),
            hold_id,
            balance_after,
            at,
            seq: 0,
        };
        let hour = at.div_euclid(3_600_000) * 3_600_000;
        let r = out
            .writes
            .rollups
            .entry((self.org.id.clone(), hour, wal.id.clone(), ws.to_string(), a.2.into(), a.3.into(), action.into()))
            .or_default();
        r.0 += amount;
        r.1 += 1;
        out.writes.entries.push(e.clone());
        e
    }

    /// Admits a charge or a hold of `amount` by `a` in workspace `ws`: the wallet exists, no budget
    /// is passed, the wallet can cover it. Draws it (reserving it, for a hold) and counts it toward
    /// the budgets. Returns the wallet and the splits.
    #[allow(clippy::too_many_arguments)]
    fn admit(
        &mut self,
        out: &mut Out,
        ws: &str,
        a: &ActorRef,
        wallet: &str,
        amount: i64,
        now: i64,
        reserve: bool,
    ) -> Result<(usize, Vec<(String, i64)>), Reply> {
        let w = self.idx_for_charge(wallet)?;
        self.check_budgets(ws, a, amount)?;
        let parts = self.draw(out, w, amount, now, reserve)?;
        self.touch_wallet(out, w);
        let before = self.used("workspace", ws);
        self.count(out, ws, &a.member_id, &a.key_id, self.period.0, amount);
        self.alerts(out, ws, before, before + amount, now);
        Ok((w, parts))
    }

    /// The open hold `hold_id` of this org (closing it first if it expired): 404 or 409 otherwise.
    fn open_hold(
        &mut self,
        holds: &mut HashMap<String, HoldRow>,
        hold_id: &str,
        now: i64,
        out: &mut Out,
    ) -> Result<HoldRow, Reply> {
        let Some(mut h) = holds.get(hold_id).filter(|h| h.org_id == self.org.id).cloned() else {
            return Err(not_found());
        };
        if h.status == "open" && h.expires_at <= now {
            let at = h.expires_at;
            h = self.close_hold(h, "expired", 0, None, at, false, out).0;
            holds.insert(h.id.clone(), h.clone());
        }
        if h.status != "open" {
            return Err(problem(
                409,
                "hold_closed",
                &format!("the hold is {}", h.status),
                json!({"hold_status": h.status}),
            ));
        }
        Ok(h)
    }

    /// Applies one command at `now`. `holds` carries the holds the batch refers to, as changed by
    /// the batch so far.
    pub fn apply(&mut self, cmd: &Command, holds: &mut HashMap<String, HoldRow>, now: i64, out: &mut Out) -> Reply {
        out.dirty_orgs.insert(self.org.id.clone());
        let a = &cmd.actor;
        match &cmd.op {
            Op::Charge { workspace_id, wallet, amount, action, metadata } => {
                let (w, parts) = match self.admit(out, workspace_id, a, wallet, *amount, now, false) {
                    Ok(x) => x,
                    Err(r) => return r,
                };
                let wal = &mut self.wallets[w];
                wal.balance -= amount;
                wal.charged += amount;
                let balance_after = self.wallets[w].balance;
                let e = self.journal_charge(
                    out,
                    w,
                    balance_after,
                    IdKind::Charge.generate(),
                    workspace_id,
                    (a.kind, &a.id, &a.member_id, &a.key_id),
                    *amount,
                    action,
                    metadata.clone(),
                    &parts,
                    None,
                    now,
                );
                Reply { status: 201, body: charge_json(&e) }
            }
            Op::Hold { workspace_id, wallet, amount, action, ttl_ms } => {
                let (w, parts) = match self.admit(out, workspace_id, a, wallet, *amount, now, true) {
                    Ok(x) => x,
                    Err(r) => return r,
                };
                self.wallets[w].held += amount;
                let expires_at = now.saturating_add(*ttl_ms);
                let h = HoldRow {
                    org_id: self.org.id.clone(),
                    id: IdKind::Hold.generate(),
                    wallet_id: self.wallets[w].id.clone(),
                    workspace_id: workspace_id.clone(),
                    actor_type: a.kind.into(),
                    actor_id: a.id.clone(),
                    member_id: a.member_id.clone(),
                    key_id: a.key_id.clone(),
                    action: action.clone(),
                    amount: *amount,
                    splits: encode_splits(&parts),
                    status: "open".into(),
                    period_start: self.period.0,
                    expires_at,
                    created_at: now,
                    closed_at: None,
                    charge_id: None,
                };
                self.next_hold_expiry = Some(self.next_hold_expiry.map_or(expires_at, |e| e.min(expires_at)));
                out.writes.holds.push(h.clone());
                holds.insert(h.id.clone(), h.clone());
                Reply { status: 201, body: hold_json(&h) }
            }
            Op::Settle { hold_id, amount } => {
                let h = match self.open_hold(holds, hold_id, now, out) {
                    Ok(h) => h,
                    Err(r) => return r,
                };
                if *amount > h.amount {
                    return problem(
                        422,
                        "settle_exceeds_hold",
                        &format!("{amount} is more than the {} held", h.amount),
                        json!({"held": h.amount}),
                    );
                }
                let Some(w) = self.wallet_idx(&h.wallet_id) else { return not_found() };
                let parts: Vec<(String, i64)> = {
                    let mut left = *amount;
                    let mut v = Vec::new();
                    for (g, p) in decode_splits(&h.splits) {
                        let take = p.min(left);
                        if take > 0 {
                            v.push((g, take));
                        }
                        left -= take;
                    }
                    v
                };
                let charge_id = IdKind::Charge.generate();
                let mark = out.writes.entries.len();
                let (closed, after_charge) =
                    self.close_hold(h, "settled", *amount, Some(charge_id.clone()), now, false, out);
                holds.insert(closed.id.clone(), closed.clone());
                let e = self.journal_charge(
                    out,
                    w,
                    after_charge,
                    charge_id,
                    &closed.workspace_id,
                    (&closed.actor_type, &closed.actor_id, &closed.member_id, &closed.key_id),
                    *amount,
                    &closed.action,
                    None,
                    &parts,
                    Some(closed.id.clone()),
                    now,
                );
                // The charge comes before the expiries of what it returned.
                out.writes.entries[mark..].rotate_right(1);
                let released = closed.amount - amount;
                Reply {
                    status: 200,
                    body: json!({"charge": charge_json(&e), "hold": hold_json(&closed), "released": released}),
                }
            }
            Op::Release { hold_id } => {
                let h = match self.open_hold(holds, hold_id, now, out) {
                    Ok(h) => h,
                    Err(r) => return r,
                };
                let (closed, _) = self.close_hold(h, "released", 0, None, now, false, out);
                holds.insert(closed.id.clone(), closed.clone());
                Reply { status: 200, body: hold_json(&closed) }
            }
            Op::Grant { wallet, source, amount, expires_at, reason } => {
                let Some(w) = self.wallet_idx(wallet) else { return not_found() };
                if amount.checked_abs().is_none()
                    || self.wallets[w].granted.checked_add(*amount).is_none_or(|g| g > MAX_GRANTED)
                {
                    return problem(
                        422,
                        "invalid_request",
                        "amount: the wallet would pass the most it may ever be granted",
                        json!({"errors": [{"field": "amount", "message": format!("a wallet may be granted at most {MAX_GRANTED} in all")}]}),
                    );
                }
                let (action, status) = match source {
                    Source::Topup => ("wallet.topped_up", 201),
                    _ => ("wallet.adjusted", 201),
                };
                let body;
                let target;
                if *amount >= 0 {
                    let i = self.add_grant(
                        out,
                        w,
                        *source,
                        *amount,
                        now,
                        *expires_at,
                        None,
                        reason.clone(),
                        (a.kind, &a.id),
                        now,
                    );
                    target = self.grants[i].id.clone();
                    body = json!({"grant": grant_json(&self.grants[i])});
                } else {
                    // A debit adjustment: drawn like a charge, outside budgets and usage.
                    let parts = match self.draw(out, w, -amount, now, false) {
                        Ok(p) => p,
                        Err(r) => return r,
                    };
                    let wal = &mut self.wallets[w];
                    wal.balance += amount;
                    wal.charged -= amount;
                    self.touch_wallet(out, w);
                    let e = EntryRow {
                        org_id: self.org.id.clone(),
                        id: IdKind::Charge.generate(),
                        kind: "adjustment".into(),
                        wallet_id: self.wallets[w].id.clone(),
                        workspace_id: String::new(),
                        actor_type: a.kind.into(),
                        actor_id: a.id.clone(),
                        member_id: a.member_id.clone(),
                        key_id: String::new(),
                        amount: -amount,
                        action: "adjustment".into(),
                        metadata: reason.as_ref().map(|r| json!({"reason": r}).to_string()),
                        splits: encode_splits(&parts),
                        hold_id: None,
                        balance_after: self.wallets[w].balance,
                        at: now,
                        seq: 0,
                    };
                    target = e.id.clone();
                    body = json!({"adjustment": entry_json(&e)});
                    out.writes.entries.push(e);
                }
                out.writes.audit.push(AuditRow {
                    org_id: self.org.id.clone(),
                    id: IdKind::Audit.generate(),
                    at: now,
                    actor_type: a.kind.into(),
                    actor_id: a.id.clone(),
                    action: action.into(),
                    workspace_id: None,
                    target_type: Some("wallet".into()),
                    target_id: Some(self.wallets[w].id.clone()),
                    ip: a.ip.clone(),
                    detail: json!({"amount": amount, "source": source.as_str(), "reason": reason, "entry": target})
                        .to_string(),
                });
                Reply { status, body }
            }
            Op::SetBudget { workspace_id, user_id, limit, alert_percents } => {
                let scope = if user_id.is_some() { "member" } else { "workspace" };
                let user = user_id.clone().unwrap_or_default();
                let key = (scope.to_string(), workspace_id.clone(), user.clone());
                let percents = alert_percents.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
                match limit {
                    Some(l) => {
                        let b = BudgetRow {
                            org_id: self.org.id.clone(),
                            scope: scope.into(),
                            workspace_id: workspace_id.clone(),
                            user_id: user.clone(),
                            limit: *l,
                            alert_percents: percents,
                            updated_at: now,
                        };
                        out.writes.budgets_removed.retain(|r| (&r.1, &r.2, &r.3) != (&key.0, &key.1, &key.2));
                        out.writes.budgets.push(b.clone());
                        self.budgets.insert(key, b);
                    }
                    None => {
                        self.budgets.remove(&key);
                        let org = self.org.id.clone();
                        out.writes.budgets.retain(|b| {
                            (&b.org_id, &b.scope, &b.workspace_id, &b.user_id) != (&org, &key.0, &key.1, &key.2)
                        });
                        out.writes.budgets_removed.push((
                            self.org.id.clone(),
                            scope.into(),
                            workspace_id.clone(),
                            user.clone(),
                        ));
                    }
                }
                let subject = if scope == "member" { format!("{workspace_id}:{user}") } else { workspace_id.clone() };
                let used = self.used(if scope == "member" { "member" } else { "workspace" }, &subject);
                out.writes.audit.push(AuditRow {
                    org_id: self.org.id.clone(),
                    id: IdKind::Audit.generate(),
                    at: now,
                    actor_type: a.kind.into(),
                    actor_id: a.id.clone(),
                    action: "budget.changed".into(),
                    workspace_id: Some(workspace_id.clone()),
                    target_type: Some(if scope == "member" { "user" } else { "workspace" }.into()),
                    target_id: Some(if scope == "member" { user.clone() } else { workspace_id.clone() }),
                    ip: a.ip.clone(),
                    detail: json!({"scope": scope, "limit": limit, "alert_percents": alert_percents}).to_string(),
                });
                let mut body = json!({
                    "scope": scope, "workspace_id": workspace_id, "limit": limit,
                    "used": used, "resets_at": to_rfc3339(self.period.1),
                });
                if scope == "member" {
                    body["user_id"] = user.into();
                } else {
                    body["alert_percents"] = json!(alert_percents);
                }
                Reply { status: 200, body }
            }
            Op::Tick => Reply { status: 200, body: json!({}) },
        }
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

    /// An idempotency record of `reply`. A charge's answer is rebuilt on replay from its journal
    /// entry (which never changes), so the record only names it: `{"$entry": "chg_…"}`.
    pub fn idem_record(&self, key: &str, fingerprint: &str, op: &Op, reply: &Reply, now: i64) -> IdemRow {
        let response = match (op, reply.status, reply.body.get("id").and_then(Value::as_str)) {
            (Op::Charge { .. }, 201, Some(id)) => json!({ ENTRY_REF: id }).to_string(),
            _ => reply.body.to_string(),
        };
        IdemRow {
            org_id: self.org.id.clone(),
            key: key.into(),
            fingerprint: fingerprint.into(),
            status: i64::from(reply.status),
            response,
            created_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActorRef, Command, Op};

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
        b.refresh(1, &Catalog::builtin(), &[CREDITS.to_string()], Vec::new(), &mut out);
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
        assert_eq!(b.apply(&topup(room), &mut holds, 2, &mut out).status, 201);
        let r = b.apply(&topup(1), &mut holds, 2, &mut out);
        assert_eq!((r.status, r.body["code"].as_str()), (422, Some("invalid_request")), "{}", r.body);
        assert_eq!(r.body["errors"][0]["field"], "amount");
        assert_eq!((b.wallets[0].granted, b.wallets[0].balance), (MAX_GRANTED, MAX_GRANTED), "nothing changed");
    }
}

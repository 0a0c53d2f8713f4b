//! Over 400 lines on purpose: the properties, the step generator and the reference model they
//! are checked against are one idea (the model must change with every step kind and every
//! check), kept together so a step cannot be added without its model and its checks.
//!
//! Property tests of the ledger's invariants, driving the real engine ([`Ledger`]) on a fresh,
//! migrated database per case, with time as a parameter (a clock over an `AtomicI64`).
//!
//! Each case is a random sequence of steps (top-ups, adjustments, charges, holds, settles,
//! releases, clock advances, ticks, budgets, plan changes, idempotent replays, engine restarts)
//! against two orgs: a personal org on `free` and a business org with two workspaces, a user
//! actor (the owner) and an API key actor with a per-cycle spend limit.
//!
//! After every step the database is read back and checked:
//! - per wallet, `granted − charged − expired = balance`, with `granted` recomputed from the
//!   journal's `grant` entries, `charged` from its `charge` + `adjustment` entries, `expired` from
//!   its `expiry` entries (hand-backs of holds to grants that expired meanwhile are journaled as
//!   expiries too); the journal in `seq` order replays to every entry's `balance_after` and ends
//!   at the balance;
//! - `balance = Σ grants.remaining + Σ grants.reserved`, `held = Σ open holds = Σ grants.reserved`,
//!   `available = balance − held ≥ 0`, every grant `0 ≤ remaining ≤ amount`, `reserved ≥ 0`, and
//!   `amount = remaining + reserved + expired + Σ charge/adjustment splits drawn from it`;
//! - every journal entry's splits add up to its amount; a charge with a `hold_id` is at most the
//!   hold's amount, each hold has at most one charge, and a settled hold names it;
//! - everything agrees with a reference model kept alongside: wallets (all five numbers), every
//!   grant (amount, remaining, reserved, expired, expiry, source, cycle key), every hold (status,
//!   closing time, charge), budget counters per period, budgets, and every reply (status, error
//!   code and its members, amounts, splits by grant, `balance_after`, `released`, …).
//!
//! The model is *eager*: clock-driven events (cycle turns, grant expiries, hold expiries) happen
//! in time order, each at its own instant. The engine applies them lazily, in its next batch for
//! the org; the main properties advance the clock like the background job does (a `Tick` at each
//! `next_event_at` of `ledger_heads` on the way, and right after a plan change), and
//! `lazy_clock_agrees_with_time_order` jumps the clock instead, so the engine must catch up in
//! time order by itself. `a_hold_that_expired_before_the_turn_rolls_over` and
//! `a_cut_allocation_stays_cut_after_a_reload` are regression tests of bugs these properties found.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use roost_domain::credits::{cycle_at, cycle_start, rollover};
use roost_domain::time::{DAY_MS, parse_rfc3339, to_rfc3339};
use roost_domain::{Catalog, IdKind};
use roost_ledger::{ActorRef, Command, Idem, Ledger, LedgerConfig, Op, Source};

/// An engine answer as the API renders it (status and JSON body): the model speaks the API's terms.
#[derive(Debug, Clone, PartialEq)]
struct Reply {
    status: u16,
    body: Value,
}

impl Reply {
    fn of(answer: roost_ledger::Answer) -> Self {
        let (status, body) = roost_server::api::credits::render(answer);
        Self { status, body }
    }
}
use roost_store::{Actor, ApiKey, Ctx, NewOrg, Store};
use serde_json::{Value, json};
use sqlx::Row;

const SKIPPED: &str = "SKIPPED: ROOST_TEST_PG is not set, the PostgreSQL property did not run";
const HOUR_MS: i64 = 3_600_000;

type R<T = ()> = Result<T, String>;

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}

macro_rules! ensure_eq {
    ($a:expr, $b:expr, $($arg:tt)+) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            return Err(format!("{}: {:?} != {:?}", format!($($arg)+), a, b));
        }
    }};
}

// ---------------------------------------------------------------------------------------------
// Steps

#[derive(Debug, Clone)]
enum SettleAmt {
    Exact,
    /// Per mille of the held amount (at least 1).
    Part(u32),
    /// This much above the held amount.
    Over(i64),
}

#[derive(Debug, Clone)]
enum Step {
    /// Org 0 is the personal org, org 1 the business org. Amounts are per mille of the org's scale.
    Topup {
        org: usize,
        pm: u32,
    },
    Adjust {
        org: usize,
        pm: u32,
        debit: bool,
        expires_in_h: Option<u32>,
    },
    Charge {
        org: usize,
        ws: usize,
        key: bool,
        pm: u32,
    },
    Hold {
        org: usize,
        ws: usize,
        key: bool,
        pm: u32,
        ttl_s: i64,
    },
    /// Of the `pick`-th hold made so far (modulo).
    Settle {
        pick: usize,
        amt: SettleAmt,
    },
    Release {
        pick: usize,
    },
    /// `job`: like the background job, tick each org at each `next_event_at` on the way.
    Advance {
        ms: i64,
        job: bool,
    },
    Tick {
        org: usize,
    },
    /// A workspace budget (or the owner's member budget) of `limit` per mille of twice the scale,
    /// or none.
    Budget {
        org: usize,
        ws: usize,
        member: bool,
        limit: Option<u32>,
    },
    /// After `gap_s` seconds, a change to the org's `plan`-th plan; with `tick`, a `Tick` of the
    /// org right after (and the job's ticks during the gap), so the change applies at once.
    Plan {
        org: usize,
        plan: usize,
        gap_s: i64,
        tick: bool,
    },
    /// The `pick`-th command sent with an Idempotency-Key, again: same fingerprint (identical
    /// reply, nothing changes) or another one (409 idempotency_conflict, nothing changes).
    Replay {
        pick: usize,
        conflict: bool,
    },
    /// A new engine on the same database: every book is loaded from the store again.
    Restart,
}

fn advance_ms() -> impl Strategy<Value = i64> {
    prop_oneof![60_000i64..HOUR_MS, HOUR_MS..5 * DAY_MS, 5 * DAY_MS..40 * DAY_MS]
}

fn step(job: BoxedStrategy<bool>) -> impl Strategy<Value = Step> {
    let org = 0usize..2;
    let pm = 1u32..=1000;
    prop_oneof![
        3 => (org.clone(), pm.clone()).prop_map(|(org, pm)| Step::Topup { org, pm }),
        2 => (org.clone(), pm.clone(), any::<bool>(), proptest::option::weighted(0.3, 1u32..2000))
            .prop_map(|(org, pm, debit, e)| Step::Adjust { org, pm, debit, expires_in_h: if debit { None } else { e } }),
        8 => (org.clone(), 0usize..2, any::<bool>(), pm.clone())
            .prop_map(|(org, ws, key, pm)| Step::Charge { org, ws, key, pm }),
        6 => (org.clone(), 0usize..2, any::<bool>(), pm.clone(), prop_oneof![1i64..3600, 3600i64..=7 * 86_400])
            .prop_map(|(org, ws, key, pm, ttl_s)| Step::Hold { org, ws, key, pm, ttl_s }),
        5 => (any::<usize>(), prop_oneof![Just(SettleAmt::Exact), (1u32..=1000).prop_map(SettleAmt::Part), (1i64..100).prop_map(SettleAmt::Over)])
            .prop_map(|(pick, amt)| Step::Settle { pick, amt }),
        3 => any::<usize>().prop_map(|pick| Step::Release { pick }),
        5 => (advance_ms(), job.clone()).prop_map(|(ms, job)| Step::Advance { ms, job }),
        2 => org.clone().prop_map(|org| Step::Tick { org }),
        2 => (org.clone(), 0usize..2, any::<bool>(), proptest::option::weighted(0.75, 0u32..=1000))
            .prop_map(|(org, ws, member, limit)| Step::Budget { org, ws, member, limit }),
        // The server ticks the ledger right after every plan change (api/orgs.rs change_plan).
        1 => (org, 0usize..3, 1i64..600, job).prop_map(|(org, plan, gap_s, _)| Step::Plan { org, plan, gap_s, tick: true }),
        3 => (any::<usize>(), prop::bool::weighted(0.25)).prop_map(|(pick, conflict)| Step::Replay { pick, conflict }),
        1 => Just(Step::Restart),
    ]
}

fn steps(job: BoxedStrategy<bool>) -> impl Strategy<Value = (Option<i64>, Vec<Step>)> {
    (proptest::option::weighted(0.6, 100i64..6000), proptest::collection::vec(step(job), 1..40))
}

// ---------------------------------------------------------------------------------------------
// The reference model

#[derive(Debug, Clone)]
struct MGrant {
    id: Option<String>,
    cycle_key: Option<String>,
    source: &'static str,
    amount: i64,
    remaining: i64,
    reserved: i64,
    expired: i64,
    effective_at: i64,
    expires_at: Option<i64>,
    created_at: i64,
    /// An allocation whose cycle a plan change cut short: its expiry before the cut.
    cut: Option<i64>,
}

#[derive(Debug, Clone)]
struct MHold {
    id: String,
    amount: i64,
    /// (grant index, amount) in draw-down order.
    parts: Vec<(usize, i64)>,
    status: &'static str,
    expires_at: i64,
    closed_at: Option<i64>,
    ws: String,
    member: String,
    key: String,
    period_start: i64,
    charge_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct MWallet {
    anchor: i64,
    cycle: i64,
    /// The monthly allowance this cycle's allocation was measured against.
    allowance: i64,
    balance: i64,
    held: i64,
    granted: i64,
    charged: i64,
    expired: i64,
}

#[derive(Debug, Clone)]
struct MOrg {
    plan: String,
    anchor: i64,
    wallet: Option<MWallet>,
    grants: Vec<MGrant>,
    holds: Vec<MHold>,
    /// (scope, workspace, user) → limit.
    budgets: HashMap<(String, String, String), i64>,
    /// (scope, subject, period start) → used.
    counters: HashMap<(&'static str, String, i64), i64>,
}

/// The acting party of a charge or hold, as the model sees it.
struct Who {
    member: String,
    key: String,
    spend_limit: Option<i64>,
}

/// What a reply must say, with grants named by model index (their ids are learned later).
#[derive(Debug, Clone)]
enum Expect {
    Charge {
        amount: i64,
        parts: Vec<(usize, i64)>,
        balance_after: i64,
        ws: String,
        actor: (String, String),
    },
    Hold {
        hold: usize,
    },
    Settle {
        hold: usize,
        amount: i64,
        parts: Vec<(usize, i64)>,
        balance_after: i64,
        released: i64,
    },
    Release {
        hold: usize,
    },
    Grant {
        grant: usize,
    },
    Debit {
        amount: i64,
        parts: Vec<(usize, i64)>,
        balance_after: i64,
    },
    Problem {
        status: u16,
        code: &'static str,
        ext: Value,
    },
    Budget {
        scope: &'static str,
        ws: String,
        user: Option<String>,
        limit: Option<i64>,
        used: i64,
        resets_at: String,
    },
    Tick,
    /// Exactly this reply.
    Same(Reply),
}

impl MOrg {
    fn new(plan: &str, anchor: i64) -> Self {
        Self {
            plan: plan.into(),
            anchor,
            wallet: None,
            grants: Vec::new(),
            holds: Vec::new(),
            budgets: HashMap::new(),
            counters: HashMap::new(),
        }
    }

    fn terms(&self, cat: &Catalog) -> (i64, Option<i64>) {
        let p = cat.get(&self.plan).expect("plan");
        (p.monthly_credits.unwrap_or(0), p.rollover_cap)
    }

    fn w(&mut self) -> &mut MWallet {
        self.wallet.as_mut().expect("wallet")
    }

    fn period(&self, now: i64) -> (i64, i64) {
        let (_, s, e) = cycle_at(self.anchor, now);
        (s, e)
    }

    #[allow(clippy::too_many_arguments)]
    fn add_grant(
        &mut self,
        source: &'static str,
        amount: i64,
        effective_at: i64,
        expires_at: Option<i64>,
        created_at: i64,
        cycle_key: Option<String>,
    ) -> usize {
        self.grants.push(MGrant {
            id: None,
            cycle_key,
            source,
            amount,
            remaining: amount,
            reserved: 0,
            expired: 0,
            effective_at,
            expires_at,
            created_at,
            cut: None,
        });
        let w = self.w();
        w.balance += amount;
        w.granted += amount;
        self.grants.len() - 1
    }

    fn expire(&mut self, t: i64) {
        let mut gone = 0;
        for g in &mut self.grants {
            if g.remaining > 0 && g.expires_at.is_some_and(|e| e <= t) {
                gone += g.remaining;
                g.expired += g.remaining;
                g.remaining = 0;
            }
        }
        let w = self.w();
        w.balance -= gone;
        w.expired += gone;
    }

    #[allow(clippy::too_many_arguments)]
    fn turn(&mut self, from: (i64, i64), to: (i64, i64), t: i64, end: i64, monthly: i64, cap: Option<i64>) {
        let key = format!("alloc:{}:{}", from.0, from.1);
        let left = match self
            .grants
            .iter_mut()
            .find(|g| g.cycle_key.as_deref() == Some(key.as_str()) && (g.remaining > 0 || g.reserved > 0))
        {
            Some(g) => {
                let e = g.expires_at.map_or(t, |e| e.min(t));
                if g.expires_at != Some(e) {
                    g.cut = g.expires_at;
                }
                g.expires_at = Some(e);
                g.remaining
            }
            None => 0,
        };
        self.expire(t);
        let rolled = rollover(left, cap);
        if rolled > 0 {
            self.add_grant("rollover", rolled, t, Some(end), t, Some(format!("roll:{}:{}", to.0, to.1)));
        }
        if monthly > 0 {
            self.add_grant("allocation", monthly, t, Some(end), t, Some(format!("alloc:{}:{}", to.0, to.1)));
        }
        self.w().allowance = monthly;
    }

    /// Brings the model to `now`, every clock-driven event at its own instant, in time order
    /// (at one instant: cycle turn, then grant expiries, then hold expiries).
    fn advance(&mut self, now: i64, cat: &Catalog) {
        let (monthly, cap) = self.terms(cat);
        while let Some(w) = &self.wallet {
            let (a, c) = (w.anchor, w.cycle);
            let t_turn = cycle_start(a, c + 1);
            let t_grant = self.grants.iter().filter(|g| g.remaining > 0).filter_map(|g| g.expires_at).min();
            let t_hold = self.holds.iter().filter(|h| h.status == "open").map(|h| h.expires_at).min();
            let t = [Some(t_turn), t_grant, t_hold].into_iter().flatten().min().unwrap_or(i64::MAX);
            if t > now {
                break;
            }
            if t == t_turn {
                self.turn((a, c), (a, c + 1), t, cycle_start(a, c + 2), monthly, cap);
                self.w().cycle = c + 1;
            } else if t_grant == Some(t) {
                self.expire(t);
            } else {
                for i in 0..self.holds.len() {
                    if self.holds[i].status == "open" && self.holds[i].expires_at == t {
                        self.close_hold(i, "expired", 0, t, None);
                    }
                }
            }
        }
    }

    /// What every batch does first: create the wallet, or bring it to `now`.
    fn touch(&mut self, now: i64, cat: &Catalog) {
        if self.wallet.is_some() {
            self.advance(now, cat);
            return;
        }
        let (monthly, _) = self.terms(cat);
        let (cycle, start, end) = cycle_at(self.anchor, now.max(self.anchor));
        self.wallet = Some(MWallet { anchor: self.anchor, cycle, allowance: monthly, ..MWallet::default() });
        if monthly > 0 {
            let key = format!("alloc:{}:{cycle}", self.anchor);
            self.add_grant("allocation", monthly, start, Some(end), now, Some(key));
        }
    }

    /// A plan change at `now`, applied eagerly: the cycle restarts at the change.
    fn change_plan(&mut self, plan: &str, now: i64, cat: &Catalog) {
        if self.wallet.is_some() {
            self.advance(now, cat);
        }
        self.plan = plan.into();
        self.anchor = now;
        let (monthly, _) = self.terms(cat);
        if let Some(w) = &self.wallet {
            // The cycle's allocation ends; the new one is the new allowance less what this cycle
            // used of the old one (no rollover at a plan change).
            let (from, allowance) = ((w.anchor, w.cycle), w.allowance);
            let key = format!("alloc:{}:{}", from.0, from.1);
            let left = match self
                .grants
                .iter_mut()
                .find(|g| g.cycle_key.as_deref() == Some(key.as_str()) && (g.remaining > 0 || g.reserved > 0))
            {
                Some(g) => {
                    let e = g.expires_at.map_or(now, |e| e.min(now));
                    if g.expires_at != Some(e) {
                        g.cut = g.expires_at;
                    }
                    g.expires_at = Some(e);
                    g.remaining
                }
                None => 0,
            };
            self.expire(now);
            let used = (allowance - left).max(0);
            let amount = (monthly - used).max(0);
            if amount > 0 {
                self.add_grant(
                    "allocation",
                    amount,
                    now,
                    Some(cycle_start(now, 1)),
                    now,
                    Some(format!("alloc:{now}:0")),
                );
            }
            let w = self.w();
            w.allowance = monthly;
            w.anchor = now;
            w.cycle = 0;
        }
    }

    fn used(&self, scope: &'static str, subject: &str, period: i64) -> i64 {
        self.counters.get(&(scope, subject.to_string(), period)).copied().unwrap_or(0)
    }

    fn count(&mut self, ws: &str, member: &str, key: &str, period: i64, delta: i64) {
        let mut subjects = vec![("workspace", ws.to_string()), ("member", format!("{ws}:{member}"))];
        if !key.is_empty() {
            subjects.push(("key", key.to_string()));
        }
        for (scope, subject) in subjects {
            *self.counters.entry((scope, subject, period)).or_default() += delta;
        }
    }

    fn check_budgets(&self, ws: &str, who: &Who, amount: i64, now: i64) -> Result<(), Expect> {
        let (p, end) = self.period(now);
        let mut checks: Vec<(&str, Option<i64>, i64)> = Vec::new();
        if !who.key.is_empty() {
            checks.push(("key", who.spend_limit, self.used("key", &who.key, p)));
        }
        let m = self.budgets.get(&("member".into(), ws.into(), who.member.clone())).copied();
        checks.push(("member", m, self.used("member", &format!("{ws}:{}", who.member), p)));
        let b = self.budgets.get(&("workspace".into(), ws.into(), String::new())).copied();
        checks.push(("workspace", b, self.used("workspace", ws, p)));
        for (scope, limit, used) in checks {
            if limit.is_some_and(|l| used + amount > l) {
                return Err(Expect::Problem {
                    status: 403,
                    code: "budget_exceeded",
                    ext: json!({"scope": scope, "limit": limit, "used": used, "resets_at": to_rfc3339(end)}),
                });
            }
        }
        Ok(())
    }

    /// Draws `amount`: soonest expiry first, never-expiring last, ties by creation, a cycle
    /// turn's rollover before its allocation, then by creation order.
    fn draw(&mut self, amount: i64, now: i64, reserve: bool) -> Result<Vec<(usize, i64)>, Expect> {
        let mut order: Vec<usize> = (0..self.grants.len())
            .filter(|&i| {
                let g = &self.grants[i];
                g.remaining > 0 && g.effective_at <= now && g.expires_at.is_none_or(|e| e > now)
            })
            .collect();
        let available: i64 = order.iter().map(|&i| self.grants[i].remaining).sum();
        if available < amount {
            return Err(Expect::Problem {
                status: 402,
                code: "insufficient_credits",
                ext: json!({"available": available}),
            });
        }
        order.sort_by_key(|&i| {
            let g = &self.grants[i];
            (g.expires_at.unwrap_or(i64::MAX), g.created_at, u8::from(g.source != "rollover"), i)
        });
        let mut left = amount;
        let mut parts = Vec::new();
        for i in order {
            if left == 0 {
                break;
            }
            let g = &mut self.grants[i];
            let take = g.remaining.min(left);
            g.remaining -= take;
            if reserve {
                g.reserved += take;
            }
            left -= take;
            parts.push((i, take));
        }
        Ok(parts)
    }

    fn close_hold(&mut self, hi: usize, status: &'static str, charged: i64, at: i64, charge_id: Option<String>) {
        let h = self.holds[hi].clone();
        let mut to_charge = charged;
        let mut gone = 0;
        for &(gi, part) in &h.parts {
            let take = part.min(to_charge);
            to_charge -= take;
            let back = part - take;
            let g = &mut self.grants[gi];
            g.reserved -= part;
            if back > 0 {
                if g.expires_at.is_some_and(|e| e <= at) {
                    g.expired += back;
                    gone += back;
                } else {
                    g.remaining += back;
                }
            }
        }
        let w = self.w();
        w.held -= h.amount;
        w.balance -= charged + gone;
        w.charged += charged;
        w.expired += gone;
        self.count(&h.ws, &h.member, &h.key, h.period_start, charged - h.amount);
        let h = &mut self.holds[hi];
        h.status = status;
        h.closed_at = Some(at);
        h.charge_id = charge_id;
    }

    fn charge(&mut self, ws: &str, who: &Who, actor: (String, String), amount: i64, now: i64) -> Expect {
        if let Err(e) = self.check_budgets(ws, who, amount, now) {
            return e;
        }
        let parts = match self.draw(amount, now, false) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let w = self.w();
        w.balance -= amount;
        w.charged += amount;
        let balance_after = w.balance;
        let p = self.period(now).0;
        self.count(ws, &who.member, &who.key, p, amount);
        Expect::Charge { amount, parts, balance_after, ws: ws.into(), actor }
    }

    fn hold(&mut self, ws: &str, who: &Who, amount: i64, ttl_ms: i64, now: i64) -> Expect {
        if let Err(e) = self.check_budgets(ws, who, amount, now) {
            return e;
        }
        let parts = match self.draw(amount, now, true) {
            Ok(p) => p,
            Err(e) => return e,
        };
        self.w().held += amount;
        let p = self.period(now).0;
        self.count(ws, &who.member, &who.key, p, amount);
        self.holds.push(MHold {
            id: String::new(),
            amount,
            parts,
            status: "open",
            expires_at: now + ttl_ms,
            closed_at: None,
            ws: ws.into(),
            member: who.member.clone(),
            key: who.key.clone(),
            period_start: p,
            charge_id: None,
        });
        Expect::Hold { hold: self.holds.len() - 1 }
    }

    fn settle(&mut self, hi: usize, amount: i64, now: i64) -> Expect {
        let h = &self.holds[hi];
        if h.status != "open" {
            return Expect::Problem { status: 409, code: "hold_closed", ext: json!({"hold_status": h.status}) };
        }
        if amount > h.amount {
            return Expect::Problem { status: 422, code: "settle_exceeds_hold", ext: json!({"held": h.amount}) };
        }
        let mut left = amount;
        let mut parts = Vec::new();
        for &(g, p) in &h.parts {
            let take = p.min(left);
            if take > 0 {
                parts.push((g, take));
            }
            left -= take;
        }
        let released = h.amount - amount;
        // The charge's balance_after is before what it hands back to expired grants expires.
        let balance_after = self.wallet.as_ref().expect("wallet").balance - amount;
        self.close_hold(hi, "settled", amount, now, None);
        Expect::Settle { hold: hi, amount, parts, balance_after, released }
    }

    fn release(&mut self, hi: usize, now: i64) -> Expect {
        let h = &self.holds[hi];
        if h.status != "open" {
            return Expect::Problem { status: 409, code: "hold_closed", ext: json!({"hold_status": h.status}) };
        }
        self.close_hold(hi, "released", 0, now, None);
        Expect::Release { hold: hi }
    }

    fn grant(&mut self, source: &'static str, amount: i64, expires_at: Option<i64>, now: i64) -> Expect {
        let grant = self.add_grant(source, amount, now, expires_at, now, None);
        Expect::Grant { grant }
    }

    fn debit(&mut self, amount: i64, now: i64) -> Expect {
        let parts = match self.draw(amount, now, false) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let w = self.w();
        w.balance -= amount;
        w.charged += amount;
        Expect::Debit { amount, parts, balance_after: w.balance }
    }

    fn set_budget(&mut self, ws: &str, user: Option<&str>, limit: Option<i64>, now: i64) -> Expect {
        let scope = if user.is_some() { "member" } else { "workspace" };
        let key = (scope.to_string(), ws.to_string(), user.unwrap_or_default().to_string());
        match limit {
            Some(l) => self.budgets.insert(key, l),
            None => self.budgets.remove(&key),
        };
        let (p, end) = self.period(now);
        let subject = match user {
            Some(u) => format!("{ws}:{u}"),
            None => ws.to_string(),
        };
        Expect::Budget {
            scope,
            ws: ws.into(),
            user: user.map(str::to_string),
            limit,
            used: self.used(scope, &subject, p),
            resets_at: to_rfc3339(end),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The world: a database, an engine, a clock, two orgs

struct OrgEnv {
    id: String,
    ws: Vec<String>,
    /// Charges, holds and adjustments are up to this much; top-ups up to half of it.
    scale: i64,
    plans: [&'static str; 3],
}

struct World {
    store: Store,
    /// The database's owner, for reading the tables directly (on PostgreSQL `store` is the
    /// application's role, which row-level security confines).
    owner: Store,
    ledger: Ledger,
    clock: Arc<AtomicI64>,
    catalog: Catalog,
    user: String,
    key: String,
    spend_limit: Option<i64>,
    orgs: Vec<OrgEnv>,
    model: Vec<MOrg>,
    /// (org, hold index) of every hold made, in order.
    holds: Vec<(usize, usize)>,
    /// Commands sent with an Idempotency-Key and what they got.
    sent: Vec<(Command, Reply)>,
    serial: usize,
    /// Per org: whether a batch ran for it since the clock last jumped without the job (only
    /// then must the database agree with the model).
    fresh: Vec<bool>,
    log: Vec<String>,
}

fn ctx(user: &str, now: i64) -> Ctx {
    Ctx { actor: Actor::user(user), ip: None, now }
}

fn start_ledger(store: &Store, clock: &Arc<AtomicI64>) -> Ledger {
    let c = clock.clone();
    let cfg = LedgerConfig { max_batch: 64, ..LedgerConfig::default() };
    Ledger::start(store.clone(), cfg, Arc::new(move || c.load(Ordering::SeqCst)))
}

/// 2026-01-31T10:00:00Z: an anchor on the 31st, so cycles clamp to shorter months.
fn t0() -> i64 {
    parse_rfc3339("2026-01-31T10:00:00Z").expect("t0")
}

impl World {
    async fn new(store: Store, owner: Store, spend_limit: Option<i64>) -> Self {
        let now = t0();
        let catalog = Catalog::builtin();
        let personal = crate::personal_signup(now);
        let user = personal.user_id.clone();
        store.signup(&personal, &ctx(&user, now)).await.expect("signup");
        let business = NewOrg {
            id: IdKind::Org.generate(),
            name: "Acme".into(),
            plan: "business".into(),
            owner_id: user.clone(),
            trial_ends_at: None,
            workspace_id: IdKind::Workspace.generate(),
            workspace_name: "Main".into(),
        };
        store.create_org(&business, &ctx(&user, now)).await.expect("create org");
        let ws2 = IdKind::Workspace.generate();
        store.create_workspace(&business.id, &ws2, "Second", &catalog, &ctx(&user, now)).await.expect("workspace");
        let key = ApiKey {
            id: IdKind::Key.generate(),
            org_id: business.id.clone(),
            workspace_id: business.workspace_id.clone(),
            name: "ci".into(),
            prefix: "rsk_ab12".into(),
            created_by: user.clone(),
            created_at: now,
            expires_at: None,
            spend_limit,
            revoked_at: None,
            rpm: None,
        };
        store.create_key(&key, "hash-of-ci-key", &ctx(&user, now)).await.expect("create key");
        let clock = Arc::new(AtomicI64::new(now));
        let ledger = start_ledger(&store, &clock);
        let orgs = vec![
            OrgEnv { id: personal.org_id, ws: vec![personal.workspace_id], scale: 160, plans: ["free", "solo", "pro"] },
            OrgEnv {
                id: business.id,
                ws: vec![business.workspace_id, ws2],
                scale: 8000,
                plans: ["business", "team", "scale"],
            },
        ];
        let model = vec![MOrg::new("free", now), MOrg::new("business", now)];
        Self {
            store,
            owner,
            ledger,
            clock,
            catalog,
            user,
            key: key.id,
            spend_limit,
            orgs,
            model,
            holds: Vec::new(),
            sent: Vec::new(),
            serial: 0,
            fresh: vec![true, true],
            log: Vec::new(),
        }
    }

    fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    fn idem(&mut self) -> Option<Idem> {
        self.serial += 1;
        Some(Idem { key: format!("idem-{}", self.serial), fingerprint: format!("fp-{}", self.serial) })
    }

    async fn submit(&mut self, cmd: Command) -> R<Reply> {
        if let Some(o) = self.orgs.iter().position(|x| x.id == cmd.org_id) {
            self.fresh[o] = true;
        }
        self.ledger.submit(cmd).await.map(Reply::of).map_err(|e| format!("engine unavailable: {e}"))
    }

    /// A `Tick` of org `o` at the clock's time.
    async fn tick(&mut self, o: usize) -> R {
        let now = self.now();
        let cat = self.catalog.clone();
        self.model[o].touch(now, &cat);
        let cmd = Command {
            org_id: self.orgs[o].id.clone(),
            actor: ActorRef::user("system", None),
            op: Op::Tick,
            idem: None,
        };
        let r = self.submit(cmd).await?;
        ensure_eq!(r.status, 200, "tick");
        Ok(())
    }

    /// Runs one step, then checks everything.
    async fn run(&mut self, step: &Step) -> R {
        let now = self.now();
        self.log.push(format!("t+{}s {step:?}", (now - t0()) / 1000));
        match step {
            Step::Advance { ms, job } => {
                let target = now + ms;
                if *job {
                    self.job_until(target).await?;
                } else {
                    self.fresh.iter_mut().for_each(|f| *f = false);
                }
                self.clock.store(target, Ordering::SeqCst);
                return self.check_all().await;
            }
            Step::Restart => {
                self.ledger = start_ledger(&self.store, &self.clock);
                return self.check_all().await;
            }
            Step::Replay { pick, conflict } => return self.replay(*pick, *conflict).await,
            Step::Plan { org, plan, gap_s, tick } => {
                let t = now + gap_s * 1000;
                if *tick {
                    self.job_until(t).await?;
                } else {
                    self.fresh.iter_mut().for_each(|f| *f = false);
                }
                self.clock.store(t, Ordering::SeqCst);
                let p = self.catalog.get(self.orgs[*org].plans[*plan]).expect("plan").clone();
                self.store
                    .change_plan(&self.orgs[*org].id, &p, None, &ctx(&self.user, t))
                    .await
                    .map_err(|e| format!("change_plan: {e:?}"))?;
                self.model[*org].change_plan(&p.id, t, &self.catalog);
                if *tick {
                    self.tick(*org).await?;
                } else {
                    self.fresh[*org] = false;
                }
                return self.check_all().await;
            }
            _ => {}
        }
        let Some((o, op, actor, with_idem)) = self.command_for(step) else {
            return Ok(());
        };
        let idem = if with_idem { self.idem() } else { None };
        let cmd = Command { org_id: self.orgs[o].id.clone(), actor: actor.clone(), op: op.clone(), idem };
        let cat = self.catalog.clone();
        let m = &mut self.model[o];
        m.touch(now, &cat);
        let expect = match &op {
            Op::Charge { workspace_id, amount, .. } => {
                let who =
                    Who { member: actor.member_id.clone(), key: actor.key_id.clone(), spend_limit: actor.spend_limit };
                m.charge(workspace_id, &who, (actor.actor.kind.to_string(), actor.actor.id.clone()), *amount, now)
            }
            Op::Hold { workspace_id, amount, ttl_ms, .. } => {
                let who =
                    Who { member: actor.member_id.clone(), key: actor.key_id.clone(), spend_limit: actor.spend_limit };
                m.hold(workspace_id, &who, *amount, *ttl_ms, now)
            }
            Op::Settle { hold_id, amount } => {
                let hi = m.holds.iter().position(|h| &h.id == hold_id).expect("known hold");
                m.settle(hi, *amount, now)
            }
            Op::Release { hold_id } => {
                let hi = m.holds.iter().position(|h| &h.id == hold_id).expect("known hold");
                m.release(hi, now)
            }
            Op::Grant { source, amount, expires_at, .. } if *amount > 0 => {
                m.grant(source.as_str(), *amount, *expires_at, now)
            }
            Op::Grant { amount, .. } => m.debit(-amount, now),
            Op::SetBudget { workspace_id, user_id, limit, .. } => {
                m.set_budget(workspace_id, user_id.as_deref(), *limit, now)
            }
            Op::Tick => Expect::Tick,
            Op::SetAlerts { .. } | Op::SetAutoReload { .. } | Op::PauseAutoReload { .. } => {
                unreachable!("these properties make no wallet settings; signals.rs checks them")
            }
        };
        let reply = self.submit(cmd.clone()).await?;
        self.log.push(format!("    -> {} {}", reply.status, reply.body));
        self.learn(o, &expect, &reply)?;
        if cmd.idem.is_some() {
            self.sent.push((cmd, reply.clone()));
        }
        self.check_all().await?;
        self.check_reply(o, &expect, &reply)
    }

    /// The command a step sends: (org, op, actor, whether it carries an Idempotency-Key).
    fn command_for(&self, step: &Step) -> Option<(usize, Op, ActorRef, bool)> {
        let user = ActorRef::user(&self.user, None);
        let amount = |org: usize, pm: u32, div: i64| (self.orgs[org].scale * i64::from(pm) / 1000 / div).max(1);
        let actor = |org: usize, ws: usize, key: bool| -> (usize, ActorRef) {
            if key && org == 1 {
                (0, ActorRef::key(&self.key, &self.user, self.spend_limit, None))
            } else {
                (ws % self.orgs[org].ws.len(), user.clone())
            }
        };
        let wallet = "credits".to_string();
        Some(match step {
            Step::Topup { org, pm } => {
                let op = Op::Grant {
                    wallet,
                    source: Source::Topup,
                    amount: amount(*org, *pm, 2),
                    expires_at: None,
                    reason: None,
                };
                (*org, op, user, true)
            }
            Step::Adjust { org, pm, debit, expires_in_h } => {
                let a = amount(*org, *pm, 1);
                let expires_at = expires_in_h.map(|h| self.now() + i64::from(h) * HOUR_MS);
                let op = Op::Grant {
                    wallet,
                    source: Source::Adjustment,
                    amount: if *debit { -a } else { a },
                    expires_at,
                    reason: Some("correction".into()),
                };
                (*org, op, user, true)
            }
            Step::Charge { org, ws, key, pm } => {
                let (w, a) = actor(*org, *ws, *key);
                let op = Op::Charge {
                    workspace_id: self.orgs[*org].ws[w].clone(),
                    wallet,
                    amount: amount(*org, *pm, 1),
                    action: "render".into(),
                    metadata: None,
                };
                (*org, op, a, true)
            }
            Step::Hold { org, ws, key, pm, ttl_s } => {
                let (w, a) = actor(*org, *ws, *key);
                let op = Op::Hold {
                    workspace_id: self.orgs[*org].ws[w].clone(),
                    wallet,
                    amount: amount(*org, *pm, 1),
                    action: "job".into(),
                    ttl_ms: ttl_s * 1000,
                };
                (*org, op, a, true)
            }
            Step::Settle { pick, amt } => {
                let (o, hi) = *self.holds.get(pick % self.holds.len().max(1))?;
                let h = &self.model[o].holds[hi];
                let amount = match amt {
                    SettleAmt::Exact => h.amount,
                    SettleAmt::Part(pm) => (h.amount * i64::from(*pm) / 1000).max(1),
                    SettleAmt::Over(d) => h.amount + d,
                };
                (o, Op::Settle { hold_id: h.id.clone(), amount }, user, true)
            }
            Step::Release { pick } => {
                let (o, hi) = *self.holds.get(pick % self.holds.len().max(1))?;
                (o, Op::Release { hold_id: self.model[o].holds[hi].id.clone() }, user, false)
            }
            Step::Tick { org } => (*org, Op::Tick, ActorRef::user("system", None), false),
            Step::Budget { org, ws, member, limit } => {
                let w = ws % self.orgs[*org].ws.len();
                let op = Op::SetBudget {
                    workspace_id: self.orgs[*org].ws[w].clone(),
                    user_id: member.then(|| self.user.clone()),
                    limit: limit.map(|pm| self.orgs[*org].scale * 2 * i64::from(pm) / 1000),
                    alert_percents: if *member { vec![] } else { vec![50, 80] },
                };
                (*org, op, user, false)
            }
            Step::Advance { .. } | Step::Restart | Step::Replay { .. } | Step::Plan { .. } => return None,
        })
    }

    /// Checks the reply's status against the model's and learns the ids the engine made.
    fn learn(&mut self, o: usize, expect: &Expect, reply: &Reply) -> R {
        let want = match expect {
            Expect::Charge { .. } | Expect::Hold { .. } | Expect::Grant { .. } | Expect::Debit { .. } => 201,
            Expect::Problem { status, .. } => *status,
            Expect::Same(r) => r.status,
            _ => 200,
        };
        ensure_eq!(reply.status, want, "status (expected {expect:?}), body {}", reply.body);
        let id = reply.body["id"].as_str().unwrap_or_default().to_string();
        match expect {
            Expect::Hold { hold } => {
                ensure!(IdKind::Hold.is_valid(&id), "hold id {id}");
                self.model[o].holds[*hold].id = id;
                self.holds.push((o, *hold));
            }
            Expect::Grant { grant } => {
                let gid = reply.body["grant"]["id"].as_str().unwrap_or_default().to_string();
                ensure!(IdKind::Grant.is_valid(&gid), "grant id {gid}");
                self.model[o].grants[*grant].id = Some(gid);
            }
            Expect::Settle { hold, .. } => {
                let cid = reply.body["charge"]["id"].as_str().unwrap_or_default().to_string();
                ensure!(IdKind::Charge.is_valid(&cid), "charge id {cid}");
                self.model[o].holds[*hold].charge_id = Some(cid);
            }
            _ => {}
        }
        Ok(())
    }

    fn splits(&self, o: usize, parts: &[(usize, i64)]) -> Value {
        Value::Array(
            parts
                .iter()
                .map(|&(g, a)| json!({"grant_id": self.model[o].grants[g].id.clone().unwrap_or_default(), "amount": a}))
                .collect(),
        )
    }

    fn hold_json(&self, o: usize, hi: usize) -> Value {
        let h = &self.model[o].holds[hi];
        json!({"id": h.id, "amount": h.amount, "status": h.status, "workspace_id": h.ws, "org_id": self.orgs[o].id,
               "expires_at": to_rfc3339(h.expires_at), "charge_id": h.charge_id})
    }

    /// Checks the reply's body against the model (grant ids are known by now).
    fn check_reply(&self, o: usize, expect: &Expect, reply: &Reply) -> R {
        let b = &reply.body;
        let sub = |want: Value| subset(b, &want, "reply");
        match expect {
            Expect::Charge { amount, parts, balance_after, ws, actor } => sub(json!({
                "amount": amount, "splits": self.splits(o, parts), "balance_after": balance_after,
                "workspace_id": ws, "org_id": self.orgs[o].id, "actor": {"type": actor.0, "id": actor.1},
                "at": to_rfc3339(self.now()),
            })),
            Expect::Hold { hold } => sub(self.hold_json(o, *hold)),
            Expect::Settle { hold, amount, parts, balance_after, released } => {
                sub(json!({"released": released, "hold": self.hold_json(o, *hold)}))?;
                let c = &b["charge"];
                ensure_eq!(c["amount"], json!(amount), "settle charge amount");
                ensure_eq!(c["splits"], self.splits(o, parts), "settle charge splits");
                ensure_eq!(c["balance_after"], json!(balance_after), "settle balance_after");
                ensure_eq!(c["hold_id"], json!(self.model[o].holds[*hold].id), "settle charge hold_id");
                Ok(())
            }
            Expect::Release { hold } => sub(self.hold_json(o, *hold)),
            Expect::Grant { grant } => {
                let g = &self.model[o].grants[*grant];
                ensure_eq!(
                    b["grant"]["amount"].as_i64().zip(b["grant"]["remaining"].as_i64()),
                    Some((g.amount, g.amount)),
                    "grant amount/remaining"
                );
                ensure_eq!(b["grant"]["source"], json!(g.source), "grant source");
                ensure_eq!(b["grant"]["expires_at"], json!(g.expires_at.map(to_rfc3339)), "grant expires_at");
                Ok(())
            }
            Expect::Debit { amount, parts, balance_after } => {
                let a = &b["adjustment"];
                ensure_eq!(a["amount"], json!(amount), "debit amount");
                ensure_eq!(a["type"], json!("adjustment"), "debit type");
                ensure_eq!(a["splits"], self.splits(o, parts), "debit splits");
                ensure_eq!(a["balance_after"], json!(balance_after), "debit balance_after");
                Ok(())
            }
            Expect::Problem { code, ext, .. } => {
                ensure_eq!(b["code"], json!(code), "problem code");
                sub(ext.clone())
            }
            Expect::Budget { scope, ws, user, limit, used, resets_at } => {
                sub(json!({"scope": scope, "workspace_id": ws, "limit": limit, "used": used, "resets_at": resets_at}))?;
                if let Some(u) = user {
                    ensure_eq!(b["user_id"], json!(u), "budget user");
                }
                Ok(())
            }
            Expect::Tick => Ok(()),
            Expect::Same(r) => {
                ensure_eq!(reply, r, "replayed reply");
                Ok(())
            }
        }
    }

    /// Like the background job: tick every org whose `next_event_at` falls before `target`, at
    /// that instant, until none does.
    async fn job_until(&mut self, target: i64) -> R {
        for _ in 0..500 {
            let mut next: Option<(i64, usize)> = None;
            for (i, o) in self.orgs.iter().enumerate() {
                let ev = self.store.ledger_next_event(&o.id).await.map_err(|e| format!("{e:?}"))?.flatten();
                if let Some(t) = ev.filter(|t| *t <= target)
                    && next.is_none_or(|(n, _)| t < n)
                {
                    next = Some((t, i));
                }
            }
            let Some((t, o)) = next else { return Ok(()) };
            let t = t.max(self.now());
            self.clock.store(t, Ordering::SeqCst);
            self.tick(o).await?;
            self.log.push(format!("    job tick org {o} at t+{}s", (t - t0()) / 1000));
            self.check_all().await?;
        }
        Err("the job kept finding due events".into())
    }

    async fn replay(&mut self, pick: usize, conflict: bool) -> R {
        if self.sent.is_empty() {
            return Ok(());
        }
        let (mut cmd, first) = self.sent[pick % self.sent.len()].clone();
        let o = self.orgs.iter().position(|x| x.id == cmd.org_id).expect("org");
        // Bring the org to now first, so that the replay itself has nothing else to do.
        self.tick(o).await?;
        self.check_all().await?;
        let before = self.snapshot(o).await?;
        let want = if conflict {
            if let Some(i) = cmd.idem.as_mut() {
                i.fingerprint.push_str("-other");
            }
            Expect::Problem { status: 409, code: "idempotency_conflict", ext: json!({}) }
        } else {
            Expect::Same(first)
        };
        let reply = self.submit(cmd).await?;
        self.log.push(format!("    replay -> {} {}", reply.status, reply.body));
        self.learn(o, &want, &reply)?;
        self.check_reply(o, &want, &reply)?;
        let after = self.snapshot(o).await?;
        ensure_eq!(after, before, "a replay changed the ledger");
        self.check_all().await
    }

    async fn snapshot(&self, o: usize) -> R<String> {
        let id = &self.orgs[o].id;
        let db = Db::read(&self.owner, id).await?;
        let idem: Vec<String> = q_strings(
            &self.owner,
            "SELECT key || ' ' || fingerprint || ' ' || response FROM idempotency WHERE org_id = $1 ORDER BY key",
            id,
        )
        .await?;
        let usage = Db::usage(&self.owner, id).await?;
        Ok(format!(
            "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{idem:?}\n{usage:?}",
            db.wallets, db.grants, db.holds, db.entries, db.budgets
        ))
    }

    async fn check_all(&mut self) -> R {
        let fresh: Vec<usize> = (0..self.orgs.len()).filter(|&o| self.fresh[o]).collect();
        for o in fresh {
            self.check_org(o).await.map_err(|e| format!("org {o}: {e}"))?;
        }
        Ok(())
    }

    /// The invariants, recomputed from the database, and the database against the model.
    async fn check_org(&mut self, o: usize) -> R {
        let org_id = self.orgs[o].id.clone();
        let db = Db::read(&self.owner, &org_id).await?;
        let m = &mut self.model[o];
        ensure_eq!(db.wallets.len(), usize::from(m.wallet.is_some()), "wallet rows");
        let Some(w) = db.wallets.first() else { return Ok(()) };
        ensure_eq!(w.kind, "credits", "wallet kind");
        let holds_by_id: HashMap<&str, &DbHold> = db.holds.iter().map(|h| (h.id.as_str(), h)).collect();
        let grants_by_id: HashMap<&str, &DbGrant> = db.grants.iter().map(|g| (g.id.as_str(), g)).collect();

        // Lifetime totals.
        ensure_eq!(w.granted - w.charged - w.expired, w.balance, "granted − charged − expired = balance");
        let sums: BTreeMap<String, i64> = Db::entry_sums(&self.owner, &org_id, &w.id).await?;
        let sum = |t: &str| sums.get(t).copied().unwrap_or(0);
        ensure_eq!(sum("grant"), w.granted, "Σ grant entries = granted");
        ensure_eq!(sum("charge") + sum("adjustment"), w.charged, "Σ charge + adjustment entries = charged");
        ensure_eq!(sum("expiry"), w.expired, "Σ expiry entries = expired");
        // The journal in order: every entry's balance_after is the running balance.
        let mut running = 0;
        let mut seqs = HashSet::new();
        for e in &db.entries {
            ensure!(seqs.insert(e.seq), "seq {} twice", e.seq);
            running += if e.kind == "grant" { e.amount } else { -e.amount };
            ensure_eq!(e.balance_after, running, "balance_after of {} {} (seq {})", e.kind, e.id, e.seq);
        }
        ensure_eq!(running, w.balance, "the journal ends at the balance");
        ensure_eq!(db.grants.iter().map(|g| g.expired).sum::<i64>(), w.expired, "Σ grants.expired = expired");

        // Balance, held, available.
        let remaining: i64 = db.grants.iter().map(|g| g.remaining).sum();
        let reserved: i64 = db.grants.iter().map(|g| g.reserved).sum();
        ensure_eq!(remaining + reserved, w.balance, "balance = Σ remaining + Σ reserved");
        let open: i64 = db.holds.iter().filter(|h| h.status == "open").map(|h| h.amount).sum();
        ensure_eq!(open, w.held, "held = Σ open holds");
        ensure_eq!(reserved, w.held, "held = Σ reserved");
        ensure!(w.balance - w.held >= 0, "available {} < 0", w.balance - w.held);

        // Grants against the journal.
        let mut drawn: HashMap<String, i64> = HashMap::new();
        for e in &db.entries {
            let parts = roost_test_kit::splits::decode(&e.splits)?;
            if e.kind != "grant" {
                ensure_eq!(parts.iter().map(|p| p.1).sum::<i64>(), e.amount, "splits of {} {}", e.kind, e.id);
            }
            if e.kind == "charge" || e.kind == "adjustment" {
                for (g, a) in parts {
                    *drawn.entry(g).or_default() += a;
                }
            }
        }
        for g in &db.grants {
            ensure!(
                0 <= g.remaining && g.remaining <= g.amount && g.reserved >= 0 && g.expired >= 0,
                "grant out of bounds: {g:?}"
            );
            let d = drawn.get(&g.id).copied().unwrap_or(0);
            ensure_eq!(
                g.remaining + g.reserved + g.expired + d,
                g.amount,
                "amount = remaining + reserved + expired + drawn of {g:?}"
            );
        }

        // Settles never above their holds, one charge per hold.
        let mut per_hold: HashMap<&str, usize> = HashMap::new();
        for e in db.entries.iter().filter(|e| e.kind == "charge") {
            if let Some(hid) = &e.hold_id {
                let h = holds_by_id.get(hid.as_str()).ok_or(format!("charge {} of unknown hold {hid}", e.id))?;
                ensure!(e.amount <= h.amount, "charge {} of {} settles {} held", e.id, e.amount, h.amount);
                ensure_eq!(h.status, "settled", "status of settled hold {hid}");
                ensure_eq!(h.charge_id.as_deref(), Some(e.id.as_str()), "charge_id of hold {hid}");
                *per_hold.entry(hid.as_str()).or_default() += 1;
            }
        }
        ensure!(per_hold.values().all(|n| *n == 1), "a hold with several charges: {per_hold:?}");
        for h in &db.holds {
            ensure_eq!(
                h.status == "settled",
                per_hold.contains_key(h.id.as_str()),
                "settled hold {} has its charge",
                h.id
            );
        }

        // The database against the model.
        let mw = m.wallet.as_ref().expect("model wallet");
        ensure_eq!(
            (w.balance, w.held, w.granted, w.charged, w.expired, w.anchor_at, w.cycle, w.allowance),
            (mw.balance, mw.held, mw.granted, mw.charged, mw.expired, mw.anchor, mw.cycle, mw.allowance),
            "wallet (balance, held, granted, charged, expired, anchor, cycle, allowance) vs model"
        );
        for g in &db.grants {
            if let Some(k) = &g.cycle_key {
                let mg = m
                    .grants
                    .iter_mut()
                    .find(|x| x.cycle_key.as_ref() == Some(k))
                    .ok_or(format!("unexpected grant {g:?}"))?;
                match &mg.id {
                    None => mg.id = Some(g.id.clone()),
                    Some(id) => ensure_eq!(id, &g.id, "grant id of {k}"),
                }
            }
        }
        ensure_eq!(db.grants.len(), m.grants.len(), "number of grants");
        for mg in &m.grants {
            let id = mg.id.as_deref().ok_or(format!("model grant never made: {mg:?}"))?;
            let g = grants_by_id.get(id).ok_or(format!("missing grant {mg:?}"))?;
            ensure_eq!(
                (
                    g.source.as_str(),
                    g.amount,
                    g.remaining,
                    g.reserved,
                    g.expired,
                    g.effective_at,
                    g.created_at,
                    &g.cycle_key
                ),
                (
                    mg.source,
                    mg.amount,
                    mg.remaining,
                    mg.reserved,
                    mg.expired,
                    mg.effective_at,
                    mg.created_at,
                    &mg.cycle_key
                ),
                "grant {id} (source, amount, remaining, reserved, expired, effective, created, key) vs model"
            );
            ensure_eq!(g.expires_at, mg.expires_at, "expires_at of grant {id} {:?}", mg.cycle_key);
        }
        ensure_eq!(db.holds.len(), m.holds.len(), "number of holds");
        for mh in &m.holds {
            let h = holds_by_id.get(mh.id.as_str()).ok_or(format!("missing hold {mh:?}"))?;
            ensure_eq!(
                (h.status.as_str(), h.amount, h.expires_at, h.closed_at, &h.charge_id, h.period_start),
                (mh.status, mh.amount, mh.expires_at, mh.closed_at, &mh.charge_id, mh.period_start),
                "hold {} (status, amount, expires_at, closed_at, charge, period) vs model",
                mh.id
            );
        }
        let usage = Db::usage(&self.owner, &org_id).await?;
        let mut want: BTreeMap<(String, String, i64), i64> = BTreeMap::new();
        for ((scope, subject, p), used) in &m.counters {
            want.insert((scope.to_string(), subject.clone(), *p), *used);
        }
        let got: BTreeMap<(String, String, i64), i64> = usage.into_iter().collect();
        let keys: HashSet<_> = want.keys().chain(got.keys()).cloned().collect();
        for k in keys {
            ensure_eq!(got.get(&k).copied().unwrap_or(0), want.get(&k).copied().unwrap_or(0), "budget usage {k:?}");
        }
        let mut budgets: Vec<(String, String, String, i64)> =
            m.budgets.iter().map(|((s, w, u), l)| (s.clone(), w.clone(), u.clone(), *l)).collect();
        budgets.sort();
        ensure_eq!(db.budgets, budgets, "budgets");
        Ok(())
    }
}

/// Every member of `want` is in `got` with the same value (objects compared member-wise too).
fn subset(got: &Value, want: &Value, path: &str) -> R {
    match want {
        Value::Object(m) => {
            for (k, v) in m {
                subset(&got[k.as_str()], v, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        _ => {
            ensure_eq!(got, want, "{path}");
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the database back

#[derive(Debug, Clone, PartialEq)]
struct DbWallet {
    id: String,
    kind: String,
    balance: i64,
    held: i64,
    granted: i64,
    charged: i64,
    expired: i64,
    anchor_at: i64,
    cycle: i64,
    allowance: i64,
}

#[derive(Debug, Clone, PartialEq)]
struct DbGrant {
    id: String,
    source: String,
    amount: i64,
    remaining: i64,
    reserved: i64,
    expired: i64,
    effective_at: i64,
    expires_at: Option<i64>,
    created_at: i64,
    cycle_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct DbHold {
    id: String,
    amount: i64,
    splits: String,
    status: String,
    period_start: i64,
    expires_at: i64,
    closed_at: Option<i64>,
    charge_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct DbEntry {
    id: String,
    kind: String,
    amount: i64,
    splits: String,
    hold_id: Option<String>,
    balance_after: i64,
    at: i64,
    seq: i64,
}

struct Db {
    wallets: Vec<DbWallet>,
    grants: Vec<DbGrant>,
    holds: Vec<DbHold>,
    entries: Vec<DbEntry>,
    budgets: Vec<(String, String, String, i64)>,
}

fn e(x: sqlx::Error) -> String {
    format!("database: {x}")
}

async fn q_strings(store: &Store, sql: &'static str, org: &str) -> R<Vec<String>> {
    sqlx::query_scalar(sql).bind(org).fetch_all(store.pool()).await.map_err(e)
}

impl Db {
    async fn read(store: &Store, org: &str) -> R<Self> {
        let p = store.pool();
        let wallets = sqlx::query(
            "SELECT id, kind, balance, held, granted, charged, expired, anchor_at, cycle, allowance FROM wallets WHERE org_id = $1 ORDER BY id",
        )
        .bind(org)
        .fetch_all(p)
        .await
        .map_err(e)?
        .iter()
        .map(|r| {
            Ok(DbWallet {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                balance: r.try_get("balance")?,
                held: r.try_get("held")?,
                granted: r.try_get("granted")?,
                charged: r.try_get("charged")?,
                expired: r.try_get("expired")?,
                anchor_at: r.try_get("anchor_at")?,
                cycle: r.try_get("cycle")?,
                allowance: r.try_get("allowance")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(e)?;
        let grants = sqlx::query(
            "SELECT id, source, amount, remaining, reserved, expired, effective_at, expires_at, created_at, cycle_key \
             FROM grants WHERE org_id = $1 ORDER BY id",
        )
        .bind(org)
        .fetch_all(p)
        .await
        .map_err(e)?
        .iter()
        .map(|r| {
            Ok(DbGrant {
                id: r.try_get("id")?,
                source: r.try_get("source")?,
                amount: r.try_get("amount")?,
                remaining: r.try_get("remaining")?,
                reserved: r.try_get("reserved")?,
                expired: r.try_get("expired")?,
                effective_at: r.try_get("effective_at")?,
                expires_at: r.try_get("expires_at")?,
                created_at: r.try_get("created_at")?,
                cycle_key: r.try_get("cycle_key")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(e)?;
        let holds = sqlx::query(
            "SELECT id, amount, splits, status, period_start, expires_at, closed_at, charge_id FROM holds \
             WHERE org_id = $1 ORDER BY id",
        )
        .bind(org)
        .fetch_all(p)
        .await
        .map_err(e)?
        .iter()
        .map(|r| {
            Ok(DbHold {
                id: r.try_get("id")?,
                amount: r.try_get("amount")?,
                splits: r.try_get("splits")?,
                status: r.try_get("status")?,
                period_start: r.try_get("period_start")?,
                expires_at: r.try_get("expires_at")?,
                closed_at: r.try_get("closed_at")?,
                charge_id: r.try_get("charge_id")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(e)?;
        let entries = sqlx::query(
            "SELECT id, type, amount, splits, hold_id, balance_after, at, seq FROM ledger_entries WHERE org_id = $1 ORDER BY seq",
        )
        .bind(org)
        .fetch_all(p)
        .await
        .map_err(e)?
        .iter()
        .map(|r| {
            Ok(DbEntry {
                id: r.try_get("id")?,
                kind: r.try_get("type")?,
                amount: r.try_get("amount")?,
                splits: r.try_get("splits")?,
                hold_id: r.try_get("hold_id")?,
                balance_after: r.try_get("balance_after")?,
                at: r.try_get("at")?,
                seq: r.try_get("seq")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(e)?;
        let budgets = sqlx::query(
            "SELECT scope, workspace_id, user_id, amount_limit FROM budgets WHERE org_id = $1 ORDER BY scope, workspace_id, user_id",
        )
        .bind(org)
        .fetch_all(p)
        .await
        .map_err(e)?
        .iter()
        .map(|r| Ok((r.try_get("scope")?, r.try_get("workspace_id")?, r.try_get("user_id")?, r.try_get("amount_limit")?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(e)?;
        let mut budgets: Vec<(String, String, String, i64)> = budgets;
        budgets.sort();
        Ok(Self { wallets, grants, holds, entries, budgets })
    }

    /// Σ amount of the wallet's journal entries, by type (summed by the database).
    async fn entry_sums(store: &Store, org: &str, wallet: &str) -> R<BTreeMap<String, i64>> {
        let rows = sqlx::query(
            "SELECT type, CAST(SUM(amount) AS BIGINT) AS total FROM ledger_entries \
             WHERE org_id = $1 AND wallet_id = $2 GROUP BY type",
        )
        .bind(org)
        .bind(wallet)
        .fetch_all(store.pool())
        .await
        .map_err(e)?;
        rows.iter()
            .map(|r| Ok((r.try_get("type")?, r.try_get("total")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(e)
    }

    async fn usage(store: &Store, org: &str) -> R<Vec<((String, String, i64), i64)>> {
        let rows = sqlx::query(
            "SELECT scope, subject, period_start, used FROM budget_usage WHERE org_id = $1 ORDER BY scope, subject, period_start",
        )
        .bind(org)
        .fetch_all(store.pool())
        .await
        .map_err(e)?;
        rows.iter()
            .map(|r| Ok(((r.try_get("scope")?, r.try_get("subject")?, r.try_get("period_start")?), r.try_get("used")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(e)
    }
}

// ---------------------------------------------------------------------------------------------
// Backends and the properties

use roost_test_kit::db::{FreshDatabase, pg_url};

/// A fresh, migrated database: a SQLite file, or a new database on the `ROOST_TEST_PG` server;
/// the guard removes it.
async fn fresh_store(pg: bool) -> (Store, Store, FreshDatabase) {
    let db =
        if pg { FreshDatabase::postgres(&pg_url().expect("ROOST_TEST_PG")).await } else { FreshDatabase::sqlite() };
    (db.store().await, db.admin_store().await, db)
}

async fn dispose(store: Store, owner: Store, db: FreshDatabase) {
    store.close().await;
    owner.close().await;
    drop(db);
}

/// Runs one case on a fresh database, in its own runtime (the engine spawns its writers).
fn run_case(pg: bool, spend_limit: Option<i64>, steps: &[Step]) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let outcome = rt.block_on(async {
        let (store, owner, db) = fresh_store(pg).await;
        let mut w = World::new(store.clone(), owner.clone(), spend_limit).await;
        let mut result = w.check_all().await;
        for s in steps {
            if result.is_err() {
                break;
            }
            result = w.run(s).await;
        }
        let log = w.log.join("\n");
        drop(w);
        dispose(store, owner, db).await;
        result.map_err(|e| format!("{e}\n--- steps ---\n{log}"))
    });
    outcome.map_err(TestCaseError::fail)
}

fn job_always() -> BoxedStrategy<bool> {
    Just(true).boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    /// The invariants and the model, on SQLite, with the clock advanced like the background job does.
    #[test]
    fn ledger_invariants_hold_on_sqlite((limit, steps) in steps(job_always())) {
        run_case(false, limit, &steps)?;
    }
}

roost_test_kit::pg_test! {
proptest! {
    #![proptest_config(ProptestConfig { cases: 12, max_shrink_iters: 500, failure_persistence: None, ..ProptestConfig::default() })]

    /// The same on PostgreSQL (`ROOST_TEST_PG`), with the engine's four shards.
    #[test]
    fn ledger_invariants_hold_on_postgres((limit, steps) in steps(job_always())) {
        if pg_url().is_none() {
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| eprintln!("{SKIPPED}"));
            return Ok(());
        }
        run_case(true, limit, &steps)?;
    }
}
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    /// With the clock jumping (no background job): the engine's lazy catch-up must end where the
    /// events, taken one by one in time order, would have.
    #[test]
    fn lazy_clock_agrees_with_time_order((limit, steps) in steps(any::<bool>().boxed())) {
        run_case(false, limit, &steps)?;
    }
}

// ---------------------------------------------------------------------------------------------
// The bugs the properties found, as plain scenarios (exact numbers)

/// Runs `f` on a fresh SQLite world (business org = `w.orgs[1]`, no key spend limit), then
/// removes the database whatever happened.
fn scenario<F, Fut>(f: F)
where
    F: FnOnce(World) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let (store, owner, db) = fresh_store(false).await;
        let w = World::new(store.clone(), owner.clone(), None).await;
        let outcome = tokio::spawn(f(w)).await;
        dispose(store, owner, db).await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    });
}

impl World {
    async fn cmd(&mut self, o: usize, actor: ActorRef, op: Op) -> Reply {
        let idem = self.idem();
        let cmd = Command { org_id: self.orgs[o].id.clone(), actor, op, idem };
        self.submit(cmd).await.expect("submit")
    }

    async fn owner_hold(&mut self, amount: i64, ttl_ms: i64) -> String {
        let op = Op::Hold {
            workspace_id: self.orgs[1].ws[0].clone(),
            wallet: "credits".into(),
            amount,
            action: "job".into(),
            ttl_ms,
        };
        let user = ActorRef::user(&self.user, None);
        let r = self.cmd(1, user, op).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().expect("hold id").to_string()
    }

    /// The business org's wallet and its grants by source.
    async fn business(&self) -> (DbWallet, Vec<DbGrant>) {
        let db = Db::read(&self.owner, &self.orgs[1].id).await.expect("read");
        (db.wallets[0].clone(), db.grants)
    }
}

/// A hold that expired before a cycle turn must hand its credits back to the allocation before
/// the turn, so they roll over. Found by `lazy_clock_agrees_with_time_order` (minimal case: a
/// hold of 1 with a 1 s ttl, a 28-day jump to the turn, any command).
#[test]
fn a_hold_that_expired_before_the_turn_rolls_over() {
    scenario(|mut w| async move {
        {
            // Business: 5,000 a month, rollover cap 10,000. Hold 3,000 for 15 minutes.
            w.owner_hold(3000, 15 * 60_000).await;
            // Past the turn (2026-02-28T10:00Z) with nothing in between, then two ticks.
            w.clock.store(parse_rfc3339("2026-02-28T11:00:00Z").expect("t"), Ordering::SeqCst);
            for _ in 0..2 {
                let r = w.cmd(1, ActorRef::user("system", None), Op::Tick).await;
                assert_eq!(r.status, 200);
            }
            let (wallet, grants) = w.business().await;
            let rollover: Vec<i64> = grants.iter().filter(|g| g.source == "rollover").map(|g| g.amount).collect();
            // The hold expired at 10:15 on Jan 31: all 5,000 were left at the turn and roll over.
            assert_eq!(rollover, vec![5000], "rollover grants");
            // The allocation's 5,000 expire at the turn and come back as the rollover grant.
            assert_eq!((wallet.balance, wallet.held, wallet.expired), (10_000, 0, 5000), "balance, held, expired");
        }
    });
}

/// A plan change cuts the current allocation short; what a hold later hands back to it must
/// expire, also after the book was reloaded from the store (another process, a restart).
#[test]
fn a_cut_allocation_stays_cut_after_a_reload() {
    scenario(|mut w| async move {
        {
            let hold = w.owner_hold(3000, HOUR_MS).await;
            let t = t0() + 60_000;
            w.clock.store(t, Ordering::SeqCst);
            let team = w.catalog.get("team").expect("team").clone();
            w.store.change_plan(&w.orgs[1].id, &team, None, &ctx(&w.user, t)).await.expect("change plan");
            let r = w.cmd(1, ActorRef::user("system", None), Op::Tick).await;
            assert_eq!(r.status, 200);
            // The 2,000 left of the allocation end; 3,000 of business's 5,000 were used (held), so
            // team's allocation is 10,000 − 3,000 = 7,000; the 3,000 stay held.
            let (wallet, _) = w.business().await;
            assert_eq!((wallet.balance, wallet.held, wallet.expired), (10_000, 3000, 2000));
            // A new engine (as after a restart, or another replica) loads the book from the store.
            w.ledger = start_ledger(&w.store, &w.clock);
            let r = w.cmd(1, ActorRef::user(&w.user.clone(), None), Op::Release { hold_id: hold }).await;
            assert_eq!(r.status, 200, "{}", r.body);
            // The 3,000 handed back to the cut allocation expire.
            let (wallet, grants) = w.business().await;
            assert_eq!((wallet.balance, wallet.held, wallet.expired), (7_000, 0, 5000), "balance, held, expired");
            let op = Op::Charge {
                workspace_id: w.orgs[1].ws[0].clone(),
                wallet: "credits".into(),
                amount: 15_000,
                action: "render".into(),
                metadata: None,
            };
            let r = w.cmd(1, ActorRef::user(&w.user.clone(), None), op).await;
            assert_eq!((r.status, &r.body["available"]), (402, &json!(7_000)), "{}", r.body);
            let old =
                grants.iter().find(|g| g.cycle_key.as_deref() == Some(&format!("alloc:{}:0", t0()))).expect("old");
            assert_eq!(old.expires_at, Some(t), "the old allocation ends at the change");
        }
    });
}

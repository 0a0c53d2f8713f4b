//! The events a book sends, as a property: for random sequences of charges, holds, top-ups and
//! debit adjustments against a wallet with a low-balance threshold and a workspace budget with
//! alert percents, the events written (`credits.low_balance`, `budget.threshold`,
//! `budget.exceeded`, `credits.depleted`, `wallet.topped_up`) are exactly — in kind, order and
//! numbers — those a reference model predicts from the balance and budget trajectory.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use roost_domain::ledger::EventType;
use roost_ledger::{Command, Ledger, LedgerConfig, Op, Source};
use roost_store::{Actor, Ctx};
use roost_test_kit::{Backend, FreshDatabase};
use serde_json::Value;

const T0: i64 = 1_790_000_000_000;
const LOW: i64 = 150;
const LIMIT: i64 = 400;
const PERCENTS: [u32; 4] = [25, 50, 75, 100];

#[derive(Debug, Clone)]
enum Step {
    Charge(i64),
    Hold(i64),
    Topup(i64),
    Debit(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (1i64..80).prop_map(Step::Charge),
        1 => (1i64..60).prop_map(Step::Hold),
        2 => (1i64..200).prop_map(Step::Topup),
        1 => (1i64..60).prop_map(Step::Debit),
    ]
}

/// What the model expects, in order: `(type, the number that identifies it)`.
type Expected = Vec<(EventType, i64)>;

/// The reference model: available credits, the workspace budget's use, and what was sent.
struct Model {
    available: i64,
    used: i64,
    depleted: bool,
    exceeded: bool,
    events: Expected,
}

impl Model {
    fn lower(&mut self, by: i64) {
        let was = self.available;
        self.available -= by;
        if was >= LOW && self.available < LOW {
            self.events.push((EventType::LowBalance, self.available));
        }
    }

    /// A charge or hold: the budget first, then the funds (the engine's order).
    fn draw(&mut self, amount: i64) {
        if self.used + amount > LIMIT {
            if !self.exceeded {
                self.exceeded = true;
                self.events.push((EventType::BudgetExceeded, self.used));
            }
        } else if amount > self.available {
            if !self.depleted {
                self.depleted = true;
                self.events.push((EventType::Depleted, self.available));
            }
        } else {
            // One command's events: the budget's (counted as it is admitted), then the wallet's.
            let before = self.used;
            self.used += amount;
            for p in PERCENTS {
                let mark = LIMIT * i64::from(p) / 100;
                if before < mark && self.used >= mark {
                    self.events.push((EventType::BudgetThreshold, i64::from(p)));
                }
            }
            self.lower(amount);
        }
    }

    fn apply(&mut self, s: &Step) {
        match *s {
            Step::Charge(a) | Step::Hold(a) => self.draw(a),
            Step::Topup(a) => {
                self.available += a;
                self.depleted = false;
                self.events.push((EventType::ToppedUp, a));
            }
            // A debit adjustment draws outside budgets, and only what is there.
            Step::Debit(a) if a <= self.available => self.lower(a),
            Step::Debit(_) => {}
        }
    }
}

/// The number an event is identified by in [`Expected`].
fn key(kind: EventType, data: &Value) -> i64 {
    let field = match kind {
        EventType::LowBalance | EventType::Depleted => "available",
        EventType::BudgetThreshold => "percent",
        EventType::BudgetExceeded => "used",
        _ => "amount",
    };
    data[field].as_i64().unwrap_or(i64::MIN)
}

async fn run(backend: Backend, steps: &[Step]) -> Result<(), String> {
    let Some(db) = FreshDatabase::create(backend).await else { return Ok(()) };
    let store = db.store().await;
    let s = crate::personal_signup(T0);
    store.signup(&s, &Ctx { actor: Actor::user(&s.user_id), ip: None, now: T0 }).await.map_err(|e| e.to_string())?;
    let clock = Arc::new(AtomicI64::new(T0));
    let c = clock.clone();
    let ledger = Ledger::start(store.clone(), LedgerConfig::default(), Arc::new(move || c.load(Ordering::SeqCst)));
    let actor = roost_ledger::ActorRef::user(&s.user_id, None);
    let cmd = |op| Command { org_id: s.org_id.clone(), actor: actor.clone(), op, idem: None };
    let grant =
        |amount| Op::Grant { wallet: "credits".into(), source: Source::Topup, amount, expires_at: None, reason: None };
    let submit = |c: Command| {
        let ledger = ledger.clone();
        async move { ledger.submit(c).await.map_err(|e| e.to_string()) }
    };
    let op = Op::SetBudget {
        workspace_id: s.workspace_id.clone(),
        user_id: None,
        limit: Some(LIMIT),
        alert_percents: PERCENTS.to_vec(),
    };
    submit(cmd(op)).await?.map_err(|r| format!("budget: {r:?}"))?;
    submit(cmd(grant(300))).await?.map_err(|r| format!("top-up: {r:?}"))?;
    submit(cmd(Op::SetAlerts { wallet: "credits".into(), low_balance: Some(LOW) }))
        .await?
        .map_err(|r| format!("{r:?}"))?;
    let (wallets, _) = store.wallets_of(&s.org_id).await.map_err(|e| e.to_string())?;
    let w = wallets.iter().find(|w| w.kind == "credits").ok_or("no credits wallet")?;
    let mut model =
        Model { available: w.balance - w.held, used: 0, depleted: false, exceeded: false, events: Vec::new() };
    model.events.push((EventType::ToppedUp, 300));
    if model.available - 300 >= LOW && model.available < LOW {
        return Err("the plan's allocation is already below the threshold".into());
    }
    for st in steps {
        let op = match *st {
            Step::Charge(amount) => Op::Charge {
                workspace_id: s.workspace_id.clone(),
                wallet: "credits".into(),
                amount,
                action: "llm".into(),
                metadata: None,
            },
            Step::Hold(amount) => Op::Hold {
                workspace_id: s.workspace_id.clone(),
                wallet: "credits".into(),
                amount,
                action: "job".into(),
                ttl_ms: 3_600_000,
            },
            Step::Topup(a) => grant(a),
            Step::Debit(a) => Op::Grant {
                wallet: "credits".into(),
                source: Source::Adjustment,
                amount: -a,
                expires_at: None,
                reason: None,
            },
        };
        let _ = submit(cmd(op)).await?;
        model.apply(st);
    }
    let mut got: Expected = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.list_events(&s.org_id, None, 500, cursor.as_deref()).await.map_err(|e| e.to_string())?;
        for e in &page.items {
            let data: Value = serde_json::from_str(&e.data).map_err(|e| e.to_string())?;
            got.push((e.kind, key(e.kind, &data)));
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    got.reverse();
    drop(ledger);
    store.close().await;
    drop(db);
    if got == model.events { Ok(()) } else { Err(format!("events {got:?}\n  model {:?}", model.events)) }
}

fn case(backend: Backend, steps: &[Step]) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(run(backend, steps)).map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, max_shrink_iters: 500, failure_persistence: None, ..ProptestConfig::default() })]

    /// On SQLite.
    #[test]
    fn events_follow_the_trajectory_on_sqlite(steps in prop::collection::vec(step(), 1..40)) {
        case(Backend::Sqlite, &steps)?;
    }
}

roost_test_kit::pg_test! {
proptest! {
    #![proptest_config(ProptestConfig { cases: 32, max_shrink_iters: 500, failure_persistence: None, ..ProptestConfig::default() })]

    /// On PostgreSQL (`ROOST_TEST_PG`; skipped, and said so, without it).
    #[test]
    fn events_follow_the_trajectory_on_postgres(steps in prop::collection::vec(step(), 1..40)) {
        if roost_test_kit::pg_url().is_none() {
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| eprintln!("{}", roost_test_kit::SKIPPED));
            return Ok(());
        }
        case(Backend::Postgres, &steps)?;
    }
}
}

//! Idempotency keys in their two places: a charge answered with success keeps its key on its
//! journal entry, every other answer in the `idempotency` table. Both replay within the keeping
//! time, conflict on another request, and are forgotten by the purge (a key reused after it is a
//! new command). On SQLite, and on PostgreSQL when `ROOST_TEST_PG` is set.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use roost_domain::time::parse_rfc3339;
use roost_ledger::{ActorRef, Answer, Command, Idem, Ledger, LedgerConfig, Op, Outcome, Refusal};
use roost_store::{Actor, Ctx, Store};
use roost_test_kit::db::{FreshDatabase, pg_url};

const HOUR_MS: i64 = 3_600_000;
/// What the server's background job keeps (`roost_server::jobs::IDEMPOTENCY_KEEP_MS`).
const KEEP_MS: i64 = 48 * HOUR_MS;

/// A fresh, migrated database on the test kit (removed when the guard drops).
async fn fresh_store(pg: bool) -> (Store, FreshDatabase) {
    let db =
        if pg { FreshDatabase::postgres(&pg_url().expect("ROOST_TEST_PG")).await } else { FreshDatabase::sqlite() };
    (db.store().await, db)
}

struct World {
    store: Store,
    /// The owner, for reading the tables directly (row-level security confines `store`).
    owner: Store,
    ledger: Ledger,
    clock: Arc<AtomicI64>,
    org: String,
    ws: String,
    user: String,
}

impl World {
    async fn new(store: Store, owner: Store) -> Self {
        let now = parse_rfc3339("2026-03-02T10:00:00Z").expect("t0");
        let signup = crate::personal_signup(now);
        let user = signup.user_id.clone();
        store.signup(&signup, &Ctx { actor: Actor::user(&user), ip: None, now }).await.expect("signup");
        let clock = Arc::new(AtomicI64::new(now));
        let c = clock.clone();
        let ledger = Ledger::start(store.clone(), LedgerConfig::default(), Arc::new(move || c.load(Ordering::SeqCst)));
        Self { store, owner, ledger, clock, org: signup.org_id, ws: signup.workspace_id, user }
    }

    async fn charge(&self, amount: i64, key: &str, fingerprint: &str) -> Answer {
        let op = Op::Charge {
            workspace_id: self.ws.clone(),
            wallet: "credits".into(),
            amount,
            action: "render".into(),
            metadata: None,
        };
        let idem = Some(Idem { key: key.into(), fingerprint: fingerprint.into() });
        let cmd = Command { org_id: self.org.clone(), actor: ActorRef::user(&self.user, None), op, idem };
        self.ledger.submit(cmd).await.expect("the engine answers")
    }

    fn advance(&self, ms: i64) -> i64 {
        self.clock.fetch_add(ms, Ordering::SeqCst) + ms
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .bind(&self.org)
            .fetch_one(self.owner.pool())
            .await
            .expect("count")
    }
}

fn charge_id(a: &Answer) -> String {
    match a {
        Ok(Outcome::Charged { charge }) => charge.id.clone(),
        other => panic!("expected a charge, got {other:?}"),
    }
}

async fn keys_in_both_places(pg: bool) {
    let (store, db) = fresh_store(pg).await;
    let owner = db.admin_store().await;
    let w = World::new(store.clone(), owner.clone()).await;
    let outcome = tokio::spawn(async move {
        // A charge: its key goes on its entry, not into the table.
        let id = charge_id(&w.charge(10, "k1", "fp-a").await);
        assert_eq!(charge_id(&w.charge(10, "k1", "fp-a").await), id, "a retry replays the first answer");
        assert_eq!(w.charge(10, "k1", "fp-b").await, Err(Refusal::IdempotencyConflict));
        let on_entries = "SELECT COUNT(*) FROM ledger_entries WHERE org_id = $1 AND idem_key IS NOT NULL";
        assert_eq!(w.count(on_entries).await, 1);
        assert_eq!(w.count("SELECT COUNT(*) FROM ledger_entries WHERE org_id = $1 AND type = 'charge'").await, 1);
        // A refusal: in the table.
        let refused = w.charge(1_000_000_000, "k2", "fp-a").await;
        assert!(matches!(refused, Err(Refusal::InsufficientCredits { .. })), "{refused:?}");
        assert_eq!(w.count("SELECT COUNT(*) FROM idempotency WHERE org_id = $1").await, 1, "only the refusal");
        assert_eq!(w.charge(5, "k2", "fp-a").await, refused, "a refusal stays refused for its key");
        assert_eq!(w.charge(5, "k2", "fp-b").await, Err(Refusal::IdempotencyConflict));

        // 47 hours later, after the purge: both still remembered.
        let now = w.advance(47 * HOUR_MS);
        w.store.purge_idempotency(now - KEEP_MS).await.expect("purge");
        assert_eq!(charge_id(&w.charge(10, "k1", "fp-a").await), id);
        assert_eq!(w.charge(10, "k1", "fp-b").await, Err(Refusal::IdempotencyConflict));
        assert_eq!(w.charge(1_000_000_000, "k2", "fp-a").await, refused);

        // 49 hours: without a purge yet, still remembered (as the table's records are).
        let now = w.advance(2 * HOUR_MS);
        assert_eq!(charge_id(&w.charge(10, "k1", "fp-a").await), id);
        // After the purge, both keys are new commands: the same key is a new charge (a new day, so
        // the journal's unique index takes it), and the refused key charges.
        w.store.purge_idempotency(now - KEEP_MS).await.expect("purge");
        let again = w.charge(7, "k1", "fp-b").await;
        assert_ne!(charge_id(&again), id, "a key reused after the keeping time is a new charge");
        assert_eq!(charge_id(&w.charge(7, "k1", "fp-b").await), charge_id(&again), "and is remembered in turn");
        assert_eq!(w.charge(7, "k1", "fp-a").await, Err(Refusal::IdempotencyConflict));
        let k2 = w.charge(3, "k2", "fp-c").await;
        assert_ne!(charge_id(&k2), id);
        assert_eq!(w.count(on_entries).await, 3, "three charges, each with its key");
        assert_eq!(w.count("SELECT COUNT(*) FROM idempotency WHERE org_id = $1").await, 0, "the refusal is purged");

        // A fresh engine (nothing cached) replays from the database.
        let fresh = Ledger::start(w.store.clone(), LedgerConfig::default(), {
            let c = w.clock.clone();
            Arc::new(move || c.load(Ordering::SeqCst))
        });
        let cmd = Command {
            org_id: w.org.clone(),
            actor: ActorRef::user(&w.user, None),
            op: Op::Charge {
                workspace_id: w.ws.clone(),
                wallet: "credits".into(),
                amount: 7,
                action: "render".into(),
                metadata: None,
            },
            idem: Some(Idem { key: "k1".into(), fingerprint: "fp-b".into() }),
        };
        assert_eq!(charge_id(&fresh.submit(cmd).await.expect("answer")), charge_id(&again));
    })
    .await;
    store.close().await;
    owner.close().await;
    drop(db);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_on_sqlite() {
    keys_in_both_places(false).await;
}

roost_test_kit::pg_test! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_on_postgres() {
    if pg_url().is_none() {
        eprintln!("SKIPPED: ROOST_TEST_PG is not set");
        return;
    }
    keys_in_both_places(true).await;
}
}

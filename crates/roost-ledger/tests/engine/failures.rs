//! Pipelined commits when a commit fails in the middle of a stream of batches: exactly the callers
//! of the failed batches get the retryable error, none of their effects is visible, later batches
//! succeed on books reloaded from the database, a retry of a failed charge (same
//! `Idempotency-Key`) applies it once, and the ledger's invariants hold throughout.
//!
//! Two ways to fail: a write the database refuses (a trigger on one action, both backends), and,
//! on PostgreSQL, the engine's own connections terminated by `pg_terminate_backend` under load.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use roost_ledger::{Answer, Command, Idem, Ledger, LedgerConfig, LedgerError, Op, Outcome, Source};
use roost_store::{Actor, Ctx, Store};
use roost_test_kit::{Backend, FreshDatabase};
use sqlx::Connection;

const T0: i64 = 1_798_000_000_000;
const CLIENTS: usize = 24;
const ROUNDS: usize = 16;
const FUNDS: i64 = 1_000_000;

struct World {
    db: FreshDatabase,
    store: Store,
    /// The owner, for reading and changing the tables directly (row-level security confines
    /// `store` on PostgreSQL).
    owner: Store,
    ledger: Ledger,
    org: String,
    ws: String,
    user: String,
}

async fn world(backend: Backend) -> Option<World> {
    let db = FreshDatabase::create(backend).await?;
    let store = db.store().await;
    let s = crate::personal_signup(T0);
    store.signup(&s, &Ctx { actor: Actor::user(&s.user_id), ip: None, now: T0 }).await.expect("signup");
    let clock = Arc::new(AtomicI64::new(T0));
    let ledger = Ledger::start(store.clone(), LedgerConfig::default(), Arc::new(move || clock.load(Ordering::Relaxed)));
    let owner = db.admin_store().await;
    let w = World { db, store, owner, ledger, org: s.org_id, ws: s.workspace_id, user: s.user_id };
    let topup =
        Op::Grant { wallet: "credits".into(), source: Source::Topup, amount: FUNDS, expires_at: None, reason: None };
    let r = w.ledger.submit(w.command(topup, None)).await.expect("top-up");
    assert!(matches!(r, Ok(Outcome::Granted { .. })), "{r:?}");
    Some(w)
}

impl World {
    fn command(&self, op: Op, key: Option<&str>) -> Command {
        Command {
            org_id: self.org.clone(),
            actor: roost_ledger::ActorRef::key("key_pipeline", &self.user, None, None),
            op,
            idem: key.map(|k| Idem { key: k.into(), fingerprint: format!("fp-{k}") }),
        }
    }

    fn charge(&self, key: &str, action: &str) -> Command {
        let op = Op::Charge {
            workspace_id: self.ws.clone(),
            wallet: "credits".into(),
            amount: 1,
            action: action.into(),
            metadata: None,
        };
        self.command(op, Some(key))
    }

    /// `CLIENTS` callers, each sending `ROUNDS` charges one after another (keys `c{i}-{j}`);
    /// `action(i, j)` names each charge's action.
    async fn stream(&self, action: fn(usize, usize) -> &'static str) -> Vec<(String, Result<Answer, LedgerError>)> {
        let mut tasks = Vec::new();
        for i in 0..CLIENTS {
            let ledger = self.ledger.clone();
            let cmds: Vec<(String, Command)> = (0..ROUNDS)
                .map(|j| {
                    let key = format!("c{i}-{j}");
                    let cmd = self.charge(&key, action(i, j));
                    (key, cmd)
                })
                .collect();
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for (key, cmd) in cmds {
                    out.push((key, ledger.submit(cmd).await));
                }
                out
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("client"));
        }
        all
    }

    /// The charges in the journal: id → action.
    async fn journal(&self) -> HashMap<String, String> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, action FROM ledger_entries WHERE org_id = $1 AND type = 'charge'")
                .bind(&self.org)
                .fetch_all(self.owner.pool())
                .await
                .expect("journal");
        rows.into_iter().collect()
    }

    async fn charged(&self) -> i64 {
        sqlx::query_scalar("SELECT charged FROM wallets WHERE org_id = $1")
            .bind(&self.org)
            .fetch_one(self.owner.pool())
            .await
            .expect("wallet")
    }

    /// Checks what a stream left: every acknowledged charge once in the journal, nothing of the
    /// failed ones, as many failures as the engine counted; then retries each failed charge twice
    /// (same key): it applies once. Returns how many failed.
    async fn check_stream(&self, results: &[(String, Result<Answer, LedgerError>)], ambiguous: bool) -> usize {
        let failed: Vec<&String> = results.iter().filter(|r| r.1.is_err()).map(|r| &r.0).collect();
        let mut acked = HashSet::new();
        for (key, r) in results {
            if let Ok(a) = r {
                let Ok(Outcome::Charged { charge }) = a else { panic!("{key}: {a:?}") };
                assert!(acked.insert(charge.id.clone()), "{key}: one charge per key");
            }
        }
        let stats = self.ledger.stats();
        assert_eq!(stats.failed_commands as usize, failed.len(), "exactly the failed batches' callers got errors");
        let journal = self.journal().await;
        assert!(acked.iter().all(|id| journal.contains_key(id)), "every acknowledged charge is durable");
        if !ambiguous {
            // A terminated COMMIT may have happened after all; a refused write surely did not.
            assert_eq!(journal.len(), acked.len(), "nothing of the failed batches is visible");
            assert_eq!(self.charged().await, acked.len() as i64);
        }
        for key in &failed {
            let cmd = self.charge(key, "work");
            let first = self.ledger.submit(cmd.clone()).await.expect("retry");
            let again = self.ledger.submit(cmd).await.expect("replay");
            assert_eq!(first, again, "{key}: the retry's replay is the retry's answer");
            assert!(matches!(first, Ok(Outcome::Charged { .. })), "{key}: {first:?}");
        }
        let journal = self.journal().await;
        assert_eq!(journal.len(), results.len(), "every key charged once (the refused one retried as work)");
        assert_eq!(self.charged().await, journal.len() as i64, "one charge per key, retries included");
        roost_test_kit::ledger::check(&self.owner).await.expect("the ledger's invariants");
        failed.len()
    }

    async fn close(self) {
        drop(self.ledger);
        self.store.close().await;
        self.owner.close().await;
        drop(self.db);
    }
}

fn is_explode(key: &str) -> bool {
    key == "c0-5"
}

/// Refuses journal entries whose action is `explode`: the batch carrying one cannot commit.
async fn refuse_explode(w: &World) {
    let sql = match w.db.backend() {
        Backend::Sqlite => "CREATE TRIGGER explode BEFORE INSERT ON ledger_entries WHEN NEW.action = 'explode' \
                            BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
            .to_string(),
        Backend::Postgres => "CREATE FUNCTION explode() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                              IF NEW.action = 'explode' THEN RAISE EXCEPTION 'injected failure'; END IF; \
                              RETURN NEW; END $$; \
                              CREATE TRIGGER explode BEFORE INSERT ON ledger_entries FOR EACH ROW EXECUTE FUNCTION explode();"
            .to_string(),
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(w.owner.pool()).await.expect("install the trigger");
}

async fn a_refused_write_fails_only_its_batch(backend: Backend) {
    let Some(w) = world(backend).await else {
        eprintln!("{}", roost_test_kit::SKIPPED);
        return;
    };
    refuse_explode(&w).await;
    let results = w.stream(|i, j| if (i, j) == (0, 5) { "explode" } else { "work" }).await;
    let explode = results.iter().find(|r| is_explode(&r.0)).expect("sent");
    assert!(matches!(explode.1, Err(LedgerError::Unavailable(_))), "{:?}", explode.1);
    // The caller that sent it goes on, and its later charges succeed on reloaded books.
    for j in 6..ROUNDS {
        let r = results.iter().find(|r| r.0 == format!("c0-{j}")).expect("sent");
        assert!(matches!(r.1, Ok(Ok(Outcome::Charged { .. }))), "c0-{j}: {:?}", r.1);
    }
    let stats = w.ledger.stats();
    assert_eq!(stats.failed, 1, "one batch failed: {stats:?}");
    let failed = w.check_stream(&results, false).await;
    assert!(failed >= 1 && failed < results.len(), "{failed} of {} failed", results.len());
    w.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_fails_only_its_batch_on_sqlite() {
    a_refused_write_fails_only_its_batch(Backend::Sqlite).await;
}

roost_test_kit::pg_test! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_fails_only_its_batch_on_postgres() {
    a_refused_write_fails_only_its_batch(Backend::Postgres).await;
}
}

roost_test_kit::pg_test! {
/// The engine's connections terminated again and again while charges stream in: whatever failed
/// was answered as failed, and retries make every charge happen exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_backends_fail_only_their_batches_on_postgres() {
    let Some(w) = world(Backend::Postgres).await else {
        eprintln!("{}", roost_test_kit::SKIPPED);
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let killer = {
        let (url, stop) = (w.db.url().to_string(), stop.clone());
        tokio::spawn(async move {
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
            let mut killed = 0_i64;
            for _ in 0..200 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid() \
                     AND state IN ('active', 'idle in transaction')",
                )
                .fetch_one(&mut conn)
                .await
                .expect("terminate");
                killed += n;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            killed
        })
    };
    let results = w.stream(|_, _| "work").await;
    stop.store(true, Ordering::Relaxed);
    let killed = killer.await.expect("killer");
    assert!(killed > 0, "the test terminated no backend");
    w.check_stream(&results, true).await;
    // Afterwards the engine works as before.
    let after = w.ledger.submit(w.charge("after", "work")).await.expect("after the storm");
    assert!(matches!(after, Ok(Outcome::Charged { .. })), "{after:?}");
    w.close().await;
}
}

//! Queues per org shard, and per shard a pipeline of two stages:
//!
//! - the **preparer** (`prepare`) takes what is queued, applies it in order to the org's book in
//!   memory — trusting the book it keeps from earlier batches, including batches still committing —
//!   and hands the batch's writes and answers to
//! - the **committer** (`commit`), which opens the batch's transaction, locks its orgs, checks
//!   under the lock that everything the preparer assumed still holds (each org's ledger version and
//!   terms, users' roles), writes, commits once, and only then answers the callers.
//!
//! So the next batch is applied while the previous one commits, and no caller hears anything before
//! its batch is durable. When a check fails (another process wrote) or a commit fails, the batches
//! prepared on top of it are handed back and prepared again from fresh books; only the callers of a
//! batch whose commit failed are answered with a retryable error.

mod commit;
mod pending;
mod pipeline;
mod prepare;

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use roost_domain::Catalog;
use roost_store::Store;
use tokio::sync::{mpsc, oneshot};

use crate::{Answer, Command, LedgerError};

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// Wallet kinds every org has (the first is the default); `credits` gets the plan's allocation.
    pub kinds: Vec<String>,
    /// Writers working in parallel, each owning a share of the orgs. SQLite has one write lock, so
    /// one shard is enough there.
    pub shards: usize,
    /// Most commands in one transaction.
    pub max_batch: usize,
    /// Batches per shard prepared but not yet committed, at most: 2 lets the next batch be applied
    /// while one commits; 1 prepares a batch only once the previous one is committed.
    pub pipeline: usize,
    pub catalog: Catalog,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            kinds: vec![crate::CREDITS.into()],
            shards: 4,
            max_batch: 1024,
            pipeline: 2,
            catalog: Catalog::builtin(),
        }
    }
}

impl Shared {
    /// Answers the commands of a batch that failed with a retryable error, and counts them.
    fn fail(&self, jobs: Vec<Job>, e: &roost_store::StoreError) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.failed_commands.fetch_add(jobs.len() as u64, Ordering::Relaxed);
        for j in jobs {
            let _ = j.reply.send(Err(LedgerError::Unavailable(e.to_string())));
        }
    }
}

/// A queued command and where its answer goes.
struct Job {
    cmd: Command,
    reply: oneshot::Sender<Result<Answer, LedgerError>>,
}

struct Shared {
    store: Store,
    cfg: LedgerConfig,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// `ROOST_LEDGER_TRACE` set at start: print each batch's phases on stderr.
    trace: bool,
    /// Batches committed and the commands they carried, for [`Ledger::stats`].
    batches: AtomicU64,
    commands: AtomicU64,
    /// Batches prepared again because what they assumed had changed when they came to commit.
    redone: AtomicU64,
    /// Batches that failed (their commands answered with [`LedgerError::Unavailable`]), and those commands.
    failed: AtomicU64,
    failed_commands: AtomicU64,
}

/// What the engine has committed since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerStats {
    /// Batches committed.
    pub batches: u64,
    /// Commands those batches carried.
    pub commands: u64,
    /// Batches prepared again (another process wrote first, or a commit before them failed).
    pub redone: u64,
    /// Batches that failed, so that their commands were answered with a retryable error.
    pub failed: u64,
    /// The commands of those batches.
    pub failed_commands: u64,
}

impl LedgerStats {
    /// Commands per committed batch.
    #[expect(clippy::cast_precision_loss, reason = "a mean for people")]
    pub fn mean_batch(&self) -> f64 {
        if self.batches == 0 { 0.0 } else { self.commands as f64 / self.batches as f64 }
    }
}

/// The credit engine. Cheap to clone; its writers stop when the last clone is dropped.
#[derive(Clone)]
pub struct Ledger {
    shards: Arc<Vec<mpsc::UnboundedSender<Job>>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("shards", &self.shards.len()).finish()
    }
}

impl Ledger {
    /// Starts the writers. `clock` gives "now" in Unix milliseconds.
    pub fn start(store: Store, mut cfg: LedgerConfig, clock: Arc<dyn Fn() -> i64 + Send + Sync>) -> Self {
        if store.single_writer() {
            cfg.shards = 1;
        }
        cfg.shards = cfg.shards.max(1);
        cfg.max_batch = cfg.max_batch.max(1);
        cfg.pipeline = cfg.pipeline.max(1);
        let trace = std::env::var_os("ROOST_LEDGER_TRACE").is_some();
        let shared = Arc::new(Shared {
            store,
            cfg,
            clock,
            trace,
            batches: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            redone: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            failed_commands: AtomicU64::new(0),
        });
        let mut shards = Vec::new();
        for _ in 0..shared.cfg.shards {
            let (tx, rx) = mpsc::unbounded_channel();
            shards.push(tx);
            tokio::spawn(supervise(Arc::new(tokio::sync::Mutex::new(rx)), shared.clone()));
        }
        Self { shards: Arc::new(shards), shared }
    }

    /// The configuration in force.
    pub fn config(&self) -> &LedgerConfig {
        &self.shared.cfg
    }

    /// Batches and commands committed so far.
    pub fn stats(&self) -> LedgerStats {
        LedgerStats {
            batches: self.shared.batches.load(Ordering::Relaxed),
            commands: self.shared.commands.load(Ordering::Relaxed),
            redone: self.shared.redone.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
            failed_commands: self.shared.failed_commands.load(Ordering::Relaxed),
        }
    }

    /// Whether every writer is still taking commands (for the readiness check).
    pub fn running(&self) -> bool {
        self.shards.iter().all(|s| !s.is_closed())
    }

    /// Queues a command and waits for its batch to commit.
    pub async fn submit(&self, cmd: Command) -> Result<Answer, LedgerError> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        cmd.org_id.hash(&mut h);
        let shard = usize::try_from(h.finish() % self.shards.len() as u64).unwrap_or(0);
        let (tx, rx) = oneshot::channel();
        self.shards[shard]
            .send(Job { cmd, reply: tx })
            .map_err(|_| LedgerError::Unavailable("the ledger is stopping".into()))?;
        rx.await.map_err(|_| LedgerError::Unavailable("the ledger writer stopped".into()))?
    }
}

/// Keeps a shard's pipeline running: if a batch panics (a bug), the callers of the batches in the
/// pipeline get a retryable error (their answer channels drop), nothing of them was committed, and
/// a new pipeline with an empty cache takes over the queue.
async fn supervise(rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>, shared: Arc<Shared>) {
    loop {
        match tokio::spawn(pipeline::run(rx.clone(), shared.clone())).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, "a ledger writer failed; starting a new one");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

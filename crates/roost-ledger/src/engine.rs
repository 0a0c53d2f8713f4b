//! Queues per org shard, one transaction per batch, one commit per batch.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use roost_domain::roles::allows_in_workspace;
use roost_domain::{Catalog, OrgRole, Permission, WsRole};
use roost_store::{HoldRow, IdemRow, LedgerOrg, LedgerTx, Store};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::book::{Book, ENTRY_REF, Out, charge_json, problem};
use crate::{Command, LedgerError, Op, Reply};

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
    pub catalog: Catalog,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self { kinds: vec![crate::CREDITS.into()], shards: 4, max_batch: 1024, catalog: Catalog::builtin() }
    }
}

struct Job {
    cmd: Command,
    reply: oneshot::Sender<Result<Reply, LedgerError>>,
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
}

/// What the engine has committed since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerStats {
    /// Batches committed.
    pub batches: u64,
    /// Commands those batches carried.
    pub commands: u64,
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

/// Books kept between batches, per shard; dropped wholesale past this many orgs.
const CACHE_MAX: usize = 20_000;

impl Ledger {
    /// Starts the writers. `clock` gives "now" in Unix milliseconds.
    pub fn start(store: Store, mut cfg: LedgerConfig, clock: Arc<dyn Fn() -> i64 + Send + Sync>) -> Self {
        if store.single_writer() {
            cfg.shards = 1;
        }
        cfg.shards = cfg.shards.max(1);
        cfg.max_batch = cfg.max_batch.max(1);
        let trace = std::env::var_os("ROOST_LEDGER_TRACE").is_some();
        let shared = Arc::new(Shared { store, cfg, clock, trace, batches: AtomicU64::new(0), commands: AtomicU64::new(0) });
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
        }
    }

    /// Queues a command and waits for its batch to commit.
    pub async fn submit(&self, cmd: Command) -> Result<Reply, LedgerError> {
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

/// Keeps a shard's writer running: if a batch panics (a bug), its callers get a retryable error
/// (their answer channels drop), nothing of it was committed, and a new writer with an empty cache
/// takes over the queue.
async fn supervise(rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>, shared: Arc<Shared>) {
    loop {
        match tokio::spawn(run(rx.clone(), shared.clone())).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, "a ledger writer failed; starting a new one");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn run(rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>, shared: Arc<Shared>) {
    let mut rx = rx.lock().await;
    let mut cache: HashMap<String, Book> = HashMap::new();
    let max = shared.cfg.max_batch;
    let mut jobs: Vec<Job> = Vec::with_capacity(max);
    while let Some(first) = rx.recv().await {
        jobs.push(first);
        // Take what is queued; give callers answered by the previous batch a moment to send
        // their next command, so that batches stay full instead of alternating full and tiny.
        for _ in 0..4 {
            while jobs.len() < max {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            if jobs.len() >= max {
                break;
            }
            tokio::task::yield_now().await;
        }
        let cmds: Vec<&Command> = jobs.iter().map(|j| &j.cmd).collect();
        match batch(&shared, &mut cache, &cmds).await {
            Ok(replies) => {
                shared.batches.fetch_add(1, Ordering::Relaxed);
                shared.commands.fetch_add(replies.len() as u64, Ordering::Relaxed);
                for (job, r) in jobs.drain(..).zip(replies) {
                    let _ = job.reply.send(Ok(r));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, commands = jobs.len(), "ledger batch failed; nothing of it was applied");
                for job in jobs.drain(..) {
                    cache.remove(&job.cmd.org_id);
                    let _ = job.reply.send(Err(LedgerError::Unavailable(e.to_string())));
                }
            }
        }
        if cache.len() > CACHE_MAX {
            cache.clear();
        }
    }
}

/// Loads the books of `stale` orgs from the store.
async fn load_books(tx: &mut LedgerTx, stale: Vec<LedgerOrg>, now: i64) -> roost_store::Result<Vec<Book>> {
    if stale.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = stale.iter().map(|o| o.id.clone()).collect();
    let mut wallets = tx.wallets(&ids).await?;
    let mut grants = tx.live_grants(&ids).await?;
    let mut budgets = tx.budgets(&ids).await?;
    let mut books = Vec::with_capacity(stale.len());
    for o in stale {
        let mut b = Book::empty(o);
        b.wallets = wallets.extract_if(.., |w| w.org_id == b.org.id).collect();
        b.grants = grants.extract_if(.., |g| g.org_id == b.org.id).collect();
        for bu in budgets.extract_if(.., |x| x.org_id == b.org.id) {
            b.budgets.insert((bu.scope.clone(), bu.workspace_id.clone(), bu.user_id.clone()), bu);
        }
        b.next_hold_expiry = tx.next_hold_expiry(&b.org.id, i64::MIN).await?;
        load_counters(tx, &mut b, now).await?;
        books.push(b);
    }
    Ok(books)
}

async fn load_counters(tx: &mut LedgerTx, b: &mut Book, now: i64) -> roost_store::Result<()> {
    b.period = b.period_at(now);
    b.counters.clear();
    for (scope, subject, used) in tx.usage_counters(&b.org.id, b.period.0).await? {
        let scope: &'static str = match scope.as_str() {
            "workspace" => "workspace",
            "member" => "member",
            "key" => "key",
            _ => continue,
        };
        b.counters.insert((scope, subject), used);
    }
    Ok(())
}

/// One batch: lock, load what the cache cannot vouch for, apply in order, write, commit.
async fn batch(
    shared: &Shared,
    cache: &mut HashMap<String, Book>,
    cmds: &[&Command],
) -> roost_store::Result<Vec<Reply>> {
    let now = (shared.clock)();
    let t0 = std::time::Instant::now();
    let mut marks: Vec<(&str, std::time::Duration)> = Vec::new();
    let mut mark = |what: &'static str| {
        if shared.trace {
            marks.push((what, t0.elapsed()));
        }
    };
    let mut org_ids: Vec<String> = cmds.iter().map(|c| c.org_id.clone()).collect();
    org_ids.sort();
    org_ids.dedup();
    let mut tx = shared.store.ledger_begin().await?;
    let orgs = tx.lock_orgs(&org_ids).await?;
    mark("lock");

    // Books: the cached one while nobody else wrote since, else from the store.
    let mut books: HashMap<String, Book> = HashMap::new();
    let mut stale = Vec::new();
    for o in orgs {
        match cache.remove(&o.id) {
            Some(mut b) if o.version == Some(b.version) => {
                b.org = o;
                books.insert(b.org.id.clone(), b);
            }
            _ => stale.push(o),
        }
    }
    for b in load_books(&mut tx, stale, now).await? {
        books.insert(b.org.id.clone(), b);
    }

    // Holds named by the batch.
    let hold_ids: Vec<String> = cmds
        .iter()
        .filter_map(|c| match &c.op {
            Op::Settle { hold_id, .. } | Op::Release { hold_id } => Some(hold_id.clone()),
            _ => None,
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    mark("books");
    let mut holds: HashMap<String, HoldRow> =
        tx.holds(&hold_ids).await?.into_iter().map(|h| (h.id.clone(), h)).collect();

    // Idempotency records already stored.
    let pairs: Vec<(String, String)> = cmds
        .iter()
        .filter_map(|c| c.idem.as_ref().map(|i| (c.org_id.clone(), i.key.clone())))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut idem: HashMap<(String, String), IdemRow> =
        tx.idempotency(&pairs).await?.into_iter().map(|r| ((r.org_id.clone(), r.key.clone()), r)).collect();
    // Replays of charges answer from the journal entry their record names.
    let refs: Vec<(String, String)> = idem
        .values()
        .filter_map(|r| {
            let v: serde_json::Value = serde_json::from_str(&r.response).ok()?;
            Some((r.org_id.clone(), v.get(ENTRY_REF)?.as_str()?.to_string()))
        })
        .collect();
    let mut replayed: HashMap<String, serde_json::Value> = HashMap::new();
    for e in tx.entries(&refs).await? {
        replayed.insert(e.id.clone(), charge_json(&e));
    }

    mark("idem");
    // Users' right to charge, read under the lock (a member removed a moment ago charges nothing).
    let mut may_charge: HashMap<(String, String, String), bool> = HashMap::new();
    for c in cmds {
        if let Some(k) = user_charge(c) {
            if may_charge.contains_key(&k) {
                continue;
            }
            let ok = match tx.charge_roles(&k.0, &k.1, &k.2).await? {
                Some((org_role, ws_role)) => allows_in_workspace(
                    OrgRole::parse(&org_role),
                    ws_role.as_deref().and_then(WsRole::parse),
                    Permission::UseWorkspace,
                ),
                None => false,
            };
            may_charge.insert(k, ok);
        }
    }

    // Bring every book to now.
    let mut out = Out::default();
    let kinds = &shared.cfg.kinds;
    for b in books.values_mut() {
        if b.org.deleted {
            continue;
        }
        if b.period != b.period_at(now) {
            load_counters(&mut tx, b, now).await?;
        }
        let due = if b.next_hold_expiry.is_some_and(|e| e <= now) {
            let due = tx.due_holds(&b.org.id, now).await?;
            b.next_hold_expiry = tx.next_hold_expiry(&b.org.id, now).await?;
            due
        } else {
            Vec::new()
        };
        for h in &due {
            holds.insert(h.id.clone(), h.clone());
        }
        b.refresh(now, &shared.cfg.catalog, kinds, due, &mut out);
        for h in out.writes.holds.iter().filter(|h| h.org_id == b.org.id) {
            holds.insert(h.id.clone(), h.clone());
        }
        out.dirty_orgs.insert(b.org.id.clone());
    }

    mark("refresh");
    // Apply in order.
    let mut replies = Vec::with_capacity(cmds.len());
    for c in cmds {
        let Some(b) = books.get_mut(&c.org_id).filter(|b| !b.org.deleted) else {
            replies.push(problem(404, "not_found", "no such thing here", json!({})));
            continue;
        };
        if let Some(i) = &c.idem
            && let Some(rec) = idem.get(&(c.org_id.clone(), i.key.clone()))
        {
            {
                replies.push(if rec.fingerprint == i.fingerprint {
                    let stored: serde_json::Value = serde_json::from_str(&rec.response).unwrap_or_default();
                    let body = match stored.get(ENTRY_REF).and_then(serde_json::Value::as_str) {
                        Some(id) => replayed.get(id).cloned().unwrap_or_default(),
                        None => stored,
                    };
                    Reply { status: u16::try_from(rec.status).unwrap_or(500), body }
                } else {
                    problem(
                        409,
                        "idempotency_conflict",
                        "this Idempotency-Key was used with a different request",
                        json!({}),
                    )
                });
                continue;
            }
        }
        if let Some(k) = user_charge(c)
            && !may_charge.get(&k).copied().unwrap_or(false)
        {
            replies.push(problem(403, "forbidden", "your role in this workspace does not allow this", json!({})));
            continue;
        }
        let r = b.apply(c, &mut holds, now, &mut out);
        if let Some(i) = &c.idem {
            let rec = b.idem_record(&i.key, &i.fingerprint, &c.op, &r, now);
            if let Some(id) =
                rec.response.contains(ENTRY_REF).then(|| r.body["id"].as_str().map(str::to_string)).flatten()
            {
                // A replay later in this same batch answers from here.
                replayed.insert(id, r.body.clone());
            }
            out.writes.idempotency.push(rec.clone());
            idem.insert((c.org_id.clone(), i.key.clone()), rec);
        }
        replies.push(r);
    }

    // Write and commit.
    for id in &std::mem::take(&mut out.dirty_orgs) {
        if let Some(b) = books.get_mut(id) {
            b.flush(&mut out);
            b.version += 1;
            out.writes.heads.push((b.org.id.clone(), b.version, b.next_event()));
        }
    }
    // Number the journal in the order applied: (new version << 20) + position, per org.
    let mut next_seq: HashMap<String, i64> = HashMap::new();
    for e in &mut out.writes.entries {
        let n = next_seq.entry(e.org_id.clone()).or_insert_with(|| books.get(&e.org_id).map_or(0, |b| b.version << 20));
        *n += 1;
        e.seq = *n;
    }
    dedup_last(&mut out.writes.holds, |h| (h.org_id.clone(), h.id.clone()));
    dedup_last(&mut out.writes.budgets, |b| {
        (b.org_id.clone(), b.scope.clone(), b.workspace_id.clone(), b.user_id.clone())
    });
    mark("apply");
    tx.write(&out.writes).await?;
    mark("write");
    tx.commit().await?;
    mark("commit");
    if shared.trace {
        eprintln!("batch {} cmds: {marks:?}", cmds.len());
    }
    for (id, b) in books {
        cache.insert(id, b);
    }
    Ok(replies)
}

/// For a charge or hold by a user: `(org, workspace, user)`, whose right to charge the batch reads
/// under the org's lock.
fn user_charge(c: &Command) -> Option<(String, String, String)> {
    match (&c.op, c.actor.kind) {
        (Op::Charge { workspace_id, .. } | Op::Hold { workspace_id, .. }, "user") => {
            Some((c.org_id.clone(), workspace_id.clone(), c.actor.id.clone()))
        }
        _ => None,
    }
}

/// Keeps only the last row of each key, in order.
fn dedup_last<T, K: Eq + Hash>(rows: &mut Vec<T>, key: impl Fn(&T) -> K) {
    let mut seen = HashSet::new();
    let mut keep: Vec<bool> = rows.iter().rev().map(|r| seen.insert(key(r))).collect();
    keep.reverse();
    let mut it = keep.into_iter();
    rows.retain(|_| it.next().unwrap_or(true));
}

#[cfg(test)]
mod tests {
    #[test]
    fn dedup_keeps_the_last_of_each_key_in_order() {
        let mut v = vec![(1, 'a'), (2, 'b'), (1, 'c'), (3, 'd'), (2, 'e')];
        super::dedup_last(&mut v, |x| x.0);
        assert_eq!(v, vec![(1, 'c'), (3, 'd'), (2, 'e')]);
    }
}

//! A shard's pipeline: the preparer's loop, and what passes between it and the committer.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use roost_store::{LedgerOrg, LedgerWrites};
use tokio::sync::{Mutex, mpsc};

use super::pending::Pending;
use super::prepare::prepare;
use super::{Job, Shared, commit};
use crate::Answer;
use crate::book::Book;

/// Books kept between batches; dropped wholesale past this many orgs (when nothing is in flight).
const CACHE_MAX: usize = 20_000;

/// Whose right to charge a batch assumed: `(org, workspace, user)`.
pub(super) type RoleKey = (String, String, String);

/// What a batch assumed of an org: its terms, and its ledger version before the batch.
#[derive(Debug)]
pub(super) struct Fence {
    pub org: LedgerOrg,
    pub version: i64,
}

/// A batch applied in memory, ready to commit.
pub(super) struct Prepared {
    /// Its place in the shard's sequence.
    pub seq: u64,
    /// Bumped whenever the preparer's books are dropped: batches of an older epoch were built on
    /// state that did not hold.
    pub epoch: u64,
    pub jobs: Vec<Job>,
    /// One per job, in order.
    pub answers: Vec<Answer>,
    pub writes: LedgerWrites,
    pub fences: Vec<Fence>,
    pub roles: Vec<(RoleKey, bool)>,
}

/// What the committer tells the preparer about each batch, in order.
pub(super) enum Feedback {
    /// Durable; its callers have their answers.
    Committed(u64),
    /// Its commit failed; its callers were told to retry.
    Failed(u64),
    /// Not committed, because what it assumed no longer held (or a batch before it failed): its
    /// commands are to be prepared again.
    Returned(u64, Vec<Job>),
}

/// The preparer's state between batches.
#[derive(Default)]
struct State {
    cache: HashMap<String, Book>,
    pending: Pending,
    seq: u64,
    epoch: u64,
    in_flight: VecDeque<u64>,
    /// Commands handed back, to prepare before anything new.
    redo: Vec<Job>,
}

impl State {
    /// Takes in what the committer said; after a failure or a hand-back, waits until every batch
    /// in flight is accounted for, so that the commands handed back are prepared again in order.
    async fn feedback(&mut self, f: Feedback, fb: &mut mpsc::UnboundedReceiver<Feedback>, shared: &Shared) {
        let mut f = Some(f);
        let mut reset = false;
        while let Some(next) = f.take() {
            let (Feedback::Committed(seq) | Feedback::Failed(seq) | Feedback::Returned(seq, _)) = &next;
            let front = self.in_flight.pop_front();
            debug_assert_eq!(front, Some(*seq), "the committer answers batches in order");
            match next {
                Feedback::Committed(seq) => self.pending.committed(seq),
                Feedback::Failed(_) => reset = true,
                Feedback::Returned(_, jobs) => {
                    reset = true;
                    shared.redone.fetch_add(1, Ordering::Relaxed);
                    self.redo.extend(jobs);
                }
            }
            if reset && !self.in_flight.is_empty() {
                f = fb.recv().await;
            }
        }
        if reset {
            self.epoch += 1;
            self.cache.clear();
            self.pending.clear();
        }
    }
}

/// The preparer: takes queued commands, prepares them as batches and passes them to the
/// committer (started here), at most `pipeline` batches ahead of it.
pub(super) async fn run(rx: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>, shared: Arc<Shared>) {
    let mut rx = rx.lock().await;
    let (to_commit, batches) = mpsc::channel::<Prepared>(1);
    let (fb_tx, mut fb) = mpsc::unbounded_channel::<Feedback>();
    tokio::spawn(commit::run(batches, fb_tx, shared.clone()));
    let mut st = State::default();
    let max = shared.cfg.max_batch;
    loop {
        while let Ok(f) = fb.try_recv() {
            st.feedback(f, &mut fb, &shared).await;
        }
        let mut jobs = std::mem::take(&mut st.redo);
        if jobs.is_empty() {
            if st.in_flight.len() >= shared.cfg.pipeline {
                match fb.recv().await {
                    Some(f) => st.feedback(f, &mut fb, &shared).await,
                    None => return,
                }
                continue;
            }
            tokio::select! {
                biased;
                f = fb.recv(), if !st.in_flight.is_empty() => {
                    match f {
                        Some(f) => st.feedback(f, &mut fb, &shared).await,
                        None => return,
                    }
                    continue;
                }
                j = rx.recv() => match j {
                    Some(j) => jobs.push(j),
                    // Every sender is gone: the committer finishes what is in flight and stops.
                    None => return,
                },
            }
            // Take what is queued; give callers just answered a moment to send their next
            // command, so that batches stay full instead of alternating full and tiny.
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
        }
        if st.in_flight.is_empty() && st.cache.len() > CACHE_MAX {
            st.cache.clear();
        }
        st.seq += 1;
        match prepare(&shared, &mut st.cache, &st.pending, jobs, (st.seq, st.epoch)).await {
            Ok(p) => {
                st.pending.push(p.seq, &p.writes);
                st.in_flight.push_back(p.seq);
                if to_commit.send(p).await.is_err() {
                    return;
                }
            }
            Err((e, jobs)) => {
                tracing::warn!(error = %e, commands = jobs.len(), "ledger batch failed before commit; nothing of it was applied");
                for j in &jobs {
                    st.cache.remove(&j.cmd.org_id);
                }
                shared.fail(jobs, &e);
            }
        }
    }
}

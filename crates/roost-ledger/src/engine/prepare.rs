//! Preparing a batch: the books (kept from earlier batches, or loaded from a snapshot), what the
//! commands refer to (holds, idempotency records, users' roles) as the database shows it with the
//! batches still committing laid on top, then the commands applied in order. What the batch
//! assumed is kept with it, for the committer to check under the lock.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use roost_domain::ledger::{ActorKind, HoldStatus, Refusal};
use roost_store::{EntryRow, HeadRow, HoldRow, IdemRow, LedgerOrg, LedgerTx};

use super::commit::Marks;
use super::pending::Pending;
use super::pipeline::{Fence, Prepared, RoleKey};
use super::{Job, Shared};
use crate::book::{Book, Out};
use crate::outcome::Stored;
use crate::{Answer, Command, Op, Outcome};

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
            b.budgets.insert((bu.scope, bu.workspace_id.clone(), bu.user_id.clone()), bu);
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
        b.counters.insert((scope, subject), used);
    }
    b.exceeded = tx.exceeded(&b.org.id, b.period.0).await?.into_iter().collect();
    Ok(())
}

/// Prepares `jobs` as batch `seq` of `epoch`: books from `cache` (put back afterwards, as this
/// batch leaves them) or loaded, in-flight writes from `pending`.
pub(super) async fn prepare(
    shared: &Shared,
    cache: &mut HashMap<String, Book>,
    pending: &Pending,
    jobs: Vec<Job>,
    (seq, epoch): (u64, u64),
) -> Result<Prepared, (roost_store::StoreError, Vec<Job>)> {
    // The snapshot's scope (row-level security): every org the batch's commands name.
    let mut orgs: Vec<String> = jobs.iter().map(|j| j.cmd.org_id.clone()).collect();
    orgs.sort();
    orgs.dedup();
    let mut tx = match shared.store.ledger_read(&orgs).await {
        Ok(tx) => tx,
        Err(e) => return Err((e, jobs)),
    };
    let cmds: Vec<&Command> = jobs.iter().map(|j| &j.cmd).collect();
    let r = apply(shared, &mut tx, cache, pending, &cmds).await;
    // The snapshot wrote nothing: ending it can only fail with the connection, which is dropped.
    let _ended = tx.rollback().await;
    match r {
        Ok((answers, writes, fences, roles)) => Ok(Prepared { seq, epoch, jobs, answers, writes, fences, roles }),
        Err(e) => Err((e, jobs)),
    }
}

/// What applying a batch gives: answers in order, writes, and what it assumed.
type Applied = (Vec<Answer>, roost_store::LedgerWrites, Vec<Fence>, Vec<(RoleKey, bool)>);

/// Applies `cmds` in order to the books, reading what they need from the snapshot `tx` with the
/// in-flight writes of `pending` on top.
async fn apply(
    shared: &Shared,
    tx: &mut LedgerTx,
    cache: &mut HashMap<String, Book>,
    pending: &Pending,
    cmds: &[&Command],
) -> roost_store::Result<Applied> {
    let now = (shared.clock)();
    let mut marks = Marks::new(shared.trace);
    let mut org_ids: Vec<String> = cmds.iter().map(|c| c.org_id.clone()).collect();
    org_ids.sort();
    org_ids.dedup();
    // Books: the kept one (it already holds the batches still committing), else from the snapshot.
    // The committer checks under the lock that nobody else wrote since.
    let mut books: HashMap<String, Book> = HashMap::new();
    let mut missing = Vec::new();
    for id in org_ids {
        match cache.remove(&id) {
            Some(b) => {
                books.insert(id, b);
            }
            None => missing.push(id),
        }
    }
    let stale = if missing.is_empty() { Vec::new() } else { tx.read_orgs(&missing).await? };
    for b in load_books(tx, stale, now).await? {
        books.insert(b.org.id.clone(), b);
    }
    marks.mark("books");

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
    let hold_orgs: Vec<String> = books.keys().cloned().collect();
    let mut holds: HashMap<String, HoldRow> =
        tx.holds(&hold_orgs, &hold_ids).await?.into_iter().map(|h| (h.id.clone(), h)).collect();
    for id in &hold_ids {
        if let Some(h) = pending.hold(id) {
            holds.insert(id.clone(), h.clone());
        }
    }

    // Idempotency records already stored.
    let pairs: Vec<(String, String)> = cmds
        .iter()
        .filter_map(|c| c.idem.as_ref().map(|i| (c.org_id.clone(), i.key.clone())))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut idem: HashMap<(String, String), (String, Option<Stored>)> = tx
        .idempotency(&pairs)
        .await?
        .into_iter()
        .map(|r| ((r.org_id, r.key), (r.fingerprint, Stored::decode(&r.record))))
        .collect();
    for (org, key) in &pairs {
        if let Some(r) = pending.idem(org, key) {
            idem.insert((org.clone(), key.clone()), r.clone());
        }
    }
    // Replays of charges answer from the journal entry their record names.
    let refs: Vec<(String, String)> = idem
        .iter()
        .filter_map(|((org, _), (_, s))| match s {
            Some(Stored::Entry { entry }) => Some((org.clone(), entry.clone())),
            _ => None,
        })
        .collect();
    let mut replayed: HashMap<String, EntryRow> =
        tx.entries(&refs).await?.into_iter().map(|e| (e.id.clone(), e)).collect();
    for (_, id) in &refs {
        if let Some(e) = pending.entry(id) {
            replayed.insert(id.clone(), e.clone());
        }
    }

    marks.mark("idem");
    // Users' right to charge (a member removed a moment ago charges nothing: the committer reads
    // it again under the lock).
    let mut may_charge: HashMap<RoleKey, bool> = HashMap::new();
    for c in cmds {
        if let Some(k) = user_charge(c) {
            if may_charge.contains_key(&k) {
                continue;
            }
            let ok = super::commit::may_charge(tx, &k).await?;
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
            load_counters(tx, b, now).await?;
        }
        let due = if b.next_hold_expiry.is_some_and(|e| e <= now) {
            let (due, next) = due_holds(tx, pending, &b.org.id, now).await?;
            b.next_hold_expiry = next;
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

    marks.mark("refresh");
    // Apply in order.
    let mut replies = Vec::with_capacity(cmds.len());
    for c in cmds {
        let Some(b) = books.get_mut(&c.org_id).filter(|b| !b.org.deleted) else {
            replies.push(Err(Refusal::NotFound));
            continue;
        };
        if let Some(i) = &c.idem
            && let Some((fingerprint, stored)) = idem.get(&(c.org_id.clone(), i.key.clone()))
        {
            replies.push(replay(fingerprint, stored.as_ref(), i, &replayed));
            continue;
        }
        if let Some(k) = user_charge(c)
            && !may_charge.get(&k).copied().unwrap_or(false)
        {
            replies.push(Err(Refusal::Forbidden));
            continue;
        }
        let r = b.apply(c, &mut holds, now, &mut out);
        if let Some(i) = &c.idem {
            let stored = Stored::of(&r);
            let mut on_entry = None;
            if let Ok(Outcome::Charged { charge }) = &r {
                // A replay later in this same batch answers from here.
                replayed.insert(charge.id.clone(), charge.clone());
                // The record of a charge is its journal entry's key (the store reads it as `$entry`).
                on_entry = out.writes.entries.iter_mut().rfind(|e| e.id == charge.id);
            }
            if let Some(e) = on_entry {
                (e.idem_key, e.idem_fp) = (Some(i.key.clone()), Some(i.fingerprint.clone()));
            } else {
                out.writes.idempotency.push(IdemRow {
                    org_id: c.org_id.clone(),
                    key: i.key.clone(),
                    fingerprint: i.fingerprint.clone(),
                    record: stored.encode(),
                    created_at: now,
                });
            }
            idem.insert((c.org_id.clone(), i.key.clone()), (i.fingerprint.clone(), Some(stored)));
        }
        replies.push(r);
    }

    // What the batch writes, and what it assumed of each org.
    let mut fences = Vec::new();
    for id in &std::mem::take(&mut out.dirty_orgs) {
        if let Some(b) = books.get_mut(id) {
            b.flush(&mut out);
            fences.push(Fence { org: b.org.clone(), version: b.version });
            b.version += 1;
            out.writes.heads.push(HeadRow {
                org_id: b.org.id.clone(),
                version: b.version,
                next_event_at: b.next_event(),
            });
        }
    }
    // Number the journal in the order applied: (new version << 20) + position, per org.
    let mut next_seq: HashMap<String, i64> = HashMap::new();
    for e in &mut out.writes.entries {
        let n = next_seq.entry(e.org_id.clone()).or_insert_with(|| books.get(&e.org_id).map_or(0, |b| b.version << 20));
        *n += 1;
        e.seq = *n;
    }
    // Answers carry their entries as written, so that a replay (rebuilt from the journal) is the
    // very same answer.
    let seqs: HashMap<&str, i64> = out.writes.entries.iter().map(|e| (e.id.as_str(), e.seq)).collect();
    for r in &mut replies {
        let Ok(Outcome::Charged { charge: e } | Outcome::Settled { charge: e, .. } | Outcome::Debited { entry: e }) = r
        else {
            continue;
        };
        if let Some(seq) = seqs.get(e.id.as_str()) {
            e.seq = *seq;
        }
    }
    dedup_last(&mut out.writes.holds, |h| (h.org_id.clone(), h.id.clone()));
    dedup_last(&mut out.writes.budgets, |b| (b.org_id.clone(), b.scope, b.workspace_id.clone(), b.user_id.clone()));
    marks.mark("apply");
    if shared.trace {
        eprintln!("prepared {} cmds: {:?}", cmds.len(), marks.0);
    }
    for (id, b) in books {
        cache.insert(id, b);
    }
    Ok((replies, out.writes, fences, may_charge.into_iter().collect()))
}

/// The org's open holds that expired by `now` and when its next open hold expires, as the
/// snapshot shows them with the in-flight batches' holds laid on top.
async fn due_holds(
    tx: &mut LedgerTx,
    pending: &Pending,
    org: &str,
    now: i64,
) -> roost_store::Result<(Vec<HoldRow>, Option<i64>)> {
    let mut overlay = pending.holds_of(org);
    let mut due = Vec::new();
    for h in tx.due_holds(org, now).await? {
        due.push(overlay.remove(&h.id).unwrap_or(h));
    }
    let open = |h: &HoldRow| h.status == HoldStatus::Open;
    let mut next = tx.next_hold_expiry(org, now).await?;
    for h in overlay.into_values().filter(open) {
        if h.expires_at <= now {
            due.push(h);
        } else {
            next = Some(next.map_or(h.expires_at, |n| n.min(h.expires_at)));
        }
    }
    due.retain(open);
    Ok((due, next))
}

/// For a charge or hold by a user: `(org, workspace, user)`, whose right to charge the batch reads
/// under the org's lock.
pub(super) fn user_charge(c: &Command) -> Option<RoleKey> {
    match (&c.op, c.actor.actor.kind) {
        (Op::Charge { workspace_id, .. } | Op::Hold { workspace_id, .. }, ActorKind::User) => {
            Some((c.org_id.clone(), workspace_id.clone(), c.actor.actor.id.clone()))
        }
        _ => None,
    }
}

/// The answer to a command whose `Idempotency-Key` was seen before: the first answer if the
/// request is the same, else a conflict. A record this version cannot read (written by an older
/// one) is a conflict too: the key was used, and its effect must not happen twice.
fn replay(fingerprint: &str, stored: Option<&Stored>, i: &crate::Idem, replayed: &HashMap<String, EntryRow>) -> Answer {
    if fingerprint != i.fingerprint {
        return Err(Refusal::IdempotencyConflict);
    }
    match stored {
        Some(Stored::Entry { entry }) => {
            // The answer is the entry as it was first answered: without the key it is stored under.
            let first = |e: &EntryRow| EntryRow { idem_key: None, idem_fp: None, ..e.clone() };
            replayed.get(entry).map(|e| Outcome::Charged { charge: first(e) }).ok_or(Refusal::NotFound)
        }
        Some(Stored::Done { ok }) => Ok(ok.clone()),
        Some(Stored::Refused { refused }) => Err(refused.clone()),
        None => Err(Refusal::IdempotencyConflict),
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

//! One batch: lock the orgs, load what the cache cannot vouch for, apply the commands in order,
//! write, commit.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use roost_domain::ledger::{ActorKind, Refusal};
use roost_domain::roles::allows_in_workspace;
use roost_domain::{OrgRole, Permission, WsRole};
use roost_store::{EntryRow, HeadRow, HoldRow, IdemRow, LedgerOrg, LedgerTx};

use super::Shared;
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
    Ok(())
}

/// One batch: lock, load what the cache cannot vouch for, apply in order, write, commit.
pub(super) async fn run(
    shared: &Shared,
    cache: &mut HashMap<String, Book>,
    cmds: &[&Command],
) -> roost_store::Result<Vec<Answer>> {
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
    let mut idem: HashMap<(String, String), (String, Option<Stored>)> = tx
        .idempotency(&pairs)
        .await?
        .into_iter()
        .map(|r| ((r.org_id, r.key), (r.fingerprint, Stored::decode(&r.record))))
        .collect();
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

    // Write and commit.
    for id in &std::mem::take(&mut out.dirty_orgs) {
        if let Some(b) = books.get_mut(id) {
            b.flush(&mut out);
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
    dedup_last(&mut out.writes.holds, |h| (h.org_id.clone(), h.id.clone()));
    dedup_last(&mut out.writes.budgets, |b| (b.org_id.clone(), b.scope, b.workspace_id.clone(), b.user_id.clone()));
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
            replayed.get(entry).map(|e| Outcome::Charged { charge: e.clone() }).ok_or(Refusal::NotFound)
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

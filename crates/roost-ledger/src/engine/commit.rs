//! The committer: each prepared batch in its own transaction — lock the orgs, check that what the
//! preparer assumed still holds, write, commit once — and only then its callers' answers.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use roost_domain::roles::allows_in_workspace;
use roost_domain::{OrgRole, Permission, WsRole};
use roost_store::LedgerTx;
use tokio::sync::mpsc;

use super::Shared;
use super::pipeline::{Feedback, Prepared, RoleKey};

/// Commits batches in order until the preparer stops. After a batch fails or is handed back, the
/// batches of the same epoch (prepared on top of it) are handed back unapplied.
pub(super) async fn run(
    mut batches: mpsc::Receiver<Prepared>,
    fb: mpsc::UnboundedSender<Feedback>,
    shared: Arc<Shared>,
) {
    let mut stale: Option<u64> = None;
    while let Some(p) = batches.recv().await {
        if stale.is_some_and(|e| p.epoch <= e) {
            let _ = fb.send(Feedback::Returned(p.seq, p.jobs));
            continue;
        }
        let mut marks = Marks::new(shared.trace);
        match commit(&shared, &p, &mut marks).await {
            Ok(true) => {
                if shared.trace {
                    eprintln!("committed {} cmds: {:?}", p.jobs.len(), marks.0);
                }
                shared.batches.fetch_add(1, Ordering::Relaxed);
                shared.commands.fetch_add(p.jobs.len() as u64, Ordering::Relaxed);
                for (job, answer) in p.jobs.into_iter().zip(p.answers) {
                    let _ = job.reply.send(Ok(answer));
                }
                let _ = fb.send(Feedback::Committed(p.seq));
            }
            Ok(false) => {
                stale = Some(p.epoch);
                let _ = fb.send(Feedback::Returned(p.seq, p.jobs));
            }
            Err(e) => {
                tracing::warn!(error = %e, commands = p.jobs.len(), "ledger batch failed; nothing of it was applied");
                stale = Some(p.epoch);
                shared.fail(p.jobs, &e);
                let _ = fb.send(Feedback::Failed(p.seq));
            }
        }
    }
}

/// Commits `p` if what it assumed holds under the lock (`false`, nothing written, otherwise).
async fn commit(shared: &Shared, p: &Prepared, marks: &mut Marks) -> roost_store::Result<bool> {
    let mut tx = shared.store.ledger_begin().await?;
    if !fences_hold(&mut tx, p).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    marks.mark("lock and check");
    tx.write(&p.writes).await?;
    marks.mark("write");
    tx.commit().await?;
    marks.mark("commit");
    Ok(true)
}

/// The phases of a batch and when each ended (only with `ROOST_LEDGER_TRACE`).
pub(super) struct Marks(pub Vec<(&'static str, std::time::Duration)>, Option<std::time::Instant>);

impl Marks {
    pub(super) fn new(on: bool) -> Self {
        Self(Vec::new(), on.then(std::time::Instant::now))
    }

    pub(super) fn mark(&mut self, what: &'static str) {
        if let Some(t0) = self.1 {
            self.0.push((what, t0.elapsed()));
        }
    }
}

/// Locks the batch's orgs (in id order) and checks, under the lock, that each org's ledger version
/// and terms are the ones the batch was applied to, and that users may still charge where the
/// batch let them.
async fn fences_hold(tx: &mut LedgerTx, p: &Prepared) -> roost_store::Result<bool> {
    let mut ids: Vec<String> = p.fences.iter().map(|f| f.org.id.clone()).collect();
    ids.sort();
    let orgs = tx.lock_orgs(&ids).await?;
    if orgs.len() != p.fences.len() {
        return Ok(false);
    }
    for f in &p.fences {
        let Some(now) = orgs.iter().find(|o| o.id == f.org.id) else { return Ok(false) };
        let same_terms = (&now.kind, &now.plan, now.plan_started_at, now.trial_ends_at, now.deleted)
            == (&f.org.kind, &f.org.plan, f.org.plan_started_at, f.org.trial_ends_at, f.org.deleted);
        if !same_terms || now.version.unwrap_or(0) != f.version {
            return Ok(false);
        }
    }
    for (k, assumed) in &p.roles {
        if may_charge(tx, k).await? != *assumed {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether a user may charge in a workspace, by their org and workspace roles.
pub(super) async fn may_charge(tx: &mut LedgerTx, (org, ws, user): &RoleKey) -> roost_store::Result<bool> {
    Ok(match tx.charge_roles(org, ws, user).await? {
        Some((org_role, ws_role)) => allows_in_workspace(
            OrgRole::parse(&org_role),
            ws_role.as_deref().and_then(WsRole::parse),
            Permission::UseWorkspace,
        ),
        None => false,
    })
}

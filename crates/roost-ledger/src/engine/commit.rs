//! The committer: each prepared batch in its own transaction — lock the orgs, check that what the
//! preparer assumed still holds, write, commit once — and only then its callers' answers.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use roost_domain::roles::allows_in_workspace;
use roost_domain::{OrgRole, Permission, WsRole};
use roost_store::{Batch, ChargeRoles, FenceCheck, LedgerOrg, LedgerTx};
use tokio::sync::mpsc;

use super::Shared;
use super::pipeline::{Feedback, Fence, Prepared, RoleKey};

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
        let mut p = p;
        match commit(&shared, &mut p, &mut marks).await {
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
/// The batch's writes go to the store; its jobs and answers stay here.
async fn commit(shared: &Shared, p: &mut Prepared, marks: &mut Marks) -> roost_store::Result<bool> {
    let mut orgs: Vec<String> = p.fences.iter().map(|f| f.org.id.clone()).collect();
    orgs.sort();
    let fences = std::mem::take(&mut p.fences);
    let (roles, assumed): (Vec<RoleKey>, Vec<bool>) = std::mem::take(&mut p.roles).into_iter().unzip();
    let check: FenceCheck = Box::new(move |locked, now_roles| fences_hold(&fences, &assumed, locked, now_roles));
    let batch = Batch { orgs, roles, writes: std::mem::take(&mut p.writes), check };
    let done = shared.store.ledger_commit(batch).await?;
    for (phase, at) in done.phases {
        marks.at(phase, at);
    }
    Ok(done.applied)
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

    /// Records a phase another part measured, ending `at` after the start.
    pub(super) fn at(&mut self, what: &'static str, at: std::time::Duration) {
        if self.1.is_some() {
            self.0.push((what, at));
        }
    }
}

/// Whether what the batch assumed still holds under the lock: each org's ledger version and terms
/// are the ones the batch was applied to (`locked`: the orgs as locked, in id order), and users may
/// still charge where the batch let them (`roles`: as read under the lock, in the order of `assumed`).
fn fences_hold(fences: &[Fence], assumed: &[bool], locked: &[LedgerOrg], roles: &[ChargeRoles]) -> bool {
    if locked.len() != fences.len() || roles.len() != assumed.len() {
        return false;
    }
    let terms_hold = fences.iter().all(|f| {
        locked.iter().find(|o| o.id == f.org.id).is_some_and(|now| {
            (&now.kind, &now.plan, now.plan_started_at, now.trial_ends_at, now.deleted)
                == (&f.org.kind, &f.org.plan, f.org.plan_started_at, f.org.trial_ends_at, f.org.deleted)
                && now.version.unwrap_or(0) == f.version
        })
    });
    terms_hold && roles.iter().zip(assumed).all(|(r, a)| allowed(r) == *a)
}

/// Whether org and workspace roles let a user charge in the workspace.
fn allowed(roles: &ChargeRoles) -> bool {
    roles.as_ref().is_some_and(|(org_role, ws_role)| {
        allows_in_workspace(
            OrgRole::parse(org_role),
            ws_role.as_deref().and_then(WsRole::parse),
            Permission::UseWorkspace,
        )
    })
}

/// Whether a user may charge in a workspace, by their org and workspace roles.
pub(super) async fn may_charge(tx: &mut LedgerTx, (org, ws, user): &RoleKey) -> roost_store::Result<bool> {
    Ok(allowed(&tx.charge_roles(org, ws, user).await?))
}

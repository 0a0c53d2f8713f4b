//! A batch's commit: lock its orgs, read what its fences need, let the engine check them, write,
//! commit once. On SQLite this runs on the writer thread of its own ([`super::native`]); elsewhere
//! in a sqlx transaction.

use std::time::{Duration, Instant};

use super::rows::{LedgerOrg, LedgerWrites};
use crate::{Result, Store};

/// A user's org role and workspace role (`None` when not in the workspace), as a charge's fence
/// reads them under the lock; `None` when the workspace is gone or the user is not in the org.
pub type ChargeRoles = Option<(String, Option<String>)>;

/// The engine's check under the lock, given the locked orgs (in id order; missing ones absent)
/// and the roles of [`Batch::roles`] (in the same order): `true` to write the batch.
pub type FenceCheck = Box<dyn FnOnce(&[LedgerOrg], &[ChargeRoles]) -> bool + Send>;

/// One batch to commit.
pub struct Batch {
    /// The orgs to lock, in id order (so batches never deadlock).
    pub orgs: Vec<String>,
    /// `(org, workspace, user)` whose right to charge the batch assumed.
    pub roles: Vec<(String, String, String)>,
    pub writes: LedgerWrites,
    pub check: FenceCheck,
}

/// How a commit went.
#[derive(Debug)]
pub struct Committed {
    /// Whether the batch was written (`false`: its check failed, nothing was written).
    pub applied: bool,
    /// How long each phase took, in order.
    pub phases: Vec<(&'static str, Duration)>,
}

/// Phase timings of one commit.
pub(super) struct Phases(Instant, Vec<(&'static str, Duration)>);

impl Phases {
    pub(super) fn start() -> Self {
        Self(Instant::now(), Vec::with_capacity(3))
    }

    pub(super) fn mark(&mut self, what: &'static str) {
        self.1.push((what, self.0.elapsed()));
    }

    pub(super) fn done(self, applied: bool) -> Committed {
        Committed { applied, phases: self.1 }
    }
}

impl Store {
    /// Whether the ledger's writer of its own, where there is one, still runs (for `/readyz`).
    pub fn ledger_writer_running(&self) -> bool {
        self.writer.as_ref().is_none_or(|w| w.running())
    }

    /// Commits a ledger batch if its check holds under the lock of its orgs: one durable commit
    /// for all of it, or nothing written.
    pub async fn ledger_commit(&self, batch: Batch) -> Result<Committed> {
        if let Some(writer) = &self.writer {
            return writer.commit(batch).await;
        }
        let mut phases = Phases::start();
        let mut tx = self.ledger_begin(&batch.orgs).await?;
        let orgs = tx.lock_orgs(&batch.orgs).await?;
        let mut roles = Vec::with_capacity(batch.roles.len());
        for (org, ws, user) in &batch.roles {
            roles.push(tx.charge_roles(org, ws, user).await?);
        }
        if !(batch.check)(&orgs, &roles) {
            tx.rollback().await?;
            return Ok(phases.done(false));
        }
        phases.mark("lock and check");
        tx.write(&batch.writes).await?;
        phases.mark("write");
        tx.commit().await?;
        phases.mark("commit");
        Ok(phases.done(true))
    }
}

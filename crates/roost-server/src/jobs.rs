//! Background work: the ledger's clock-driven changes (cycle turns, grant and hold expiries) for
//! orgs nobody is charging, forgetting idempotency records past their keeping time, and removing
//! workspace history older than the plan keeps.

use std::time::Duration;

use roost_ledger::{ActorRef, Command, Op};

use crate::AppState;

/// Idempotency keys are kept at least this long (API.md says 24 h).
pub const IDEMPOTENCY_KEEP_MS: i64 = 48 * 3_600_000;

/// Runs until aborted: every `ledger_tick_ms`, ticks each org whose ledger has something due.
/// Several replicas may run it at once: a tick is an ordinary ledger command under the org's lock,
/// and a cycle turn is keyed per wallet and cycle, so it happens once.
pub async fn run(st: AppState) {
    let every = Duration::from_millis(st.settings.ledger_tick_ms);
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = tick(&st).await {
            tracing::warn!(error = %e, "ledger background job failed; retrying next round");
        }
    }
}

/// One round of the background job; returns how many orgs it ticked.
pub async fn tick(st: &AppState) -> Result<usize, roost_store::StoreError> {
    let now = st.clock.now_ms();
    let due = st.store.ledger_due(now, 1000).await?;
    let n = due.len();
    let mut waits = Vec::with_capacity(n);
    for org_id in due {
        let ledger = st.ledger.clone();
        let cmd = Command { org_id, actor: ActorRef::system(), op: Op::Tick, idem: None };
        waits.push(tokio::spawn(async move { ledger.submit(cmd).await }));
    }
    for w in waits {
        let _ = w.await;
    }
    st.store.purge_idempotency(now - IDEMPOTENCY_KEEP_MS).await?;
    crate::api::records::retention(st, now).await?;
    crate::billing::tick(st).await?;
    Ok(n)
}

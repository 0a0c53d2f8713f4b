//! The engine's runs: roost's batching ledger, with everything it writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use roost_ledger::{ActorRef, Answer, Command, Idem, Ledger, LedgerError, Op};

use crate::AMOUNT;
use crate::clients::{drive, pick};
use crate::report::Run;
use crate::setup::Target;

/// The one place that reads the engine's answer: did the command take effect?
fn accepted(r: &Answer) -> bool {
    r.is_ok()
}

pub(crate) async fn submit(ledger: &Ledger, cmd: Command) -> anyhow::Result<bool> {
    ledger.submit(cmd).await.map(|r| accepted(&r)).map_err(|e: LedgerError| anyhow::anyhow!("{e}"))
}

pub(crate) async fn run_engine(ledger: &Ledger, targets: &[Target], clients: usize, secs: f64) -> Run {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let before = ledger.stats();
    let l = ledger.clone();
    let targets = Arc::new(targets.to_vec());
    let mut r = drive(
        clients,
        secs,
        move |c, i| {
            let ledger = l.clone();
            let targets = targets.clone();
            async move {
                let (t, k) = pick(&targets, clients, c, i);
                let (key, ws) = &t.keys[k];
                let cmd = Command {
                    org_id: t.org.clone(),
                    actor: ActorRef::key(key, &t.owner, None, None),
                    op: Op::Charge {
                        workspace_id: ws.clone(),
                        wallet: "credits".into(),
                        amount: AMOUNT,
                        action: "bench".into(),
                        metadata: None,
                    },
                    idem: Some(Idem { key: format!("b-{run}-{c}-{i}"), fingerprint: format!("f-{c}-{i}") }),
                };
                submit(&ledger, cmd).await
            }
        },
        || {},
    )
    .await;
    let after = ledger.stats();
    let delta = roost_ledger::LedgerStats {
        batches: after.batches - before.batches,
        commands: after.commands - before.commands,
        ..after
    };
    r.batch = delta.mean_batch();
    r
}

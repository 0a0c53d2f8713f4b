//! The closed-loop clients every run drives: each waits for its answer before sending the next.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::report::Run;
use crate::setup::Target;

/// Which org and key client `c` charges on its `i`th request: the orgs in turn, and client `c`
/// always with key `c mod keys` of that org.
pub(crate) fn pick(targets: &[Target], clients: usize, c: usize, i: u64) -> (&Target, usize) {
    let i = usize::try_from(i).unwrap_or(usize::MAX);
    let t = &targets[c.wrapping_add(i.wrapping_mul(clients)) % targets.len()];
    (t, c % t.keys.len())
}

/// Runs `clients` loops for `secs`, each calling `one(client, i)`; `Ok(true)` counts as a charge.
/// `stopped` is called when the clients are told to stop (they finish the request in hand).
pub(crate) async fn drive<F, Fut>(clients: usize, secs: f64, one: F, stopped: impl FnOnce()) -> Run
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<bool>> + Send,
{
    let one = Arc::new(one);
    let stop = Arc::new(AtomicBool::new(false));
    let rejected = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (one, stop, rejected) = (one.clone(), stop.clone(), rejected.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(16_384);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match one(c, i).await {
                    Ok(true) => lat.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX)),
                    Ok(false) => {
                        rejected.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("client {c}: {e:#}");
                        rejected.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += 1;
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    stopped();
    let mut all = Vec::new();
    for t in tasks {
        if let Ok(l) = t.await {
            all.extend(l);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    Run { ok: all.len() as u64, rejected: rejected.load(Ordering::Relaxed), secs, latencies_us: all, batch: 1.0 }
}

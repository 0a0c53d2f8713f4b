//! Webhooks (API.md "Events and webhooks"): signing, where they may be sent, and the delivery
//! worker. Each endpoint has a cursor over its org's events in id order; the worker delivers the
//! event after the cursor, one at a time per endpoint, and moves the cursor only when it arrived.
//! A replica works on an endpoint only while it holds the endpoint's lease in the database, so
//! several replicas never deliver one endpoint's events at once, and a restart resumes at the
//! cursor: at least once, in order.

pub mod send;
pub mod sign;
pub mod target;

use std::sync::Arc;
use std::time::Duration;

use roost_domain::IdKind;
use roost_domain::time::month_start;
use roost_store::{AfterAttempt, Attempt, StoreError, Webhook};
use tokio::sync::Semaphore;

use crate::{AppState, Clock, SystemClock};

/// Leases run on the wall clock, not on the injected clock: they measure how long a replica may
/// take over an endpoint, real time that a test moving the business clock must not shorten.
fn lease_now() -> i64 {
    SystemClock.now_ms()
}

/// Most endpoints one process delivers to at once.
const PARALLEL: usize = 32;
/// Most events one lease delivers before the endpoint goes back in line.
const PER_LEASE: usize = 500;

/// Runs until aborted: every `webhooks_poll_ms`, claims due endpoints and delivers their events.
pub async fn run(st: AppState) {
    let owner = format!("{}-{}", std::process::id(), IdKind::Event.generate());
    if st.store.backend() == "sqlite" {
        // SQLite is served by one process: leases left by a process that was killed are stale.
        if let Err(e) = st.store.clear_webhook_leases().await {
            tracing::warn!(error = %e, "could not clear stale webhook leases");
        }
    }
    let slots = Arc::new(Semaphore::new(PARALLEL));
    let every = Duration::from_millis(st.settings.webhooks_poll_ms);
    loop {
        tokio::time::sleep(every).await;
        let due = match st.store.webhooks_due(st.clock.now_ms(), lease_now(), 100).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "webhook worker could not read due endpoints; retrying");
                continue;
            }
        };
        for id in due {
            let Ok(slot) = slots.clone().try_acquire_owned() else { break };
            let (st, owner) = (st.clone(), owner.clone());
            tokio::spawn(async move {
                if let Err(e) = endpoint(&st, &id, &owner).await {
                    tracing::warn!(webhook = %id, error = %e, "webhook delivery round failed; retrying");
                }
                drop(slot);
            });
        }
    }
}

/// Delivers what is due to one endpoint, if this process gets its lease, and gives the lease back.
async fn endpoint(st: &AppState, id: &str, process: &str) -> Result<(), StoreError> {
    let lease = i64::try_from(st.settings.webhooks_lease_ms).unwrap_or(i64::MAX);
    let (now, wall) = (st.clock.now_ms(), lease_now());
    // Each claim has a token of its own: a task that lost the race for the lease (the same
    // endpoint can be listed as due twice before the first claim lands) must not be able to
    // release or use the winner's lease.
    let owner = format!("{process}/{}", IdKind::Event.generate());
    let Some(w) = st.store.claim_webhook(id, &owner, now, wall, wall.saturating_add(lease)).await? else {
        return Ok(());
    };
    let done = pump(st, w, &owner, lease).await;
    st.store.release_webhook(id, &owner).await?;
    done
}

/// Delivers the endpoint's events in order while `owner` holds its lease.
async fn pump(st: &AppState, mut w: Webhook, owner: &str, lease: i64) -> Result<(), StoreError> {
    let id = w.id.clone();
    let id = id.as_str();
    let quota = match st.store.org_by_id(&w.org_id).await? {
        Some(org) => st.settings.catalog.get(&org.plan).and_then(|p| p.webhook_events_per_month),
        None => None,
    };
    let mut sent = 0;
    while sent < PER_LEASE {
        let bound = IdKind::Event.floor_ms_ago(st.settings.webhooks_settle_ms);
        let events = st.store.events_after(&w.org_id, &w.cursor, &bound, 50).await?;
        if events.is_empty() {
            return Ok(());
        }
        let mut skipped: Option<String> = None;
        for e in events {
            if !w.wants(e.kind.as_str()) {
                skipped = Some(e.id);
                continue;
            }
            let now = st.clock.now_ms();
            if let Some(c) = skipped.take() {
                st.store.skip_webhook_events(id, owner, &c, lease_now().saturating_add(lease)).await?;
                w.cursor = c;
            }
            if let Some(q) = quota {
                let month = month_start(now);
                if u64::try_from(st.store.webhook_usage(&w.org_id, month).await?).unwrap_or(0) >= q {
                    // Past the plan's quota: held back, not dropped, until the next month.
                    let next = month_start(month + 32 * 86_400_000);
                    return st.store.defer_webhook(id, owner, next).await;
                }
            }
            if !attempt(st, &mut w, owner, &e, lease).await? {
                return Ok(());
            }
            sent += 1;
        }
        if let Some(c) = skipped {
            st.store.skip_webhook_events(id, owner, &c, lease_now().saturating_add(lease)).await?;
            w.cursor = c;
        }
    }
    Ok(())
}

/// One attempt to deliver `e`; logs it and moves the endpoint on. Returns whether it arrived (and
/// the lease is still ours), so the next event may follow.
async fn attempt(
    st: &AppState,
    w: &mut Webhook,
    owner: &str,
    e: &roost_store::EventRow,
    lease: i64,
) -> Result<bool, StoreError> {
    let n = w.attempt + 1;
    let at = st.clock.now_ms();
    let body = send::event_body(e);
    let out = send::send(&st.webhook_http, st.settings.webhooks_allow_private, w, &e.id, &body, at).await;
    let now = st.clock.now_ms();
    let schedule = &st.settings.webhooks_retry_schedule_ms;
    let after = if out.ok {
        AfterAttempt::Delivered { month_start: month_start(now) }
    } else if let Some(wait) = usize::try_from(w.attempt).ok().and_then(|i| schedule.get(i)) {
        AfterAttempt::Retry { next_at: now.saturating_add(i64::try_from(*wait).unwrap_or(i64::MAX)) }
    } else {
        tracing::warn!(webhook = %w.id, event = %e.id, "webhook disabled after its last retry failed");
        AfterAttempt::Disable
    };
    let log = Attempt {
        event_id: e.id.clone(),
        attempt: n,
        at,
        status_code: out.status_code,
        error: out.error,
        duration_ms: out.duration_ms,
    };
    let held =
        st.store.finish_attempt(&w.id, &w.org_id, owner, &log, Some(after), lease_now().saturating_add(lease)).await?;
    if out.ok {
        w.cursor.clone_from(&e.id);
        w.attempt = 0;
    } else {
        w.attempt = n;
    }
    Ok(out.ok && held)
}

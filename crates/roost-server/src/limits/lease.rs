//! Leases: the shared limits without a Redis round trip per request. A process takes a slice of
//! a limit from Redis in one script call (`gcra::lease`: the limit's arrival time moves on by
//! the whole slice at once, and only if it fits), then spends it here, under a short lock of that
//! limit alone. When a lease is half spent a background task takes the next one, so that in
//! steady state no request waits for Redis; when it is spent before that lands, one request
//! takes it (single flight) and the others of the same limit wait for it. A refusal from Redis is
//! kept until the moment it named (nothing frees a GCRA limit earlier but time), so refused
//! requests do not ask Redis either.
//!
//! The size of a lease adapts to the traffic: 1 at first, doubled each time a lease is spent
//! within its life, halved each time one expires unspent, and never above one second of the
//! limit's rate ([`max_lease`], at most [`MAX_LEASE`]): a limit of 60 a minute or less is always
//! taken one request at a time. What a lease leaves unspent when its life ([`LEASE_TTL`]) ends
//! is lost (the limit passes fewer requests than it could, by at most one lease per process).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::gcra::{Cell, PERIOD_US, interval_us};
use super::shared::{Shared, SharedError};

/// How long the requests of a lease may be spent: the rest is void after it.
pub const LEASE_TTL: Duration = Duration::from_secs(1);
/// The largest lease, whatever the limit.
pub const MAX_LEASE: u32 = 1000;
/// A lease is renewed ahead of time only from this size on (smaller leases are of limits too
/// slow or too small to need it, and renewing them early would waste what they leave).
const PREFETCH_FROM: u32 = 4;
/// How long a request waits for another's renewal of the same limit before failing open.
const WAIT: Duration = Duration::from_millis(1000);
/// Limits without a live lease are swept when there are more than this many.
const SWEEP_AT: usize = 10_000;

/// The largest lease of `limit`: one second of its rate (a sixtieth of it), at least 1 and at
/// most [`MAX_LEASE`].
pub fn max_lease(limit: u32) -> u32 {
    (limit / 60).clamp(1, MAX_LEASE)
}

/// The size of the next lease of `limit` after one of `size`: doubled when the last was spent
/// within its life (`spent_in_time`), else kept; within 1..=[`max_lease`].
pub fn grown(size: u32, limit: u32, spent_in_time: bool) -> u32 {
    let next = if spent_in_time { size.saturating_mul(2) } else { size };
    next.clamp(1, max_lease(limit))
}

/// The size after a lease expired with requests unspent: halved.
pub fn shrunk(size: u32) -> u32 {
    (size / 2).max(1)
}

/// One limit as this process holds it.
#[derive(Debug)]
struct State {
    /// The limit the lease was taken under: a lease of another limit is dropped.
    limit: u32,
    /// The size of the next lease.
    size: u32,
    /// Requests leased and not spent yet.
    left: u32,
    /// The limit's arrival time in Redis minus Redis's now, at `at`.
    ahead_us: i64,
    /// When Redis last answered.
    at: Instant,
    /// When the requests of the lease become void.
    expires: Instant,
    /// Nothing fits before then (Redis said so).
    blocked_until: Option<Instant>,
    /// A renewal is under way.
    refilling: bool,
}

impl State {
    fn new(limit: u32, now: Instant) -> Self {
        Self { limit, size: 1, left: 0, ahead_us: 0, at: now, expires: now, blocked_until: None, refilling: false }
    }

    /// Voids what expired; drops everything if the limit changed.
    fn settle(&mut self, limit: u32, now: Instant) {
        if self.limit != limit {
            let refilling = self.refilling;
            *self = Self::new(limit, now);
            self.refilling = refilling;
        }
        if self.left > 0 && now >= self.expires {
            self.left = 0;
            self.size = shrunk(self.size);
        }
        if self.blocked_until.is_some_and(|b| now >= b) {
            self.blocked_until = None;
        }
    }

    /// The limit's arrival time minus now, as of `now`.
    fn ahead_at(&self, now: Instant) -> i64 {
        self.ahead_us - micros(now.saturating_duration_since(self.at))
    }

    /// A request that passed (already taken from `left`).
    fn passed(&self, now: Instant) -> Cell {
        let ahead = self.ahead_at(now);
        Cell { limit: self.limit, over_us: (ahead - PERIOD_US).min(0), ahead_us: ahead, held: self.left }
    }

    /// A request refused until `until`.
    fn refused(&self, until: Instant, now: Instant) -> Cell {
        let over = micros(until.saturating_duration_since(now)).max(1);
        Cell { limit: self.limit, over_us: over, ahead_us: self.ahead_at(now) + interval_us(self.limit), held: 0 }
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// One limit: its state, and the waiters on its renewal.
#[derive(Debug)]
struct Slot {
    state: Mutex<State>,
    renewed: Notify,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain counters, whole after every statement: a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What one take of a limit found.
#[derive(Debug)]
enum Take {
    /// The answer (a request from the lease, or a refusal Redis already gave).
    Done(Cell),
    /// A request from the lease, which is half spent: renew it in the background (this size).
    Ahead(Cell, u32),
    /// Wait for the renewal under way.
    Wait,
    /// Renew (this size), then take again: this request is the one that renews.
    Renew(u32),
}

/// The leases of this process, over one Redis.
pub struct Leases {
    shared: Arc<Shared>,
    slots: RwLock<HashMap<String, Arc<Slot>>>,
    /// Leases asked of Redis so far.
    asked: Arc<AtomicU64>,
}

impl Leases {
    pub fn new(shared: Shared) -> Self {
        Self { shared: Arc::new(shared), slots: RwLock::default(), asked: Arc::default() }
    }

    /// How many leases this process asked Redis for so far (each one script call).
    pub fn asked(&self) -> u64 {
        self.asked.load(Ordering::Relaxed)
    }

    /// Counts a request against every limit of `limits` (Redis key, requests a minute): all
    /// pass or none counts. Returns the cells by index into `limits`: every one when the request
    /// passed, else the refusing one. `now_ms` only times Redis's backoff.
    pub async fn check(&self, limits: &[(String, u32)], now_ms: i64) -> Result<Vec<(usize, Cell)>, SharedError> {
        let mut taken: Vec<(Arc<Slot>, u32)> = Vec::with_capacity(limits.len());
        let mut cells = Vec::with_capacity(limits.len());
        // The last limit (the key's) first: it is the tighter one, the one most likely to refuse.
        for (i, (key, limit)) in limits.iter().enumerate().rev() {
            let slot = self.slot(key);
            match self.take(&slot, key, *limit, now_ms).await {
                Ok(cell) if cell.allows() => {
                    taken.push((slot, *limit));
                    cells.push((i, cell));
                }
                Ok(cell) => {
                    give_back(&taken);
                    return Ok(vec![(i, cell)]);
                }
                Err(e) => {
                    give_back(&taken);
                    return Err(e);
                }
            }
        }
        cells.reverse();
        Ok(cells)
    }

    /// What one more request would find of each limit, counting nothing: `None` for a limit
    /// this process holds nothing of (ask Redis).
    pub fn look(&self, limits: &[(String, u32)]) -> Vec<Option<Cell>> {
        let now = Instant::now();
        let slots = self.slots.read().unwrap_or_else(PoisonError::into_inner);
        limits
            .iter()
            .map(|(key, limit)| {
                let slot = slots.get(key)?;
                let s = slot.lock();
                if s.limit != *limit {
                    return None;
                }
                if let Some(until) = s.blocked_until.filter(|b| *b > now) {
                    return Some(s.refused(until, now));
                }
                if s.left == 0 || now >= s.expires {
                    return None;
                }
                let ahead = s.ahead_at(now);
                Some(Cell { limit: *limit, over_us: (ahead - PERIOD_US).min(0), ahead_us: ahead, held: s.left - 1 })
            })
            .collect()
    }

    /// The shared limits themselves (looks that count nothing).
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    fn slot(&self, key: &str) -> Arc<Slot> {
        if let Some(slot) = self.slots.read().unwrap_or_else(PoisonError::into_inner).get(key) {
            return slot.clone();
        }
        let now = Instant::now();
        let mut slots = self.slots.write().unwrap_or_else(PoisonError::into_inner);
        if slots.len() > SWEEP_AT {
            slots.retain(|_, slot| {
                let s = slot.lock();
                Arc::strong_count(slot) > 1
                    || s.refilling
                    || (s.left > 0 && s.expires > now)
                    || s.blocked_until.is_some_and(|b| b > now)
            });
        }
        slots
            .entry(key.to_string())
            .or_insert_with(|| Arc::new(Slot { state: Mutex::new(State::new(0, now)), renewed: Notify::new() }))
            .clone()
    }

    /// Takes one request of `limit` at `key`: from the lease, else from a renewal.
    async fn take(&self, slot: &Arc<Slot>, key: &str, limit: u32, now_ms: i64) -> Result<Cell, SharedError> {
        loop {
            let (step, waiter) = {
                let now = Instant::now();
                let mut s = slot.lock();
                s.settle(limit, now);
                let step = take_step(&mut s, now);
                // Registered before the lock is released, so the renewal's wake-up is not missed.
                let waiter = matches!(step, Take::Wait).then(|| slot.renewed.notified());
                (step, waiter)
            };
            match step {
                Take::Done(cell) => return Ok(cell),
                Take::Ahead(cell, want) => {
                    let (shared, slot, key) = (self.shared.clone(), slot.clone(), key.to_string());
                    self.asked.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(async move {
                        if let Err(e) = renew(&shared, &slot, &key, limit, want, now_ms).await {
                            tracing::debug!(error = %e, "rate limits: renewing a lease ahead of time");
                        }
                    });
                    return Ok(cell);
                }
                Take::Wait => {
                    if let Some(w) = waiter
                        && tokio::time::timeout(WAIT, w).await.is_err()
                    {
                        return Err(SharedError::Redis(redis::RedisError::from((
                            redis::ErrorKind::Io,
                            "timed out waiting for another request's lease",
                        ))));
                    }
                }
                Take::Renew(want) => {
                    self.asked.fetch_add(1, Ordering::Relaxed);
                    // On a task of its own: a request dropped while it waits (its client went
                    // away) must not leave the limit marked as being renewed forever.
                    let (shared, slot, key) = (self.shared.clone(), slot.clone(), key.to_string());
                    let renewal = tokio::spawn(async move { renew(&shared, &slot, &key, limit, want, now_ms).await });
                    match renewal.await {
                        Ok(answer) => answer?,
                        Err(e) => {
                            return Err(SharedError::Redis(redis::RedisError::from((
                                redis::ErrorKind::Io,
                                "a lease's renewal failed",
                                e.to_string(),
                            ))));
                        }
                    }
                }
            }
        }
    }
}

/// The pure part of a take, under the limit's lock: a request from the lease (and whether to
/// renew it ahead of time), a refusal Redis already gave, a wait, or a renewal.
fn take_step(s: &mut State, now: Instant) -> Take {
    if s.left > 0 {
        s.left -= 1;
        let cell = s.passed(now);
        if !s.refilling && s.size >= PREFETCH_FROM && s.left <= s.size / 2 {
            // Half spent within half its life: the next one may be bigger.
            let quick = now.saturating_duration_since(s.at) < LEASE_TTL / 2;
            s.size = grown(s.size, s.limit, quick);
            s.refilling = true;
            return Take::Ahead(cell, s.size);
        }
        return Take::Done(cell);
    }
    if let Some(until) = s.blocked_until {
        return Take::Done(s.refused(until, now));
    }
    if s.refilling {
        return Take::Wait;
    }
    // Spent before it expired: the next may be bigger.
    s.size = grown(s.size, s.limit, now < s.expires);
    s.refilling = true;
    Take::Renew(s.size)
}

/// Puts back the requests taken of the limits that passed when a later one refused.
fn give_back(taken: &[(Arc<Slot>, u32)]) {
    let now = Instant::now();
    for (slot, limit) in taken {
        let mut s = slot.lock();
        if s.limit == *limit && now < s.expires {
            s.left += 1;
        }
    }
}

/// Takes a lease of `want` requests of `limit` at `key` into `slot`, and wakes its waiters.
async fn renew(shared: &Shared, slot: &Slot, key: &str, limit: u32, want: u32, now_ms: i64) -> Result<(), SharedError> {
    let sent = Instant::now();
    let answer = shared.lease(key, limit, want, now_ms).await;
    let received = Instant::now();
    {
        let mut s = slot.lock();
        s.refilling = false;
        if let Ok(g) = &answer
            && s.limit == limit
        {
            s.ahead_us = g.ahead_us;
            s.at = received;
            if g.granted > 0 {
                // What is left of the last lease joins the new one (and lives as long).
                s.left = if received < s.expires { s.left + g.granted } else { g.granted };
                // Counted from before the call: Redis's grant was no earlier than that.
                s.expires = sent + LEASE_TTL;
                s.blocked_until = None;
            } else {
                s.blocked_until = Some(received + Duration::from_micros(u64::try_from(g.over_us.max(1)).unwrap_or(1)));
            }
        }
    }
    slot.renewed.notify_waiters();
    answer.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_at_most_a_second_of_the_rate_and_one_for_small_limits() {
        for (limit, max) in
            [(1, 1), (3, 1), (60, 1), (119, 1), (120, 2), (600, 10), (3000, 50), (60_000_000, MAX_LEASE)]
        {
            assert_eq!(max_lease(limit), max, "{limit}");
        }
        assert_eq!((grown(1, 600, true), grown(8, 600, true), grown(8, 600, false)), (2, 10, 8));
        assert_eq!((grown(1, 60, true), grown(5, 3, false)), (1, 1), "small limits lease one at a time");
        assert_eq!((shrunk(10), shrunk(1)), (5, 1));
    }

    #[test]
    fn takes_spend_the_lease_renew_it_half_spent_and_wait_for_one_renewal() {
        let now = Instant::now();
        let mut s = State::new(600, now);
        // Nothing held: this request renews, with a lease of 1 (nothing was spent yet).
        assert!(matches!(take_step(&mut s, now), Take::Renew(1)));
        // Another request of the same limit meanwhile waits for that renewal.
        assert!(matches!(take_step(&mut s, now), Take::Wait));
        // A lease of 8 arrives: 100 ms intervals, the arrival time 0.8 s ahead.
        (s.refilling, s.left, s.size, s.ahead_us, s.at, s.expires) = (false, 8, 8, 800_000, now, now + LEASE_TTL);
        for held in [7, 6, 5] {
            let Take::Done(c) = take_step(&mut s, now) else { panic!("{s:?}") };
            assert_eq!((c.allows(), c.held, c.remaining()), (true, held, 592 + held));
        }
        // Half spent (4 left) within half its life: renewed ahead, bigger, while this one passes.
        let Take::Ahead(c, want) = take_step(&mut s, now) else { panic!("{s:?}") };
        assert_eq!((c.allows(), c.held, want, s.size), (true, 4, 10, 10));
        // Only one renewal at a time: the rest of the lease is spent meanwhile.
        for _ in 0..4 {
            assert!(matches!(take_step(&mut s, now), Take::Done(c) if c.allows()));
        }
        assert!(matches!(take_step(&mut s, now), Take::Wait));
    }

    #[test]
    fn a_refusal_is_kept_until_its_moment_and_a_changed_limit_drops_the_lease() {
        let now = Instant::now();
        let mut s = State::new(600, now);
        s.blocked_until = Some(now + Duration::from_millis(2500));
        s.ahead_us = PERIOD_US;
        let Take::Done(c) = take_step(&mut s, now) else { panic!("{s:?}") };
        assert_eq!((c.allows(), c.retry_seconds(), c.remaining()), (false, 3, 0));
        // Once the moment has passed, the next request asks Redis again.
        s.settle(600, now + Duration::from_millis(2500));
        assert!(matches!(take_step(&mut s, now), Take::Renew(_)));
        // A lease of 600 a minute is not spent under a limit of 5.
        (s.refilling, s.left, s.size, s.expires) = (false, 9, 10, now + LEASE_TTL);
        s.settle(5, now);
        assert_eq!((s.limit, s.left, s.size), (5, 0, 1));
        // What a lease leaves when it expires is void, and the next lease is smaller.
        (s.left, s.size, s.expires) = (3, 8, now);
        s.settle(5, now);
        assert_eq!((s.left, s.size), (0, 4));
    }

    const REDIS_URL: &str = "redis://127.0.0.1:6379";

    async fn redis_up() -> bool {
        let Ok(client) = redis::Client::open(REDIS_URL) else { return false };
        let ping = async {
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        let up = matches!(tokio::time::timeout(Duration::from_secs(2), ping).await, Ok(Ok(_)));
        if !up {
            println!("SKIPPED: Redis does not answer at {REDIS_URL}");
        }
        up
    }

    /// Three processes' leases on one Redis limit of 600 a minute, hammered by 48 tasks: never
    /// more than the limit (and what it refilled meanwhile) passes, and no less than the limit
    /// minus what the leases may leave unspent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leases_of_three_processes_hold_a_shared_limit() {
        if !redis_up().await {
            return;
        }
        const RPM: u32 = 600;
        let key = format!("roost-test:{}:rl:{{org}}:key:k", roost_domain::IdKind::Event.generate());
        let procs: Vec<Arc<Leases>> =
            (0..3).map(|_| Arc::new(Leases::new(Shared::new(REDIS_URL).expect("redis url")))).collect();
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for p in &procs {
            for _ in 0..16 {
                let (p, key) = (p.clone(), key.clone());
                tasks.spawn(async move {
                    let (mut ok, mut refused) = (0u32, 0u32);
                    for _ in 0..100 {
                        let cells = p.check(&[(key.clone(), RPM)], 0).await.expect("redis");
                        let [(0, c)] = cells[..] else { panic!("{cells:?}") };
                        assert!(c.remaining() < RPM && c.limit == RPM, "{c:?}");
                        if c.allows() {
                            ok += 1;
                        } else {
                            assert!(c.retry_seconds() >= 1, "{c:?}");
                            refused += 1;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    (ok, refused)
                });
            }
        }
        let (mut ok, mut refused) = (0u32, 0u32);
        while let Some(done) = tasks.join_next().await {
            let (o, r) = done.expect("task");
            (ok, refused) = (ok + o, refused + r);
        }
        let secs = started.elapsed().as_secs_f64();
        let most = f64::from(RPM) + (secs * f64::from(RPM) / 60.0).ceil();
        let slack = 3 * 2 * max_lease(RPM);
        println!("{ok} passed, {refused} refused in {secs:.2}s (at most {most}, at least {})", RPM - slack);
        assert_eq!(ok + refused, 4800);
        assert!(f64::from(ok) <= most, "{ok} passed: the limit allows {most}");
        assert!(ok >= RPM - slack, "only {ok} passed of {RPM}");
        del(&key).await;
    }

    async fn del(key: &str) {
        let client = redis::Client::open(REDIS_URL).expect("redis url");
        let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
        let _: i64 = redis::cmd("DEL").arg(key).query_async(&mut conn).await.expect("DEL");
    }

    /// The point of leases: a busy limit asks Redis once per slice, not once per request, and
    /// every request still counts (Redis's arrival time covers them all).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_limit_asks_redis_once_a_slice() {
        if !redis_up().await {
            return;
        }
        const RPM: u32 = 60_000;
        let key = format!("roost-test:{}:rl:{{org}}:org", roost_domain::IdKind::Event.generate());
        let leases = Leases::new(Shared::new(REDIS_URL).expect("redis url"));
        let mut last = RPM;
        for i in 0..3000 {
            let cells = leases.check(&[(key.clone(), RPM)], 0).await.expect("redis");
            let [(0, c)] = cells[..] else { panic!("{cells:?}") };
            assert!(c.allows(), "request {i}: {c:?}");
            // Never more left than before this request (give or take the minute's refill, one a ms).
            assert!(c.remaining() < last + 5, "request {i}: {c:?} after {last}");
            last = c.remaining();
        }
        let asked = leases.asked();
        // 1, 2, 4, … 1000 (a second of 60,000 a minute): about a dozen leases for 3000 requests.
        assert!(asked <= 30, "{asked} leases for 3000 requests");
        let client = redis::Client::open(REDIS_URL).expect("redis url");
        let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
        let tat: i64 = redis::cmd("GET").arg(&key).query_async(&mut conn).await.expect("GET");
        let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await.expect("TIME");
        // Every request passed counted in Redis: 3000 intervals of 1 ms at least are ahead of then.
        assert!(tat - (secs * 1_000_000 + micros) >= 3000 * 1000 - 2_000_000, "{tat}");
        del(&key).await;
    }
}

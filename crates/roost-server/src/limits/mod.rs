//! Rate limits on API-key traffic: the org plan's `rpm` across all of the org's keys, and a key's
//! own `rpm`. Checked when a key authenticates (see `auth`), through Redis when `redis_url` is
//! set (every replica shares the counts, spending leases taken from Redis: `lease.rs`), in this
//! process otherwise. The answer of the check
//! rides in the request's extensions to [`headers`], which writes the `RateLimit-*` headers on
//! whatever the handler answered.

pub mod gcra;
pub mod lease;
mod shared;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use roost_store::ApiKey;

use self::gcra::Cell;
use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// How long an org's plan `rpm` is trusted before it is read again: a plan change reaches the
/// limits of every replica within this time.
const PLAN_TTL_MS: i64 = 30_000;
/// Local arrival times are swept when there are more than this many.
const SWEEP_AT: usize = 10_000;

/// Where a limit comes from, as the API names it (`limit_source`, `scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Org,
    Key,
}

impl Source {
    /// The API's name of it.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Org => "org",
            Source::Key => "key",
        }
    }
}

/// The tightest limit in force for one request, after it was counted (or refused).
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub source: Source,
    pub cell: Cell,
}

/// The rate limits of this process.
pub struct Limiter {
    /// `false`: no request is limited (the `rate_limits` setting).
    enabled: bool,
    shared: Option<lease::Leases>,
    prefix: String,
    /// Arrival times (µs) by limit key, when limits are not shared.
    local: Mutex<HashMap<String, i64>>,
    /// Each org's plan `rpm` and when it was read (ms).
    plans: RwLock<HashMap<String, (Option<u32>, i64)>>,
    /// The leases asked of Redis as last reported in `roost_rate_limit_leases_total`.
    leases_reported: AtomicU64,
}

impl Limiter {
    /// Limits through Redis at `redis_url` if given, else in this process.
    pub fn new(enabled: bool, redis_url: Option<&str>, prefix: &str) -> anyhow::Result<Self> {
        let shared = redis_url.filter(|_| enabled).map(shared::Shared::new).transpose()?.map(lease::Leases::new);
        Ok(Self {
            enabled,
            shared,
            prefix: prefix.into(),
            local: Mutex::default(),
            plans: RwLock::default(),
            leases_reported: AtomicU64::new(0),
        })
    }

    /// The org's plan `rpm`, from memory when read recently.
    pub async fn org_rpm(&self, st: &AppState, org_id: &str, now: i64) -> ApiResult<Option<u32>> {
        if let Some((rpm, at)) = self.plans.read().map_err(ApiError::internal)?.get(org_id)
            && now - at < PLAN_TTL_MS
        {
            return Ok(*rpm);
        }
        let org = st.store.org_by_id(org_id).await?.ok_or_else(ApiError::unauthenticated)?;
        let rpm = st.settings.catalog.get(&org.plan).and_then(|p| p.rpm);
        self.plans.write().map_err(ApiError::internal)?.insert(org_id.to_string(), (rpm, now));
        Ok(rpm)
    }

    /// Counts a request of `key` against its limits: `None` when no limit applies, else the
    /// tightest limit, refused or not.
    pub async fn check(&self, st: &AppState, key: &ApiKey) -> ApiResult<Option<Decision>> {
        let started = std::time::Instant::now();
        let cells = self.cells(st, key, true).await?;
        if !cells.is_empty() {
            let store = if self.shared.is_some() { "redis" } else { "local" };
            let labels = vec![metrics::Label::new("store", store)];
            st.telemetry.observe("roost_rate_limit_check_seconds", labels, started.elapsed().as_secs_f64());
        }
        if let Some(leases) = &self.shared {
            // Only when it moved (a few times a second under load, not once a request).
            let asked = leases.asked();
            if self.leases_reported.swap(asked, Ordering::Relaxed) != asked {
                st.telemetry.total("roost_rate_limit_leases_total", asked);
            }
        }
        Ok(tightest(cells.into_iter()))
    }

    /// Every limit of `key` as it stands, without counting a request: what one more request
    /// would find.
    pub async fn peek(&self, st: &AppState, key: &ApiKey) -> ApiResult<Vec<(Source, Cell)>> {
        self.cells(st, key, false).await
    }

    async fn cells(&self, st: &AppState, key: &ApiKey, commit: bool) -> ApiResult<Vec<(Source, Cell)>> {
        if !self.enabled {
            return Ok(Vec::new());
        }
        let now = st.clock.now_ms();
        let org_rpm = self.org_rpm(st, &key.org_id, now).await?;
        let key_rpm = key.rpm.and_then(|r| u32::try_from(r).ok()).filter(|r| *r > 0);
        let mut limits = Vec::with_capacity(2);
        // A hash tag on the org keeps both keys of a check in one Redis Cluster slot.
        if let Some(r) = org_rpm {
            limits.push((Source::Org, format!("{}rl:{{{}}}:org", self.prefix, key.org_id), r));
        }
        if let Some(r) = key_rpm {
            limits.push((Source::Key, format!("{}rl:{{{}}}:key:{}", self.prefix, key.org_id, key.id), r));
        }
        if limits.is_empty() {
            return Ok(Vec::new());
        }
        let Some(leases) = &self.shared else {
            let cells = self.check_local(&limits, commit, now)?;
            return Ok(limits.iter().map(|(s, _, _)| *s).zip(cells).collect());
        };
        let keys: Vec<(String, u32)> = limits.iter().map(|(_, k, r)| (k.clone(), *r)).collect();
        let answer = if commit { leases.check(&keys, now).await } else { look(leases, &keys, now).await };
        match answer {
            Ok(cells) => Ok(cells.into_iter().map(|(i, c)| (limits[i].0, c)).collect()),
            Err(e) => {
                // Fail open: the shared limits are unknown, so each process limits alone.
                st.telemetry.count("roost_rate_limit_redis_failures_total", vec![], 1);
                if !matches!(e, shared::SharedError::Backoff) {
                    tracing::warn!(error = %e, "rate limits: Redis is unreachable; limiting in this process only");
                }
                let cells = self.check_local(&limits, commit, now)?;
                Ok(limits.iter().map(|(s, _, _)| *s).zip(cells).collect())
            }
        }
    }

    fn check_local(&self, limits: &[(Source, String, u32)], commit: bool, now_ms: i64) -> ApiResult<Vec<Cell>> {
        let now = now_ms.saturating_mul(1000);
        let mut map = self.local.lock().map_err(ApiError::internal)?;
        if map.len() > SWEEP_AT {
            map.retain(|_, tat| *tat > now);
        }
        let checked: Vec<(Cell, i64)> =
            limits.iter().map(|(_, k, r)| gcra::check(*r, map.get(k).copied().unwrap_or(0), now)).collect();
        if commit && checked.iter().all(|(c, _)| c.allows()) {
            for ((_, k, _), (_, tat)) in limits.iter().zip(&checked) {
                map.insert(k.clone(), *tat);
            }
        }
        Ok(checked.into_iter().map(|(c, _)| c).collect())
    }
}

/// What one more request would find of each limit, counting nothing: from this process's lease
/// where it holds one, else from Redis.
async fn look(
    leases: &lease::Leases,
    keys: &[(String, u32)],
    now_ms: i64,
) -> Result<Vec<(usize, Cell)>, shared::SharedError> {
    let local = leases.look(keys);
    let ask: Vec<(String, u32)> =
        keys.iter().zip(&local).filter(|(_, l)| l.is_none()).map(|(k, _)| k.clone()).collect();
    let mut asked =
        if ask.is_empty() { Vec::new() } else { leases.shared().check(&ask, false, now_ms).await? }.into_iter();
    Ok(local.into_iter().enumerate().filter_map(|(i, l)| Some((i, l.or_else(|| asked.next())?))).collect())
}

/// The limit to report: a refusing one (the longest wait), else the one with the fewest left.
fn tightest(cells: impl Iterator<Item = (Source, Cell)>) -> Option<Decision> {
    cells
        .map(|(source, cell)| Decision { source, cell })
        .min_by_key(|d| (d.cell.allows(), if d.cell.allows() { 0 } else { -d.cell.over_us }, d.cell.remaining()))
}

/// Where the check of a request leaves its answer for [`headers`].
#[derive(Clone, Default)]
pub struct Slot(Arc<OnceLock<Decision>>);

impl Slot {
    /// Records the answer of this request's check.
    pub fn set(&self, d: Decision) {
        let _ = self.0.set(d);
    }
}

/// Middleware: gives each request a [`Slot`], and writes the `RateLimit-*` headers of the
/// tightest limit on the response of every request whose key was limited.
pub async fn headers(mut req: Request, next: Next) -> Response {
    let slot = Slot::default();
    req.extensions_mut().insert(slot.clone());
    let mut res = next.run(req).await;
    if let Some(d) = slot.0.get() {
        let h = res.headers_mut();
        h.insert("ratelimit-limit", HeaderValue::from(d.cell.limit));
        h.insert("ratelimit-remaining", HeaderValue::from(d.cell.remaining()));
        h.insert("ratelimit-reset", HeaderValue::from(d.cell.reset_seconds()));
    }
    res
}

/// 429 `rate_limited` for a refused request.
pub fn refused(d: &Decision) -> ApiError {
    let seconds = d.cell.retry_seconds();
    let mut e = ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("the {} limit of {} requests per minute is reached", d.source.as_str(), d.cell.limit),
    )
    .with("limit_source", d.source.as_str())
    .with("limit", d.cell.limit)
    .with("reset_seconds", seconds);
    e.retry_after = Some(u32::try_from(seconds).unwrap_or(u32::MAX));
    e
}

//! The limits shared by every replica: Lua scripts, atomic in Redis, with Redis's own clock
//! (replicas' clocks may disagree; Redis's is one). Requests are counted through leases
//! (`lease.rs`: one script call takes several requests of a limit at once); the check script of
//! one request at a time answers looks (`GET /v1/limits`) without counting anything.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::gcra::{Cell, Grant, PERIOD_US};

/// The GCRA of `gcra.rs` for every key given (KEYS[i] limited to ARGV[i] per minute): all pass
/// or none counts (and nothing counts when the last argument is 0: a look, not a request). Returns, per key, the µs until it would fit (> 0: refused) and the arrival
/// time after this request minus now.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period = tonumber(ARGV[#KEYS + 1])
local commit = ARGV[#KEYS + 2] == '1'
local out, tats, ok = {}, {}, true
for i = 1, #KEYS do
  local step = math.max(1, math.floor(period / tonumber(ARGV[i])))
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local new_tat = tat + step
  local over = new_tat - now - period
  if over > 0 then ok = false end
  tats[i] = new_tat
  out[2 * i - 1] = over
  out[2 * i] = new_tat - now
end
if ok and commit then
  for i = 1, #KEYS do
    redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1)
  end
end
return out
";

/// A lease: `gcra::lease` on KEYS[1], limited to ARGV[1] per minute, taking up to ARGV[2]
/// requests at once. Returns the requests granted (0: none fits), the µs until one would fit
/// (when none did) and the arrival time after the grant minus now.
const LEASE_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period = tonumber(ARGV[3])
local step = math.max(1, math.floor(period / tonumber(ARGV[1])))
local want = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local n = math.floor((now + period - tat) / step)
if n > want then n = want end
if n < 1 then
  return {0, tat + step - now - period, tat - now}
end
local new_tat = tat + n * step
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {n, 0, new_tat - now}
";

/// How long a check waits for Redis (connecting, or an answer) before failing open.
const TIMEOUT: Duration = Duration::from_millis(250);
/// After a failure, how long checks skip Redis (and fail open) before trying it again, so an
/// outage does not add a timeout to every request.
const BACKOFF_MS: i64 = 1000;

/// A connection to the shared limits.
pub struct Shared {
    conn: ConnectionManager,
    script: redis::Script,
    lease: redis::Script,
    /// Until when (server clock, ms) Redis is considered down.
    down_until: AtomicI64,
}

/// Why the shared limits could not answer.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("redis is considered down after a recent failure")]
    Backoff,
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis answered {0} values, expected {1}")]
    Shape(usize, usize),
}

impl Shared {
    /// Prepares the connection; it is made on first use, so a server starts without Redis.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(TIMEOUT);
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            conn,
            script: redis::Script::new(SCRIPT),
            lease: redis::Script::new(LEASE_SCRIPT),
            down_until: AtomicI64::new(0),
        })
    }

    /// Checks `keys` (each with its limit) together, counting the request if `commit` and every
    /// limit lets it through; `now_ms` only times the backoff.
    pub async fn check(&self, keys: &[(String, u32)], commit: bool, now_ms: i64) -> Result<Vec<Cell>, SharedError> {
        let mut inv = self.script.prepare_invoke();
        for (k, limit) in keys {
            inv.key(k).arg(*limit);
        }
        inv.arg(PERIOD_US).arg(i32::from(commit));
        let out = self.invoke(&inv, now_ms).await?;
        if out.len() != keys.len() * 2 {
            return Err(SharedError::Shape(out.len(), keys.len() * 2));
        }
        Ok(keys
            .iter()
            .zip(out.chunks_exact(2))
            .map(|((_, limit), c)| Cell { limit: *limit, over_us: c[0], ahead_us: c[1], held: 0 })
            .collect())
    }

    /// Takes up to `want` requests of `limit` at `key` at once; `now_ms` only times the backoff.
    pub async fn lease(&self, key: &str, limit: u32, want: u32, now_ms: i64) -> Result<Grant, SharedError> {
        let mut inv = self.lease.prepare_invoke();
        inv.key(key).arg(limit).arg(want.max(1)).arg(PERIOD_US);
        let out = self.invoke(&inv, now_ms).await?;
        let [granted, over_us, ahead_us] = out[..] else {
            return Err(SharedError::Shape(out.len(), 3));
        };
        let granted = u32::try_from(granted).map_err(|_| SharedError::Shape(out.len(), 3))?.min(want.max(1));
        Ok(Grant { granted, over_us, ahead_us })
    }

    /// Runs a script, with the timeout and the backoff after a failure.
    async fn invoke(&self, inv: &redis::ScriptInvocation<'_>, now_ms: i64) -> Result<Vec<i64>, SharedError> {
        if self.down_until.load(Ordering::Relaxed) > now_ms {
            return Err(SharedError::Backoff);
        }
        let mut conn = self.conn.clone();
        match tokio::time::timeout(TIMEOUT * 2, inv.invoke_async::<Vec<i64>>(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.down_until.store(now_ms + BACKOFF_MS, Ordering::Relaxed);
                Err(e.into())
            }
            Err(_) => {
                self.down_until.store(now_ms + BACKOFF_MS, Ordering::Relaxed);
                Err(redis::RedisError::from((redis::ErrorKind::Io, "timed out")).into())
            }
        }
    }
}

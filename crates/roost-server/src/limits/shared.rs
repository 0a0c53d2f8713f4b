//! The limits shared by every replica: one Lua script per check, atomic in Redis, with Redis's
//! own clock (replicas' clocks may disagree; Redis's is one).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::gcra::{Cell, PERIOD_US};

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

/// How long a check waits for Redis (connecting, or an answer) before failing open.
const TIMEOUT: Duration = Duration::from_millis(250);
/// After a failure, how long checks skip Redis (and fail open) before trying it again, so an
/// outage does not add a timeout to every request.
const BACKOFF_MS: i64 = 1000;

/// A connection to the shared limits.
pub struct Shared {
    conn: ConnectionManager,
    script: redis::Script,
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
        Ok(Self { conn, script: redis::Script::new(SCRIPT), down_until: AtomicI64::new(0) })
    }

    /// Checks `keys` (each with its limit) together, counting the request if `commit` and every
    /// limit lets it through; `now_ms` only times the backoff.
    pub async fn check(&self, keys: &[(String, u32)], commit: bool, now_ms: i64) -> Result<Vec<Cell>, SharedError> {
        if self.down_until.load(Ordering::Relaxed) > now_ms {
            return Err(SharedError::Backoff);
        }
        let mut inv = self.script.prepare_invoke();
        for (k, limit) in keys {
            inv.key(k).arg(*limit);
        }
        inv.arg(PERIOD_US).arg(i32::from(commit));
        let mut conn = self.conn.clone();
        let answer = tokio::time::timeout(TIMEOUT * 2, inv.invoke_async::<Vec<i64>>(&mut conn)).await;
        let out = match answer {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                self.down_until.store(now_ms + BACKOFF_MS, Ordering::Relaxed);
                return Err(e.into());
            }
            Err(_) => {
                self.down_until.store(now_ms + BACKOFF_MS, Ordering::Relaxed);
                return Err(redis::RedisError::from((redis::ErrorKind::Io, "timed out")).into());
            }
        };
        if out.len() != keys.len() * 2 {
            return Err(SharedError::Shape(out.len(), keys.len() * 2));
        }
        Ok(keys
            .iter()
            .zip(out.chunks_exact(2))
            .map(|((_, limit), c)| Cell { limit: *limit, over_us: c[0], ahead_us: c[1] })
            .collect())
    }
}

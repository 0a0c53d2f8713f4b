//! Sign-in throttling against guessing: failed attempts counted per account (the email as typed,
//! known or not, so the answer says nothing about existence) and per client IP, in fixed windows of
//! the server's clock. Over the limit, attempts are refused without checking anything until the
//! window ends. Each process counts alone (with several replicas a guesser gets a few more tries).

use std::collections::HashMap;
use std::sync::Mutex;

/// The length of one counting window.
pub const WINDOW_MS: i64 = 15 * 60_000;
/// Windows kept before old ones are forgotten (bounds the memory a flood of names can take).
const MAX_KEYS: usize = 100_000;

/// Failed sign-ins by key (`acct:<email>` or `ip:<address>`).
#[derive(Debug, Default)]
pub struct Throttle {
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

impl Throttle {
    /// Seconds until `key` may try again, if it used up `limit` failures in its current window.
    pub fn retry_after(&self, key: &str, limit: u32, now: i64) -> Option<u32> {
        let map = self.windows.lock().ok()?;
        let &(start, failures) = map.get(key)?;
        let ends = start + WINDOW_MS;
        (now < ends && failures >= limit).then(|| u32::try_from((ends - now + 999) / 1000).unwrap_or(u32::MAX))
    }

    /// Counts one failure for `key`.
    pub fn fail(&self, key: &str, now: i64) {
        let Ok(mut map) = self.windows.lock() else { return };
        if map.len() >= MAX_KEYS {
            map.retain(|_, (start, _)| now < *start + WINDOW_MS);
        }
        let w = map.entry(key.to_string()).or_insert((now, 0));
        if now >= w.0 + WINDOW_MS {
            *w = (now, 0);
        }
        w.1 = w.1.saturating_add(1);
    }

    /// Forgets the failures of `key` (after it signed in).
    pub fn clear(&self, key: &str) {
        if let Ok(mut map) = self.windows.lock() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_limit_until_the_window_ends() {
        let t = Throttle::default();
        let now = 1_000_000;
        for i in 0..3 {
            assert_eq!(t.retry_after("k", 3, now + i), None);
            t.fail("k", now + i);
        }
        assert_eq!(t.retry_after("k", 3, now + 3), Some(900));
        assert_eq!(t.retry_after("other", 3, now + 3), None);
        assert_eq!(t.retry_after("k", 3, now + WINDOW_MS), None, "a new window");
        t.fail("k", now + WINDOW_MS);
        assert_eq!(t.retry_after("k", 3, now + WINDOW_MS), None, "counting again from one");
        t.clear("k");
        assert_eq!(t.retry_after("k", 1, now + WINDOW_MS), None);
    }
}

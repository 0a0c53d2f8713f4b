//! The generic cell rate algorithm (GCRA) over one minute, for one or two limits checked
//! together: a request passes only if every limit lets it, and only then does it count against
//! them. The same arithmetic runs in-process here and in Redis (`shared.rs`, the Lua script).

/// One minute, in microseconds: every limit is requests per minute.
pub const PERIOD_US: i64 = 60_000_000;

/// What one limit said about one request, measured from the moment of the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    /// Requests per minute.
    pub limit: u32,
    /// Microseconds until the request would fit (> 0: refused).
    pub over_us: i64,
    /// The limit's theoretical arrival time after this request, minus now (µs).
    pub ahead_us: i64,
    /// Requests this process holds of the limit beyond this one: taken from Redis in a lease
    /// (already counted in `ahead_us`) and not spent yet. 0 when nothing is leased.
    pub held: u32,
}

impl Cell {
    /// Whether this limit lets the request through.
    pub fn allows(&self) -> bool {
        self.over_us <= 0
    }

    /// Requests still allowed right away after this one: what the limit has not handed out,
    /// plus what this process holds of it (never more than the limit minus this one).
    pub fn remaining(&self) -> u32 {
        if !self.allows() {
            return 0;
        }
        let left = (PERIOD_US - self.ahead_us.max(0)) / interval_us(self.limit);
        u32::try_from(left.max(0)).unwrap_or(u32::MAX).saturating_add(self.held).min(self.limit.saturating_sub(1))
    }

    /// Seconds until the limit is whole again (when refused: after the wait, as if this request
    /// had passed), rounded up.
    pub fn reset_seconds(&self) -> u64 {
        let us = if self.allows() { self.ahead_us } else { self.ahead_us - interval_us(self.limit) };
        ceil_seconds(us)
    }

    /// Requests allowed at once before this one: for a look that counted nothing.
    pub fn left_before(&self) -> u32 {
        if self.allows() { self.remaining().saturating_add(1).min(self.limit) } else { 0 }
    }

    /// Seconds until the limit is whole, before this request: for a look that counted nothing.
    pub fn reset_before_seconds(&self) -> u64 {
        ceil_seconds(self.ahead_us - interval_us(self.limit))
    }

    /// Seconds to wait before retrying, rounded up (at least 1 when refused).
    pub fn retry_seconds(&self) -> u64 {
        ceil_seconds(self.over_us).max(1)
    }
}

/// Microseconds between two requests at an even pace: at least one, so that a limit above the
/// resolution (plans and keys are held to `MAX_RPM`) still counts instead of dividing by zero.
pub fn interval_us(limit: u32) -> i64 {
    (PERIOD_US / i64::from(limit.max(1))).max(1)
}

fn ceil_seconds(us: i64) -> u64 {
    u64::try_from((us.max(0) + 999_999) / 1_000_000).unwrap_or(0)
}

/// Checks `limit` whose stored arrival time is `tat` (µs, 0 if none) at `now`; returns the cell
/// and the arrival time to store if the request passes.
pub fn check(limit: u32, tat: i64, now: i64) -> (Cell, i64) {
    let new_tat = tat.max(now) + interval_us(limit);
    let cell = Cell { limit, over_us: new_tat - now - PERIOD_US, ahead_us: new_tat - now, held: 0 };
    (cell, new_tat)
}

/// What a lease asked of a limit was answered (the arithmetic of `shared.rs`'s lease script).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Requests granted (0: none fits now).
    pub granted: u32,
    /// When none was granted: µs until one would fit (> 0). Else 0.
    pub over_us: i64,
    /// The limit's theoretical arrival time after the grant, minus now (µs).
    pub ahead_us: i64,
}

/// Takes up to `want` requests of `limit` at once (a lease), whose stored arrival time is `tat`
/// (µs, 0 if none) at `now`: as many as fit, as if they had all arrived now, each one interval
/// after the other. Returns the answer and the arrival time to store (unchanged if none fits).
/// `lease(l, tat, now, 1)` is [`check`] counting a passing request.
pub fn lease(limit: u32, tat: i64, now: i64, want: u32) -> (Grant, i64) {
    let step = interval_us(limit);
    let tat = tat.max(now);
    let fits = (now + PERIOD_US - tat).div_euclid(step);
    let granted = u32::try_from(fits.clamp(0, i64::from(want))).unwrap_or(0);
    if granted == 0 {
        return (Grant { granted: 0, over_us: tat + step - now - PERIOD_US, ahead_us: tat - now }, tat);
    }
    let new_tat = tat + i64::from(granted) * step;
    (Grant { granted, over_us: 0, ahead_us: new_tat - now }, new_tat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_lets_its_rpm_through_at_once_then_one_per_interval() {
        let (limit, now) = (600, 1_000_000_000);
        let mut tat = 0;
        for i in 0..600 {
            let (c, t) = check(limit, tat, now);
            assert!(c.allows(), "request {i}");
            assert_eq!(c.remaining(), 599 - i);
            tat = t;
        }
        let (c, _) = check(limit, tat, now);
        assert!(!c.allows());
        assert_eq!((c.remaining(), c.retry_seconds(), c.reset_seconds()), (0, 1, 60));
        let (c, _) = check(limit, tat, now + interval_us(limit));
        assert!(c.allows());
    }

    #[test]
    fn a_lease_of_one_is_a_check_and_a_lease_grants_only_what_fits() {
        let (limit, now) = (600, 1_000_000_000);
        let step = interval_us(limit);
        // One at a time, a lease and the check agree.
        let (mut a, mut b) = (0, 0);
        for _ in 0..600 {
            let (c, t) = check(limit, a, now);
            let (g, u) = lease(limit, b, now, 1);
            assert_eq!((g.granted, g.ahead_us, t), (1, c.ahead_us, u));
            (a, b) = (t, u);
        }
        let (g, u) = lease(limit, b, now, 1);
        assert_eq!((g.granted, u), (0, b), "nothing fits: nothing is stored");
        assert_eq!(g.over_us, check(limit, a, now).0.over_us);
        // A lease of 10 on a full limit: all 10, the arrival time 10 intervals on.
        let (g, tat) = lease(limit, 0, now, 10);
        assert_eq!((g.granted, g.over_us, g.ahead_us, tat), (10, 0, 10 * step, now + 10 * step));
        // Only 3 left: 3 granted of the 10 asked.
        let tat = now + PERIOD_US - 3 * step;
        let (g, new_tat) = lease(limit, tat, now, 10);
        assert_eq!((g.granted, g.ahead_us, new_tat), (3, PERIOD_US, now + PERIOD_US));
        // None left: none granted, and the wait is until one fits.
        let (g, _) = lease(limit, now + PERIOD_US - step / 2, now, 10);
        assert_eq!((g.granted, g.over_us), (0, step / 2));
        // Many leases never grant more than the limit plus what time refilled.
        let (mut tat, mut total) = (0, 0u64);
        for ms in 0..120_000_i64 {
            let (g, t) = lease(limit, tat, now + ms * 1000, 7);
            tat = t;
            total += u64::from(g.granted);
        }
        assert!(total <= 600 + 1200, "{total}");
        assert!(total >= 600 + 1199, "{total}");
    }

    #[test]
    fn held_requests_count_as_remaining_but_never_above_the_limit() {
        let step = interval_us(600);
        let c = Cell { limit: 600, over_us: -1, ahead_us: 10 * step, held: 9 };
        assert_eq!(c.remaining(), 590 + 9);
        let c = Cell { limit: 600, over_us: -1, ahead_us: -5 * step, held: 9 };
        assert_eq!(c.remaining(), 599);
        assert_eq!(c.reset_seconds(), 0);
    }

    /// Found by the benchmark: a limit above 60,000,000 a minute made the interval 0 and
    /// `remaining` divided by zero (every request answered 500).
    #[test]
    fn limits_at_and_above_the_resolution_count_without_dividing_by_zero() {
        for limit in [roost_domain::plans::MAX_RPM, roost_domain::plans::MAX_RPM + 1, 100_000_000, u32::MAX] {
            assert_eq!(interval_us(limit), 1, "{limit}");
            let (c, tat) = check(limit, 0, 5_000_000);
            assert!(c.allows());
            assert_eq!((c.remaining(), tat), (59_999_999, 5_000_001), "{limit}");
            assert_eq!(c.reset_seconds(), 1);
        }
    }
}

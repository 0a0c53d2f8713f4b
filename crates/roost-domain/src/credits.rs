//! Credit math: billing cycles, draw-down order across grants, rollover. Pure: time is passed in.

use time::{Date, Month, OffsetDateTime};

/// Where a grant's credits came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The plan's monthly credits for one cycle.
    Allocation,
    /// What was left of the previous cycle's allocation, capped; expires one cycle later.
    Rollover,
    /// Bought credits; never expire.
    Topup,
    /// A trial's credits, granted once.
    Trial,
    /// An owner's correction.
    Adjustment,
}

impl Source {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Allocation => "allocation",
            Source::Rollover => "rollover",
            Source::Topup => "topup",
            Source::Trial => "trial",
            Source::Adjustment => "adjustment",
        }
    }

    /// The source with this name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "allocation" => Source::Allocation,
            "rollover" => Source::Rollover,
            "topup" => Source::Topup,
            "trial" => Source::Trial,
            "adjustment" => Source::Adjustment,
            _ => return None,
        })
    }
}

/// The start of cycle `n` (0 = the one starting at `anchor`): `anchor` moved by `n` calendar months,
/// the day clamped to the month's length (an anchor on the 31st turns on the 30th in April, the
/// 28th or 29th in February), the time of day kept.
pub fn cycle_start(anchor: i64, n: i64) -> i64 {
    let Ok(a) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(anchor) * 1_000_000) else {
        return anchor;
    };
    let months = i64::from(a.year()) * 12 + i64::from(a.month() as u8) - 1 + n;
    let (Ok(year), Ok(month0)) = (i32::try_from(months.div_euclid(12)), u8::try_from(months.rem_euclid(12))) else {
        return anchor;
    };
    let Ok(month) = Month::try_from(month0 + 1) else { return anchor };
    let day = a.day().min(month.length(year));
    let Ok(date) = Date::from_calendar_date(year, month, day) else { return anchor };
    let t = date.with_time(a.time()).assume_utc();
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(anchor)
}

/// The index of the cycle that `t` falls in (negative before the anchor).
pub fn cycle_index(anchor: i64, t: i64) -> i64 {
    // A month is 28–31 days: estimate, then step to the exact cycle.
    let mut n = (t - anchor).div_euclid(30 * crate::time::DAY_MS);
    while cycle_start(anchor, n) > t {
        n -= 1;
    }
    while cycle_start(anchor, n + 1) <= t {
        n += 1;
    }
    n
}

/// The cycle containing `t`: `(index, start, end)`.
pub fn cycle_at(anchor: i64, t: i64) -> (i64, i64, i64) {
    let n = cycle_index(anchor, t);
    (n, cycle_start(anchor, n), cycle_start(anchor, n + 1))
}

/// What rolls over from an allocation with `left` unused credits under `cap` (`None`: no cap).
pub fn rollover(left: i64, cap: Option<i64>) -> i64 {
    let left = left.max(0);
    match cap {
        Some(c) => left.min(c.max(0)),
        None => left,
    }
}

/// A grant as the draw-down order sees it.
pub trait Drawable {
    fn remaining(&self) -> i64;
    fn effective_at(&self) -> i64;
    fn expires_at(&self) -> Option<i64>;
    fn created_at(&self) -> i64;
    fn id(&self) -> &str;
    /// Breaks ties between grants expiring and made at the same instant (a cycle turn makes the
    /// rollover and the allocation together): lower first.
    fn rank(&self) -> u8 {
        0
    }
}

/// Whether the grant can pay at `now`: in effect, not expired, something left.
pub fn usable<G: Drawable>(g: &G, now: i64) -> bool {
    g.remaining() > 0 && g.effective_at() <= now && g.expires_at().is_none_or(|e| e > now)
}

/// The draw-down order: soonest expiry first, never-expiring last, ties by creation (then id).
pub fn draw_order<G: Drawable>(a: &G, b: &G) -> std::cmp::Ordering {
    let ea = a.expires_at().unwrap_or(i64::MAX);
    let eb = b.expires_at().unwrap_or(i64::MAX);
    ea.cmp(&eb).then(a.created_at().cmp(&b.created_at())).then(a.rank().cmp(&b.rank())).then_with(|| a.id().cmp(b.id()))
}

/// What can be drawn at `now`.
pub fn available<G: Drawable>(grants: &[G], now: i64) -> i64 {
    grants.iter().filter(|g| usable(*g, now)).map(Drawable::remaining).sum()
}

/// Plans drawing `amount` from `grants` at `now`: `(index into grants, amount)` in draw-down order,
/// or `None` if they cannot cover it. Changes nothing.
pub fn plan_draw<G: Drawable>(grants: &[G], amount: i64, now: i64) -> Option<Vec<(usize, i64)>> {
    if amount <= 0 {
        return Some(Vec::new());
    }
    let mut order: Vec<usize> = (0..grants.len()).filter(|&i| usable(&grants[i], now)).collect();
    order.sort_by(|&a, &b| draw_order(&grants[a], &grants[b]));
    let mut left = amount;
    let mut out = Vec::new();
    for i in order {
        let take = grants[i].remaining().min(left);
        out.push((i, take));
        left -= take;
        if left == 0 {
            return Some(out);
        }
    }
    None
}

/// A budget check: `Err(used)` if drawing `amount` on top of `used` would pass `limit`.
pub fn within_budget(limit: Option<i64>, used: i64, amount: i64) -> Result<(), i64> {
    match limit {
        Some(l) if used.saturating_add(amount) > l => Err(used),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;
    use proptest::prelude::*;

    fn at(s: &str) -> i64 {
        parse_rfc3339(s).expect("time")
    }

    #[test]
    fn cycles_are_calendar_months_clamped_to_the_month() {
        let a = at("2026-01-31T10:00:00Z");
        assert_eq!(cycle_start(a, 1), at("2026-02-28T10:00:00Z"));
        assert_eq!(cycle_start(a, 2), at("2026-03-31T10:00:00Z"));
        assert_eq!(cycle_start(a, 3), at("2026-04-30T10:00:00Z"));
        assert_eq!(cycle_start(a, 12), at("2027-01-31T10:00:00Z"));
        assert_eq!(cycle_start(a, -1), at("2025-12-31T10:00:00Z"));
        assert_eq!(cycle_index(a, at("2026-02-28T09:59:59Z")), 0);
        assert_eq!(cycle_index(a, at("2026-02-28T10:00:00Z")), 1);
        assert_eq!(cycle_index(a, a - 1), -1);
        assert_eq!(cycle_at(a, a), (0, a, at("2026-02-28T10:00:00Z")));
    }

    #[test]
    fn rollover_is_capped() {
        assert_eq!(rollover(2_000, Some(10_000)), 2_000);
        assert_eq!(rollover(12_000, Some(10_000)), 10_000);
        assert_eq!(rollover(500, Some(0)), 0);
        assert_eq!(rollover(500, None), 500);
        assert_eq!(rollover(-5, None), 0);
    }

    #[derive(Debug, Clone)]
    struct G(&'static str, i64, Option<i64>, i64);
    impl Drawable for G {
        fn remaining(&self) -> i64 {
            self.1
        }
        fn effective_at(&self) -> i64 {
            0
        }
        fn expires_at(&self) -> Option<i64> {
            self.2
        }
        fn created_at(&self) -> i64 {
            self.3
        }
        fn id(&self) -> &str {
            self.0
        }
    }

    #[test]
    fn soonest_expiry_first_never_expiring_last_ties_by_creation() {
        let gs = [
            G("topup", 100, None, 1),
            G("alloc", 50, Some(200), 2),
            G("roll", 30, Some(200), 1),
            G("old", 10, Some(5), 0),
        ];
        // "old" expired at 5; at 10 it cannot pay.
        assert_eq!(plan_draw(&gs, 100, 10), Some(vec![(2, 30), (1, 50), (0, 20)]));
        assert_eq!(available(&gs, 10), 180);
        assert_eq!(plan_draw(&gs, 181, 10), None);
        assert_eq!(plan_draw(&gs, 10, 4), Some(vec![(3, 10)]));
    }

    proptest! {
        #[test]
        fn cycle_index_inverts_cycle_start(anchor in 0i64..4_000_000_000_000, t in 0i64..4_000_000_000_000) {
            let (n, s, e) = cycle_at(anchor, t);
            prop_assert!(s <= t && t < e, "{n} {s} {t} {e}");
            prop_assert_eq!(cycle_index(anchor, s), n);
        }

        #[test]
        fn a_draw_takes_exactly_the_amount_from_usable_grants(
            rem in proptest::collection::vec((0i64..1_000, proptest::option::of(0i64..100), 0i64..10), 0..8),
            amount in 1i64..3_000, now in 0i64..100,
        ) {
            let gs: Vec<G> = rem.iter().map(|&(r, e, c)| G("g", r, e, c)).collect();
            match plan_draw(&gs, amount, now) {
                Some(parts) => {
                    prop_assert_eq!(parts.iter().map(|p| p.1).sum::<i64>(), amount);
                    for &(i, a) in &parts {
                        prop_assert!(usable(&gs[i], now) && a > 0 && a <= gs[i].1);
                    }
                }
                None => prop_assert!(available(&gs, now) < amount),
            }
        }
    }
}

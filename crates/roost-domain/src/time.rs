//! Time as roost stores it: Unix milliseconds (`i64`), shown as RFC 3339 UTC.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// Milliseconds in one day.
pub const DAY_MS: i64 = 86_400_000;

/// Formats Unix milliseconds as RFC 3339 UTC with exactly three fraction digits, e.g.
/// `2026-11-21T07:42:35.120Z`, so that timestamps line up and sort as text.
pub fn to_rfc3339(ms: i64) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.to_offset(UtcOffset::UTC).format(&fmt).ok())
        .unwrap_or_default()
}

/// Parses an RFC 3339 timestamp into Unix milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The first millisecond (UTC) of the calendar month holding `ms`.
pub fn month_start(ms: i64) -> i64 {
    let Ok(t) = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) else { return ms };
    let first = t.date().replace_day(1).map(|d| d.midnight().assume_utc());
    first.map_or(ms, |f| f.unix_timestamp() * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_start_on_their_first_day_at_midnight_utc() {
        let nov = parse_rfc3339("2026-11-01T00:00:00Z").expect("date");
        assert_eq!(month_start(parse_rfc3339("2026-11-24T19:55:57.120Z").expect("date")), nov);
        assert_eq!(month_start(nov), nov);
        assert_eq!(month_start(nov - 1), parse_rfc3339("2026-10-01T00:00:00Z").expect("date"));
    }

    #[test]
    fn round_trips() {
        let ms = 1_795_000_000_123;
        let s = to_rfc3339(ms);
        assert!(s.ends_with('Z'), "{s}");
        assert_eq!(to_rfc3339(1_795_000_000_120), "2026-11-18T11:06:40.120Z");
        assert_eq!(to_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(parse_rfc3339(&s), Some(ms));
        assert_eq!(parse_rfc3339("2026-11-21T08:00:00+01:00"), parse_rfc3339("2026-11-21T07:00:00Z"));
        assert_eq!(parse_rfc3339("tomorrow"), None);
    }
}

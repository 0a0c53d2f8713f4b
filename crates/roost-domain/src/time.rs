//! Time as roost stores it: Unix milliseconds (`i64`), shown as RFC 3339 UTC.

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// Milliseconds in one day.
pub const DAY_MS: i64 = 86_400_000;

/// Formats Unix milliseconds as RFC 3339 UTC, e.g. `2026-11-21T07:42:35.123Z`.
pub fn to_rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Parses an RFC 3339 timestamp into Unix milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let ms = 1_795_000_000_123;
        let s = to_rfc3339(ms);
        assert!(s.ends_with('Z'), "{s}");
        assert_eq!(parse_rfc3339(&s), Some(ms));
        assert_eq!(parse_rfc3339("2026-11-21T08:00:00+01:00"), parse_rfc3339("2026-11-21T07:00:00Z"));
        assert_eq!(parse_rfc3339("tomorrow"), None);
    }
}

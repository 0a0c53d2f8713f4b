//! Workspace records: the rules of state keys, documents, versions (ETags) and history entries.
//!
//! A state document is any JSON value of at most [`MAX_DOCUMENT`] bytes, kept under a key of
//! 1–200 characters of `[A-Za-z0-9._:/-]`. Documents are stored minified (whitespace outside
//! strings removed, nothing else changed), so a document is one line in an export and its size is
//! what it costs against the plan's `state_bytes`. Each write gives the document a new version; the
//! version is the document's `ETag` (`"<version>"`), and `If-Match` / `If-None-Match: *` make a
//! write conditional on it.

/// The largest state document, and the largest history `data`, in bytes: 256 KiB.
pub const MAX_DOCUMENT: usize = 256 * 1024;

/// The longest state key.
pub const MAX_KEY: usize = 200;

/// The longest history `kind`.
pub const MAX_KIND: usize = 64;

/// The longest history `ref`.
pub const MAX_REF: usize = 200;

/// Whether `key` is a state key: 1–200 characters of `[A-Za-z0-9._:/-]`.
pub fn valid_key(key: &str) -> bool {
    (1..=MAX_KEY).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'/' | b'-'))
}

/// Whether `prefix` may start state keys: empty, or what a key may be.
pub fn valid_prefix(prefix: &str) -> bool {
    prefix.is_empty() || valid_key(prefix)
}

/// The smallest string above every key that starts with `prefix` (keys use only ASCII below
/// `0x7f`): keys with the prefix are exactly those in `prefix ..< upper_bound(prefix)`.
pub fn upper_bound(prefix: &str) -> String {
    format!("{prefix}\u{7f}")
}

/// Whether `kind` is a history kind: 1–64 of `a-z`, `0-9`, `_`, `.`, `:`, `-`.
pub fn valid_kind(kind: &str) -> bool {
    (1..=MAX_KIND).contains(&kind.len())
        && kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// Whether `r` is a history `ref`: 1–200 characters, none of them control characters.
pub fn valid_ref(r: &str) -> bool {
    let n = r.chars().count();
    (1..=MAX_REF).contains(&n) && !r.chars().any(char::is_control)
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// Larger than [`MAX_DOCUMENT`] (as sent, or minified).
    #[error("documents are limited to {MAX_DOCUMENT} bytes")]
    TooLarge,
    /// Not UTF-8, or not one JSON value.
    #[error("the body is not valid JSON: {0}")]
    Malformed(String),
}

/// Checks that `bytes` hold exactly one JSON value of at most [`MAX_DOCUMENT`] bytes and returns it
/// minified: every whitespace character outside strings dropped, everything else kept as sent
/// (key order, number spelling, escapes).
pub fn document(bytes: &[u8]) -> Result<String, DocumentError> {
    let text = std::str::from_utf8(bytes).map_err(|e| DocumentError::Malformed(e.to_string()))?;
    if text.trim().is_empty() {
        return Err(DocumentError::Malformed("a JSON body is required".into()));
    }
    serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| DocumentError::Malformed(e.to_string()))?;
    let min = minify(text);
    if min.len() > MAX_DOCUMENT {
        return Err(DocumentError::TooLarge);
    }
    Ok(min)
}

/// Drops the whitespace outside strings of valid JSON text.
pub fn minify(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

/// The `ETag` of a version: `"<version>"`.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// What a conditional request asks of the current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Unconditional.
    Any,
    /// `If-Match: "<v>"`: the document exists at exactly this version.
    Version(i64),
    /// `If-Match: *`: the document exists.
    Exists,
    /// `If-None-Match: *`: the document does not exist.
    Absent,
    /// Both `If-Match` and `If-None-Match: *`: a document cannot both exist and not (RFC 9110
    /// evaluates both; one of them fails).
    Never,
}

impl Precondition {
    /// Whether the current version (`None`: no document) satisfies it.
    pub fn holds(self, current: Option<i64>) -> bool {
        match self {
            Precondition::Any => true,
            Precondition::Version(v) => current == Some(v),
            Precondition::Exists => current.is_some(),
            Precondition::Absent => current.is_none(),
            Precondition::Never => false,
        }
    }
}

/// Why a precondition header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PreconditionError {
    #[error("must be `*` or one ETag this server gave out (`\"<version>\"`)")]
    MalformedIfMatch,
    #[error("only `If-None-Match: *` (create only) is supported on writes")]
    MalformedIfNoneMatch,
}

/// Reads an entity tag of this server: `"<version>"` (a weak `W/` tag is compared the same way).
pub fn parse_etag(tag: &str) -> Option<i64> {
    let t = tag.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    let digits = t.strip_prefix('"')?.strip_suffix('"')?;
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|v| *v >= 1)
}

/// The precondition of a write from its `If-Match` and `If-None-Match` header values.
pub fn precondition(if_match: Option<&str>, if_none_match: Option<&str>) -> Result<Precondition, PreconditionError> {
    match (if_match, if_none_match) {
        (Some(m), Some(n)) => {
            precondition(Some(m), None)?;
            precondition(None, Some(n))?;
            Ok(Precondition::Never)
        }
        (Some(m), None) if m.trim() == "*" => Ok(Precondition::Exists),
        (Some(m), None) => parse_etag(m).map(Precondition::Version).ok_or(PreconditionError::MalformedIfMatch),
        (None, Some(n)) if n.trim() == "*" => Ok(Precondition::Absent),
        (None, Some(_)) => Err(PreconditionError::MalformedIfNoneMatch),
        (None, None) => Ok(Precondition::Any),
    }
}

/// The oldest `at` (Unix ms) a plan keeping history `days` days still keeps at `now`.
pub fn history_cutoff(now: i64, days: u32) -> i64 {
    now.saturating_sub(i64::from(days) * 86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_two_hundred_of_the_allowed_characters() {
        for ok in ["a", "settings", "conv/2026-11-25/01:02", "A.b-c", &"x".repeat(200)] {
            assert!(valid_key(ok), "{ok}");
        }
        for bad in ["", "a b", "a_b", "ä", "a?b", "a#b", "a%2F", "a\u{0}", "a\\b", &"x".repeat(201)] {
            assert!(!valid_key(bad), "{bad:?}");
        }
        assert!(valid_prefix(""));
        assert!(!valid_prefix("a b"));
        let hi = upper_bound("conv/");
        assert!("conv/zzz" < hi.as_str() && "conv/" < hi.as_str() && "conw" > hi.as_str());
    }

    #[test]
    fn documents_are_json_minified_and_bounded() {
        assert_eq!(
            document(b" { \"a\" : [1, 2 ],\n \"b\": \"x  y\\\" }\" } ").as_deref(),
            Ok(r#"{"a":[1,2],"b":"x  y\" }"}"#)
        );
        assert_eq!(document(b"42").as_deref(), Ok("42"));
        assert_eq!(document(b"\"s\"").as_deref(), Ok("\"s\""));
        assert!(matches!(document(b"{"), Err(DocumentError::Malformed(_))));
        assert!(matches!(document(b"{} {}"), Err(DocumentError::Malformed(_))));
        assert!(matches!(document(b""), Err(DocumentError::Malformed(_))));
        assert!(matches!(document(b"\xff"), Err(DocumentError::Malformed(_))));
        let big = format!("\"{}\"", "x".repeat(MAX_DOCUMENT));
        assert_eq!(document(big.as_bytes()), Err(DocumentError::TooLarge));
        let fits = format!("\"{}\"", "x".repeat(MAX_DOCUMENT - 2));
        assert!(document(fits.as_bytes()).is_ok());
        // Whitespace does not count against the limit.
        let padded = format!("{}{fits}", " ".repeat(1000));
        assert!(document(padded.as_bytes()).is_ok());
    }

    #[test]
    fn preconditions_read_etags_and_stars() {
        assert_eq!(precondition(None, None), Ok(Precondition::Any));
        assert_eq!(precondition(Some("\"7\""), None), Ok(Precondition::Version(7)));
        assert_eq!(precondition(Some("W/\"7\""), None), Ok(Precondition::Version(7)));
        assert_eq!(precondition(Some("*"), None), Ok(Precondition::Exists));
        assert_eq!(precondition(None, Some("*")), Ok(Precondition::Absent));
        for bad in ["7", "\"\"", "\"x\"", "\"-1\"", "\"0\"", "\"99999999999999999999\"", "\"1\", \"2\""] {
            assert_eq!(precondition(Some(bad), None), Err(PreconditionError::MalformedIfMatch), "{bad}");
        }
        assert_eq!(precondition(None, Some("\"1\"")), Err(PreconditionError::MalformedIfNoneMatch));
        assert_eq!(precondition(Some("*"), Some("*")), Ok(Precondition::Never));
        assert_eq!(precondition(Some("x"), Some("*")), Err(PreconditionError::MalformedIfMatch));
        assert!(!Precondition::Never.holds(None) && !Precondition::Never.holds(Some(1)));
        assert!(Precondition::Version(3).holds(Some(3)));
        assert!(!Precondition::Version(3).holds(Some(4)));
        assert!(!Precondition::Version(3).holds(None));
        assert!(Precondition::Absent.holds(None) && !Precondition::Absent.holds(Some(1)));
        assert!(Precondition::Exists.holds(Some(1)) && !Precondition::Exists.holds(None));
        assert_eq!(etag(12), "\"12\"");
    }

    #[test]
    fn kinds_refs_and_retention() {
        assert!(valid_kind("conversation.turn") && valid_kind("agent_session"));
        assert!(!valid_kind("") && !valid_kind("Conversation") && !valid_kind(&"k".repeat(65)));
        assert!(valid_ref("conv_01") && !valid_ref("") && !valid_ref("a\nb") && !valid_ref(&"r".repeat(201)));
        assert_eq!(history_cutoff(10 * 86_400_000, 3), 7 * 86_400_000);
    }
}

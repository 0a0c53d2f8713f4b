//! Two-factor codes (TOTP, RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, one step of skew either
//! way) and recovery codes. Pure functions of `now`: the caller remembers the last accepted step and
//! refuses any code at or before it, so no code works twice.

use totp_rs::{Algorithm, Secret, Totp};

use crate::tokens;

/// Seconds in one TOTP step.
pub const STEP_SECONDS: u64 = 30;
/// Recovery codes handed out when two-factor is turned on.
pub const RECOVERY_CODES: usize = 10;

/// A fresh TOTP secret (160 random bits, RFC 4226's recommendation), in base32 as authenticator
/// apps take it.
pub fn new_secret() -> String {
    let raw = tokens::generate("");
    // 32 characters of 5 random bits each: 160 bits, as bytes.
    Secret::from(raw.into_bytes().chunks(8).flat_map(pack40).collect::<Vec<u8>>()).to_base32()
}

/// Packs eight 5-bit symbols (the token alphabet) into five bytes.
fn pack40(chunk: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut acc: u64 = 0;
    for c in chunk {
        let v = ALPHABET.iter().position(|a| a == c).unwrap_or(0);
        acc = (acc << 5) | v as u64;
    }
    acc.to_be_bytes()[3..].to_vec()
}

fn totp(secret_b32: &str, issuer: &str, account: &str) -> Option<Totp> {
    let secret = Secret::try_from_base32(secret_b32).ok()?;
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP_SECONDS)
        .with_secret(secret)
        .with_issuer(Some(issuer.replace(':', " ")))
        .with_account_name(account.replace(':', " "))
        .build()
        .ok()
}

/// The `otpauth://totp/…` URL an authenticator app scans (as a QR code) or takes as text.
pub fn otpauth_url(secret_b32: &str, issuer: &str, account: &str) -> Option<String> {
    totp(secret_b32, issuer, account)?.to_url().ok()
}

/// The time step `code` is valid for at `now_ms` (the current one or one either side), if any.
pub fn check(secret_b32: &str, code: &str, now_ms: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = u64::try_from(now_ms / 1000).ok()?;
    let step = totp(secret_b32, "roost", "check")?.check(code, now)?;
    i64::try_from(step).ok()
}

/// The code for `now_ms` (for the CLI and tests of this module).
pub fn code_at(secret_b32: &str, now_ms: i64) -> Option<String> {
    let now = u64::try_from(now_ms / 1000).ok()?;
    Some(totp(secret_b32, "roost", "check")?.generate(now).to_string())
}

/// A fresh recovery code: 80 random bits as `xxxx-xxxx-xxxx-xxxx` (so a SHA-256 of it is enough).
pub fn new_recovery_code() -> String {
    let raw = tokens::generate("");
    let b = raw.as_bytes();
    [&b[0..4], &b[4..8], &b[8..12], &b[12..16]].map(|g| String::from_utf8_lossy(g).into_owned()).join("-")
}

/// The stored form of a recovery code: what the person typed, without spaces or dashes, lowercased,
/// hashed.
pub fn recovery_hash(code: &str) -> String {
    let norm: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect();
    tokens::hash(&format!("recovery:{norm}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_160_bits_of_base32() {
        let s = new_secret();
        assert_eq!(s.len(), 32, "{s}");
        assert_ne!(s, new_secret());
        assert_eq!(Secret::try_from_base32(&s).map(|x| x.as_ref().len()).ok(), Some(20));
    }

    #[test]
    fn rfc6238_sha1_vectors_at_six_digits() {
        // RFC 6238, appendix B: the SHA-1 secret "12345678901234567890"; the last six of each 8-digit code.
        let secret = Secret::from(b"12345678901234567890".to_vec()).to_base32();
        for (t, code) in
            [(59_i64, "287082"), (1_111_111_109, "081804"), (1_234_567_890, "005924"), (2_000_000_000, "279037")]
        {
            assert_eq!(code_at(&secret, t * 1000).as_deref(), Some(code), "T = {t}");
            assert_eq!(check(&secret, code, t * 1000), Some(t / 30));
        }
    }

    #[test]
    fn codes_are_valid_one_step_either_side_only() {
        let secret = new_secret();
        let now = 1_750_000_000_000_i64;
        let code = code_at(&secret, now).expect("a code");
        assert_eq!(check(&secret, &code, now), Some(now / 30_000));
        assert_eq!(check(&secret, &code, now + 30_000), Some(now / 30_000));
        assert_eq!(check(&secret, &code, now + 90_000), None);
        assert_eq!(check(&secret, "12345", now), None);
        assert_eq!(check(&secret, "abcdef", now), None);
        assert!(otpauth_url(&secret, "roost", "a@example.com").expect("a url").starts_with("otpauth://totp/"));
    }

    #[test]
    fn recovery_codes_hash_as_typed_loosely() {
        let c = new_recovery_code();
        assert_eq!(c.len(), 19);
        assert_eq!(recovery_hash(&c), recovery_hash(&c.to_uppercase().replace('-', " ")));
        assert_ne!(recovery_hash(&c), recovery_hash(&new_recovery_code()));
    }
}

//! Secrets handed to clients: user tokens (`rsu_`), API keys (`rsk_`), invitation tokens (`rsi_`),
//! email verification (`rsv_`) and password reset (`rsr_`) tokens. Each carries 160 bits from the
//! OS generator; only its SHA-256 is ever stored.

use sha2::{Digest, Sha256};

/// Prefix of user (session) tokens.
pub const USER_TOKEN_PREFIX: &str = "rsu_";
/// Prefix of workspace API keys.
pub const API_KEY_PREFIX: &str = "rsk_";
/// Prefix of an operator key (`roost operator create-key`): acts across every org on `/v1/admin`.
pub const OPERATOR_KEY_PREFIX: &str = "rso_";
/// Prefix of invitation claim tokens.
pub const INVITATION_PREFIX: &str = "rsi_";
/// Prefix of email verification tokens (sent by mail, single use).
pub const VERIFY_EMAIL_PREFIX: &str = "rsv_";
/// Prefix of password reset tokens (sent by mail, single use).
pub const PASSWORD_RESET_PREFIX: &str = "rsr_";

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A fresh secret: `prefix` then 32 base32 characters (160 random bits).
///
/// # Panics
/// Only if the operating system's random source fails, which roost cannot recover from.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    #[expect(clippy::expect_used, reason = "no safe way to continue without randomness")]
    getrandom::fill(&mut bytes).expect("OS random source failed");
    let body: String = bytes.iter().map(|b| ALPHABET[usize::from(b & 31)] as char).collect();
    format!("{prefix}{body}")
}

/// The stored form of a secret: lowercase hex SHA-256.
pub fn hash(secret: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

/// Compares two strings in time that depends only on their lengths.
pub fn ct_eq(a: &str, b: &str) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The part of an API key that may be shown again after creation: its prefix and first characters.
pub fn display_prefix(secret: &str) -> String {
    secret.chars().take(API_KEY_PREFIX.len() + 8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_hashed() {
        let a = generate(API_KEY_PREFIX);
        let b = generate(API_KEY_PREFIX);
        assert!(a.starts_with("rsk_") && a.len() == 36);
        assert_ne!(a, b);
        assert_eq!(hash(&a).len(), 64);
        // SHA-256("abc"), the FIPS 180-2 test vector.
        assert_eq!(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_ne!(hash(&a), hash(&b));
        assert!(ct_eq(&hash(&a), &hash(&a)));
        assert!(!ct_eq(&hash(&a), &hash(&b)));
        assert!(!ct_eq("abc", "abcd"));
        assert_eq!(display_prefix(&a).len(), 12);
    }
}

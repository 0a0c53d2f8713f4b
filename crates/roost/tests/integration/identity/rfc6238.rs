//! An RFC 6238 implementation of the tests' own (HMAC-SHA-1 from the `hmac`/`sha1` crates, the rest
//! written here from the RFC), to compute the codes a person's authenticator app would show,
//! independently of the server's totp-rs. Checked first against the RFC's test vectors.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// RFC 4226 HOTP: HMAC-SHA-1 of the big-endian counter, dynamic truncation, `digits` decimal digits.
pub(crate) fn hotp(key: &[u8], counter: u64, digits: u32) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("any key length");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let bin = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    format!("{:0width$}", bin % 10u32.pow(digits), width = digits as usize)
}

/// RFC 6238 TOTP with 30-second steps from the Unix epoch.
pub(crate) fn totp(key: &[u8], unix_ms: i64, digits: u32) -> String {
    hotp(key, u64::try_from(unix_ms / 1000).expect("after 1970") / 30, digits)
}

/// RFC 4648 base32 (uppercase alphabet, padding optional), as authenticator apps read secrets.
pub(crate) fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = ALPHABET.iter().position(|&a| a == c.to_ascii_uppercase()).expect("base32 character");
        acc = (acc << 5) | v as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The code an app shows for a base32 `secret` at `unix_ms`.
pub(crate) fn code(secret: &str, unix_ms: i64) -> String {
    totp(&base32_decode(secret), unix_ms, 6)
}

#[test]
fn matches_the_rfc_6238_test_vectors() {
    // RFC 6238 appendix B, SHA-1 rows: the 20-byte ASCII key "12345678901234567890", 8 digits.
    let key = b"12345678901234567890";
    for (t, expected) in [
        (59_i64, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ] {
        assert_eq!(totp(key, t * 1000, 8), expected, "T = {t}");
    }
    // RFC 4226 appendix D: HOTP at 6 digits, counters 0 and 9.
    assert_eq!(hotp(key, 0, 6), "755224");
    assert_eq!(hotp(key, 9, 6), "520489");
    // RFC 4648 section 10.
    assert_eq!(base32_decode("MZXW6YTBOI======"), b"foobar");
}

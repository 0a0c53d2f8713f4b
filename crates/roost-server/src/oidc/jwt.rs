//! ID tokens (OpenID Connect Core §2, §3.1.3.7): a JWS in compact form whose signature is checked
//! with `ring` against a key of the provider's JWKS, then whose claims are checked against what
//! this sign-in expects. Pure functions of their inputs and `now`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;

/// How far `exp` and `iat` may be off, for clocks that drift apart.
pub const LEEWAY_S: i64 = 60;

/// One key of a JWKS (RFC 7517): RSA (`n`, `e`) or elliptic curve (`crv`, `x`, `y`).
#[derive(Debug, Clone, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub kid: Option<String>,
    pub alg: Option<String>,
    #[serde(rename = "use")]
    pub use_: Option<String>,
    pub n: Option<String>,
    pub e: Option<String>,
    pub crv: Option<String>,
    pub x: Option<String>,
    pub y: Option<String>,
}

/// A JWKS document.
#[derive(Debug, Clone, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// Why an ID token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the ID token is not a well-formed JWS")]
    Malformed,
    #[error("the ID token is signed with `{0}`, which roost does not accept")]
    Algorithm(String),
    /// No key of the JWKS matches: the provider may have rotated its keys (fetch them again).
    #[error("no key of the provider's JWKS matches the ID token (kid {0:?})")]
    UnknownKey(Option<String>),
    #[error("the ID token's signature does not verify")]
    Signature,
    #[error("the ID token's `{0}` claim is wrong")]
    Claim(&'static str),
    #[error("the identity provider has not verified this email address")]
    EmailUnverified,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

fn b64(s: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).map_err(|_| JwtError::Malformed)
}

/// Checks the signature of `token` with a key from `keys`; returns its claims, not yet checked.
pub fn verify_signature(token: &str, keys: &[Jwk]) -> Result<Value, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let header: Header = serde_json::from_slice(&b64(h)?).map_err(|_| JwtError::Malformed)?;
    let sig = b64(s)?;
    let kty = match header.alg.as_str() {
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => "RSA",
        "ES256" | "ES384" => "EC",
        // `none` and the HMAC algorithms (keyed with the client secret) are refused.
        other => return Err(JwtError::Algorithm(other.to_string())),
    };
    let usable = |k: &&Jwk| {
        k.kty == kty
            && k.use_.as_deref().is_none_or(|u| u == "sig")
            && k.alg.as_deref().is_none_or(|a| a == header.alg)
            && header.kid.as_ref().is_none_or(|kid| k.kid.as_ref() == Some(kid))
    };
    let candidates: Vec<&Jwk> = keys.iter().filter(usable).collect();
    // Without a `kid`, only an unambiguous key will do.
    let key = match (&header.kid, candidates.as_slice()) {
        (_, [k]) => *k,
        (Some(_), [k, ..]) => *k,
        _ => return Err(JwtError::UnknownKey(header.kid)),
    };
    let msg = &token.as_bytes()[..h.len() + 1 + p.len()];
    let ok = match kty {
        "RSA" => verify_rsa(&header.alg, key, msg, &sig)?,
        _ => verify_ec(&header.alg, key, msg, &sig)?,
    };
    if !ok {
        return Err(JwtError::Signature);
    }
    serde_json::from_slice(&b64(p)?).map_err(|_| JwtError::Malformed)
}

fn verify_rsa(alg: &str, key: &Jwk, msg: &[u8], sig: &[u8]) -> Result<bool, JwtError> {
    let params: &'static signature::RsaParameters = match alg {
        "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
        "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
        "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
        "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
        "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
        _ => &signature::RSA_PSS_2048_8192_SHA512,
    };
    let (Some(n), Some(e)) = (&key.n, &key.e) else { return Err(JwtError::UnknownKey(key.kid.clone())) };
    let (n, e) = (b64(n)?, b64(e)?);
    // ring wants the big-endian integers without leading zero bytes.
    let strip = |v: &[u8]| -> Vec<u8> { v.iter().copied().skip_while(|b| *b == 0).collect() };
    let key = RsaPublicKeyComponents { n: strip(&n), e: strip(&e) };
    Ok(key.verify(params, msg, sig).is_ok())
}

fn verify_ec(alg: &str, key: &Jwk, msg: &[u8], sig: &[u8]) -> Result<bool, JwtError> {
    let (params, crv, len): (&'static signature::EcdsaVerificationAlgorithm, &str, usize) = match alg {
        "ES256" => (&signature::ECDSA_P256_SHA256_FIXED, "P-256", 32),
        _ => (&signature::ECDSA_P384_SHA384_FIXED, "P-384", 48),
    };
    let (Some(x), Some(y)) = (&key.x, &key.y) else { return Err(JwtError::UnknownKey(key.kid.clone())) };
    if key.crv.as_deref() != Some(crv) {
        return Err(JwtError::UnknownKey(key.kid.clone()));
    }
    let (x, y) = (b64(x)?, b64(y)?);
    if x.len() != len || y.len() != len {
        return Err(JwtError::Malformed);
    }
    // An uncompressed SEC 1 point: 0x04 ‖ x ‖ y.
    let point: Vec<u8> = std::iter::once(4u8).chain(x).chain(y).collect();
    Ok(UnparsedPublicKey::new(params, point).verify(msg, sig).is_ok())
}

/// What this sign-in expects of the ID token.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// The `issuer` of the provider's discovery document.
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// The nonce sent with this sign-in's authorization request.
    pub nonce: &'a str,
    /// Unix seconds.
    pub now_s: i64,
}

/// The claims roost uses, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub sub: String,
    /// Lowercased.
    pub email: String,
    pub name: Option<String>,
}

/// Checks `iss`, `aud` (and `azp`), `exp`, `iat`, `nonce`, `sub`, and that the provider vouches
/// for the email address (`email_verified`).
pub fn check_claims(c: &Value, want: &Expected<'_>) -> Result<Identity, JwtError> {
    if c["iss"].as_str() != Some(want.issuer) {
        return Err(JwtError::Claim("iss"));
    }
    let aud_ok = match &c["aud"] {
        Value::String(a) => a == want.client_id,
        Value::Array(a) => a.iter().any(|x| x.as_str() == Some(want.client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err(JwtError::Claim("aud"));
    }
    // With several audiences, the token must say it was issued to this client (Core §3.1.3.7).
    let several = c["aud"].as_array().is_some_and(|a| a.len() > 1);
    match c["azp"].as_str() {
        Some(azp) if azp != want.client_id => return Err(JwtError::Claim("azp")),
        None if several => return Err(JwtError::Claim("azp")),
        _ => {}
    }
    match c["exp"].as_i64() {
        Some(exp) if exp + LEEWAY_S > want.now_s => {}
        _ => return Err(JwtError::Claim("exp")),
    }
    if c["iat"].as_i64().is_some_and(|iat| iat > want.now_s + LEEWAY_S) {
        return Err(JwtError::Claim("iat"));
    }
    let nonce_ok = c["nonce"].as_str().is_some_and(|n| roost_domain::tokens::ct_eq(n, want.nonce));
    if !nonce_ok {
        return Err(JwtError::Claim("nonce"));
    }
    let sub = c["sub"].as_str().filter(|s| !s.is_empty() && s.len() <= 255).ok_or(JwtError::Claim("sub"))?;
    identity_of(sub, c)
}

/// The email and name in `claims` (an ID token's or the UserInfo endpoint's), with the
/// provider's word that the address is verified.
pub fn identity_of(sub: &str, claims: &Value) -> Result<Identity, JwtError> {
    let email = claims["email"].as_str().map(|e| e.trim().to_lowercase()).ok_or(JwtError::Claim("email"))?;
    // Some providers send the flag as the string "true".
    let verified = match &claims["email_verified"] {
        Value::Bool(b) => *b,
        Value::String(s) => s == "true",
        _ => false,
    };
    if !verified {
        return Err(JwtError::EmailUnverified);
    }
    let name = claims["name"].as_str().map(str::trim).filter(|n| !n.is_empty()).map(str::to_string);
    Ok(Identity { sub: sub.to_string(), email, name })
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    use super::*;

    fn claims() -> Value {
        json!({"iss": "https://id.test", "aud": "roost", "exp": 2_000, "iat": 1_000, "nonce": "n1",
               "sub": "u1", "email": "Ann@Example.TEST", "email_verified": true, "name": "Ann"})
    }

    fn want() -> Expected<'static> {
        Expected { issuer: "https://id.test", client_id: "roost", nonce: "n1", now_s: 1_500 }
    }

    #[test]
    fn good_claims_give_the_identity() {
        let id = check_claims(&claims(), &want()).expect("valid");
        assert_eq!(id, Identity { sub: "u1".into(), email: "ann@example.test".into(), name: Some("Ann".into()) });
        let mut c = claims();
        c["aud"] = json!(["roost", "other"]);
        c["azp"] = json!("roost");
        assert!(check_claims(&c, &want()).is_ok());
        c["email_verified"] = json!("true");
        assert!(check_claims(&c, &want()).is_ok());
    }

    #[test]
    fn each_wrong_claim_is_refused() {
        let cases: Vec<(&str, Value, JwtError)> = vec![
            ("iss", json!("https://evil.test"), JwtError::Claim("iss")),
            ("aud", json!("another-client"), JwtError::Claim("aud")),
            ("aud", json!(["another-client"]), JwtError::Claim("aud")),
            ("aud", json!(["roost", "other"]), JwtError::Claim("azp")),
            ("azp", json!("other"), JwtError::Claim("azp")),
            ("exp", json!(1_400), JwtError::Claim("exp")),
            ("exp", Value::Null, JwtError::Claim("exp")),
            ("iat", json!(9_000), JwtError::Claim("iat")),
            ("nonce", json!("n2"), JwtError::Claim("nonce")),
            ("nonce", Value::Null, JwtError::Claim("nonce")),
            ("sub", json!(""), JwtError::Claim("sub")),
            ("email", Value::Null, JwtError::Claim("email")),
            ("email_verified", json!(false), JwtError::EmailUnverified),
            ("email_verified", Value::Null, JwtError::EmailUnverified),
            ("email_verified", json!("yes"), JwtError::EmailUnverified),
        ];
        for (claim, value, err) in cases {
            let mut c = claims();
            c[claim] = value.clone();
            assert_eq!(check_claims(&c, &want()), Err(err), "{claim} = {value}");
        }
        // Within the leeway, an expired token still passes; past it, not.
        let mut c = claims();
        c["exp"] = json!(1_500 - LEEWAY_S + 1);
        assert!(check_claims(&c, &want()).is_ok());
    }

    fn es256_token(claims: &Value) -> (String, Jwk) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("pair");
        let public = pair.public_key().as_ref();
        let jwk = Jwk {
            kty: "EC".into(),
            kid: Some("k1".into()),
            alg: Some("ES256".into()),
            use_: Some("sig".into()),
            n: None,
            e: None,
            crv: Some("P-256".into()),
            x: Some(URL_SAFE_NO_PAD.encode(&public[1..33])),
            y: Some(URL_SAFE_NO_PAD.encode(&public[33..65])),
        };
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","kid":"k1"}"#);
        let p = URL_SAFE_NO_PAD.encode(claims.to_string());
        let sig = pair.sign(&rng, format!("{h}.{p}").as_bytes()).expect("sign");
        (format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())), jwk)
    }

    #[test]
    fn signatures_are_checked_against_the_jwks() {
        let (token, jwk) = es256_token(&claims());
        assert_eq!(verify_signature(&token, std::slice::from_ref(&jwk)).expect("verifies"), claims());
        // Another payload under the same signature.
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(json!({"sub": "mallory"}).to_string());
        assert_eq!(verify_signature(&parts.join("."), std::slice::from_ref(&jwk)), Err(JwtError::Signature));
        // A key the JWKS does not have.
        let other = Jwk { kid: Some("k2".into()), ..jwk.clone() };
        assert_eq!(verify_signature(&token, &[other]), Err(JwtError::UnknownKey(Some("k1".into()))));
        // Unsigned and HMAC tokens.
        for alg in ["none", "HS256"] {
            let h = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#));
            let t = format!("{h}.{}.", URL_SAFE_NO_PAD.encode("{}"));
            assert_eq!(verify_signature(&t, std::slice::from_ref(&jwk)), Err(JwtError::Algorithm(alg.into())));
        }
        assert_eq!(verify_signature("a.b", &[jwk]), Err(JwtError::Malformed));
    }
}

//! Two-factor sign-in (TOTP): the code step of sign-in, and turning it on and off in account
//! settings (`/v1/me/totp`, `/v1/me/totp/confirm`, `DELETE /v1/me/totp`).
//!
//! The code step needs the password again (`POST /v1/sessions` takes both at once), and the
//! dashboard keeps no state between requests. So the password goes back to the browser sealed:
//! XORed with an HMAC-SHA256 keystream keyed by the browser's pre-session secret, which lives only
//! in its `HttpOnly` cookie. The page holds nothing a script or a copied page could use, and the
//! sealed value is worthless to any other browser.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use roost_domain::tokens;
use serde_json::{Value, json};
use sha2::Sha256;

use super::account::{self, Extras};
use super::auth::{TokenAnswer, safe_next, signed_in};
use super::{Flash, done, human};
use crate::AppState;
use crate::app::call::{Call, Problem};
use crate::app::session::{AnonPosted, PRE_COOKIE, Posted, cookie, csrf_for};

/// The two-factor routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/app/sign-in/code", post(sign_in_code))
        .route("/app/account/totp", post(start))
        .route("/app/account/totp/confirm", post(confirm))
        .route("/app/account/totp/off", post(turn_off))
}

/// `len` bytes of keystream for `nonce`, keyed by the pre-session secret.
fn keystream(pre: &str, nonce: &str, len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block: u32 = 0;
    while out.len() < len {
        let mut mac = Hmac::<Sha256>::new_from_slice(pre.as_bytes()).ok()?;
        mac.update(b"roost-dashboard-2fa\0");
        mac.update(nonce.as_bytes());
        mac.update(&block.to_be_bytes());
        out.extend_from_slice(&mac.finalize().into_bytes());
        block = block.checked_add(1)?;
    }
    out.truncate(len);
    Some(out)
}

/// The password sealed for this browser (`nonce.ciphertext`).
fn seal(pre: &str, password: &str) -> Option<String> {
    let nonce = tokens::generate("n_");
    let ks = keystream(pre, &nonce, password.len())?;
    let ct: Vec<u8> = password.bytes().zip(ks).map(|(p, k)| p ^ k).collect();
    Some(format!("{nonce}.{}", URL_SAFE_NO_PAD.encode(ct)))
}

/// The password back, if `sealed` was sealed for this browser (else garbage or `None`; a wrong
/// password is then refused by the API like any other).
fn unseal(pre: &str, sealed: &str) -> Option<String> {
    let (nonce, ct) = sealed.split_once('.')?;
    let ct = URL_SAFE_NO_PAD.decode(ct).ok().filter(|c| c.len() <= 4096)?;
    let ks = keystream(pre, nonce, ct.len())?;
    String::from_utf8(ct.into_iter().zip(ks).map(|(c, k)| c ^ k).collect()).ok()
}

/// The code step of sign-in.
#[derive(Template, WebTemplate)]
#[template(path = "app/sign_in_code.html")]
pub struct CodePage {
    product: String,
    logo_url: Option<String>,
    csrf: String,
    next: String,
    email: String,
    sealed: String,
    error: Option<String>,
}

/// Asks for the code after the password was right (`totp_required`), or again after a wrong code.
pub fn code_step(
    st: &AppState,
    headers: &HeaderMap,
    next: &str,
    email: &str,
    sealed: Option<String>,
    error: Option<(StatusCode, String)>,
) -> Response {
    // The sign-in form was posted with this cookie (AnonPosted checked it), so it is there.
    let Some((pre, sealed)) = cookie(headers, PRE_COOKIE).and_then(|pre| Some((pre, sealed?))) else {
        return super::error_page(StatusCode::BAD_REQUEST, "Your sign-in expired. Go back and sign in again.");
    };
    let d = &st.settings.dashboard;
    let (status, error) = error.map_or((StatusCode::UNAUTHORIZED, None), |(s, e)| (s, Some(e)));
    let page = CodePage {
        product: d.product_name.clone(),
        logo_url: d.logo_url.clone(),
        csrf: csrf_for(pre),
        next: next.to_string(),
        email: email.to_string(),
        sealed,
        error,
    };
    (status, page).into_response()
}

/// Seals `password` for the browser of `headers`.
pub fn sealed_for(headers: &HeaderMap, password: &str) -> Option<String> {
    seal(cookie(headers, PRE_COOKIE)?, password)
}

/// `POST /app/sign-in/code`: `POST /v1/sessions` with the password and the code (six digits) or a
/// recovery code (anything else).
async fn sign_in_code(State(st): State<AppState>, p: AnonPosted) -> Response {
    let f = &p.f;
    let next = safe_next(Some(f.get("next")));
    let email = f.get("email");
    let Some(password) = cookie(&p.headers, PRE_COOKIE).and_then(|pre| unseal(pre, f.get("sealed"))) else {
        return super::error_page(StatusCode::BAD_REQUEST, "Your sign-in expired. Go back and sign in again.");
    };
    let code: String = f.get("code").chars().filter(|c| !c.is_whitespace()).collect();
    let mut body = json!({"email": email, "password": password});
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        body["totp_code"] = code.into();
    } else {
        body["recovery_code"] = f.get("code").into();
    }
    let ua = p.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let r: Result<TokenAnswer, Problem> =
        Call::new(&p.api, None, p.ip).user_agent(ua).send(Method::POST, "/v1/sessions", Some(body), None).await;
    let sealed = Some(f.get("sealed").to_string());
    match r {
        Ok(t) => signed_in(&st, &p.headers, &t.token, &next),
        Err(e) if e.code == "invalid_credentials" => {
            let msg = "That code is not right, or it was used already. Enter the code your app shows now, \
                       or one of your recovery codes.";
            code_step(&st, &p.headers, &next, email, sealed, Some((e.status, msg.into())))
        }
        Err(e) => code_step(&st, &p.headers, &next, email, sealed, Some((e.status, human(&e)))),
    }
}

/// A new enrolment as the account page shows it.
pub struct Enrol {
    pub secret: String,
    pub otpauth_url: String,
    /// The URL as an inline SVG QR code (`None` if it does not fit one).
    pub qr_svg: Option<String>,
}

impl Enrol {
    /// The enrolment of `secret` for `email` (the same URL `POST /v1/me/totp` gave).
    fn of(st: &AppState, secret: &str, email: &str) -> Option<Self> {
        let url = roost_domain::totp::otpauth_url(secret, &st.settings.product_name, email)?;
        Some(Self { secret: secret.to_string(), qr_svg: qr_svg(&url), otpauth_url: url })
    }
}

/// `text` as an SVG QR code to put inline in a page (no XML declaration, no script, no style).
fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let svg = code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).build();
    Some(svg.split_once("?>").map_or(svg.as_str(), |(_, rest)| rest).to_string())
}

/// `POST /app/account/totp`: a new secret to enter into an app.
async fn start(State(st): State<AppState>, p: Posted) -> Response {
    let r: Result<Value, Problem> = p.s.call().send(Method::POST, "/v1/me/totp", Some(json!({})), None).await;
    let enrol = match r {
        Ok(v) => Enrol::of(&st, v["secret"].as_str().unwrap_or(""), &p.s.me.user.email),
        Err(e) => return account::render(&st, &p.s, Extras::flash(Flash::for_form("totp", e))).await,
    };
    account::render(&st, &p.s, Extras { enrol, ..Extras::default() }).await
}

/// `POST /app/account/totp/confirm`: turns two-factor on with a code, and shows the recovery codes once.
async fn confirm(State(st): State<AppState>, p: Posted) -> Response {
    let body = json!({"code": p.f.get("code")});
    let r: Result<Value, Problem> = p.s.call().send(Method::POST, "/v1/me/totp/confirm", Some(body), None).await;
    match r {
        Ok(v) => {
            let codes = v["recovery_codes"].as_array().map(|a| a.iter().filter_map(|c| c.as_str()).map(String::from));
            let recovery = Some(codes.map(Iterator::collect).unwrap_or_default());
            let notice = Some("Two-factor sign-in is on.".to_string());
            account::render(&st, &p.s, Extras { recovery, notice, ..Extras::default() }).await
        }
        Err(e) => {
            // A wrong code: the same secret again (the person has it in their app already).
            let enrol = (e.code == "invalid_request").then(|| Enrol::of(&st, p.f.get("secret"), &p.s.me.user.email));
            let flash = Flash::for_form("totp", e);
            account::render(&st, &p.s, Extras { enrol: enrol.flatten(), flash, ..Extras::default() }).await
        }
    }
}

/// `POST /app/account/totp/off`: turns two-factor off with a code or a recovery code.
async fn turn_off(State(st): State<AppState>, p: Posted) -> Response {
    let body = json!({"code": p.f.get("code")});
    let r: Result<Value, Problem> = p.s.call().send(Method::DELETE, "/v1/me/totp", Some(body), None).await;
    match r {
        Ok(_) => done("/app/account", "totp_off"),
        Err(e) => account::render(&st, &p.s, Extras::flash(Flash::for_form("totp_off", e))).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_password_opens_only_with_its_own_secret() {
        let sealed = seal("pre_a", "correct horse battery ✓").expect("sealed");
        assert!(!sealed.contains("horse"));
        assert_eq!(unseal("pre_a", &sealed).as_deref(), Some("correct horse battery ✓"));
        assert_ne!(unseal("pre_b", &sealed).as_deref(), Some("correct horse battery ✓"));
        assert_eq!(unseal("pre_a", "garbage"), None);
    }

    #[test]
    fn the_qr_code_is_inline_svg() {
        let svg = qr_svg("otpauth://totp/Roost:a%40example.org?secret=ABC&issuer=Roost").expect("fits");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert!(!svg.contains("<script") && !svg.contains("style="));
    }
}

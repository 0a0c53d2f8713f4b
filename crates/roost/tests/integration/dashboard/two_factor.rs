//! Two-factor through the pages: turning it on (secret, otpauth URL, QR code, a wrong code, the ten
//! recovery codes shown once), the code step of sign-in (a wrong code, a right one, a recovery
//! code, the password never in the page), turning it off, and an org whose owner requires it.
//! Codes come from the tests' own RFC 6238 implementation.

use roost_test_kit::TestServer;

use super::roles::{join, team};
use super::web::{Page, Web};
use crate::identity::rfc6238::code;
use crate::support::now_ms;

both_backends!(turn_on_sign_in_with_a_code_and_turn_off, an_org_that_requires_two_factor);

const PASSWORD: &str = "correct horse battery";

/// The text of the element with `id`.
fn text_of(p: &Page, id: &str) -> String {
    let after = p.html.split(&format!(r#"id="{id}">"#)).nth(1).unwrap_or_else(|| panic!("no #{id} in {}", p.html));
    after.split('<').next().unwrap().to_string()
}

/// Turns two-factor on through the account page; returns the secret and the recovery codes.
pub(crate) async fn enable(s: &TestServer, w: &Web) -> (String, Vec<String>) {
    let acct = w.get("/app/account").await;
    let started = w.post(&acct, "/app/account/totp", &[]).await;
    assert_eq!(started.status, 200, "{}", started.html);
    let secret = text_of(&started, "totp-secret");
    let ok = w
        .post(&started, "/app/account/totp/confirm", &[("secret", &secret), ("code", &code(&secret, now_ms(s)))])
        .await;
    assert_eq!(ok.status, 200, "{}", ok.html);
    let list = ok.html.split(r#"id="recovery-codes">"#).nth(1).unwrap().split("</ul>").next().unwrap();
    let codes: Vec<String> = list.split("<code>").skip(1).map(|c| c.split('<').next().unwrap().to_string()).collect();
    (secret, codes)
}

/// Signs out, then posts the password on the sign-in page: the code step.
async fn password_step(w: &Web, email: &str) -> Page {
    let home = w.open("/app").await;
    if home.has(r#"action="/app/sign-out""#) {
        assert_eq!(w.post(&home, "/app/sign-out", &[]).await.status, 303);
    }
    let form = w.get("/app/sign-in").await;
    w.post(&form, "/app/sign-in", &[("email", email), ("password", PASSWORD), ("next", "/app/account")]).await
}

/// Posts `code` on the code step `step`.
async fn code_step(w: &Web, step: &Page, email: &str, code: &str) -> Page {
    let sealed = step.attr(r#"name="sealed" value=""#).expect("the sealed password");
    let fields = [("email", email), ("next", "/app/account"), ("sealed", sealed.as_str()), ("code", code)];
    w.post(step, "/app/sign-in/code", &fields).await
}

async fn turn_on_sign_in_with_a_code_and_turn_off(s: TestServer) {
    let (ann, email) = Web::sign_up(&s, "Ann").await;
    let acct = ann.get("/app/account").await;
    assert!(acct.has("Two-factor sign-in is <strong>off</strong>"), "{}", acct.html);

    // Turning on: the secret, the otpauth URL with it, and a QR code drawn inline.
    let started = ann.post(&acct, "/app/account/totp", &[]).await;
    assert_eq!(started.status, 200, "{}", started.html);
    let secret = text_of(&started, "totp-secret");
    assert_eq!(secret.len(), 32, "a base32 secret: {secret}");
    assert!(text_of(&started, "otpauth-url").starts_with("otpauth://totp/"));
    assert!(text_of(&started, "otpauth-url").contains(&format!("secret={secret}")));
    assert!(started.has(r#"id="totp-qr""#) && started.has("<svg") && !started.has("<?xml"), "{}", started.html);
    // A wrong code: said next to the field, the same secret still shown, still off.
    let bad = ann.post(&started, "/app/account/totp/confirm", &[("secret", &secret), ("code", "000000")]).await;
    assert_eq!(bad.status, 422, "{}", bad.html);
    assert!(bad.has("is not a current code from your authenticator app"), "{}", bad.html);
    assert_eq!(text_of(&bad, "totp-secret"), secret);
    let ok =
        ann.post(&bad, "/app/account/totp/confirm", &[("secret", &secret), ("code", &code(&secret, now_ms(&s)))]).await;
    assert_eq!(ok.status, 200, "{}", ok.html);
    assert!(ok.has("Two-factor sign-in is <strong>on</strong>") && ok.has("Two-factor sign-in is on."));
    let list = ok.html.split(r#"id="recovery-codes">"#).nth(1).unwrap().split("</ul>").next().unwrap();
    let recovery: Vec<String> =
        list.split("<code>").skip(1).map(|c| c.split('<').next().unwrap().to_string()).collect();
    assert_eq!(recovery.len(), 10, "{list}");
    // Shown once: not on the next visit.
    let again = ann.get("/app/account").await;
    assert!(!again.has("recovery-codes") && !again.has(&recovery[0]), "{}", again.html);

    // Sign-in now asks for a code, without a session yet and without the password in the page.
    let step = password_step(&ann, &email).await;
    assert_eq!(step.status, 401, "{}", step.html);
    assert!(step.has(r#"action="/app/sign-in/code""#) && step.has(&email), "{}", step.html);
    assert!(!step.has(PASSWORD), "the password is sealed, not echoed");
    assert!(ann.cookie("roost_session").is_none());
    let wrong = code_step(&ann, &step, &email, "000000").await;
    assert_eq!(wrong.status, 401, "{}", wrong.html);
    assert!(wrong.has(r#"id="code-error""#) && wrong.has("That code is not right"), "{}", wrong.html);
    assert!(ann.cookie("roost_session").is_none());
    // The sealed password is worth nothing in another browser.
    let thief = Web::new(&s);
    let form = thief.get("/app/sign-in").await;
    let sealed = step.attr(r#"name="sealed" value=""#).unwrap();
    let fields =
        [("email", email.as_str()), ("sealed", sealed.as_str()), ("code", &code(&secret, now_ms(&s) + 30_000))];
    let stolen = thief.post(&form, "/app/sign-in/code", &fields).await;
    assert_ne!(stolen.status, 303, "{}", stolen.html);
    assert!(thief.cookie("roost_session").is_none());
    // The right code (a later step than the one that confirmed) signs in and goes on to `next`.
    s.clock.advance(30_000);
    let r = code_step(&ann, &wrong, &email, &code(&secret, now_ms(&s))).await;
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/app/account")), "{}", r.html);
    assert!(ann.cookie("roost_session").is_some());

    // A recovery code works once, in place of a code.
    let bob = Web::new(&s);
    let form = bob.get("/app/sign-in").await;
    let step = bob.post(&form, "/app/sign-in", &[("email", &email), ("password", PASSWORD)]).await;
    let r = code_step(&bob, &step, &email, &recovery[3]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    let step = password_step(&bob, &email).await;
    let reused = code_step(&bob, &step, &email, &recovery[3]).await;
    assert_eq!(reused.status, 401, "a recovery code works once: {}", reused.html);

    // Turning off needs a good code.
    let acct = ann.get("/app/account").await;
    let r = ann.post(&acct, "/app/account/totp/off", &[("code", "123456")]).await;
    assert_eq!(r.status, 422, "{}", r.html);
    assert!(r.has(r#"id="totp-off-error""#), "{}", r.html);
    s.clock.advance(30_000);
    let r = ann.post(&acct, "/app/account/totp/off", &[("code", &code(&secret, now_ms(&s)))]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    let acct = ann.open(&r.location.unwrap()).await;
    assert!(acct.has("Two-factor sign-in is off.") && acct.has("Two-factor sign-in is <strong>off</strong>"));
    // And sign-in is a password again.
    let r = password_step(&ann, &email).await;
    assert_eq!(r.status, 303, "{}", r.html);
}

async fn an_org_that_requires_two_factor(s: TestServer) {
    let (owner, org, ws) = team(&s).await;
    let admin = join(&s, &owner, &org, &ws, "Adam", "admin", None).await;
    let member = join(&s, &owner, &org, &ws, "Mia", "member", Some("member")).await;
    let path = format!("/app/o/{org}/two-factor");

    // Only the owner is offered the setting; an admin's forged post is refused like the API refuses it.
    let page = owner.get(&format!("/app/o/{org}")).await;
    assert!(page.has(r#"id="require-2fa""#) && page.has("turn on two-factor for your own account"), "{}", page.html);
    assert!(!admin.get(&format!("/app/o/{org}")).await.has(r#"id="require-2fa""#));
    let forged = admin.post(&admin.open("/app").await, &path, &[("require_2fa", "on")]).await;
    assert_eq!(forged.status, 403, "{}", forged.html);
    assert!(forged.has("Your role does not allow this."), "{}", forged.html);
    // The owner must have it on first: said next to the setting.
    let r = owner.post(&page, &path, &[("require_2fa", "on")]).await;
    assert_eq!(r.status, 403, "{}", r.html);
    assert!(r.has(r#"id="require-2fa-error""#) && r.has("Two-factor sign-in is required here"), "{}", r.html);

    enable(&s, &owner).await;
    let r = owner.post(&owner.get(&format!("/app/o/{org}")).await, &path, &[("require_2fa", "on")]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    let page = owner.open(&r.location.unwrap()).await;
    assert!(page.has("Two-factor is required: members without it") && page.has("Two-factor setting saved."));

    // A member without it meets a page that says what to do.
    let blocked = member.get(&format!("/app/w/{ws}")).await;
    assert_eq!(blocked.status, 403, "{}", blocked.html);
    assert!(blocked.has("<h1>Two-factor sign-in required</h1>"), "{}", blocked.html);
    assert!(blocked.has(r#"href="/app/account#two-factor""#), "{}", blocked.html);
    // Once they turn it on, they are in.
    enable(&s, &member).await;
    assert_eq!(member.get(&format!("/app/w/{ws}")).await.status, 200);

    // The owner stops requiring it.
    let r = owner.post(&owner.get(&format!("/app/o/{org}")).await, &path, &[("require_2fa", "off")]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    assert!(owner.get(&format!("/app/o/{org}")).await.has("Members may sign in with a password alone."));
}

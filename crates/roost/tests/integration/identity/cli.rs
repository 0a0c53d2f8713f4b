//! The identity commands of the CLI, run as a real process: `password reset` through the mail a
//! real SMTP server received, `sessions list|revoke`, `2fa enable|disable` with `login` asking for
//! the second factor, and `domains` against a real DNS server.

use roost_test_kit::TestServer;
use roost_test_kit::peers::{SmtpServer, first_link, query_param};
use serde_json::json;

use super::cli_kit::{Cli, PASSWORD, value_of};
use super::rfc6238::code;
use super::with_smtp;
use crate::support::now_ms;

const NEW_PASSWORD: &str = "a brand new passphrase";

async fn cli_password_reset_by_mail(smtp: SmtpServer, s: TestServer) {
    let cli = Cli::new(&s);
    let email = cli.signup("Rita").await;

    // Logged in, the address defaults to the user's own; the answer is the same for any address.
    let out = cli.run(&["password", "reset"]).await;
    assert!(out.ok().contains(&format!("If {email} has an account, a reset link was mailed")), "{out:?}");
    assert!(out.stdout.contains("roost password reset --token"), "{out:?}");
    let unknown = format!("nobody-{}@example.com", roost_domain::IdKind::User.generate());
    let other = Cli::new(&s);
    let json = other.run(&["password", "reset", "--email", &unknown, "--json"]).await.json();
    assert!(json["detail"].as_str().unwrap().contains("if this address has an account"), "{json}");
    // Not logged in and no --email: said plainly.
    assert!(other.run(&["password", "reset"]).await.failed().contains("--email"));

    let mails = smtp.wait_for(&email, 1).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let link = first_link(mails[0]["text"].as_str().unwrap()).expect("a link");
    let token = query_param(&link, "token").expect("a token");
    assert!(token.starts_with("rsr_"), "{token}");

    // The new password from stdin; without a terminal and without --password-stdin it is refused.
    assert!(cli.run(&["password", "reset", "--token", &token]).await.failed().contains("--password-stdin"));
    let done = cli
        .input(&["password", "reset", "--token", &token, "--password-stdin"], Some(&format!("{NEW_PASSWORD}\n")))
        .await;
    assert!(done.ok().contains("every session of the account ended"), "{done:?}");
    // The reset ended every session, the CLI's too.
    assert!(cli.run(&["whoami"]).await.failed().contains("HTTP 401"));
    // Spent: a second use is 410 token_invalid.
    let again = cli
        .input(&["password", "reset", "--token", &token, "--password-stdin"], Some(&format!("{NEW_PASSWORD}\n")))
        .await;
    let line = again.failed();
    assert!(line.contains("token_invalid") && line.contains("HTTP 410"), "{line}");

    // The old password is gone, the new one signs in.
    let old = cli.run(&["login", "--email", &email, "--password", PASSWORD]).await;
    assert!(old.failed().contains("invalid_credentials"));
    let new = cli.input(&["login", "--email", &email], Some(&format!("{NEW_PASSWORD}\n"))).await;
    assert!(new.ok().contains(&email), "{new:?}");
    assert!(no_more(&smtp, &email, 1).await);
}

/// Whether `to` still has exactly `n` mails a moment later (nothing else was sent to them).
async fn no_more(smtp: &SmtpServer, to: &str, n: usize) -> bool {
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    smtp.messages_to(to).len() == n
}

with_smtp!(cli_password_reset_by_mail);

async fn cli_sessions_list_and_revoke(s: TestServer) {
    let cli = Cli::new(&s);
    let email = cli.signup("Sam").await;
    // A second session, from a browser.
    let browser = s.client.with_header("User-Agent", "Mozilla/5.0 (X11) Firefox/140.0");
    let r = browser.post("/v1/sessions", &json!({"email": email, "password": PASSWORD})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let browser = browser.with_token(r.str("token"));

    let listed = cli.run(&["sessions", "list"]).await;
    let lines: Vec<&str> = listed.ok().lines().collect();
    assert_eq!(lines.len(), 3, "a header and two sessions: {listed:?}");
    assert!(lines[0].contains("ID") && lines[0].contains("USER AGENT"), "{listed:?}");
    let mine = lines.iter().find(|l| l.starts_with('*')).unwrap_or_else(|| panic!("no current row: {listed:?}"));
    assert!(mine.contains("roost-cli/") && mine.contains("127.0.0.1"), "{mine}");
    let theirs = lines.iter().find(|l| l.contains("Firefox/140.0")).unwrap_or_else(|| panic!("{listed:?}"));
    assert!(!theirs.starts_with('*'), "{theirs}");

    let json = cli.run(&["sessions", "list", "--json"]).await.json();
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{json}");
    let other = items.iter().find(|i| i["current"] == false).unwrap();
    assert_eq!(other["user_agent"], "Mozilla/5.0 (X11) Firefox/140.0");
    let other_id = other["id"].as_str().unwrap().to_string();
    let mine_id = items.iter().find(|i| i["current"] == true).unwrap()["id"].as_str().unwrap().to_string();
    assert!(theirs.contains(&other_id) && mine.contains(&mine_id), "{listed:?}");

    // Ending the browser's session: its token stops working, the CLI's goes on.
    let ended = cli.run(&["sessions", "revoke", &other_id]).await;
    assert_eq!(ended.ok(), format!("ended {other_id}\n"));
    assert_eq!(browser.get("/v1/me").await.unwrap().status, 401);
    assert_eq!(cli.run(&["sessions", "list", "--json"]).await.json()["items"].as_array().unwrap().len(), 1);
    // Someone else's session, or one that is gone: not found.
    let line = cli.run(&["sessions", "revoke", &other_id]).await.failed().to_string();
    assert!(line.contains("not_found") && line.contains("HTTP 404"), "{line}");
    let (_, eve_s) = s.signup("Eve").await;
    let eve_session = {
        let eve = s.client.with_token(eve_s["token"].as_str().unwrap());
        eve.get("/v1/me/sessions").await.unwrap().body["items"][0]["id"].as_str().unwrap().to_string()
    };
    assert!(cli.run(&["sessions", "revoke", &eve_session]).await.failed().contains("HTTP 404"));

    // Ending this session logs out here too.
    let out = cli.run(&["sessions", "revoke", &mine_id]).await;
    assert!(out.ok().contains("logged out"), "{out:?}");
    assert!(cli.config().get("token").is_none_or(serde_json::Value::is_null), "{}", cli.config());
    assert!(cli.run(&["sessions", "list"]).await.failed().contains("not logged in"));
}

both_backends!(cli_sessions_list_and_revoke);

/// Two-factor through the CLI: enrol (the secret shown, a code from the tests' own RFC 6238
/// implementation typed in, recovery codes printed), then `login` asks for a code, takes
/// `--totp-code` and `--recovery-code`, and `2fa disable` turns it off.
async fn cli_two_factor(s: TestServer) {
    let cli = Cli::new(&s);
    let email = cli.signup("Tess").await;
    let secret_of = |out: &str| value_of(out, "secret").expect("a secret line").to_string();
    let at = |s: &TestServer| now_ms(s);

    let out = cli
        .interact(&["2fa", "enable"], |l| l.starts_with("otpauth url:"), |seen| code(&secret_of(seen), at(&s)))
        .await;
    let stdout = out.ok();
    let secret = secret_of(stdout);
    assert_eq!(super::rfc6238::base32_decode(&secret).len(), 20, "{stdout}");
    let url = value_of(stdout, "otpauth url").unwrap();
    assert!(url.starts_with("otpauth://totp/") && url.contains(&format!("secret={secret}")), "{url}");
    assert!(!stdout.contains('\u{2588}'), "no QR code when stdout is not a terminal: {stdout}");
    assert!(stdout.contains("two-factor is on"), "{stdout}");
    let recovery: Vec<&str> = stdout.lines().filter(|l| l.starts_with("  ")).map(str::trim).collect();
    assert_eq!(recovery.len(), 10, "{stdout}");
    assert!(recovery.iter().all(|c| c.len() == 19 && c.matches('-').count() == 3), "{recovery:?}");
    let me = cli.run(&["whoami", "--json"]).await.json();
    assert_eq!(me["user"]["email"], email.as_str());
    assert_eq!(
        s.client.with_token(cli.config()["token"].as_str().unwrap()).get("/v1/me").await.unwrap().body["totp_enabled"],
        true
    );

    // Signing in now needs a code: none given and none on stdin is said plainly.
    let line = cli.run(&["login", "--email", &email, "--password", PASSWORD]).await.failed().to_string();
    assert!(line.contains("two-factor is on") && line.contains("--totp-code"), "{line}");
    // The code on the next line of stdin (after the password), for the next time step: the one
    // used to enrol is spent.
    s.clock.advance(30_000);
    let typed = format!("{PASSWORD}\n{}\n", code(&secret, now_ms(&s)));
    let out = cli.input(&["login", "--email", &email], Some(&typed)).await;
    assert!(out.ok().contains(&email), "{out:?}");
    // The same code again: refused (replay), as a wrong code.
    let replay = cli.input(&["login", "--email", &email], Some(&typed)).await;
    assert!(replay.failed().contains("invalid_credentials"), "{replay:?}");
    s.clock.advance(30_000);
    let flag = code(&secret, now_ms(&s));
    let out = cli.run(&["login", "--email", &email, "--password", PASSWORD, "--totp-code", &flag]).await;
    assert!(out.ok().contains("logged in as"), "{out:?}");
    let out =
        cli.run(&["login", "--email", &email, "--password", PASSWORD, "--recovery-code", recovery[0], "--json"]).await;
    assert!(out.json()["token"].as_str().is_some_and(|t| t.starts_with("rsu_")), "{out:?}");

    // Off with a recovery code (a wrong one first); then the password alone signs in.
    let wrong = cli.run(&["2fa", "disable", "--code", "000000"]).await;
    assert!(wrong.failed().contains("invalid_request"), "{wrong:?}");
    let off = cli.run(&["2fa", "disable", "--code", recovery[1]]).await;
    assert_eq!(off.ok(), "two-factor is off\n");
    let out = cli.run(&["login", "--email", &email, "--password", PASSWORD]).await;
    assert!(out.ok().contains("logged in as"), "{out:?}");

    // --json: the enrolment, then the recovery codes, one JSON document a line.
    s.clock.advance(30_000);
    let out = cli
        .interact(
            &["2fa", "enable", "--json"],
            |l| l.contains("otpauth_url"),
            |seen| {
                let first: serde_json::Value = serde_json::from_str(seen.trim()).expect("the enrolment as JSON");
                code(first["secret"].as_str().unwrap(), at(&s))
            },
        )
        .await;
    let docs: Vec<serde_json::Value> =
        out.ok().lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {out:?}"))).collect();
    assert_eq!(docs.len(), 2, "{out:?}");
    assert!(docs[0]["otpauth_url"].as_str().unwrap().contains(docs[0]["secret"].as_str().unwrap()));
    assert_eq!(docs[1]["recovery_codes"].as_array().unwrap().len(), 10, "{out:?}");
    // No code typed: two-factor stays as it was (on), said plainly.
    let out = cli.run(&["2fa", "disable"]).await;
    assert!(out.failed().contains("--code"), "{out:?}");
}

both_backends!(cli_two_factor);

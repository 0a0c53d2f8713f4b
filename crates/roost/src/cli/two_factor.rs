//! `roost 2fa enable|disable`: two-factor sign-in with an authenticator app (TOTP).

use std::io::{IsTerminal, Write};

use clap::Subcommand;
use serde_json::{Value, json};

use super::ctx::Ctx;
use super::error::CliError;
use super::output::{clean, field, items, pairs, text};
use super::prompt;

/// Two-factor sign-in with an authenticator app.
#[derive(Debug, Subcommand)]
pub enum TwoFactorCommand {
    /// Turn two-factor on: shows the secret (and a QR code on a terminal), asks for a code from
    /// your app, and prints ten single-use recovery codes.
    Enable,
    /// Turn two-factor off with a current code (or a recovery code).
    Disable {
        /// A code from your app or a recovery code [default: asked for].
        #[arg(long)]
        code: Option<String>,
    },
}

/// Runs a `2fa` subcommand.
pub async fn run(ctx: &Ctx, cmd: TwoFactorCommand) -> Result<String, CliError> {
    let api = ctx.user()?;
    match cmd {
        TwoFactorCommand::Enable => {
            let e = api.post("/v1/me/totp", &json!({})).await?;
            // Shown before the question: the person needs the secret to answer it.
            show(&enrolment(ctx.json, &e, std::io::stdout().is_terminal()));
            let code = prompt::required(
                "Code from your authenticator app: ",
                false,
                "no code given: two-factor stays off (run roost 2fa enable again)",
            )?;
            let r = api.post("/v1/me/totp/confirm", &json!({"code": code.trim()})).await?;
            if ctx.json {
                return Ok(compact(&r));
            }
            let mut out = String::from(
                "two-factor is on\n\nRecovery codes (each works once instead of a code; store them now, they are not shown again):\n",
            );
            for c in items(&r["recovery_codes"]) {
                out.push_str(&format!("  {}\n", clean(c.as_str().unwrap_or(""))));
            }
            Ok(out)
        }
        TwoFactorCommand::Disable { code } => {
            let code = match code {
                Some(c) => c,
                None => prompt::required(
                    "Code from your authenticator app (or a recovery code): ",
                    false,
                    "no code given: use --code",
                )?,
            };
            api.delete_json("/v1/me/totp", &json!({"code": code.trim()})).await?;
            if ctx.json {
                return Ok(String::new());
            }
            Ok("two-factor is off\n".into())
        }
    }
}

/// What `2fa enable` shows before asking for the code: with `--json` the server's answer as one
/// line (the recovery codes follow as a second line), else the secret, the URL and, on a
/// terminal, the URL as a QR code.
fn enrolment(as_json: bool, e: &Value, terminal: bool) -> String {
    if as_json {
        return compact(e);
    }
    let url = text(e, "/otpauth_url");
    let mut out = String::new();
    if terminal && let Some(qr) = qr(url) {
        out.push_str("Scan this with your authenticator app:\n\n");
        out.push_str(&qr);
        out.push_str("\n\n");
    }
    out.push_str(&pairs(&[("secret", field(e, "/secret")), ("otpauth url", url.to_string())]));
    out
}

/// The URL as a QR code drawn with Unicode half blocks (dark on light, with its quiet zone).
pub fn qr(url: &str) -> Option<String> {
    let code = qrcode::QrCode::new(url.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .build(),
    )
}

fn compact(v: &Value) -> String {
    format!("{v}\n")
}

fn show(s: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(s.as_bytes()).and_then(|()| stdout.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_is_drawn_in_half_blocks_only_on_a_terminal() {
        let e = json!({"secret": "JBSWY3DPEHPK3PXP", "otpauth_url": "otpauth://totp/roost:a%40b.c?secret=JBSWY3DPEHPK3PXP"});
        let plain = enrolment(false, &e, false);
        assert!(plain.contains("JBSWY3DPEHPK3PXP") && plain.contains("otpauth://totp/"), "{plain}");
        assert!(!plain.contains('\u{2580}') && !plain.contains('\u{2584}'));
        let shown = enrolment(false, &e, true);
        assert!(shown.contains('\u{2580}') || shown.contains('\u{2584}'), "{shown}");
        let lines: Vec<&str> = shown.lines().filter(|l| l.contains('\u{2588}')).collect();
        assert!(lines.len() > 10, "a QR code of some height: {shown}");
        assert_eq!(enrolment(true, &e, true).lines().count(), 1);
    }
}

//! `roost password reset` and `roost sessions …`.

use clap::Subcommand;
use serde_json::json;

use super::ctx::{Ctx, seg};
use super::error::CliError;
use super::orgs::note_more;
use super::output::{Table, field, items, json, pairs, text};
use super::prompt;

/// Passwords.
#[derive(Debug, Subcommand)]
pub enum PasswordCommand {
    /// Without --token: mail a reset link to the address. With --token (from that mail): set a new
    /// password, which ends every session of the account.
    Reset {
        /// The account's email [default: the logged-in user's].
        #[arg(long, conflicts_with = "token")]
        email: Option<String>,
        /// The `rsr_…` token from the reset mail's link.
        #[arg(long)]
        token: Option<String>,
        /// Read the new password from one line of stdin instead of asking for it.
        #[arg(long, requires = "token")]
        password_stdin: bool,
    },
}

/// Your sessions (signed-in devices).
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List your live sessions, oldest first; `*` marks this one.
    List,
    /// End one session at once (ending this one logs you out).
    Revoke {
        /// The session id (ses_…).
        id: String,
    },
}

/// Runs a `password` subcommand.
pub async fn password(ctx: &mut Ctx, cmd: PasswordCommand) -> Result<String, CliError> {
    let PasswordCommand::Reset { email, token, password_stdin } = cmd;
    match token {
        Some(token) => confirm(ctx, &token, password_stdin).await,
        None => {
            let email = match email {
                Some(e) => e,
                None => {
                    let api = ctx
                        .user()
                        .map_err(|_| CliError::Input("give --email (or log in to reset your own password)".into()))?;
                    text(&api.get("/v1/me").await?, "/user/email").to_string()
                }
            };
            let r = ctx.anon().post("/v1/password-reset", &json!({"email": email})).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(format!(
                "If {email} has an account, a reset link was mailed to it. Follow the link, or run:\n  roost password reset --token <the token from the link>\n"
            ))
        }
    }
}

async fn confirm(ctx: &mut Ctx, token: &str, from_stdin: bool) -> Result<String, CliError> {
    let password = if from_stdin {
        prompt::required("", true, "no password on stdin")?
    } else {
        if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            return Err(CliError::Input("no terminal to ask for the new password: use --password-stdin".into()));
        }
        let first = prompt::required("New password: ", true, "no password given")?;
        let again = prompt::required("New password again: ", true, "no password given")?;
        if first != again {
            return Err(CliError::Input("the two passwords differ".into()));
        }
        first
    };
    let r = ctx.anon().post("/v1/password-reset/confirm", &json!({"token": token, "password": password})).await?;
    if ctx.json {
        return Ok(json(&r));
    }
    Ok(pairs(&[
        ("password changed for", field(&r, "/user_id")),
        ("sessions", "every session of the account ended; run roost login".into()),
    ]))
}

/// Runs a `sessions` subcommand.
pub async fn sessions(ctx: &mut Ctx, cmd: SessionsCommand) -> Result<String, CliError> {
    let api = ctx.user()?;
    match cmd {
        SessionsCommand::List => {
            let r = api.get("/v1/me/sessions?limit=500").await?;
            if ctx.json {
                return Ok(json(&r));
            }
            note_more(&r);
            let mut t = Table::new(&["", "ID", "CREATED", "LAST USED", "IP", "USER AGENT"]);
            for s in items(&r) {
                let current = s.get("current").and_then(serde_json::Value::as_bool) == Some(true);
                t.row(vec![
                    if current { "*".into() } else { String::new() },
                    field(s, "/id"),
                    field(s, "/created_at"),
                    field(s, "/last_used_at"),
                    field(s, "/ip"),
                    field(s, "/user_agent"),
                ]);
            }
            Ok(t.render_or("no sessions"))
        }
        SessionsCommand::Revoke { id } => {
            // Whether it is this session: then the saved token is dead too.
            let listed = api.get("/v1/me/sessions?limit=500").await?;
            let current = items(&listed).iter().any(|s| text(s, "/id") == id && s["current"] == true);
            api.delete(&format!("/v1/me/sessions/{}", seg(&id))).await?;
            if current {
                ctx.forget_token()?;
            }
            if ctx.json {
                return Ok(String::new());
            }
            Ok(if current { format!("ended {id} (this session: logged out)\n") } else { format!("ended {id}\n") })
        }
    }
}

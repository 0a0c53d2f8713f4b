//! `signup`, `login`, `logout` and `whoami`.

use std::io::{BufRead, IsTerminal, Write};

use serde_json::{Value, json};

use super::ctx::Ctx;
use super::error::CliError;
use super::output::{Table, field, items, json, pairs, text};

/// Where the password comes from: this flag, else `ROOST_PASSWORD`, else one line of stdin.
#[derive(Debug, clap::Args)]
pub struct PasswordArg {
    /// The password. Other local users can see it in the process list; prefer ROOST_PASSWORD or stdin.
    #[arg(long, env = "ROOST_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

impl PasswordArg {
    fn get(self) -> Result<String, CliError> {
        if let Some(p) = self.password {
            return Ok(p);
        }
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            eprint!("Password: ");
            let _ = std::io::stderr().flush();
        }
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Input(format!("cannot read the password from stdin: {e}")))?;
        let password = line.trim_end_matches(['\n', '\r']);
        if password.is_empty() {
            return Err(CliError::Input(
                "no password given: use --password, ROOST_PASSWORD or one line on stdin".into(),
            ));
        }
        Ok(password.to_string())
    }
}

/// `roost signup`.
#[derive(Debug, clap::Args)]
pub struct SignupArgs {
    /// Your email address; it is also your login.
    #[arg(long)]
    email: String,
    /// Your display name.
    #[arg(long)]
    name: String,
    #[command(flatten)]
    password: PasswordArg,
}

/// `roost login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The email you signed up with.
    #[arg(long, required_unless_present = "sso", conflicts_with = "sso")]
    email: Option<String>,
    #[command(flatten)]
    password: PasswordArg,
    /// With two-factor on: the current code of your authenticator app [default: asked for when
    /// the server wants one, from the terminal or the next line of stdin].
    #[arg(long, conflicts_with = "recovery_code")]
    totp_code: Option<String>,
    /// With two-factor on: one of your recovery codes instead of a code (each works once).
    #[arg(long)]
    recovery_code: Option<String>,
    /// Sign in through this identity provider (single sign-on) in your browser instead.
    #[arg(long, value_name = "PROVIDER")]
    sso: Option<String>,
    /// With --sso: only print the sign-in address, do not open a browser.
    #[arg(long, requires = "sso")]
    no_browser: bool,
}

/// Creates an account with its personal workspace and saves the session.
pub async fn signup(ctx: &mut Ctx, args: SignupArgs) -> Result<String, CliError> {
    let password = args.password.get()?;
    let body =
        ctx.anon().post("/v1/signup", &json!({"email": args.email, "password": password, "name": args.name})).await?;
    ctx.save_session(text(&body, "/token"))?;
    if ctx.json {
        return Ok(json(&body));
    }
    Ok(pairs(&[
        ("signed up", user_line(&body["user"])),
        ("personal org", field(&body, "/personal/org_id")),
        ("active workspace", field(&body, "/personal/workspace_id")),
        ("server", ctx.server.clone()),
    ]))
}

/// Logs in and saves the session.
pub async fn login(ctx: &mut Ctx, args: LoginArgs) -> Result<String, CliError> {
    let body = match &args.sso {
        Some(provider) => super::sso::login(ctx, provider, !args.no_browser).await?,
        None => password_login(ctx, args).await?,
    };
    ctx.save_session(text(&body, "/token"))?;
    if ctx.json {
        return Ok(json(&body));
    }
    Ok(pairs(&[("logged in as", user_line(&body["user"])), ("server", ctx.server.clone())]))
}

/// `POST /v1/sessions` with the email and password, and the two-factor code when the server asks.
async fn password_login(ctx: &Ctx, args: LoginArgs) -> Result<serde_json::Value, CliError> {
    let password = args.password.get()?;
    let mut req = json!({"email": args.email.clone().unwrap_or_default(), "password": password});
    if let Some(c) = &args.totp_code {
        req["totp_code"] = c.trim().into();
    }
    if let Some(c) = &args.recovery_code {
        req["recovery_code"] = c.trim().into();
    }
    match ctx.anon().post("/v1/sessions", &req).await {
        Err(CliError::Problem { code: Some(code), .. })
            if code == "totp_required" && args.totp_code.is_none() && args.recovery_code.is_none() =>
        {
            let code = super::prompt::required(
                "Two-factor code: ",
                false,
                "two-factor is on for this account: give --totp-code (or --recovery-code)",
            )?;
            req["totp_code"] = code.trim().into();
            ctx.anon().post("/v1/sessions", &req).await
        }
        other => other,
    }
}

/// Ends the session on the server, then forgets the token.
pub async fn logout(ctx: &mut Ctx) -> Result<String, CliError> {
    let api = ctx.user()?;
    let already_ended = match api.delete("/v1/sessions/current").await {
        Ok(_) => false,
        // The token no longer works anyway (expired, or logged out elsewhere): just forget it.
        Err(e) if e.status() == Some(401) => true,
        Err(e) => return Err(e),
    };
    ctx.forget_token()?;
    if ctx.json {
        return Ok(String::new());
    }
    Ok(if already_ended { "logged out (the session had already ended)\n".into() } else { "logged out\n".into() })
}

/// Shows the user, the active workspace and the user's organizations.
pub async fn whoami(ctx: &Ctx) -> Result<String, CliError> {
    let me = ctx.user()?.get("/v1/me").await?;
    if ctx.json {
        return Ok(json(&me));
    }
    if me.get("key").is_some() {
        return Ok(pairs(&[
            ("api key", format!("{} ({})", field(&me, "/key/name"), field(&me, "/key/id"))),
            ("workspace", field(&me, "/key/workspace_id")),
            ("org", field(&me, "/key/org_id")),
        ]));
    }
    let active = text(&me, "/active_workspace_id");
    let active_name = items(&me["memberships"])
        .iter()
        .flat_map(|m| items(&m["workspaces"]).iter().map(move |w| (m, w)))
        .find(|(_, w)| text(w, "/id") == active)
        .map(|(m, w)| format!("{active} ({} in {})", text(w, "/name"), text(m, "/org_name")))
        .unwrap_or_else(|| active.to_string());
    let mut out =
        pairs(&[("user", user_line(&me["user"])), ("server", ctx.server.clone()), ("active workspace", active_name)]);
    let mut t = Table::new(&["ORG", "NAME", "KIND", "ROLE", "PLAN", "WORKSPACES"]);
    for m in items(&me["memberships"]) {
        t.row(vec![
            field(m, "/org_id"),
            field(m, "/org_name"),
            field(m, "/org_kind"),
            field(m, "/org_role"),
            field(m, "/plan"),
            items(&m["workspaces"]).len().to_string(),
        ]);
    }
    out.push('\n');
    out.push_str(&t.render_or("no organizations"));
    Ok(out)
}

fn user_line(user: &Value) -> String {
    format!("{} <{}> ({})", field(user, "/name"), field(user, "/email"), field(user, "/id"))
}

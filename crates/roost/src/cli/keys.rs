//! `roost keys …`: workspace API keys.

use clap::Subcommand;
use serde_json::json;

use super::ctx::{Ctx, seg};
use super::error::CliError;
use super::orgs::note_more;
use super::output::{Table, field, items, json, pairs};

/// Workspace API keys: create, list, rotate, revoke.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key; its secret is printed once.
    Create {
        /// A name to recognise the key by.
        name: String,
        /// The workspace (id or name) [default: your active workspace].
        #[arg(long)]
        workspace: Option<String>,
        /// When the key stops working (RFC 3339, e.g. 2030-01-01T00:00:00Z).
        #[arg(long, value_parser = parse_time)]
        expires_at: Option<String>,
        /// The most the key may spend per cycle.
        #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
        spend_limit: Option<i64>,
    },
    /// List a workspace's keys (never their secrets).
    List {
        /// The workspace (id or name) [default: your active workspace].
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Give a key a new secret; the old one keeps working for the grace period.
    Rotate {
        /// The key id (key_…).
        id: String,
        /// Seconds the old secret keeps working [default: 0].
        #[arg(long, value_parser = clap::value_parser!(u64).range(0..=2_592_000))]
        grace_seconds: Option<u64>,
    },
    /// Revoke a key: the next request with it is refused.
    Revoke {
        /// The key id (key_…).
        id: String,
    },
}

fn parse_time(s: &str) -> Result<String, String> {
    match roost_domain::time::parse_rfc3339(s) {
        Some(_) => Ok(s.to_string()),
        None => Err(format!("`{s}` is not an RFC 3339 time (e.g. 2030-01-01T00:00:00Z)")),
    }
}

const SHOWN_ONCE: &str = "warning: store this secret now; it will not be shown again";

/// Runs a `keys` subcommand.
pub async fn run(ctx: &Ctx, cmd: KeysCommand) -> Result<String, CliError> {
    let api = ctx.user()?;
    match cmd {
        KeysCommand::Create { name, workspace, expires_at, spend_limit } => {
            let ws = api.workspace_or_current(workspace.as_deref()).await?;
            let mut body = json!({"name": name});
            if let Some(t) = expires_at {
                body["expires_at"] = t.into();
            }
            if let Some(n) = spend_limit {
                body["spend_limit"] = n.into();
            }
            let r = api.post(&format!("/v1/workspaces/{}/keys", seg(&ws)), &body).await?;
            eprintln!("{SHOWN_ONCE}");
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(pairs(&[
                ("created key", format!("{} ({})", field(&r, "/name"), field(&r, "/id"))),
                ("workspace", field(&r, "/workspace_id")),
                ("expires", field(&r, "/expires_at")),
                ("secret", field(&r, "/secret")),
            ]))
        }
        KeysCommand::List { workspace } => {
            let ws = api.workspace_or_current(workspace.as_deref()).await?;
            let r = api.get(&format!("/v1/workspaces/{}/keys?limit=500", seg(&ws))).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            note_more(&r);
            let mut t = Table::new(&["ID", "NAME", "PREFIX", "CREATED BY", "EXPIRES", "SPEND LIMIT"]);
            for k in items(&r) {
                t.row(vec![
                    field(k, "/id"),
                    field(k, "/name"),
                    field(k, "/prefix"),
                    field(k, "/created_by"),
                    field(k, "/expires_at"),
                    field(k, "/spend_limit"),
                ]);
            }
            Ok(t.render_or(&format!("no keys in {ws}")))
        }
        KeysCommand::Rotate { id, grace_seconds } => {
            let body = grace_seconds.map_or_else(|| json!({}), |g| json!({"grace_seconds": g}));
            let r = api.post(&format!("/v1/keys/{}/rotate", seg(&id)), &body).await?;
            eprintln!("{SHOWN_ONCE}");
            if ctx.json {
                return Ok(json(&r));
            }
            let grace = grace_seconds.unwrap_or(0);
            let old = if grace == 0 { "now".to_string() } else { format!("in {grace} seconds") };
            Ok(pairs(&[("rotated key", id), ("old secret stops", old), ("secret", field(&r, "/secret"))]))
        }
        KeysCommand::Revoke { id } => {
            api.delete(&format!("/v1/keys/{}", seg(&id))).await?;
            if ctx.json {
                return Ok(String::new());
            }
            Ok(format!("revoked {id}\n"))
        }
    }
}

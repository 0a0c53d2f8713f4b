//! `roost audit`: an organization's audit log, newest first; `roost audit verify`: its hash chain.

use super::ctx::{Ctx, query, seg};
use super::error::CliError;
use super::output::{Table, clean, field, items, json};

/// `roost audit ORG [filters]` or `roost audit verify ORG`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCommand>,
    /// Organization id or name.
    #[arg(required = true)]
    org: Option<String>,
    /// Only events in this workspace (id or name).
    #[arg(long)]
    workspace: Option<String>,
    /// Only events by this actor (usr_… or key_…).
    #[arg(long)]
    actor: Option<String>,
    /// Only this action, e.g. key.created.
    #[arg(long)]
    action: Option<String>,
    /// At most this many events [server default: 50].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=500))]
    limit: Option<u32>,
    /// Continue from a previous page's next cursor.
    #[arg(long)]
    cursor: Option<String>,
}

/// `roost audit verify ORG`.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the organization's audit hash chain (owner or admin): exits 1 if any event was
    /// changed or removed, naming the first.
    Verify {
        /// Organization id or name.
        org: String,
    },
}

/// Shows the audit log, or verifies its chain.
pub async fn run(ctx: &Ctx, args: AuditArgs) -> Result<String, CliError> {
    let api = ctx.user()?;
    if let Some(AuditCommand::Verify { org }) = &args.command {
        return verify(ctx, org).await;
    }
    let org = api.org_id(args.org.as_deref().unwrap_or_default()).await?;
    let workspace = match args.workspace {
        Some(ws) => Some(api.workspace_id(&ws).await?),
        None => None,
    };
    let q = query(&[
        ("workspace", workspace),
        ("actor", args.actor),
        ("action", args.action),
        ("limit", args.limit.map(|n| n.to_string())),
        ("cursor", args.cursor),
    ]);
    let r = api.get(&format!("/v1/orgs/{}/audit{q}", seg(&org))).await?;
    if ctx.json {
        return Ok(json(&r));
    }
    if let Some(cursor) = r.get("next_cursor").and_then(serde_json::Value::as_str) {
        eprintln!("note: there are more events; continue with --cursor {}", clean(cursor));
    }
    let mut t = Table::new(&["AT", "ACTION", "ACTOR", "TARGET", "WORKSPACE"]);
    for e in items(&r) {
        let target = match e.get("target").filter(|t| !t.is_null()) {
            Some(t) => format!("{} {}", field(t, "/type"), field(t, "/id")),
            None => "-".into(),
        };
        t.row(vec![
            field(e, "/at"),
            field(e, "/action"),
            format!("{} {}", field(e, "/actor/type"), field(e, "/actor/id")),
            target,
            field(e, "/workspace_id"),
        ]);
    }
    Ok(t.render_or("no audit events"))
}

async fn verify(ctx: &Ctx, org: &str) -> Result<String, CliError> {
    let api = ctx.user()?;
    let org = api.org_id(org).await?;
    let r = api.get(&format!("/v1/orgs/{}/audit/verify", seg(&org))).await?;
    if r.get("ok").and_then(serde_json::Value::as_bool) == Some(true) {
        if ctx.json {
            return Ok(json(&r));
        }
        return Ok(format!(
            "ok: the audit chain of {} holds {} events, none changed or removed (head {})\n",
            clean(&org),
            field(&r, "/events"),
            field(&r, "/head")
        ));
    }
    if ctx.json {
        print!("{}", json(&r));
    }
    let id = r
        .pointer("/first_bad/id")
        .and_then(serde_json::Value::as_str)
        .map_or_else(String::new, |i| format!(" ({})", clean(i)));
    Err(CliError::Input(format!(
        "the audit chain of {} is broken: event #{}{id} was {}",
        clean(&org),
        field(&r, "/first_bad/seq"),
        field(&r, "/first_bad/problem")
    )))
}

//! `roost limits`: every limit that applies to you in a workspace (`GET /v1/limits`).

use super::ctx::Ctx;
use super::error::CliError;
use super::output::{Table, field, items, json};

/// `roost limits`: every limit that applies to you in a workspace.
#[derive(Debug, clap::Args)]
pub struct LimitsArgs {
    /// Workspace id or name [default: your active workspace].
    #[arg(long)]
    workspace: Option<String>,
}

/// Runs `limits`.
pub async fn run(ctx: &Ctx, args: LimitsArgs) -> Result<String, CliError> {
    let mut api = ctx.user()?;
    if let Some(ws) = &args.workspace {
        let id = api.workspace_id(ws).await?;
        api = api.in_workspace(&id);
    }
    let r = api.get("/v1/limits").await?;
    if ctx.json {
        return Ok(json(&r));
    }
    let mut t = Table::new(&["KIND", "SCOPE", "LIMIT", "USED", "REMAINING", "RESETS AT"]);
    for l in items(&r) {
        t.row(vec![
            field(l, "/kind"),
            field(l, "/scope"),
            field(l, "/limit"),
            field(l, "/used"),
            field(l, "/remaining"),
            field(l, "/resets_at"),
        ]);
    }
    Ok(t.render_or("no limits apply"))
}

//! `roost resources …`: the things a product keeps per workspace (apps, databases, buckets …).

use clap::Subcommand;
use serde_json::json;

use super::ctx::{Ctx, seg};
use super::error::CliError;
use super::orgs::note_more;
use super::output::{Table, field, items, json, pairs};

/// Resources of a workspace: list, create, delete, move to another workspace.
#[derive(Debug, Subcommand)]
pub enum ResourcesCommand {
    /// List a workspace's resources.
    List {
        /// The workspace (id, name or ORG/WORKSPACE) [default: your active workspace].
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Create a resource (counted against the plan's quota of its kind).
    Create {
        /// Its kind, e.g. `postgres`.
        kind: String,
        /// Its name.
        name: String,
        /// The workspace (id, name or ORG/WORKSPACE) [default: your active workspace].
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Delete a resource.
    Delete {
        /// The resource id (res_…).
        id: String,
    },
    /// Move a resource to another workspace (you must be admin of both).
    Transfer {
        /// The resource id (res_…).
        id: String,
        /// The workspace to move it to (id, name or ORG/WORKSPACE).
        to: String,
    },
}

/// Runs a `resources` subcommand.
pub async fn run(ctx: &Ctx, cmd: ResourcesCommand) -> Result<String, CliError> {
    let api = ctx.user()?;
    match cmd {
        ResourcesCommand::List { workspace } => {
            let ws = api.workspace_or_current(workspace.as_deref()).await?;
            let r = api.get(&format!("/v1/workspaces/{}/resources?limit=500", seg(&ws))).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            note_more(&r);
            let mut t = Table::new(&["ID", "KIND", "NAME", "CREATED BY"]);
            for x in items(&r) {
                t.row(vec![field(x, "/id"), field(x, "/kind"), field(x, "/name"), field(x, "/created_by")]);
            }
            Ok(t.render_or("no resources in this workspace"))
        }
        ResourcesCommand::Create { kind, name, workspace } => {
            let ws = api.workspace_or_current(workspace.as_deref()).await?;
            let r = api
                .post(&format!("/v1/workspaces/{}/resources", seg(&ws)), &json!({"kind": kind, "name": name}))
                .await?;
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(pairs(&[
                ("created", format!("{} {} ({})", field(&r, "/kind"), field(&r, "/name"), field(&r, "/id"))),
                ("workspace", field(&r, "/workspace_id")),
            ]))
        }
        ResourcesCommand::Delete { id } => {
            api.delete(&format!("/v1/resources/{}", seg(&id))).await?;
            Ok(if ctx.json { String::new() } else { format!("deleted {id}\n") })
        }
        ResourcesCommand::Transfer { id, to } => {
            let to = api.workspace_id(&to).await?;
            let r = api.post(&format!("/v1/resources/{}/transfer", seg(&id)), &json!({"workspace_id": to})).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(format!("moved {} to {}\n", field(&r, "/id"), field(&r, "/workspace_id")))
        }
    }
}

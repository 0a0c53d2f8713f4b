//! `roost ws …`: workspaces.

use clap::Subcommand;
use serde_json::{Value, json};

use super::ctx::{Ctx, seg};
use super::error::CliError;
use super::manage;
use super::orgs::{members_table, note_more};
use super::output::{Table, field, items, json, pairs, text};

/// Workspaces: list, create, switch between them, see their members.
#[derive(Debug, Subcommand)]
pub enum WsCommand {
    /// List the workspaces you can use (all of them, or one organization's).
    List {
        /// Only this organization's workspaces (id or name).
        #[arg(long)]
        org: Option<String>,
    },
    /// Create a workspace in an organization.
    Create {
        /// Organization id or name.
        org: String,
        /// The workspace's name.
        name: String,
    },
    /// Make a workspace your active one: where calls without a workspace act.
    Switch {
        /// Workspace id or name.
        ws: String,
    },
    /// List a workspace's members.
    Members {
        /// Workspace id or name.
        ws: String,
    },
    /// Rename a workspace. Workspace admin.
    Rename {
        /// Workspace id, name, or ORG/WORKSPACE.
        ws: String,
        /// The new name.
        name: String,
    },
    /// Delete a workspace: its keys are revoked and its holds released. Org owner only; asks you
    /// to type its name unless --yes.
    Delete {
        /// Workspace id, name, or ORG/WORKSPACE.
        ws: String,
        /// Do not ask (needed when there is no terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Give an org member a role in a workspace (admin, member, viewer), adding them if needed.
    Role {
        /// Workspace id, name, or ORG/WORKSPACE.
        ws: String,
        /// User id or email.
        user: String,
        /// The workspace role.
        #[arg(value_parser = ["admin", "member", "viewer"])]
        role: String,
    },
    /// Export a workspace's records (state and history) as JSON lines. Workspace admin.
    Export {
        /// Workspace id, name, or ORG/WORKSPACE [default: your active workspace].
        ws: Option<String>,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// Take someone out of a workspace (they stay in the org).
    Remove {
        /// Workspace id, name, or ORG/WORKSPACE.
        ws: String,
        /// User id or email.
        user: String,
    },
}

/// Runs a `ws` subcommand.
pub async fn run(ctx: &Ctx, cmd: WsCommand) -> Result<String, CliError> {
    let api = ctx.user()?;
    match cmd {
        WsCommand::List { org: None } => {
            let me = api.get("/v1/me").await?;
            let list = all_workspaces(&me);
            if ctx.json {
                return Ok(json(&list));
            }
            let mut t = Table::new(&["", "ID", "NAME", "ORG", "ROLE"]);
            for w in items(&list) {
                let active = if w["active"] == true { "*" } else { "" };
                t.row(vec![
                    active.into(),
                    field(w, "/id"),
                    field(w, "/name"),
                    field(w, "/org_name"),
                    field(w, "/role"),
                ]);
            }
            Ok(t.render_or("no workspaces"))
        }
        WsCommand::List { org: Some(org) } => {
            let org = api.org_id(&org).await?;
            let r = api.get(&format!("/v1/orgs/{}/workspaces?limit=500", seg(&org))).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            note_more(&r);
            let mut t = Table::new(&["ID", "NAME", "PRIMARY"]);
            for w in items(&r) {
                let primary = if w["primary"] == true { "yes" } else { "" };
                t.row(vec![field(w, "/id"), field(w, "/name"), primary.into()]);
            }
            Ok(t.render_or("no workspaces"))
        }
        WsCommand::Create { org, name } => {
            let org = api.org_id(&org).await?;
            let r = api.post(&format!("/v1/orgs/{}/workspaces", seg(&org)), &json!({"name": name})).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(pairs(&[
                ("created workspace", format!("{} ({})", field(&r, "/name"), field(&r, "/id"))),
                ("org", field(&r, "/org_id")),
            ]))
        }
        WsCommand::Switch { ws } => {
            let ws = api.workspace_id(&ws).await?;
            let r = api.put("/v1/me/active-workspace", &json!({"workspace_id": ws})).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(pairs(&[("active workspace", field(&r, "/active_workspace_id"))]))
        }
        WsCommand::Members { ws } => {
            let ws = api.workspace_id(&ws).await?;
            let r = api.get(&format!("/v1/workspaces/{}/members?limit=500", seg(&ws))).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(members_table(&r))
        }
        WsCommand::Rename { ws, name } => manage::rename_ws(ctx, &api, &ws, &name).await,
        WsCommand::Delete { ws, yes } => manage::delete_ws(ctx, &api, &ws, yes).await,
        WsCommand::Role { ws, user, role } => manage::set_ws_role(ctx, &api, &ws, &user, Some(&role)).await,
        WsCommand::Export { ws, output } => super::records::export(ctx, ws.as_deref(), output.as_deref()).await,
        WsCommand::Remove { ws, user } => manage::set_ws_role(ctx, &api, &ws, &user, None).await,
    }
}

/// Every workspace in the memberships of `GET /v1/me`, flattened, with its org and whether it is
/// the active one: `{items: [{id, name, role, primary, org_id, org_name, active}]}`.
fn all_workspaces(me: &Value) -> Value {
    let active = text(me, "/active_workspace_id");
    let mut list = Vec::new();
    for m in items(&me["memberships"]) {
        for w in items(&m["workspaces"]) {
            list.push(json!({
                "id": w["id"],
                "name": w["name"],
                "role": w["role"],
                "primary": w["primary"],
                "org_id": m["org_id"],
                "org_name": m["org_name"],
                "active": text(w, "/id") == active,
            }));
        }
    }
    json!({"items": list})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_memberships_and_marks_the_active_workspace() {
        let me = json!({"active_workspace_id": "ws_b", "memberships": [
            {"org_id": "org_1", "org_name": "Me", "workspaces": [{"id": "ws_a", "name": "Personal", "role": "admin", "primary": true}]},
            {"org_id": "org_2", "org_name": "Acme", "workspaces": [{"id": "ws_b", "name": "General", "role": "member", "primary": true}]},
        ]});
        let list = all_workspaces(&me);
        let items = items(&list);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["active"], false);
        assert_eq!(items[1]["active"], true);
        assert_eq!(items[1]["org_name"], "Acme");
    }
}

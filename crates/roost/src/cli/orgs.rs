//! `roost orgs …` and `roost invitations …` (the administrative ones are in `manage.rs`).

use clap::Subcommand;
use serde_json::{Value, json};

use super::ctx::{Ctx, seg};
use super::error::CliError;
use super::manage;
use super::output::{Table, field, items, json, more_note, pairs, text};

/// Organizations: create them, see their members, invite and remove people.
#[derive(Debug, Subcommand)]
pub enum OrgsCommand {
    /// Create an organization on a paid plan (or on its trial); you become its owner.
    Create {
        /// The organization's name.
        name: String,
        /// The plan (see GET /v1/plans), e.g. `team`.
        #[arg(long)]
        plan: String,
        /// Start the plan's free trial instead of paying.
        #[arg(long)]
        trial: bool,
    },
    /// List the organizations you belong to.
    List,
    /// List an organization's members.
    Members {
        /// Organization id or name.
        org: String,
    },
    /// Invite someone by email; prints the token they accept the invitation with.
    Invite {
        /// Organization id or name.
        org: String,
        /// The invitee's email; they must accept with an account of this email.
        email: String,
        /// Their org role: member (the default), admin or billing.
        #[arg(long)]
        role: Option<String>,
        /// Also add them to a workspace (id or name) with a role (admin, member, viewer). Repeatable.
        #[arg(long = "workspace", value_name = "WS:ROLE", value_parser = parse_ws_role)]
        workspaces: Vec<(String, String)>,
    },
    /// Remove a member (`me` to leave).
    Remove {
        /// Organization id or name.
        org: String,
        /// User id, email, or `me`.
        user: String,
    },
    /// Make another member the owner; you become an admin.
    Transfer {
        /// Organization id or name.
        org: String,
        /// User id or email of the new owner.
        user: String,
    },
    /// Rename an organization. Owner or admin.
    Rename {
        /// Organization id or name.
        org: String,
        /// The new name.
        name: String,
    },
    /// Move an organization to another plan (see `roost plans`). Owner or billing.
    Plan {
        /// Organization id or name.
        org: String,
        /// The plan id, e.g. `team`.
        plan: String,
    },
    /// Delete an organization with its workspaces, keys and credits. Owner only; asks you to type
    /// its name unless --yes.
    Delete {
        /// Organization id or name.
        org: String,
        /// Do not ask (needed when there is no terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Change a member's org role: admin, billing or member (the owner grants admin and billing).
    Role {
        /// Organization id or name.
        org: String,
        /// User id or email.
        user: String,
        /// The new role.
        #[arg(value_parser = ["admin", "billing", "member"])]
        role: String,
    },
}

/// Invitations you received.
#[derive(Debug, Subcommand)]
pub enum InvitationsCommand {
    /// Accept an invitation with the token the inviter gave you.
    Accept {
        /// The invitation token.
        token: String,
    },
    /// An organization's pending invitations. Owner or admin.
    List {
        /// Organization id or name.
        org: String,
    },
    /// Revoke a pending invitation: its token stops working. Owner or admin.
    Revoke {
        /// Organization id or name.
        org: String,
        /// The invitation id (inv_…).
        id: String,
    },
}

fn parse_ws_role(s: &str) -> Result<(String, String), String> {
    match s.rsplit_once(':') {
        Some((ws, role)) if !ws.is_empty() && !role.is_empty() => Ok((ws.to_string(), role.to_string())),
        _ => Err(format!("expected WS:ROLE (e.g. ws_01jd…:member), got `{s}`")),
    }
}

/// Runs an `orgs` subcommand.
pub async fn run(ctx: &Ctx, cmd: OrgsCommand) -> Result<String, CliError> {
    let api = ctx.user()?;
    match cmd {
        OrgsCommand::Create { name, plan, trial } => {
            let mut body = json!({"name": name, "plan": plan});
            if trial {
                body["trial"] = true.into();
            }
            let r = api.post("/v1/orgs", &body).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            let mut lines = vec![
                ("created org", format!("{} ({})", field(&r, "/org/name"), field(&r, "/org/id"))),
                ("plan", field(&r, "/org/plan")),
                ("primary workspace", format!("{} ({})", field(&r, "/workspace/name"), field(&r, "/workspace/id"))),
            ];
            if let Some(Value::String(t)) = r.pointer("/org/trial_ends_at") {
                lines.push(("trial ends", t.clone()));
            }
            Ok(pairs(&lines))
        }
        OrgsCommand::List => {
            let r = api.get("/v1/orgs?limit=500").await?;
            if ctx.json {
                return Ok(json(&r));
            }
            note_more(&r);
            let mut t = Table::new(&["ID", "NAME", "KIND", "PLAN", "ROLE"]);
            for o in items(&r) {
                t.row(vec![
                    field(o, "/id"),
                    field(o, "/name"),
                    field(o, "/kind"),
                    field(o, "/plan"),
                    field(o, "/role"),
                ]);
            }
            Ok(t.render_or("no organizations"))
        }
        OrgsCommand::Members { org } => {
            let org = api.org_id(&org).await?;
            let r = api.get(&format!("/v1/orgs/{}/members?limit=500", seg(&org))).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(members_table(&r))
        }
        OrgsCommand::Invite { org, email, role, workspaces } => {
            let org = api.org_id(&org).await?;
            let mut body = json!({"email": email});
            if let Some(role) = role {
                body["role"] = role.into();
            }
            if !workspaces.is_empty() {
                let mut grants = Vec::new();
                for (ws, role) in workspaces {
                    grants.push(json!({"workspace_id": api.workspace_id(&ws).await?, "role": role}));
                }
                body["workspaces"] = grants.into();
            }
            let r = api.post(&format!("/v1/orgs/{}/invitations", seg(&org)), &body).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            let token = text(&r, "/token");
            let mut out = pairs(&[
                ("invited", format!("{} as {} ({})", field(&r, "/email"), field(&r, "/role"), field(&r, "/id"))),
                ("expires", field(&r, "/expires_at")),
                ("token", token.to_string()),
            ]);
            out.push_str(&format!("\nGive the token to the invitee; they run: roost invitations accept {token}\n"));
            Ok(out)
        }
        OrgsCommand::Remove { org, user } => {
            let org = api.org_id(&org).await?;
            let user = api.member_id(&org, &user).await?;
            api.delete(&format!("/v1/orgs/{}/members/{}", seg(&org), seg(&user))).await?;
            if ctx.json {
                return Ok(String::new());
            }
            Ok(if user == "me" { format!("left {org}\n") } else { format!("removed {user} from {org}\n") })
        }
        OrgsCommand::Transfer { org, user } => {
            let org = api.org_id(&org).await?;
            let user = api.member_id(&org, &user).await?;
            let r = api.post(&format!("/v1/orgs/{}/transfer-ownership", seg(&org)), &json!({"user_id": user})).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(format!("{user} now owns {org}; you are an admin\n"))
        }
        OrgsCommand::Rename { org, name } => manage::rename_org(ctx, &api, &org, &name).await,
        OrgsCommand::Plan { org, plan } => manage::change_plan(ctx, &api, &org, &plan).await,
        OrgsCommand::Delete { org, yes } => manage::delete_org(ctx, &api, &org, yes).await,
        OrgsCommand::Role { org, user, role } => manage::set_org_role(ctx, &api, &org, &user, &role).await,
    }
}

/// Runs an `invitations` subcommand.
pub async fn invitations(ctx: &Ctx, cmd: InvitationsCommand) -> Result<String, CliError> {
    let api = ctx.user()?;
    match cmd {
        InvitationsCommand::Accept { token } => {
            let r = api.post("/v1/invitations/accept", &json!({"token": token})).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            let ws: Vec<String> = items(&r["workspace_ids"]).iter().map(|w| field(w, "")).collect();
            Ok(pairs(&[
                ("joined org", field(&r, "/org_id")),
                ("workspaces", if ws.is_empty() { "-".into() } else { ws.join(", ") }),
            ]))
        }
        InvitationsCommand::List { org } => manage::list_invitations(ctx, &api, &org).await,
        InvitationsCommand::Revoke { org, id } => manage::revoke_invitation(ctx, &api, &org, &id).await,
    }
}

/// A table of `{user_id, email, name, role}` items.
pub fn members_table(r: &Value) -> String {
    note_more(r);
    let mut t = Table::new(&["USER", "EMAIL", "NAME", "ROLE"]);
    for m in items(r) {
        t.row(vec![field(m, "/user_id"), field(m, "/email"), field(m, "/name"), field(m, "/role")]);
    }
    t.render_or("no members")
}

/// Says on stderr that a list has more pages than were shown.
pub fn note_more(r: &Value) {
    if let Some(note) = more_note(r) {
        eprintln!("{note}");
    }
}

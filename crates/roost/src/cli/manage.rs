//! The administrative commands of organizations and workspaces: rename, change plan, delete (with
//! confirmation), roles, invitations; and the plan catalog.

use std::io::{BufRead, IsTerminal, Write};

use serde_json::json;

use super::ctx::{Api, Ctx, seg};
use super::error::CliError;
use super::orgs::note_more;
use super::output::{Table, field, items, json, pairs, text};

/// Asks the person to type `name` to confirm deleting it, unless `yes`; refuses without a terminal.
pub fn confirm(what: &str, name: &str, yes: bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Input(format!(
            "deleting {what} `{name}` needs --yes when there is no terminal to confirm at"
        )));
    }
    eprint!("This deletes {what} `{name}` for good. Type its name to confirm: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| CliError::Input(e.to_string()))?;
    if line.trim() == name {
        Ok(())
    } else {
        Err(CliError::Input(format!("not confirmed: `{}` is not `{name}`; nothing was deleted", line.trim())))
    }
}

/// `roost orgs rename ORG NAME`.
pub async fn rename_org(ctx: &Ctx, api: &Api, org: &str, name: &str) -> Result<String, CliError> {
    let org = api.org_id(org).await?;
    let r = api.patch(&format!("/v1/orgs/{}", seg(&org)), &json!({"name": name})).await?;
    if ctx.json {
        return Ok(json(&r));
    }
    Ok(format!("renamed {} to {}\n", field(&r, "/id"), field(&r, "/name")))
}

/// `roost orgs plan ORG PLAN`.
pub async fn change_plan(ctx: &Ctx, api: &Api, org: &str, plan: &str) -> Result<String, CliError> {
    let org = api.org_id(org).await?;
    let r = api.put(&format!("/v1/orgs/{}/plan", seg(&org)), &json!({"plan": plan})).await?;
    if ctx.json {
        return Ok(json(&r));
    }
    Ok(pairs(&[("org", format!("{} ({})", field(&r, "/name"), field(&r, "/id"))), ("plan", field(&r, "/plan"))]))
}

/// `roost orgs delete ORG [--yes]`: the org's name must be typed (or `--yes` given).
pub async fn delete_org(ctx: &Ctx, api: &Api, org: &str, yes: bool) -> Result<String, CliError> {
    let id = api.org_id(org).await?;
    let o = api.get(&format!("/v1/orgs/{}", seg(&id))).await?;
    confirm("organization", text(&o, "/name"), yes)?;
    api.delete(&format!("/v1/orgs/{}", seg(&id))).await?;
    if ctx.json {
        return Ok(String::new());
    }
    Ok(format!("deleted organization {} ({id})\n", field(&o, "/name")))
}

/// `roost orgs role ORG USER ROLE`.
pub async fn set_org_role(ctx: &Ctx, api: &Api, org: &str, user: &str, role: &str) -> Result<String, CliError> {
    let org = api.org_id(org).await?;
    let user = api.member_id(&org, user).await?;
    let r = api.patch(&format!("/v1/orgs/{}/members/{}", seg(&org), seg(&user)), &json!({"role": role})).await?;
    if ctx.json {
        return Ok(json(&r));
    }
    Ok(format!("{} ({}) is now {} in {org}\n", field(&r, "/email"), field(&r, "/user_id"), field(&r, "/role")))
}

/// `roost invitations list ORG`.
pub async fn list_invitations(ctx: &Ctx, api: &Api, org: &str) -> Result<String, CliError> {
    let org = api.org_id(org).await?;
    let r = api.get(&format!("/v1/orgs/{}/invitations?limit=500", seg(&org))).await?;
    if ctx.json {
        return Ok(json(&r));
    }
    note_more(&r);
    let mut t = Table::new(&["ID", "EMAIL", "ROLE", "EXPIRES"]);
    for i in items(&r) {
        t.row(vec![field(i, "/id"), field(i, "/email"), field(i, "/role"), field(i, "/expires_at")]);
    }
    Ok(t.render_or("no pending invitations"))
}

/// `roost invitations revoke ORG ID`.
pub async fn revoke_invitation(ctx: &Ctx, api: &Api, org: &str, id: &str) -> Result<String, CliError> {
    let org = api.org_id(org).await?;
    api.delete(&format!("/v1/orgs/{}/invitations/{}", seg(&org), seg(id))).await?;
    if ctx.json {
        return Ok(String::new());
    }
    Ok(format!("revoked invitation {id}\n"))
}

/// `roost plans`: the catalog, `-` for unlimited.
pub async fn plans(ctx: &Ctx) -> Result<String, CliError> {
    let r = ctx.anon().get("/v1/plans").await?;
    if ctx.json {
        return Ok(json(&r));
    }
    let mut t = Table::new(&[
        "PLAN",
        "NAME",
        "PAID",
        "SEATS",
        "MAX SEATS",
        "WORKSPACES",
        "CREDITS/MONTH",
        "ROLLOVER",
        "RPM",
        "TRIAL DAYS",
    ]);
    for p in items(&r) {
        t.row(vec![
            field(p, "/id"),
            field(p, "/name"),
            field(p, "/paid"),
            field(p, "/seats_included"),
            field(p, "/max_seats"),
            field(p, "/max_workspaces"),
            field(p, "/monthly_credits"),
            field(p, "/rollover_cap"),
            field(p, "/rpm"),
            field(p, "/trial_days"),
        ]);
    }
    Ok(t.render_or("no plans"))
}

/// `roost ws rename WS NAME`.
pub async fn rename_ws(ctx: &Ctx, api: &Api, ws: &str, name: &str) -> Result<String, CliError> {
    let ws = api.workspace_id(ws).await?;
    let r = api.patch(&format!("/v1/workspaces/{}", seg(&ws)), &json!({"name": name})).await?;
    if ctx.json {
        return Ok(json(&r));
    }
    Ok(format!("renamed {} to {}\n", field(&r, "/id"), field(&r, "/name")))
}

/// `roost ws delete WS [--yes]`.
pub async fn delete_ws(ctx: &Ctx, api: &Api, ws: &str, yes: bool) -> Result<String, CliError> {
    let id = api.workspace_id(ws).await?;
    let w = api.get(&format!("/v1/workspaces/{}", seg(&id))).await?;
    confirm("workspace", text(&w, "/name"), yes)?;
    api.delete(&format!("/v1/workspaces/{}", seg(&id))).await?;
    if ctx.json {
        return Ok(String::new());
    }
    Ok(format!("deleted workspace {} ({id}); its keys are revoked and its holds released\n", field(&w, "/name")))
}

/// `roost ws role WS USER ROLE` (`role: Some`) or `roost ws remove WS USER` (`None`).
pub async fn set_ws_role(ctx: &Ctx, api: &Api, ws: &str, user: &str, role: Option<&str>) -> Result<String, CliError> {
    let ws = api.workspace_id(ws).await?;
    let w = api.get(&format!("/v1/workspaces/{}", seg(&ws))).await?;
    let user = api.member_id(text(&w, "/org_id"), user).await?;
    let path = format!("/v1/workspaces/{}/members/{}", seg(&ws), seg(&user));
    let Some(role) = role else {
        api.delete(&path).await?;
        return Ok(if ctx.json {
            String::new()
        } else {
            format!("removed {user} from {} ({ws})\n", field(&w, "/name"))
        });
    };
    let r = api.put(&path, &json!({"role": role})).await?;
    if ctx.json {
        return Ok(json(&r));
    }
    Ok(format!("{user} is now {} in {} ({ws})\n", field(&r, "/role"), field(&w, "/name")))
}

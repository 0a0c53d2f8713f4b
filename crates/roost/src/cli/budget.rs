//! `roost budget …`: per-cycle spend caps of a workspace or of one member in it.

use clap::Subcommand;
use serde_json::json;

use super::ctx::{Api, Ctx, seg};
use super::error::CliError;
use super::output::{field, items, json, pairs, text};

/// Per-cycle spend caps of a workspace or of one member in it.
#[derive(Debug, Subcommand)]
pub enum BudgetCommand {
    /// Set a budget (or remove it with `none`).
    Set {
        /// The most that may be drawn per billing cycle, or `none` to remove the budget.
        #[arg(value_parser = parse_limit, value_name = "LIMIT|none")]
        limit: Limit,
        /// Workspace id or name.
        #[arg(long)]
        workspace: String,
        /// A member's budget in the workspace instead (user id, email, or `me`); their keys' charges count too.
        #[arg(long)]
        member: Option<String>,
        /// Percentages of the limit at which a `budget.alert` audit event is written [default: 50,80,100].
        #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=1000), conflicts_with = "member")]
        alert: Vec<u32>,
    },
    /// Show a budget and what was drawn against it this cycle.
    Show {
        /// Workspace id or name.
        #[arg(long)]
        workspace: String,
        /// A member's budget in the workspace instead (user id, email, or `me`).
        #[arg(long)]
        member: Option<String>,
    },
}

/// A budget limit: a number of credits, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(Option<i64>);

fn parse_limit(s: &str) -> Result<Limit, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(Limit(None));
    }
    match s.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(Limit(Some(n))),
        _ => Err(format!("expected a whole number of credits (0 or more) or `none`, got `{s}`")),
    }
}
/// Runs a `budget` subcommand.
pub async fn budget(ctx: &Ctx, cmd: BudgetCommand) -> Result<String, CliError> {
    let api = ctx.user()?;
    let (r, member) = match cmd {
        BudgetCommand::Set { limit: Limit(limit), workspace, member, alert } => {
            let ws = api.workspace_id(&workspace).await?;
            let mut body = json!({"limit": limit});
            match member {
                Some(m) => {
                    let user = ws_member_id(&api, &ws, &m).await?;
                    (api.put(&budget_path(&ws, Some(&user)), &body).await?, true)
                }
                None => {
                    if !alert.is_empty() {
                        body["alert_percents"] = json!(alert);
                    }
                    (api.put(&budget_path(&ws, None), &body).await?, false)
                }
            }
        }
        BudgetCommand::Show { workspace, member } => {
            let ws = api.workspace_id(&workspace).await?;
            let user = match member {
                Some(m) => Some(ws_member_id(&api, &ws, &m).await?),
                None => None,
            };
            (api.get(&budget_path(&ws, user.as_deref())).await?, user.is_some())
        }
    };
    if ctx.json {
        return Ok(json(&r));
    }
    let mut lines = vec![("scope", field(&r, "/scope")), ("workspace", field(&r, "/workspace_id"))];
    if member {
        lines.push(("member", field(&r, "/user_id")));
    }
    lines.push(("limit", if r["limit"].is_null() { "none".into() } else { field(&r, "/limit") }));
    lines.push(("used this cycle", field(&r, "/used")));
    if !member {
        let alerts: Vec<String> = items(&r["alert_percents"]).iter().map(|p| format!("{}%", field(p, ""))).collect();
        lines.push(("alerts", if alerts.is_empty() { "-".into() } else { alerts.join(", ") }));
    }
    lines.push(("resets at", field(&r, "/resets_at")));
    Ok(pairs(&lines))
}

fn budget_path(ws: &str, user: Option<&str>) -> String {
    match user {
        Some(u) => format!("/v1/workspaces/{}/members/{}/budget", seg(ws), seg(u)),
        None => format!("/v1/workspaces/{}/budget", seg(ws)),
    }
}
/// A member of workspace `ws`: an email is looked up among its members; an id or `me` is passed on.
async fn ws_member_id(api: &Api, ws: &str, arg: &str) -> Result<String, CliError> {
    if !arg.contains('@') {
        return Ok(arg.to_string());
    }
    let r = api.get(&format!("/v1/workspaces/{}/members?limit=500", seg(ws))).await?;
    let found: Vec<&str> =
        items(&r).iter().filter(|m| text(m, "/email").eq_ignore_ascii_case(arg)).map(|m| text(m, "/user_id")).collect();
    match found.as_slice() {
        [one] => Ok((*one).to_string()),
        _ => Err(CliError::Input(format!("no member of {ws} has the email `{arg}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_numbers_or_none() {
        assert_eq!(parse_limit("500"), Ok(Limit(Some(500))));
        assert_eq!(parse_limit("0"), Ok(Limit(Some(0))));
        assert_eq!(parse_limit("None"), Ok(Limit(None)));
        assert!(parse_limit("-1").is_err());
        assert!(parse_limit("5k").is_err());
    }
}

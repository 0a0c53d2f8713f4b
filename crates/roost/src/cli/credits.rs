//! `roost credits …`, `roost usage` and `roost budget …`: the prepaid-credit ledger.

use std::collections::HashMap;

use clap::Subcommand;
use serde_json::{Value, json};

use super::config;
use super::ctx::{Api, Ctx, query, seg};
use super::error::CliError;
use super::orgs::note_more;
use super::output::{Table, clean, field, items, json, pairs, text};
use crate::Client;

/// Wallets, top-ups and the journal of an organization.
#[derive(Debug, Subcommand)]
pub enum CreditsCommand {
    /// The organization's wallets: balance, held, available, and their live grants.
    Balance {
        /// Organization id or name [default: the org of your active workspace].
        #[arg(long)]
        org: Option<String>,
    },
    /// Transactions, newest first: the org's whole journal, or one workspace's charges.
    History {
        /// Organization id or name [default: the org of your active workspace]. Owner, admin or billing.
        #[arg(long, conflicts_with = "workspace")]
        org: Option<String>,
        /// Only this workspace's transactions (id or name).
        #[arg(long)]
        workspace: Option<String>,
        /// Only this actor's transactions (usr_… or key_…).
        #[arg(long)]
        actor: Option<String>,
        /// At most this many transactions [server default: 50].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: Option<u32>,
        /// Continue from a previous page's next cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Add credits that never expire. Owner or billing.
    Topup {
        /// Credits to add.
        #[arg(value_parser = clap::value_parser!(i64).range(1..))]
        amount: i64,
        /// Organization id or name [default: the org of your active workspace].
        #[arg(long)]
        org: Option<String>,
        /// The wallet: its kind (e.g. `credits`) or id [default: credits].
        #[arg(long)]
        wallet: Option<String>,
        /// The Idempotency-Key [default: a random one, printed]. Run again with the same key and
        /// amount and the top-up happens once.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
}

/// `roost usage`: what an organization spent, grouped.
#[derive(Debug, clap::Args)]
pub struct UsageArgs {
    /// Group by `member` (a key's charges count for its creator), `workspace`, `key` or `action`
    /// [server default: workspace].
    #[arg(long, value_parser = ["member", "workspace", "key", "action"])]
    by: Option<String>,
    /// Organization id or name [default: the org of your active workspace]. Owner, admin or billing.
    #[arg(long)]
    org: Option<String>,
    /// From this time (RFC 3339) [default: the start of the current cycle].
    #[arg(long, value_parser = parse_time)]
    from: Option<String>,
    /// Until this time, excluded (RFC 3339) [default: now].
    #[arg(long, value_parser = parse_time)]
    to: Option<String>,
    /// The wallet kind [default: credits].
    #[arg(long)]
    wallet: Option<String>,
}

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

fn parse_time(s: &str) -> Result<String, String> {
    match roost_domain::time::parse_rfc3339(s) {
        Some(_) => Ok(s.to_string()),
        None => Err(format!("`{s}` is not an RFC 3339 time (e.g. 2030-01-01T00:00:00Z)")),
    }
}

/// Runs a `credits` subcommand.
pub async fn run(ctx: &Ctx, cmd: CreditsCommand) -> Result<String, CliError> {
    let api = ctx.user()?;
    match cmd {
        CreditsCommand::Balance { org } => {
            let org = org_or_active(&api, org.as_deref()).await?;
            let r = api.get(&format!("/v1/orgs/{}/wallets", seg(&org))).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(balance_tables(&r))
        }
        CreditsCommand::History { org, workspace, actor, limit, cursor } => {
            let q = query(&[("actor", actor), ("limit", limit.map(|n| n.to_string())), ("cursor", cursor)]);
            let path = match workspace {
                Some(ws) => format!("/v1/workspaces/{}/transactions{q}", seg(&api.workspace_id(&ws).await?)),
                None => format!("/v1/orgs/{}/transactions{q}", seg(&org_or_active(&api, org.as_deref()).await?)),
            };
            let r = api.get(&path).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            if let Some(c) = r.get("next_cursor").and_then(Value::as_str) {
                eprintln!("note: there are more transactions; continue with --cursor {}", clean(c));
            }
            Ok(history_table(&r))
        }
        CreditsCommand::Topup { amount, org, wallet, idempotency_key } => {
            let org = org_or_active(&api, org.as_deref()).await?;
            let wallet = wallet.unwrap_or_else(|| "credits".into());
            let key = idempotency_key.unwrap_or_else(|| roost_domain::tokens::generate("cli_"));
            let path = format!("/v1/orgs/{}/wallets/{}/topups", seg(&org), seg(&wallet));
            let r = post_idem(ctx, &path, &key, &json!({"amount": amount})).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            let g = &r["grant"];
            Ok(pairs(&[
                ("topped up", format!("{} ({})", field(g, "/amount"), field(g, "/id"))),
                ("wallet", field(g, "/wallet_id")),
                ("expires", expiry(g)),
                ("idempotency key", key),
            ]))
        }
    }
}

/// Runs `usage`.
pub async fn usage(ctx: &Ctx, args: UsageArgs) -> Result<String, CliError> {
    let api = ctx.user()?;
    let org = org_or_active(&api, args.org.as_deref()).await?;
    let q = query(&[("group_by", args.by), ("from", args.from), ("to", args.to), ("wallet", args.wallet)]);
    let r = api.get(&format!("/v1/orgs/{}/usage{q}", seg(&org))).await?;
    if ctx.json {
        return Ok(json(&r));
    }
    let by = text(&r, "/group_by").to_string();
    // People read names better than ids: members by email, workspaces by name (when they can be listed).
    let names: HashMap<String, String> = match by.as_str() {
        "member" => names_of(&api, &format!("/v1/orgs/{}/members?limit=500", seg(&org)), "/user_id", "/email").await,
        "workspace" => names_of(&api, &format!("/v1/orgs/{}/workspaces?limit=500", seg(&org)), "/id", "/name").await,
        _ => HashMap::new(),
    };
    let mut out = pairs(&[
        ("total", format!("{} in {} charges", field(&r, "/total"), field(&r, "/count"))),
        ("from", field(&r, "/from")),
        ("to", field(&r, "/to")),
    ]);
    out.push('\n');
    let header: &'static str = match by.as_str() {
        "member" => "MEMBER",
        "key" => "KEY",
        "action" => "ACTION",
        _ => "WORKSPACE",
    };
    let mut t = Table::new(&[header, "NAME", "AMOUNT", "COUNT", "SHARE"]);
    for g in items(&r["groups"]) {
        let key = match g.get("key") {
            Some(Value::String(k)) => k.clone(),
            _ if by == "key" => "(no key)".into(),
            _ => "-".into(),
        };
        let name = names.get(&key).cloned().unwrap_or_else(|| "-".into());
        t.row(vec![key, name, field(g, "/amount"), field(g, "/count"), percent(g.get("share"))]);
    }
    out.push_str(&t.render_or("no usage in this period"));
    Ok(out)
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

/// The org named by `org`, else the org of the user's active workspace.
async fn org_or_active(api: &Api, org: Option<&str>) -> Result<String, CliError> {
    if let Some(org) = org {
        return api.org_id(org).await;
    }
    let me = api.get("/v1/me").await?;
    let active = text(&me, "/active_workspace_id");
    items(&me["memberships"])
        .iter()
        .find(|m| items(&m["workspaces"]).iter().any(|w| !active.is_empty() && text(w, "/id") == active))
        .map(|m| text(m, "/org_id").to_string())
        .ok_or_else(|| CliError::Input("you have no active workspace; name the organization with --org".into()))
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

/// `id → name` from a list endpoint; empty when the list cannot be read (the table then shows ids only).
async fn names_of(api: &Api, path: &str, id: &str, name: &str) -> HashMap<String, String> {
    match api.get(path).await {
        Ok(r) => items(&r).iter().map(|v| (text(v, id).to_string(), field(v, name))).collect(),
        Err(_) => HashMap::new(),
    }
}

/// `POST path` with an `Idempotency-Key`, as the logged-in user.
async fn post_idem(ctx: &Ctx, path: &str, key: &str, body: &Value) -> Result<Value, CliError> {
    // `user()` settles that the saved session belongs to this server; the token is read again here
    // because the Idempotency-Key header needs a client of our own.
    ctx.user()?;
    let token = config::load(&config::path()?)?.token.ok_or(CliError::NotLoggedIn)?;
    let client = Client::new(&ctx.server).with_token(&token);
    let retry = |e: CliError| match e {
        CliError::Transport(line) => CliError::Transport(format!("{line}; retry with --idempotency-key {key}")),
        CliError::Problem { status: 503, code, detail } => CliError::Problem {
            status: 503,
            code,
            detail: Some(format!("{}; retry with --idempotency-key {key}", detail.unwrap_or_default())),
        },
        other => other,
    };
    let r = client.post_idem(path, key, body).await.map_err(|e| retry(CliError::transport(&e)))?;
    if r.is_success() { Ok(r.body) } else { Err(retry(CliError::from_response(&r))) }
}

/// The wallets and their grants, as two tables.
fn balance_tables(r: &Value) -> String {
    note_more(r);
    let mut wallets = Table::new(&["KIND", "WALLET", "BALANCE", "HELD", "AVAILABLE", "CYCLE ENDS"]);
    let mut grants = Table::new(&["GRANT", "KIND", "SOURCE", "REMAINING", "RESERVED", "EXPIRES"]);
    for w in items(r) {
        wallets.row(vec![
            field(w, "/kind"),
            field(w, "/id"),
            field(w, "/balance"),
            field(w, "/held"),
            field(w, "/available"),
            field(w, "/cycle_ends_at"),
        ]);
        for g in items(&w["grants"]) {
            grants.row(vec![
                field(g, "/id"),
                field(w, "/kind"),
                field(g, "/source"),
                field(g, "/remaining"),
                field(g, "/reserved"),
                expiry(g),
            ]);
        }
    }
    let mut out = wallets.render_or("no wallets");
    out.push('\n');
    out.push_str(&grants.render_or("no live grants"));
    out
}

/// A table of journal entries.
fn history_table(r: &Value) -> String {
    let mut t = Table::new(&["AT", "TYPE", "AMOUNT", "ACTION", "ACTOR", "WORKSPACE", "BALANCE AFTER", "ID"]);
    for e in items(r) {
        t.row(vec![
            field(e, "/at"),
            field(e, "/type"),
            field(e, "/amount"),
            field(e, "/action"),
            format!("{} {}", field(e, "/actor/type"), field(e, "/actor/id")),
            field(e, "/workspace_id"),
            field(e, "/balance_after"),
            field(e, "/id"),
        ]);
    }
    t.render_or("no transactions")
}

/// A grant's expiry: its time, or `never`.
fn expiry(g: &Value) -> String {
    match g.get("expires_at") {
        Some(Value::String(t)) => t.clone(),
        _ => "never".into(),
    }
}

/// A 0–1 share as a percentage with one decimal.
fn percent(share: Option<&Value>) -> String {
    share.and_then(Value::as_f64).map_or_else(|| "-".into(), |s| format!("{:.1}%", s * 100.0))
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

    #[test]
    fn shares_are_percentages() {
        assert_eq!(percent(Some(&json!(1.0))), "100.0%");
        assert_eq!(percent(Some(&json!(0.3333))), "33.3%");
        assert_eq!(percent(None), "-");
    }

    #[test]
    fn balance_lists_wallets_then_grants() {
        let r = json!({"items": [{"id": "wal_1", "kind": "credits", "balance": 6000, "held": 0, "available": 6000,
            "cycle_ends_at": "2030-02-01T00:00:00Z", "grants": [
                {"id": "grt_a", "source": "allocation", "remaining": 5000, "reserved": 0, "expires_at": "2030-02-01T00:00:00Z"},
                {"id": "grt_b", "source": "topup", "remaining": 1000, "reserved": 0, "expires_at": null}]}],
            "next_cursor": null});
        let out = balance_tables(&r);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "KIND     WALLET  BALANCE  HELD  AVAILABLE  CYCLE ENDS");
        assert_eq!(lines[1], "credits  wal_1   6000     0     6000       2030-02-01T00:00:00Z");
        assert_eq!(lines[2], "");
        assert_eq!(lines[3], "GRANT  KIND     SOURCE      REMAINING  RESERVED  EXPIRES");
        assert_eq!(lines[4], "grt_a  credits  allocation  5000       0         2030-02-01T00:00:00Z");
        assert_eq!(lines[5], "grt_b  credits  topup       1000       0         never");
    }
}

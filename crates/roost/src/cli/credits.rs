//! `roost credits …`: an organization's wallets, top-ups and journal, and a wallet's alert and
//! auto-reload (in `alerts.rs`).

use clap::Subcommand;
use serde_json::{Value, json};

use super::alerts::{self, AlertsArgs, AutoReloadArgs};
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
    /// Correct a wallet by hand: add credits (> 0) or take them away (< 0). Owner only; audited.
    Adjust {
        /// Credits to add, or to take away when negative (e.g. -- -500).
        #[arg(allow_negative_numbers = true, value_parser = clap::value_parser!(i64))]
        amount: i64,
        /// Why: kept in the journal and the audit log.
        #[arg(long)]
        reason: String,
        /// When added credits expire (RFC 3339) [default: never].
        #[arg(long)]
        expires_at: Option<String>,
        /// Organization id or name [default: the org of your active workspace].
        #[arg(long)]
        org: Option<String>,
        /// The wallet: its kind or id [default: credits].
        #[arg(long)]
        wallet: Option<String>,
        /// The Idempotency-Key [default: a random one, printed].
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Buy credit packs (the plan's `credit_pack`): a pending purchase whose credits arrive when it
    /// is paid. Owner or billing; billing must be on.
    Buy(super::billing::BuyArgs),
    /// Set or clear a wallet's low-balance alert (`credits.low_balance`). Owner, admin or billing.
    Alerts(AlertsArgs),
    /// Show a wallet's auto-reload, or turn it on or off and set its numbers. Owner or billing.
    #[command(name = "auto-reload")]
    AutoReload(AutoReloadArgs),
}
/// Runs a `credits` subcommand.
pub async fn run(ctx: &Ctx, cmd: CreditsCommand) -> Result<String, CliError> {
    let api = ctx.user()?;
    match cmd {
        CreditsCommand::Adjust { amount, reason, expires_at, org, wallet, idempotency_key } => {
            let org = org_or_active(&api, org.as_deref()).await?;
            let wallet = wallet.unwrap_or_else(|| "credits".into());
            let key = idempotency_key.unwrap_or_else(|| roost_domain::tokens::generate("cli_"));
            let path = format!("/v1/orgs/{}/wallets/{}/adjustments", seg(&org), seg(&wallet));
            let mut body = json!({"amount": amount, "reason": reason});
            if let Some(t) = expires_at {
                body["expires_at"] = t.into();
            }
            let mut r = post_idem(ctx, None, &path, &key, &body).await?;
            if ctx.json {
                r["idempotency_key"] = key.into();
                return Ok(json(&r));
            }
            let what = if r.get("grant").is_some() {
                format!("added {} ({})", field(&r, "/grant/amount"), field(&r, "/grant/id"))
            } else {
                format!("took away {} ({})", field(&r, "/adjustment/amount"), field(&r, "/adjustment/id"))
            };
            Ok(pairs(&[("adjusted", what), ("reason", reason), ("idempotency key", key)]))
        }
        CreditsCommand::Alerts(a) => alerts::alerts(ctx, a).await,
        CreditsCommand::Buy(a) => super::billing::buy(ctx, &api, a).await,
        CreditsCommand::AutoReload(a) => alerts::auto_reload(ctx, a).await,
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
            let mut r = post_idem(ctx, None, &path, &key, &json!({"amount": amount})).await?;
            if ctx.json {
                r["idempotency_key"] = key.into();
                return Ok(json(&r));
            }
            if let Some(p) = r.get("purchase") {
                // Billing is on: the top-up is a purchase, credited when paid.
                return Ok(pairs(&[
                    ("purchase", field(p, "/id")),
                    ("status", field(p, "/status")),
                    ("credits", field(p, "/credits")),
                    ("price", format!("{} {}", field(p, "/amount"), field(p, "/currency"))),
                    ("invoice", field(p, "/invoice_id")),
                    ("idempotency key", key),
                ]));
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
/// The org named by `org`, else the org of the user's active workspace.
pub async fn org_or_active(api: &Api, org: Option<&str>) -> Result<String, CliError> {
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
/// `POST path` with an `Idempotency-Key`, as the logged-in user (acting in workspace `ws` if given).
pub(super) async fn post_idem(
    ctx: &Ctx,
    ws: Option<&str>,
    path: &str,
    key: &str,
    body: &Value,
) -> Result<Value, CliError> {
    // `user()` settles that the saved session belongs to this server; the token is read again here
    // because the Idempotency-Key header needs a client of our own.
    ctx.user()?;
    let token = config::load(&config::path()?)?.token.ok_or(CliError::NotLoggedIn)?;
    let mut client = Client::new(&ctx.server).with_token(&token);
    if let Some(ws) = ws {
        client = client.in_workspace(ws);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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

//! `roost holds …`: reserve credits now, charge them later (API.md "Credits", holds).

use clap::Subcommand;
use serde_json::{Value, json};

use super::credits::post_idem;
use super::ctx::{Ctx, seg};
use super::error::CliError;
use super::output::{field, json, pairs};

/// Holds: reserve credits, settle what was used, release the rest.
#[derive(Debug, Subcommand)]
pub enum HoldsCommand {
    /// Reserve credits in a workspace; they stay in the balance but are no longer available.
    Create {
        /// Credits to reserve.
        #[arg(value_parser = clap::value_parser!(i64).range(1..))]
        amount: i64,
        /// What the credits are for, e.g. `llm.tokens`.
        #[arg(long)]
        action: String,
        /// How long the hold lives unless settled or released [server default: 900].
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=604_800))]
        ttl_seconds: Option<i64>,
        /// The workspace (id, name or ORG/WORKSPACE) [default: your active workspace].
        #[arg(long)]
        workspace: Option<String>,
        /// The Idempotency-Key [default: a random one, printed].
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Show a hold.
    Show {
        /// The hold id (hld_…).
        id: String,
    },
    /// Charge what was used (at most what is held); the rest is released.
    Settle {
        /// The hold id (hld_…).
        id: String,
        /// Credits to charge.
        #[arg(value_parser = clap::value_parser!(i64).range(1..))]
        amount: i64,
        /// The Idempotency-Key [default: a random one, printed].
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Give everything held back.
    Release {
        /// The hold id (hld_…).
        id: String,
    },
}

/// Runs a `holds` subcommand.
pub async fn run(ctx: &Ctx, cmd: HoldsCommand) -> Result<String, CliError> {
    let api = ctx.user()?;
    match cmd {
        HoldsCommand::Create { amount, action, ttl_seconds, workspace, idempotency_key } => {
            let ws = match workspace {
                Some(w) => Some(api.workspace_id(&w).await?),
                None => None,
            };
            let key = idempotency_key.unwrap_or_else(|| roost_domain::tokens::generate("cli_"));
            let mut body = json!({"amount": amount, "action": action});
            if let Some(t) = ttl_seconds {
                body["ttl_seconds"] = t.into();
            }
            let mut r = post_idem(ctx, ws.as_deref(), "/v1/holds", &key, &body).await?;
            if ctx.json {
                r["idempotency_key"] = key.into();
                return Ok(json(&r));
            }
            let mut out = hold_pairs(&r);
            out.push_str(&pairs(&[("idempotency key", key)]));
            Ok(out)
        }
        HoldsCommand::Show { id } => {
            let r = api.get(&format!("/v1/holds/{}", seg(&id))).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(hold_pairs(&r))
        }
        HoldsCommand::Settle { id, amount, idempotency_key } => {
            let key = idempotency_key.unwrap_or_else(|| roost_domain::tokens::generate("cli_"));
            let path = format!("/v1/holds/{}/settle", seg(&id));
            let mut r = post_idem(ctx, None, &path, &key, &json!({"amount": amount})).await?;
            if ctx.json {
                r["idempotency_key"] = key.into();
                return Ok(json(&r));
            }
            Ok(pairs(&[
                ("charged", format!("{} ({})", field(&r, "/charge/amount"), field(&r, "/charge/id"))),
                ("released", field(&r, "/released")),
                ("balance after", field(&r, "/charge/balance_after")),
                ("idempotency key", key),
            ]))
        }
        HoldsCommand::Release { id } => {
            let r = api.post(&format!("/v1/holds/{}/release", seg(&id)), &json!({})).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(hold_pairs(&r))
        }
    }
}

/// A hold as `key: value` lines.
fn hold_pairs(h: &Value) -> String {
    pairs(&[
        ("hold", field(h, "/id")),
        ("status", field(h, "/status")),
        ("amount", field(h, "/amount")),
        ("action", field(h, "/action")),
        ("workspace", field(h, "/workspace_id")),
        ("expires", field(h, "/expires_at")),
    ])
}

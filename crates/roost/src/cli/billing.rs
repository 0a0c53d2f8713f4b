//! `roost invoices …`, `roost credits buy`, and the operator's `roost admin …` and
//! `roost billing mark-paid` (API.md "Billing"). Operator commands authenticate with an operator
//! key (`--operator-key` or `ROOST_OPERATOR_KEY`), made by `roost operator create-key`.

use clap::Subcommand;
use serde_json::{Value, json};

use super::credits::{org_or_active, post_idem};
use super::ctx::{Api, Ctx, query, seg};
use super::error::CliError;
use super::output::{Table, field, items, json, pairs};

/// An organization's invoices.
#[derive(Debug, Subcommand)]
pub enum InvoicesCommand {
    /// The invoices, newest first (the current cycle's draft as it stands). Owner or billing.
    List {
        /// Organization id or name [default: the org of your active workspace].
        #[arg(long)]
        org: Option<String>,
        /// Continue from a previous page's next cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// One invoice with its lines.
    Show {
        /// The invoice id (bill_…).
        id: String,
    },
}

/// `roost credits buy PACKS`.
#[derive(Debug, clap::Args)]
pub struct BuyArgs {
    /// How many of the plan's credit packs to buy.
    #[arg(value_parser = clap::value_parser!(i64).range(1..=1000))]
    packs: i64,
    /// Organization id or name [default: the org of your active workspace].
    #[arg(long)]
    org: Option<String>,
    /// The wallet: its kind or id [default: credits].
    #[arg(long)]
    wallet: Option<String>,
    /// The Idempotency-Key [default: a random one, printed].
    #[arg(long)]
    idempotency_key: Option<String>,
}

/// The operator key of an operator command.
#[derive(Debug, Clone, clap::Args)]
pub struct OperatorKeyArg {
    /// An operator key (rso_…), made with `roost operator create-key`.
    #[arg(long, env = "ROOST_OPERATOR_KEY", hide_env_values = true)]
    operator_key: String,
}

/// The operator's view of every org.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Every org with its plan, members and balance.
    Orgs {
        #[command(flatten)]
        key: OperatorKeyArg,
        /// Continue from a previous page's next cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Give promotional or goodwill credits to an org (a negative amount takes credits away).
    Grant {
        #[command(flatten)]
        key: OperatorKeyArg,
        /// The org id.
        org: String,
        /// Credits to give (or take away, e.g. -- -500).
        #[arg(allow_negative_numbers = true)]
        amount: i64,
        /// Why: kept in the journal and the org's audit log.
        #[arg(long)]
        reason: String,
        /// The wallet kind or id [default: credits].
        #[arg(long)]
        wallet: Option<String>,
        /// When given credits expire (RFC 3339) [default: never].
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// Put an org on a plan without payment (shown as given on its invoices).
    Plan {
        #[command(flatten)]
        key: OperatorKeyArg,
        /// The org id.
        org: String,
        /// The plan id.
        plan: String,
    },
}

/// The operator's billing tasks.
#[derive(Debug, Subcommand)]
pub enum BillingCommand {
    /// Mark an invoice (bill_…) or a purchase (pur_…) paid by hand, for operators without a payment system.
    #[command(name = "mark-paid")]
    MarkPaid {
        #[command(flatten)]
        key: OperatorKeyArg,
        /// The invoice or purchase id.
        id: String,
        /// How it was paid (a transfer's reference, a receipt number).
        #[arg(long)]
        reference: String,
    },
}

/// Runs an `invoices` subcommand.
pub async fn invoices(ctx: &Ctx, cmd: InvoicesCommand) -> Result<String, CliError> {
    let api = ctx.user()?;
    match cmd {
        InvoicesCommand::List { org, cursor } => {
            let org = org_or_active(&api, org.as_deref()).await?;
            let r = api.get(&format!("/v1/orgs/{}/invoices{}", seg(&org), query(&[("cursor", cursor)]))).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            let mut t =
                Table::new(&["INVOICE", "NUMBER", "STATUS", "PERIOD START", "PERIOD END", "TOTAL", "DUE", "CURRENCY"]);
            for i in items(&r) {
                t.row(vec![
                    field(i, "/id"),
                    field(i, "/number"),
                    field(i, "/status"),
                    field(i, "/period_start"),
                    field(i, "/period_end"),
                    field(i, "/total"),
                    field(i, "/amount_due"),
                    field(i, "/currency"),
                ]);
            }
            Ok(t.render_or("no invoices"))
        }
        InvoicesCommand::Show { id } => {
            let r = api.get(&format!("/v1/invoices/{}", seg(&id))).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(show(&r))
        }
    }
}

/// An invoice: its header, then its lines.
fn show(r: &Value) -> String {
    let mut out = pairs(&[
        ("invoice", field(r, "/id")),
        ("number", field(r, "/number")),
        ("status", field(r, "/status")),
        ("period", format!("{} – {}", field(r, "/period_start"), field(r, "/period_end"))),
        ("billed to", format!("{} <{}>", field(r, "/billed_to/name"), field(r, "/billed_to/email"))),
        ("total", format!("{} {}", field(r, "/total"), field(r, "/currency"))),
        ("amount due", format!("{} {}", field(r, "/amount_due"), field(r, "/currency"))),
    ]);
    out.push('\n');
    let mut t = Table::new(&["KIND", "DESCRIPTION", "QTY", "UNIT PRICE", "AMOUNT"]);
    for l in items(&r["lines"]) {
        t.row(vec![
            field(l, "/kind"),
            field(l, "/description"),
            field(l, "/quantity"),
            field(l, "/unit_price"),
            field(l, "/amount"),
        ]);
    }
    out.push_str(&t.render_or("no lines"));
    out
}

/// `roost credits buy`.
pub async fn buy(ctx: &Ctx, api: &Api, a: BuyArgs) -> Result<String, CliError> {
    let org = org_or_active(api, a.org.as_deref()).await?;
    let wallet = a.wallet.unwrap_or_else(|| "credits".into());
    let key = a.idempotency_key.unwrap_or_else(|| roost_domain::tokens::generate("cli_"));
    let path = format!("/v1/orgs/{}/wallets/{}/purchases", seg(&org), seg(&wallet));
    let mut r = post_idem(ctx, None, &path, &key, &json!({"packs": a.packs})).await?;
    if ctx.json {
        r["idempotency_key"] = key.into();
        return Ok(json(&r));
    }
    Ok(pairs(&[
        ("purchase", field(&r, "/id")),
        ("status", field(&r, "/status")),
        ("credits", format!("{} (granted when paid)", field(&r, "/credits"))),
        ("price", format!("{} {}", field(&r, "/amount"), field(&r, "/currency"))),
        ("invoice", field(&r, "/invoice_id")),
        ("idempotency key", key),
    ]))
}

/// Runs an `admin` subcommand.
pub async fn admin(ctx: &Ctx, cmd: AdminCommand) -> Result<String, CliError> {
    match cmd {
        AdminCommand::Orgs { key, cursor } => {
            let r =
                ctx.operator(&key.operator_key).get(&format!("/v1/admin/orgs{}", query(&[("cursor", cursor)]))).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            let mut t = Table::new(&["ORG", "NAME", "KIND", "PLAN", "MEMBERS", "BALANCE", "OWNER"]);
            for o in items(&r) {
                t.row(vec![
                    field(o, "/id"),
                    field(o, "/name"),
                    field(o, "/kind"),
                    field(o, "/plan"),
                    field(o, "/members"),
                    field(o, "/balance"),
                    field(o, "/owner_id"),
                ]);
            }
            Ok(t.render_or("no orgs"))
        }
        AdminCommand::Grant { key, org, amount, reason, wallet, expires_at } => {
            let wallet = wallet.unwrap_or_else(|| "credits".into());
            let mut body = json!({"amount": amount, "reason": reason});
            if let Some(t) = expires_at {
                body["expires_at"] = t.into();
            }
            let path = format!("/v1/admin/orgs/{}/wallets/{}/grants", seg(&org), seg(&wallet));
            let r = ctx.operator(&key.operator_key).post(&path, &body).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(if r.get("grant").is_some() {
                pairs(&[("granted", field(&r, "/grant/amount")), ("grant", field(&r, "/grant/id")), ("org", org)])
            } else {
                pairs(&[
                    ("took away", field(&r, "/adjustment/amount")),
                    ("entry", field(&r, "/adjustment/id")),
                    ("org", org),
                ])
            })
        }
        AdminCommand::Plan { key, org, plan } => {
            let r = ctx
                .operator(&key.operator_key)
                .put(&format!("/v1/admin/orgs/{}/plan", seg(&org)), &json!({"plan": plan}))
                .await?;
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(pairs(&[("org", field(&r, "/id")), ("plan", field(&r, "/plan")), ("given", "without payment".into())]))
        }
    }
}

/// Runs a `billing` subcommand.
pub async fn billing(ctx: &Ctx, cmd: BillingCommand) -> Result<String, CliError> {
    match cmd {
        BillingCommand::MarkPaid { key, id, reference } => {
            let kind = if id.starts_with("pur_") { "purchases" } else { "invoices" };
            let path = format!("/v1/admin/{kind}/{}/mark-paid", seg(&id));
            let r = ctx.operator(&key.operator_key).post(&path, &json!({"reference": reference})).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(pairs(&[("id", id), ("outcome", field(&r, "/outcome")), ("status", field(&r, "/status"))]))
        }
    }
}

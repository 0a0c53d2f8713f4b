//! `roost credits alerts` and `roost credits auto-reload`: a wallet's low-balance alert and its
//! auto-reload (API.md "Wallet alerts and auto-reload").

use serde_json::{Value, json};

use super::credits::org_or_active;
use super::ctx::{Ctx, seg};
use super::error::CliError;
use super::output::{field, json, pairs};

/// `roost credits alerts`: set or clear the low-balance alert of a wallet.
#[derive(Debug, clap::Args)]
pub struct AlertsArgs {
    /// Send `credits.low_balance` when available credits fall below this; `none` turns it off.
    #[arg(long, value_name = "CREDITS|none", value_parser = threshold)]
    low_balance: Threshold,
    /// Organization id or name [default: the org of your active workspace].
    #[arg(long)]
    org: Option<String>,
    /// The wallet: its kind or id [default: credits].
    #[arg(long)]
    wallet: Option<String>,
}

/// `roost credits auto-reload`: show a wallet's auto-reload, or change it. Owner or billing.
#[derive(Debug, clap::Args)]
pub struct AutoReloadArgs {
    /// Turn auto-reload on (with the numbers given here or already set).
    #[arg(long, conflicts_with = "off")]
    on: bool,
    /// Turn auto-reload off (the numbers are kept for when it is turned on again).
    #[arg(long)]
    off: bool,
    /// Reload when a charge or hold leaves available credits below this.
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    threshold: Option<i64>,
    /// Credits one reload adds.
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    amount: Option<i64>,
    /// The most reloads may add in one calendar month (UTC).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    monthly_max: Option<i64>,
    /// Organization id or name [default: the org of your active workspace].
    #[arg(long)]
    org: Option<String>,
    /// The wallet: its kind or id [default: credits].
    #[arg(long)]
    wallet: Option<String>,
}

/// A low-balance threshold: credits, or none.
#[derive(Debug, Clone, Copy)]
pub struct Threshold(Option<i64>);

fn threshold(s: &str) -> Result<Threshold, String> {
    match s {
        "none" | "off" => Ok(Threshold(None)),
        _ => match s.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Threshold(Some(n))),
            _ => Err(format!("expected a whole number of credits (0 or more) or `none`, got `{s}`")),
        },
    }
}

/// The path of a wallet setting: `/v1/orgs/{org}/wallets/{wallet}/{what}`.
async fn wallet_path(ctx: &Ctx, org: Option<&str>, wallet: Option<&str>, what: &str) -> Result<String, CliError> {
    let api = ctx.user()?;
    let org = org_or_active(&api, org).await?;
    Ok(format!("/v1/orgs/{}/wallets/{}/{what}", seg(&org), seg(wallet.unwrap_or("credits"))))
}

/// Runs `credits alerts`.
pub async fn alerts(ctx: &Ctx, a: AlertsArgs) -> Result<String, CliError> {
    let path = wallet_path(ctx, a.org.as_deref(), a.wallet.as_deref(), "alerts").await?;
    let r = ctx.user()?.put(&path, &json!({"low_balance": a.low_balance.0})).await?;
    if ctx.json {
        return Ok(json(&r));
    }
    let low = match r.get("low_balance") {
        Some(Value::Number(n)) => format!("below {n}"),
        _ => "off".into(),
    };
    Ok(pairs(&[
        ("wallet", format!("{} ({})", field(&r, "/kind"), field(&r, "/wallet_id"))),
        ("low-balance alert", low),
    ]))
}

/// Runs `credits auto-reload`: without a change it shows the settings; with one it merges the
/// flags into the current settings and saves them.
pub async fn auto_reload(ctx: &Ctx, a: AutoReloadArgs) -> Result<String, CliError> {
    let path = wallet_path(ctx, a.org.as_deref(), a.wallet.as_deref(), "auto-reload").await?;
    let api = ctx.user()?;
    let current = api.get(&path).await?;
    let changes = a.on || a.off || a.threshold.is_some() || a.amount.is_some() || a.monthly_max.is_some();
    let r = if changes {
        let num = |flag: Option<i64>, name: &str| flag.or_else(|| current.get(name).and_then(Value::as_i64));
        let enabled = if a.on || a.off { a.on } else { current["enabled"].as_bool().unwrap_or(false) };
        let (threshold, amount, monthly_max) =
            (num(a.threshold, "threshold"), num(a.amount, "amount"), num(a.monthly_max, "monthly_max"));
        // Never set: amount and monthly_max are 0 until someone sets them.
        if amount.unwrap_or(0) < 1 || monthly_max.unwrap_or(0) < 1 {
            if !enabled {
                return Ok(show(ctx, &current));
            }
            return Err(CliError::Input(
                "auto-reload has no amount or monthly maximum yet: give --threshold, --amount and --monthly-max".into(),
            ));
        }
        let body = json!({"enabled": enabled, "threshold": threshold.unwrap_or(0), "amount": amount,
                          "monthly_max": monthly_max});
        api.put(&path, &body).await?
    } else {
        current
    };
    Ok(show(ctx, &r))
}

/// Auto-reload settings as `key: value` lines (or JSON).
fn show(ctx: &Ctx, r: &Value) -> String {
    if ctx.json {
        return json(r);
    }
    let state = if r["enabled"].as_bool() == Some(true) { "on" } else { "off" };
    pairs(&[
        ("wallet", format!("{} ({})", field(r, "/kind"), field(r, "/wallet_id"))),
        ("auto-reload", state.into()),
        ("threshold", field(r, "/threshold")),
        ("amount", field(r, "/amount")),
        ("monthly max", field(r, "/monthly_max")),
        ("reloaded this month", field(r, "/reloaded_this_month")),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse() {
        assert_eq!(threshold("4000").map(|t| t.0), Ok(Some(4_000)));
        assert_eq!(threshold("0").map(|t| t.0), Ok(Some(0)));
        assert_eq!(threshold("none").map(|t| t.0), Ok(None));
        assert!(threshold("-1").is_err());
        assert!(threshold("lots").is_err());
    }
}

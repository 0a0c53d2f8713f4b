//! `roost usage`: what an organization spent, grouped.

use std::collections::HashMap;

use serde_json::Value;

use super::credits::org_or_active;
use super::ctx::{Api, Ctx, query, seg};
use super::error::CliError;
use super::output::{Table, field, items, json, pairs, text};

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
fn parse_time(s: &str) -> Result<String, String> {
    match roost_domain::time::parse_rfc3339(s) {
        Some(_) => Ok(s.to_string()),
        None => Err(format!("`{s}` is not an RFC 3339 time (e.g. 2030-01-01T00:00:00Z)")),
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
/// `id → name` from a list endpoint; empty when the list cannot be read (the table then shows ids only).
async fn names_of(api: &Api, path: &str, id: &str, name: &str) -> HashMap<String, String> {
    match api.get(path).await {
        Ok(r) => items(&r).iter().map(|v| (text(v, id).to_string(), field(v, name))).collect(),
        Err(_) => HashMap::new(),
    }
}
/// A 0–1 share as a percentage with one decimal.
fn percent(share: Option<&Value>) -> String {
    share.and_then(Value::as_f64).map_or_else(|| "-".into(), |s| format!("{:.1}%", s * 100.0))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn shares_are_percentages() {
        assert_eq!(percent(Some(&json!(1.0))), "100.0%");
        assert_eq!(percent(Some(&json!(0.3333))), "33.3%");
        assert_eq!(percent(None), "-");
    }
}

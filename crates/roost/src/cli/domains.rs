//! `roost domains …`: an org's claims on mail domains, proven by a DNS TXT record.

use clap::Subcommand;
use serde_json::{Value, json};

use super::ctx::{Ctx, seg};
use super::error::CliError;
use super::orgs::note_more;
use super::output::{Table, field, items, json, pairs};

/// Verified domains: people with a verified address there join the org (or see it suggested).
#[derive(Debug, Subcommand)]
pub enum DomainsCommand {
    /// Claim a domain; prints the DNS TXT record that proves you control it.
    Add {
        /// The domain, e.g. acme.example.
        domain: String,
        /// Organization id or name.
        #[arg(long)]
        org: String,
        /// What a verified address there does: auto_join (join at first sign-in) or suggest.
        #[arg(long, default_value = "auto_join", value_parser = ["auto_join", "suggest"])]
        mode: String,
    },
    /// Look the TXT record up now; the claim is verified when it carries the value.
    Verify {
        /// The domain claim id (dom_…) or the domain.
        id: String,
        /// Organization id or name.
        #[arg(long)]
        org: String,
    },
    /// List the org's domain claims.
    List {
        /// Organization id or name.
        #[arg(long)]
        org: String,
    },
    /// Remove a claim (members who joined through it stay).
    Remove {
        /// The domain claim id (dom_…) or the domain.
        id: String,
        /// Organization id or name.
        #[arg(long)]
        org: String,
    },
}

/// Runs a `domains` subcommand.
pub async fn run(ctx: &Ctx, cmd: DomainsCommand) -> Result<String, CliError> {
    let api = ctx.user()?;
    match cmd {
        DomainsCommand::Add { domain, org, mode } => {
            let org = api.org_id(&org).await?;
            let r =
                api.post(&format!("/v1/orgs/{}/domains", seg(&org)), &json!({"domain": domain, "mode": mode})).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            let mut out = claim_lines(&r);
            out.push_str(&format!(
                "\nPublish this DNS record, then run: roost domains verify {} --org {org}\n  {}.  TXT  \"{}\"\n",
                field(&r, "/id"),
                field(&r, "/verification/name"),
                field(&r, "/verification/value"),
            ));
            Ok(out)
        }
        DomainsCommand::Verify { id, org } => {
            let org = api.org_id(&org).await?;
            let id = domain_id(&api, &org, &id).await?;
            let r = api.post(&format!("/v1/orgs/{}/domains/{}/verify", seg(&org), seg(&id)), &json!({})).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(claim_lines(&r))
        }
        DomainsCommand::List { org } => {
            let org = api.org_id(&org).await?;
            let r = api.get(&format!("/v1/orgs/{}/domains?limit=500", seg(&org))).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            note_more(&r);
            let mut t = Table::new(&["ID", "DOMAIN", "MODE", "ROLE", "VERIFIED", "TXT RECORD"]);
            for d in items(&r) {
                t.row(vec![
                    field(d, "/id"),
                    field(d, "/domain"),
                    field(d, "/mode"),
                    field(d, "/role"),
                    verified(d),
                    format!("{} {}", field(d, "/verification/name"), field(d, "/verification/value")),
                ]);
            }
            Ok(t.render_or(&format!("no domains claimed by {org}")))
        }
        DomainsCommand::Remove { id, org } => {
            let org = api.org_id(&org).await?;
            let id = domain_id(&api, &org, &id).await?;
            api.delete(&format!("/v1/orgs/{}/domains/{}", seg(&org), seg(&id))).await?;
            if ctx.json {
                return Ok(String::new());
            }
            Ok(format!("removed {id} from {org}\n"))
        }
    }
}

/// The claim named by `arg`: an id as it is, or the org's claim on that domain.
async fn domain_id(api: &super::ctx::Api, org: &str, arg: &str) -> Result<String, CliError> {
    if arg.starts_with("dom_") {
        return Ok(arg.to_string());
    }
    let r = api.get(&format!("/v1/orgs/{}/domains?limit=500", seg(org))).await?;
    items(&r)
        .iter()
        .find(|d| field(d, "/domain").eq_ignore_ascii_case(arg.trim().trim_end_matches('.')))
        .map(|d| field(d, "/id"))
        .ok_or_else(|| CliError::Input(format!("{org} has no claim on `{arg}`")))
}

fn verified(d: &Value) -> String {
    match d.get("verified_at").and_then(Value::as_str) {
        Some(at) => format!("yes ({at})"),
        None => "no".into(),
    }
}

fn claim_lines(d: &Value) -> String {
    pairs(&[
        ("domain", format!("{} ({})", field(d, "/domain"), field(d, "/id"))),
        ("mode", field(d, "/mode")),
        ("role", field(d, "/role")),
        ("verified", verified(d)),
    ])
}

//! `roost webhooks …` and `roost events`: an organization's webhook endpoints and its events.

use clap::Subcommand;
use serde_json::json;

use super::ctx::{Ctx, query, seg};
use super::error::CliError;
use super::orgs::note_more;
use super::output::{Table, clean, field, items, json, pairs};

/// Webhook endpoints: create, list, deliveries, test, rotate, delete.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Create an endpoint; its signing secret is printed once.
    Create {
        /// Organization id or name.
        org: String,
        /// Where to POST events (http:// or https://).
        url: String,
        /// Event types to send (repeat, or comma-separated) [default: every type, `*`].
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// A note to recognise the endpoint by.
        #[arg(long)]
        description: Option<String>,
    },
    /// List an organization's endpoints (never their secrets).
    List {
        /// Organization id or name.
        org: String,
    },
    /// An endpoint's delivery attempts, newest first.
    Deliveries {
        /// The endpoint id (whk_…).
        id: String,
    },
    /// Send a `webhook.test` event to the endpoint now and show how it went.
    Test {
        /// The endpoint id (whk_…).
        id: String,
    },
    /// Give the endpoint a new secret; the old one keeps signing alongside for 24 hours.
    Rotate {
        /// The endpoint id (whk_…).
        id: String,
    },
    /// Delete an endpoint.
    Delete {
        /// The endpoint id (whk_…).
        id: String,
    },
}

/// `roost events ORG`: an organization's events, newest first.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Organization id or name.
    org: String,
    /// Only events of this type, e.g. credits.low_balance.
    #[arg(long = "type")]
    kind: Option<String>,
    /// At most this many events [server default: 50].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=500))]
    limit: Option<u32>,
    /// Continue from a previous page's next cursor.
    #[arg(long)]
    cursor: Option<String>,
}

const SHOWN_ONCE: &str = "warning: store this secret now; it will not be shown again";

/// Runs a `webhooks` subcommand.
pub async fn run(ctx: &Ctx, cmd: WebhooksCommand) -> Result<String, CliError> {
    let api = ctx.user()?;
    match cmd {
        WebhooksCommand::Create { org, url, events, description } => {
            let org = api.org_id(&org).await?;
            let events = if events.is_empty() { vec!["*".to_string()] } else { events };
            let mut body = json!({"url": url, "events": events});
            if let Some(d) = description {
                body["description"] = d.into();
            }
            let r = api.post(&format!("/v1/orgs/{}/webhooks", seg(&org)), &body).await?;
            eprintln!("{SHOWN_ONCE}");
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(pairs(&[
                ("created webhook", field(&r, "/id")),
                ("url", field(&r, "/url")),
                ("events", list(&r["events"])),
                ("secret", field(&r, "/secret")),
            ]))
        }
        WebhooksCommand::List { org } => {
            let org = api.org_id(&org).await?;
            let r = api.get(&format!("/v1/orgs/{}/webhooks?limit=500", seg(&org))).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            note_more(&r);
            let mut t = Table::new(&["ID", "URL", "EVENTS", "ENABLED", "DESCRIPTION"]);
            for w in items(&r) {
                t.row(vec![
                    field(w, "/id"),
                    field(w, "/url"),
                    list(&w["events"]),
                    field(w, "/enabled"),
                    field(w, "/description"),
                ]);
            }
            Ok(t.render_or("no webhooks"))
        }
        WebhooksCommand::Deliveries { id } => {
            let r = api.get(&format!("/v1/webhooks/{}/deliveries?limit=500", seg(&id))).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            note_more(&r);
            let mut t = Table::new(&["AT", "EVENT", "ATTEMPT", "STATUS", "MS", "ERROR"]);
            for d in items(&r) {
                t.row(vec![
                    field(d, "/at"),
                    field(d, "/event_id"),
                    field(d, "/attempt"),
                    field(d, "/status_code"),
                    field(d, "/duration_ms"),
                    field(d, "/error"),
                ]);
            }
            Ok(t.render_or("no deliveries yet"))
        }
        WebhooksCommand::Test { id } => {
            let r = api.post(&format!("/v1/webhooks/{}/test", seg(&id)), &json!({})).await?;
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(pairs(&[
                ("sent", field(&r, "/event_id")),
                ("status", field(&r, "/status_code")),
                ("took ms", field(&r, "/duration_ms")),
                ("error", field(&r, "/error")),
            ]))
        }
        WebhooksCommand::Rotate { id } => {
            let r = api.post(&format!("/v1/webhooks/{}/rotate-secret", seg(&id)), &json!({})).await?;
            eprintln!("{SHOWN_ONCE}");
            if ctx.json {
                return Ok(json(&r));
            }
            Ok(pairs(&[
                ("rotated webhook", id),
                ("old secret signs until", field(&r, "/old_secret_valid_until")),
                ("secret", field(&r, "/secret")),
            ]))
        }
        WebhooksCommand::Delete { id } => {
            api.delete(&format!("/v1/webhooks/{}", seg(&id))).await?;
            if ctx.json {
                return Ok(String::new());
            }
            Ok(format!("deleted {id}\n"))
        }
    }
}

/// Shows the events.
pub async fn events(ctx: &Ctx, args: EventsArgs) -> Result<String, CliError> {
    let api = ctx.user()?;
    let org = api.org_id(&args.org).await?;
    let q = query(&[("type", args.kind), ("limit", args.limit.map(|n| n.to_string())), ("cursor", args.cursor)]);
    let r = api.get(&format!("/v1/orgs/{}/events{q}", seg(&org))).await?;
    if ctx.json {
        return Ok(json(&r));
    }
    if let Some(cursor) = r.get("next_cursor").and_then(serde_json::Value::as_str) {
        eprintln!("note: there are more events; continue with --cursor {}", clean(cursor));
    }
    let mut t = Table::new(&["AT", "TYPE", "ID", "WORKSPACE", "DATA"]);
    for e in items(&r) {
        t.row(vec![
            field(e, "/created_at"),
            field(e, "/type"),
            field(e, "/id"),
            field(e, "/workspace_id"),
            clean(&e["data"].to_string()),
        ]);
    }
    Ok(t.render_or("no events"))
}

fn list(v: &serde_json::Value) -> String {
    let names: Vec<String> = v.as_array().map_or_else(Vec::new, |a| a.iter().map(|e| field(e, "")).collect());
    names.join(",")
}

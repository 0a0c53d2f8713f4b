//! `roost state …`, `roost history …` and `roost ws export`: a workspace's records.

use std::io::{Read, Write};

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::ctx::{Api, Ctx, query, seg};
use super::error::CliError;
use super::orgs::note_more;
use super::output::{Table, field, items, pairs};

/// State: JSON documents by key in a workspace.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Print the document stored under a key (its version goes to stderr).
    Get {
        /// The key: 1–200 of `A-Z a-z 0-9 . : / -`.
        key: String,
        /// The workspace (id, name or ORG/WORKSPACE) [default: your active workspace].
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Store a JSON document under a key.
    Put {
        key: String,
        /// The document (JSON text), or `-` to read it from stdin.
        value: String,
        /// Write only over this version (412 `version_conflict` otherwise).
        #[arg(long, conflicts_with = "create_only")]
        if_version: Option<i64>,
        /// Write only if there is no document under the key yet.
        #[arg(long)]
        create_only: bool,
        #[arg(long)]
        workspace: Option<String>,
    },
    /// List the keys (with versions and sizes), optionally under a prefix.
    List {
        #[arg(long)]
        prefix: Option<String>,
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Delete the document under a key.
    Delete {
        key: String,
        /// Delete only this version.
        #[arg(long)]
        if_version: Option<i64>,
        #[arg(long)]
        workspace: Option<String>,
    },
}

/// History: a workspace's append-only stream of entries.
#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Append an entry.
    Append {
        /// Its kind, e.g. `conversation.turn`.
        kind: String,
        /// Its data (JSON text), or `-` to read it from stdin.
        data: String,
        /// What it is about (a conversation id …).
        #[arg(long = "ref")]
        ref_: Option<String>,
        /// Makes a retry safe [default: a fresh key].
        #[arg(long)]
        idempotency_key: Option<String>,
        #[arg(long)]
        workspace: Option<String>,
    },
    /// List entries, newest first.
    List {
        #[arg(long)]
        kind: Option<String>,
        #[arg(long = "ref")]
        ref_: Option<String>,
        /// A user id (usr_…) or API key id (key_…).
        #[arg(long)]
        actor: Option<String>,
        /// RFC 3339, inclusive.
        #[arg(long)]
        from: Option<String>,
        /// RFC 3339, exclusive.
        #[arg(long)]
        to: Option<String>,
        /// At most this many (1–500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        workspace: Option<String>,
    },
}

/// Reads JSON text from the argument, or from stdin for `-`.
fn json_arg(arg: &str) -> Result<Value, CliError> {
    let text = if arg == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| CliError::Input(format!("reading stdin: {e}")))?;
        s
    } else {
        arg.to_string()
    };
    serde_json::from_str(&text).map_err(|e| CliError::Input(format!("not valid JSON: {e}")))
}

fn state_path(ws: &str, key: &str) -> String {
    format!("/v1/workspaces/{}/state/{}", seg(ws), seg(key))
}

/// Sends a request, answering the whole response (headers too) or the error.
async fn send(
    api: &Api,
    headers: &[(&str, String)],
    m: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<crate::Response, CliError> {
    let mut c = api.client().clone();
    for (n, v) in headers {
        c = c.with_header(n, v);
    }
    let r = c.send(m, path, body).await.map_err(|e| CliError::transport(&e))?;
    if r.is_success() { Ok(r) } else { Err(CliError::from_response(&r)) }
}

/// The version in an `ETag`.
fn version_of(r: &crate::Response) -> String {
    r.etag.as_deref().map(|e| e.trim_matches('"').to_string()).unwrap_or_default()
}

/// Runs a `state` subcommand.
pub async fn run_state(ctx: &Ctx, cmd: StateCommand) -> Result<String, CliError> {
    let api = ctx.user()?;
    match cmd {
        StateCommand::Get { key, workspace } => {
            let ws = api.workspace_or_current(workspace.as_deref()).await?;
            let r = send(&api, &[], Method::GET, &state_path(&ws, &key), None).await?;
            if ctx.json {
                return Ok(format!(
                    "{}\n",
                    json!({"key": key, "version": version_of(&r).parse::<i64>().ok(), "doc": r.body})
                ));
            }
            eprintln!("version {}", version_of(&r));
            Ok(format!("{}\n", serde_json::to_string_pretty(&r.body).unwrap_or_default()))
        }
        StateCommand::Put { key, value, if_version, create_only, workspace } => {
            let ws = api.workspace_or_current(workspace.as_deref()).await?;
            let doc = json_arg(&value)?;
            let mut headers = Vec::new();
            if let Some(v) = if_version {
                headers.push(("If-Match", format!("\"{v}\"")));
            }
            if create_only {
                headers.push(("If-None-Match", "*".to_string()));
            }
            let r = send(&api, &headers, Method::PUT, &state_path(&ws, &key), Some(&doc)).await?;
            if ctx.json {
                return Ok(format!("{}\n", r.body));
            }
            Ok(pairs(&[("stored", field(&r.body, "/key")), ("version", field(&r.body, "/version"))]))
        }
        StateCommand::List { prefix, workspace } => {
            let ws = api.workspace_or_current(workspace.as_deref()).await?;
            let q = query(&[("prefix", prefix), ("limit", Some("500".into()))]);
            let r = api.get(&format!("/v1/workspaces/{}/state{q}", seg(&ws))).await?;
            if ctx.json {
                return Ok(format!("{r}\n"));
            }
            note_more(&r);
            let mut t = Table::new(&["KEY", "VERSION", "SIZE", "UPDATED"]);
            for x in items(&r) {
                t.row(vec![field(x, "/key"), field(x, "/version"), field(x, "/size"), field(x, "/updated_at")]);
            }
            Ok(t.render_or("no state in this workspace"))
        }
        StateCommand::Delete { key, if_version, workspace } => {
            let ws = api.workspace_or_current(workspace.as_deref()).await?;
            let headers: Vec<(&str, String)> =
                if_version.map(|v| ("If-Match", format!("\"{v}\""))).into_iter().collect();
            send(&api, &headers, Method::DELETE, &state_path(&ws, &key), None).await?;
            Ok(if ctx.json { String::new() } else { format!("deleted {key}\n") })
        }
    }
}

/// Runs a `history` subcommand.
pub async fn run_history(ctx: &Ctx, cmd: HistoryCommand) -> Result<String, CliError> {
    let api = ctx.user()?;
    match cmd {
        HistoryCommand::Append { kind, data, ref_, idempotency_key, workspace } => {
            let ws = api.workspace_or_current(workspace.as_deref()).await?;
            let data = json_arg(&data)?;
            let key = idempotency_key.unwrap_or_else(|| roost_domain::tokens::generate("cli_"));
            let body = json!({"kind": kind, "data": data, "ref": ref_});
            let headers = [("Idempotency-Key", key)];
            let r = send(&api, &headers, Method::POST, &format!("/v1/workspaces/{}/history", seg(&ws)), Some(&body))
                .await?;
            if ctx.json {
                return Ok(format!("{}\n", r.body));
            }
            Ok(pairs(&[
                ("appended", field(&r.body, "/id")),
                ("kind", field(&r.body, "/kind")),
                ("at", field(&r.body, "/at")),
            ]))
        }
        HistoryCommand::List { kind, ref_, actor, from, to, limit, workspace } => {
            let ws = api.workspace_or_current(workspace.as_deref()).await?;
            let q = query(&[
                ("kind", kind),
                ("ref", ref_),
                ("actor", actor),
                ("from", from),
                ("to", to),
                ("limit", Some(limit.to_string())),
            ]);
            let r = api.get(&format!("/v1/workspaces/{}/history{q}", seg(&ws))).await?;
            if ctx.json {
                return Ok(format!("{r}\n"));
            }
            note_more(&r);
            let mut t = Table::new(&["ID", "AT", "KIND", "REF", "ACTOR", "DATA"]);
            for x in items(&r) {
                let mut data = x["data"].to_string();
                if data.chars().count() > 60 {
                    data = format!("{}…", data.chars().take(59).collect::<String>());
                }
                t.row(vec![
                    field(x, "/id"),
                    field(x, "/at"),
                    field(x, "/kind"),
                    field(x, "/ref"),
                    field(x, "/actor/id"),
                    data,
                ]);
            }
            Ok(t.render_or("no history in this workspace"))
        }
    }
}

/// `roost ws export`: streams the workspace's records as JSON lines to `output` (or stdout).
pub async fn export(ctx: &Ctx, ws: Option<&str>, output: Option<&std::path::Path>) -> Result<String, CliError> {
    let api = ctx.user()?;
    let ws = api.workspace_or_current(ws).await?;
    let mut res = api
        .client()
        .get_stream(&format!("/v1/workspaces/{}/export", seg(&ws)))
        .await
        .map_err(|e| CliError::transport(&e))?;
    if !res.status().is_success() {
        let status = res.status().as_u16();
        let body = res.json::<Value>().await.unwrap_or(Value::Null);
        let content_type = String::new();
        return Err(CliError::from_response(&crate::Response { status, body, content_type, etag: None }));
    }
    let mut out: Box<dyn Write> = match output {
        Some(p) => Box::new(std::fs::File::create(p).map_err(|e| CliError::Input(format!("{}: {e}", p.display())))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut lines = 0u64;
    loop {
        let chunk = res.chunk().await.map_err(|e| CliError::Transport(format!("the export broke off: {e}")))?;
        let Some(chunk) = chunk else { break };
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        out.write_all(&chunk).map_err(|e| CliError::Input(format!("writing the export: {e}")))?;
    }
    out.flush().map_err(|e| CliError::Input(format!("writing the export: {e}")))?;
    Ok(match output {
        Some(p) => format!("exported {lines} lines to {}\n", p.display()),
        None => String::new(),
    })
}

//! The export of a workspace's records as JSON lines, streamed: rows are read in keyset-paged
//! chunks as the client takes the body, so memory stays bounded whatever the workspace holds.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use roost_domain::Permission;
use roost_domain::time::to_rfc3339;
use roost_store::{HistoryEntry, StateDoc, Store};
use serde_json::json;
use tokio::sync::mpsc;

use crate::AppState;
use crate::api::ws_scope;
use crate::auth::Caller;
use crate::error::{ApiResult, Problem};

/// The media type of the export.
pub const JSON_LINES: &str = "application/x-ndjson";

/// Rows read per chunk. With documents of at most 256 KiB, a chunk holds at most 16 MiB.
const CHUNK: i64 = 64;

/// Streams the workspace's state and history as JSON lines: a first line
/// `{"type":"workspace",…}`, then one `{"type":"state",key,version,size,updated_at,doc}` per
/// document by key, then one `{"type":"history",id,kind,ref,actor,at,data}` per entry, oldest
/// first. Workspace admins.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/export", tag = "records", security(("bearer" = [])),
    responses((status = 200, description = "JSON lines: the workspace, its state documents, its history",
               content_type = "application/x-ndjson", body = String),
              (status = 404, description = "not_found", body = Problem)))]
pub(super) async fn export(State(st): State<AppState>, caller: Caller, Path(ws): Path<String>) -> ApiResult<Response> {
    let s = ws_scope(&st, &caller, &ws, Permission::ManageWorkspace).await?;
    // Two chunks in flight at most: the producer waits while the client is slow.
    let (tx, rx) = mpsc::channel(2);
    let first = json!({
        "type": "workspace",
        "workspace_id": s.workspace_id,
        "org_id": s.org_id,
        "exported_at": to_rfc3339(st.clock.now_ms()),
    });
    tokio::spawn(produce(st.store.clone(), s.org_id, s.workspace_id, format!("{first}\n"), tx));
    let mut res = Response::new(Body::new(Lines(rx)));
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_LINES));
    Ok(res)
}

/// Why the export stopped early: the body ends in an error, so the client sees a broken transfer
/// rather than a short file that looks whole.
#[derive(Debug, thiserror::Error)]
#[error("the export stopped: {0}")]
struct Stopped(String);

/// Reads the records chunk by chunk and sends them as lines, until done, failed, or the client
/// went away (the receiver dropped).
async fn produce(store: Store, org: String, ws: String, first: String, tx: mpsc::Sender<Result<Bytes, Stopped>>) {
    if tx.send(Ok(Bytes::from(first))).await.is_err() {
        return;
    }
    let mut after = String::new();
    loop {
        let docs = match store.state_export_chunk(&org, &ws, &after, CHUNK).await {
            Ok(d) => d,
            Err(e) => return fail(&tx, e).await,
        };
        let Some(last) = docs.last() else { break };
        after = last.key.clone();
        let n = docs.len();
        if tx.send(Ok(Bytes::from(docs.iter().map(state_line).collect::<String>()))).await.is_err() {
            return;
        }
        if i64::try_from(n).unwrap_or(0) < CHUNK {
            break;
        }
    }
    let mut after = String::new();
    loop {
        let entries = match store.history_export_chunk(&org, &ws, &after, CHUNK * 8).await {
            Ok(e) => e,
            Err(e) => return fail(&tx, e).await,
        };
        let Some(last) = entries.last() else { break };
        after = last.id.clone();
        let n = entries.len();
        if tx.send(Ok(Bytes::from(entries.iter().map(history_line).collect::<String>()))).await.is_err() {
            return;
        }
        if i64::try_from(n).unwrap_or(0) < CHUNK * 8 {
            break;
        }
    }
}

async fn fail(tx: &mpsc::Sender<Result<Bytes, Stopped>>, e: roost_store::StoreError) {
    tracing::warn!(error = %e, "workspace export failed part way");
    let _ = tx.send(Err(Stopped(e.to_string()))).await;
}

/// A JSON string literal.
fn lit(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// One state line. The document is spliced in as stored: valid, minified JSON (one line).
fn state_line(d: &StateDoc) -> String {
    format!(
        "{{\"type\":\"state\",\"key\":{},\"version\":{},\"size\":{},\"updated_at\":{},\"doc\":{}}}\n",
        lit(&d.key),
        d.version,
        d.size,
        lit(&to_rfc3339(d.updated_at)),
        d.doc
    )
}

/// One history line; `data` is spliced in as stored (valid, compact JSON).
fn history_line(e: &HistoryEntry) -> String {
    format!(
        "{{\"type\":\"history\",\"id\":{},\"kind\":{},\"ref\":{},\"actor\":{{\"type\":{},\"id\":{}}},\"at\":{},\"data\":{}}}\n",
        lit(&e.id),
        lit(&e.kind),
        e.ref_.as_deref().map_or_else(|| "null".to_string(), lit),
        lit(e.actor.kind.as_str()),
        lit(&e.actor.id),
        lit(&to_rfc3339(e.at)),
        e.data
    )
}

/// The response body: the chunks the producer sends, in order.
struct Lines(mpsc::Receiver<Result<Bytes, Stopped>>);

impl HttpBody for Lines {
    type Data = Bytes;
    type Error = Stopped;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Stopped>>> {
        self.0.poll_recv(cx).map(|o| o.map(|r| r.map(http_body::Frame::data)))
    }
}

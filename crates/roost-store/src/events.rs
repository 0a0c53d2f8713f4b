//! Events (API.md "Events and webhooks"): written in the transaction of their cause — the ledger's
//! batches write theirs with the rest of the batch ([`crate::LedgerWrites::events`]) — and read
//! back newest first.

use roost_domain::ledger::EventType;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::scope::Scope;
use crate::{EventRow, Page, Result, Store, finish_page, page};

pub(crate) fn event_from(r: &AnyRow) -> Result<EventRow, sqlx::Error> {
    let kind: String = r.try_get("type")?;
    Ok(EventRow {
        org_id: r.try_get("org_id")?,
        id: r.try_get("id")?,
        kind: EventType::parse(&kind)
            .ok_or_else(|| sqlx::Error::Decode(format!("events.type: unknown value {kind:?}").into()))?,
        workspace_id: r.try_get("workspace_id")?,
        data: r.try_get("data")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// The org's events, newest first, optionally of one type. `cursor` is the last id of the page
    /// before (the caller checks that it is an event id).
    pub async fn list_events(
        &self,
        org_id: &str,
        kind: Option<EventType>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<EventRow>> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let (fetch, _) = page(limit, cursor);
        let rows = sqlx::query(
            "SELECT org_id, id, type, workspace_id, data, created_at FROM events \
             WHERE org_id = $1 AND ($2 = '' OR id < $2) AND ($3 = '' OR type = $3) ORDER BY id DESC LIMIT $4",
        )
        .bind(org_id)
        .bind(cursor.unwrap_or(""))
        .bind(kind.map_or("", EventType::as_str))
        .bind(fetch)
        .fetch_all(&mut *c)
        .await?;
        c.done().await?;
        let items = rows.iter().map(event_from).collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, fetch, |e| e.id.clone()))
    }
}

/// Writes one event inside the caller's transaction: for changes outside the ledger (members,
/// keys, plans, webhooks), so the event commits or rolls back with its cause.
pub(crate) async fn insert_event(
    tx: &mut sqlx::AnyConnection,
    org_id: &str,
    kind: EventType,
    workspace_id: Option<&str>,
    data: serde_json::Value,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO events (org_id, id, type, workspace_id, data, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(org_id)
    .bind(roost_domain::IdKind::Event.generate())
    .bind(kind.as_str())
    .bind(workspace_id)
    .bind(data.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

//! Workspace records: JSON state by key (versioned, with conditional writes and a per-workspace
//! byte quota) and an append-only history, both scoped to one workspace of one org.
//!
//! Every function here runs in a transaction scoped to its org ([`Store::write_in`],
//! [`Store::scoped`]): on PostgreSQL the tables' row-level security policies let it see and write
//! only that org's rows. Writes of state serialise per workspace on its `workspace_records_usage` row: the
//! precondition, the quota and the new version are all decided under that row's lock, so they are
//! exact under any number of concurrent writers, in one process or many.

use roost_domain::Catalog;
use roost_domain::records::{Precondition, history_cutoff, upper_bound};
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::audit::{Entry, record};
use crate::plans::plan_in_tx;
use crate::scope::{Cross, Scope};
use crate::{Actor, Ctx, Limit, Page, Result, Rule, Store, StoreError, finish_page, page};

/// A state document and what is known of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDoc {
    pub key: String,
    pub version: i64,
    /// Bytes of the (minified) document.
    pub size: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// The document, minified JSON text.
    pub doc: String,
}

/// A state document without its body, as lists show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateMeta {
    pub key: String,
    pub version: i64,
    pub size: i64,
    pub updated_at: i64,
}

/// One history entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub id: String,
    pub org_id: String,
    pub workspace_id: String,
    pub kind: String,
    pub ref_: Option<String>,
    /// Minified JSON text.
    pub data: String,
    pub actor: Actor,
    /// Unix ms.
    pub at: i64,
}

/// An entry to append, with the idempotency key it was sent with and the fingerprint of the
/// request (a retry with the same key must ask for the same thing).
#[derive(Debug, Clone)]
pub struct NewHistory {
    pub entry: HistoryEntry,
    pub idem_key: String,
    pub idem_fp: String,
}

/// Filters of a history listing; `None` means any. `from` is inclusive, `to` exclusive (Unix ms).
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub kind: Option<String>,
    pub ref_: Option<String>,
    pub actor_id: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// How many history entries one purge statement removes at most (so that a purge of a large
/// history does not hold one huge transaction).
const PURGE_CHUNK: i64 = 10_000;

/// Workspaces with expired history looked at per round of the retention job.
const RETENTION_BATCH: i64 = 1_000;

impl Store {
    /// A workspace's state document.
    pub async fn state_get(&self, org_id: &str, ws_id: &str, key: &str) -> Result<Option<StateDoc>> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let row = sqlx::query(
            "SELECT key, version, size, updated_at, doc FROM workspace_state \
             WHERE org_id = $1 AND workspace_id = $2 AND key = $3",
        )
        .bind(org_id)
        .bind(ws_id)
        .bind(key)
        .fetch_optional(&mut *c)
        .await?;
        c.done().await?;
        Ok(row
            .map(|r| -> Result<StateDoc, sqlx::Error> {
                Ok(StateDoc {
                    key: r.try_get("key")?,
                    version: r.try_get("version")?,
                    size: r.try_get("size")?,
                    updated_at: r.try_get("updated_at")?,
                    doc: r.try_get("doc")?,
                })
            })
            .transpose()?)
    }

    /// Writes a state document (minified JSON) if `pre` holds for its current version, within the
    /// org plan's `state_bytes` for the workspace (each document counts its key and its bytes).
    /// Answers the new version: [`Rule::VersionConflict`] when `pre` does not hold,
    /// [`Limit::StateBytes`] over the quota, `NotFound` when the workspace is gone.
    #[expect(clippy::too_many_arguments, reason = "one write, its scope, its condition and its author")]
    pub async fn state_put(
        &self,
        org_id: &str,
        ws_id: &str,
        key: &str,
        doc: &str,
        pre: Precondition,
        catalog: &Catalog,
        author: &str,
        now: i64,
    ) -> Result<StateMeta> {
        let mut tx = self.write_in(Scope::Org(org_id)).await?;
        let (used, seq) = self.lock_usage(&mut tx, org_id, ws_id, true).await?.ok_or(StoreError::NotFound)?;
        let current = current_version(&mut tx, org_id, ws_id, key).await?;
        if !pre.holds(current.map(|c| c.0)) {
            return Err(Rule::VersionConflict.into());
        }
        let size = len_i64(doc.len());
        let old = current.map_or(0, |(_, s)| s + len_i64(key.len()));
        let delta = size + len_i64(key.len()) - old;
        if delta > 0 {
            let quota = plan_in_tx(&mut tx, org_id, catalog).await?.state_bytes;
            if quota.is_some_and(|q| used.saturating_add(delta) > i64::try_from(q).unwrap_or(i64::MAX)) {
                return Err(StoreError::Limit(Limit::StateBytes));
            }
        }
        let version = seq + 1;
        sqlx::query(
            "UPDATE workspace_records_usage SET state_bytes = state_bytes + $3, version_seq = $4 \
             WHERE org_id = $1 AND workspace_id = $2",
        )
        .bind(org_id)
        .bind(ws_id)
        .bind(delta)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO workspace_state (org_id, workspace_id, key, version, doc, size, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (org_id, workspace_id, key) DO UPDATE SET \
             version = excluded.version, doc = excluded.doc, size = excluded.size, \
             updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(org_id)
        .bind(ws_id)
        .bind(key)
        .bind(version)
        .bind(doc)
        .bind(size)
        .bind(now)
        .bind(author)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(StateMeta { key: key.to_string(), version, size, updated_at: now })
    }

    /// Deletes a state document if `pre` holds: `NotFound` when there is none (unconditionally
    /// asked), [`Rule::VersionConflict`] when a condition does not hold.
    pub async fn state_delete(&self, org_id: &str, ws_id: &str, key: &str, pre: Precondition) -> Result<()> {
        let mut tx = self.write_in(Scope::Org(org_id)).await?;
        if self.lock_usage(&mut tx, org_id, ws_id, false).await?.is_none() {
            return Err(if pre == Precondition::Any { StoreError::NotFound } else { Rule::VersionConflict.into() });
        }
        let current = current_version(&mut tx, org_id, ws_id, key).await?;
        match current {
            None if pre == Precondition::Any => return Err(StoreError::NotFound),
            _ if !pre.holds(current.map(|c| c.0)) => return Err(Rule::VersionConflict.into()),
            _ => {}
        }
        let freed = current.map_or(0, |(_, s)| s + len_i64(key.len()));
        sqlx::query("DELETE FROM workspace_state WHERE org_id = $1 AND workspace_id = $2 AND key = $3")
            .bind(org_id)
            .bind(ws_id)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE workspace_records_usage SET state_bytes = state_bytes - $3 WHERE org_id = $1 AND workspace_id = $2",
        )
        .bind(org_id)
        .bind(ws_id)
        .bind(freed)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The workspace's state documents whose keys start with `prefix`, by key.
    pub async fn state_list(
        &self,
        org_id: &str,
        ws_id: &str,
        prefix: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<StateMeta>> {
        let (fetch, after) = page(limit, cursor);
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let rows = sqlx::query(
            "SELECT key, version, size, updated_at FROM workspace_state \
             WHERE org_id = $1 AND workspace_id = $2 AND key >= $3 AND key < $4 AND key > $5 ORDER BY key LIMIT $6",
        )
        .bind(org_id)
        .bind(ws_id)
        .bind(prefix)
        .bind(upper_bound(prefix))
        .bind(after)
        .bind(fetch)
        .fetch_all(&mut *c)
        .await?;
        c.done().await?;
        let items = rows.iter().map(meta_from).collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, fetch, |m| m.key.clone()))
    }

    /// The bytes of state a workspace keeps now, as its quota counts them.
    pub async fn state_usage(&self, org_id: &str, ws_id: &str) -> Result<i64> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let used: Option<i64> = sqlx::query_scalar(
            "SELECT state_bytes FROM workspace_records_usage WHERE org_id = $1 AND workspace_id = $2",
        )
        .bind(org_id)
        .bind(ws_id)
        .fetch_optional(&mut *c)
        .await?;
        c.done().await?;
        Ok(used.unwrap_or(0))
    }

    /// Locks the workspace's usage row and answers `(state_bytes, version_seq)`; with `create`,
    /// makes the row first if the workspace exists and has none. `None`: no such row (the
    /// workspace is gone, or without `create`, never had state).
    async fn lock_usage(
        &self,
        tx: &mut AnyConnection,
        org_id: &str,
        ws_id: &str,
        create: bool,
    ) -> Result<Option<(i64, i64)>> {
        let sql = format!(
            "SELECT state_bytes, version_seq FROM workspace_records_usage WHERE org_id = $1 AND workspace_id = $2{}",
            self.dialect.row_lock()
        );
        let select = || sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(sql.clone())).bind(org_id).bind(ws_id);
        if let Some(found) = select().fetch_optional(&mut *tx).await? {
            return Ok(Some(found));
        }
        if !create {
            return Ok(None);
        }
        // The workspace row is share-locked while the usage row is made: a concurrent delete of the
        // workspace either waits for this transaction (and then deletes what it wrote) or has
        // already removed the workspace (and nothing is made).
        let made = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO workspace_records_usage (org_id, workspace_id, state_bytes, version_seq) \
             SELECT org_id, id, 0, 0 FROM workspaces WHERE org_id = $1 AND id = $2{} \
             ON CONFLICT (org_id, workspace_id) DO NOTHING",
            self.key_share()
        )))
        .bind(org_id)
        .bind(ws_id)
        .execute(&mut *tx)
        .await?;
        if made.rows_affected() == 0 && !self.workspace_live(tx, org_id, ws_id).await? {
            return Ok(None);
        }
        Ok(select().fetch_optional(&mut *tx).await?)
    }

    /// Whether the workspace still exists (as this transaction sees it).
    async fn workspace_live(&self, tx: &mut AnyConnection, org_id: &str, ws_id: &str) -> Result<bool> {
        let found: Option<String> = sqlx::query_scalar("SELECT id FROM workspaces WHERE org_id = $1 AND id = $2")
            .bind(org_id)
            .bind(ws_id)
            .fetch_optional(&mut *tx)
            .await?;
        Ok(found.is_some())
    }

    /// The clause that keeps a selected workspace row from being deleted until the transaction
    /// ends (`FOR KEY SHARE` on PostgreSQL; SQLite's one writer already excludes the delete).
    fn key_share(&self) -> &'static str {
        if self.dialect.single_writer() { "" } else { " FOR KEY SHARE" }
    }

    /// Appends a history entry, once per idempotency key: a retry with the same key and the same
    /// fingerprint answers the first entry (`true`: replayed); with another fingerprint,
    /// [`Rule::IdempotencyConflict`]. `NotFound` when the workspace is gone.
    pub async fn history_append(&self, new: &NewHistory) -> Result<(HistoryEntry, bool)> {
        let e = &new.entry;
        let mut tx = self.write_in(Scope::Org(&e.org_id)).await?;
        let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO workspace_history (org_id, workspace_id, id, kind, ref, data, actor_type, actor_id, at, idem_key, idem_fp) \
             SELECT org_id, id, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM workspaces WHERE org_id = $1 AND id = $2{} \
             ON CONFLICT (org_id, workspace_id, idem_key) DO NOTHING",
            self.key_share()
        )))
        .bind(&e.org_id)
        .bind(&e.workspace_id)
        .bind(&e.id)
        .bind(&e.kind)
        .bind(e.ref_.as_deref())
        .bind(&e.data)
        .bind(e.actor.kind.as_str())
        .bind(&e.actor.id)
        .bind(e.at)
        .bind(&new.idem_key)
        .bind(&new.idem_fp)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 1 {
            tx.commit().await?;
            return Ok((e.clone(), false));
        }
        let row = sqlx::query(concat!(
            "SELECT org_id, workspace_id, id, kind, ref, data, actor_type, actor_id, at, idem_fp FROM workspace_history",
            " WHERE org_id = $1 AND workspace_id = $2 AND idem_key = $3"
        ))
        .bind(&e.org_id)
        .bind(&e.workspace_id)
        .bind(&new.idem_key)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let row = row.ok_or(StoreError::NotFound)?;
        let fp: String = row.try_get("idem_fp")?;
        if fp != new.idem_fp {
            return Err(Rule::IdempotencyConflict.into());
        }
        Ok((entry_from(&row)?, true))
    }

    /// The workspace's history, newest first, filtered.
    pub async fn history_list(
        &self,
        org_id: &str,
        ws_id: &str,
        f: &HistoryFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<HistoryEntry>> {
        let (fetch, _) = page(limit, cursor);
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let rows = sqlx::query(concat!(
            "SELECT org_id, workspace_id, id, kind, ref, data, actor_type, actor_id, at FROM workspace_history",
            " WHERE org_id = $1 AND workspace_id = $2 AND ($3 = '' OR id < $3) AND ($4 = '' OR kind = $4)",
            " AND ($5 = '' OR ref = $5) AND ($6 = '' OR actor_id = $6) AND at >= $7 AND at < $8",
            " ORDER BY id DESC LIMIT $9"
        ))
        .bind(org_id)
        .bind(ws_id)
        .bind(cursor.unwrap_or(""))
        .bind(f.kind.as_deref().unwrap_or(""))
        .bind(f.ref_.as_deref().unwrap_or(""))
        .bind(f.actor_id.as_deref().unwrap_or(""))
        .bind(f.from.unwrap_or(i64::MIN))
        .bind(f.to.unwrap_or(i64::MAX))
        .bind(fetch)
        .fetch_all(&mut *c)
        .await?;
        c.done().await?;
        let items = rows.iter().map(entry_from).collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, fetch, |e| e.id.clone()))
    }

    /// Removes the workspace's history entries from before `before` (Unix ms), audited as
    /// `history.deleted`; answers how many went.
    pub async fn history_delete_before(&self, org_id: &str, ws_id: &str, before: i64, ctx: &Ctx) -> Result<u64> {
        let mut tx = self.write_in(Scope::Org(org_id)).await?;
        // Audited: the org lock first, as every writer of its audit chain takes it.
        self.lock_org(&mut tx, org_id).await?;
        if !self.workspace_live(&mut tx, org_id, ws_id).await? {
            return Err(StoreError::NotFound);
        }
        let gone = sqlx::query("DELETE FROM workspace_history WHERE org_id = $1 AND workspace_id = $2 AND at < $3")
            .bind(org_id)
            .bind(ws_id)
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let e = Entry {
            org_id,
            action: "history.deleted",
            workspace_id: Some(ws_id),
            target: Some(("workspace", ws_id)),
            detail: json!({"before": roost_domain::time::to_rfc3339(before), "deleted": gone}),
        };
        record(&mut tx, ctx, e).await?;
        tx.commit().await?;
        Ok(gone)
    }

    /// One round of history retention: removes, in each org's own scope, the entries older than
    /// the org plan's `history_days` keeps at `now`. Answers how many entries went.
    pub async fn purge_expired_history(&self, now: i64, catalog: &Catalog) -> Result<u64> {
        let cutoffs: serde_json::Map<String, serde_json::Value> = catalog
            .all()
            .iter()
            .filter_map(|p| p.history_days.map(|d| (p.id.clone(), history_cutoff(now, d).into())))
            .collect();
        if cutoffs.is_empty() {
            return Ok(0);
        }
        let cutoffs = serde_json::Value::Object(cutoffs).to_string();
        // The one look across orgs (a SECURITY DEFINER function on PostgreSQL); each purge then runs
        // in its org's own scope.
        let due: Vec<(String, String, i64)> = sqlx::query_as(self.cross(Cross::HistoryExpired))
            .bind(&cutoffs)
            .bind(RETENTION_BATCH)
            .fetch_all(&self.pool)
            .await?;
        let mut gone = 0;
        for (org_id, ws_id, cutoff) in due {
            loop {
                let mut tx = self.write_in(Scope::Org(&org_id)).await?;
                let n = sqlx::query(
                    "DELETE FROM workspace_history WHERE org_id = $1 AND workspace_id = $2 AND id IN \
                     (SELECT id FROM workspace_history WHERE org_id = $1 AND workspace_id = $2 AND at < $3 LIMIT $4)",
                )
                .bind(&org_id)
                .bind(&ws_id)
                .bind(cutoff)
                .bind(PURGE_CHUNK)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                gone += n;
                if n < u64::try_from(PURGE_CHUNK).unwrap_or(u64::MAX) {
                    break;
                }
            }
        }
        Ok(gone)
    }

    /// Up to `limit` state documents after key `after`, by key: a chunk of an export.
    pub async fn state_export_chunk(
        &self,
        org_id: &str,
        ws_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<StateDoc>> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let rows = sqlx::query(
            "SELECT key, version, size, updated_at, doc FROM workspace_state \
             WHERE org_id = $1 AND workspace_id = $2 AND key > $3 ORDER BY key LIMIT $4",
        )
        .bind(org_id)
        .bind(ws_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *c)
        .await?;
        c.done().await?;
        rows.iter()
            .map(|r| {
                Ok(StateDoc {
                    key: r.try_get("key")?,
                    version: r.try_get("version")?,
                    size: r.try_get("size")?,
                    updated_at: r.try_get("updated_at")?,
                    doc: r.try_get("doc")?,
                })
            })
            .collect()
    }

    /// Up to `limit` history entries after id `after`, oldest first: a chunk of an export.
    pub async fn history_export_chunk(
        &self,
        org_id: &str,
        ws_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<HistoryEntry>> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let rows = sqlx::query(concat!(
            "SELECT org_id, workspace_id, id, kind, ref, data, actor_type, actor_id, at FROM workspace_history",
            " WHERE org_id = $1 AND workspace_id = $2 AND id > $3 ORDER BY id LIMIT $4"
        ))
        .bind(org_id)
        .bind(ws_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *c)
        .await?;
        c.done().await?;
        Ok(rows.iter().map(entry_from).collect::<Result<Vec<_>, _>>()?)
    }
}

/// Deletes a workspace's records inside the transaction that deletes the workspace, after the
/// workspace row itself (so that a writer holding the workspace row finishes first and its rows
/// are seen here, and a later writer finds no workspace).
pub(crate) async fn delete_workspace_records(tx: &mut AnyConnection, org_id: &str, ws_id: &str) -> Result<()> {
    for sql in [
        "DELETE FROM workspace_records_usage WHERE org_id = $1 AND workspace_id = $2",
        "DELETE FROM workspace_state WHERE org_id = $1 AND workspace_id = $2",
        "DELETE FROM workspace_history WHERE org_id = $1 AND workspace_id = $2",
    ] {
        sqlx::query(sql).bind(org_id).bind(ws_id).execute(&mut *tx).await?;
    }
    Ok(())
}

/// The current `(version, size)` of a key, if it has a document.
async fn current_version(tx: &mut AnyConnection, org_id: &str, ws_id: &str, key: &str) -> Result<Option<(i64, i64)>> {
    Ok(sqlx::query_as::<_, (i64, i64)>(
        "SELECT version, size FROM workspace_state WHERE org_id = $1 AND workspace_id = $2 AND key = $3",
    )
    .bind(org_id)
    .bind(ws_id)
    .bind(key)
    .fetch_optional(&mut *tx)
    .await?)
}

fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn meta_from(r: &AnyRow) -> Result<StateMeta, sqlx::Error> {
    Ok(StateMeta {
        key: r.try_get("key")?,
        version: r.try_get("version")?,
        size: r.try_get("size")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn entry_from(r: &AnyRow) -> Result<HistoryEntry, sqlx::Error> {
    let kind: String = r.try_get("actor_type")?;
    let actor_kind = roost_domain::ledger::ActorKind::parse(&kind)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown actor type `{kind}`").into()))?;
    Ok(HistoryEntry {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        workspace_id: r.try_get("workspace_id")?,
        kind: r.try_get("kind")?,
        ref_: r.try_get("ref")?,
        data: r.try_get("data")?,
        actor: Actor { kind: actor_kind, id: r.try_get("actor_id")? },
        at: r.try_get("at")?,
    })
}

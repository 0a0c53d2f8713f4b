//! The append-only audit log.

use serde_json::Value;
use sqlx::AnyConnection;

use crate::audit_chain::{Fields, SET_HEAD, head_of};
use crate::scope::Scope;
use crate::{AuditEvent, Ctx, Page, Result, Store, finish_page, page};
use roost_domain::IdKind;

/// What one audit entry says, apart from who and when (that comes from [`Ctx`]).
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub org_id: &'a str,
    pub action: &'a str,
    pub workspace_id: Option<&'a str>,
    pub target: Option<(&'a str, &'a str)>,
    pub detail: Value,
}

/// Writes one audit entry inside the caller's transaction, as the next link of its org's chain
/// (see [`crate::audit_chain`]).
pub(crate) async fn record(tx: &mut AnyConnection, ctx: &Ctx, e: Entry<'_>) -> Result<()> {
    let id = IdKind::Audit.generate();
    let detail = e.detail.to_string();
    let fields = Fields {
        org_id: e.org_id,
        id: &id,
        at: ctx.now,
        actor_type: ctx.actor.kind.as_str(),
        actor_id: &ctx.actor.id,
        action: e.action,
        workspace_id: e.workspace_id,
        target_type: e.target.map(|t| t.0),
        target_id: e.target.map(|t| t.1),
        ip: ctx.ip.as_deref(),
        detail: &detail,
    };
    let (seq, prev) = head_of(tx, e.org_id).await?;
    let seq = seq + 1;
    let hash = fields.hash(seq, &prev);
    sqlx::query(
        "INSERT INTO audit_events (org_id, id, at, actor_type, actor_id, action, workspace_id, target_type, target_id, ip, detail, seq, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(fields.org_id)
    .bind(fields.id)
    .bind(fields.at)
    .bind(fields.actor_type)
    .bind(fields.actor_id)
    .bind(fields.action)
    .bind(fields.workspace_id)
    .bind(fields.target_type)
    .bind(fields.target_id)
    .bind(fields.ip)
    .bind(fields.detail)
    .bind(seq)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut *tx)
    .await?;
    sqlx::query(SET_HEAD).bind(e.org_id).bind(seq).bind(&hash).execute(&mut *tx).await?;
    Ok(())
}

/// Filters for reading the audit log. Empty strings mean "any".
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub workspace_id: Option<String>,
    pub actor_id: Option<String>,
    pub action: Option<String>,
}

impl Store {
    /// The org's audit log, newest first.
    pub async fn list_audit(
        &self,
        org_id: &str,
        f: &AuditFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<AuditEvent>> {
        let mut c = self.scoped(Scope::Org(org_id)).await?;
        let (fetch, _) = page(limit, cursor);
        // Newest first: the cursor is an upper bound; no cursor means no bound. (A sentinel such
        // as `~` is only "after every id" under byte order, not under a linguistic collation.)
        let before = cursor.unwrap_or("");
        let rows = sqlx::query(
            "SELECT org_id, id, at, actor_type, actor_id, action, workspace_id, target_type, target_id, ip, detail \
             FROM audit_events WHERE org_id = $1 AND ($2 = '' OR id < $2) \
             AND ($3 = '' OR workspace_id = $3) AND ($4 = '' OR actor_id = $4) AND ($5 = '' OR action = $5) \
             ORDER BY id DESC LIMIT $6",
        )
        .bind(org_id)
        .bind(before)
        .bind(f.workspace_id.as_deref().unwrap_or(""))
        .bind(f.actor_id.as_deref().unwrap_or(""))
        .bind(f.action.as_deref().unwrap_or(""))
        .bind(fetch)
        .fetch_all(&mut *c)
        .await?;
        c.done().await?;
        let items = rows.iter().map(AuditEvent::from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, fetch, |e| e.id.clone()))
    }
}

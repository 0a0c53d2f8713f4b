//! The audit hash chain: each event of an org carries the hash of the one before it, so that a
//! changed or removed event is found by walking the chain ([`Store::verify_audit`]).
//!
//! An event's hash is the lowercase hex SHA-256 of `prev_hash`, a newline, and the JSON array
//! `[org_id, id, seq, at, actor_type, actor_id, action, workspace_id, target_type, target_id, ip,
//! detail]` (absent values `null`, `detail` as the stored text). The first event of an org has
//! `seq` 1 and `prev_hash` `""`. `audit_heads` keeps each org's newest `(seq, hash)`.
//!
//! Writers of one org are serialised: on SQLite by the database's only write lock, on PostgreSQL
//! by the org row's lock (which ledger batches and the store's org changes already take), so two
//! concurrent writers never both extend the same link.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::scope::Scope;
use crate::{AuditRow, Result, Store};

/// The columns of one audit event that its hash covers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a> {
    pub org_id: &'a str,
    pub id: &'a str,
    pub at: i64,
    pub actor_type: &'a str,
    pub actor_id: &'a str,
    pub action: &'a str,
    pub workspace_id: Option<&'a str>,
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub detail: &'a str,
}

impl Fields<'_> {
    /// The hash of this event at place `seq`, after the event whose hash is `prev`.
    pub(crate) fn hash(&self, seq: i64, prev: &str) -> String {
        let body = json!([
            self.org_id,
            self.id,
            seq,
            self.at,
            self.actor_type,
            self.actor_id,
            self.action,
            self.workspace_id,
            self.target_type,
            self.target_id,
            self.ip,
            self.detail
        ]);
        roost_domain::tokens::hash(&format!("{prev}\n{body}"))
    }
}

/// One event's place in its org's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
}

/// Each org's newest link: org → `(seq, hash)`; an org without events is absent.
pub(crate) type Heads = HashMap<String, (i64, String)>;

/// Appends `events` (in order) to their orgs' chains whose newest links are `heads`, updating
/// `heads`; returns each event's link, in the same order.
pub(crate) fn extend(heads: &mut Heads, events: &[Fields<'_>]) -> Vec<Link> {
    events
        .iter()
        .map(|f| {
            let head = heads.entry(f.org_id.to_string()).or_insert_with(|| (0, String::new()));
            let seq = head.0 + 1;
            let link = Link { seq, prev_hash: std::mem::take(&mut head.1), hash: String::new() };
            let hash = f.hash(seq, &link.prev_hash);
            *head = (seq, hash.clone());
            Link { hash, ..link }
        })
        .collect()
}

/// The newest link of `org_id`, read inside a write transaction. On PostgreSQL this first takes
/// the org row's lock (a no-op when the transaction already holds it).
pub(crate) async fn head_of(tx: &mut AnyConnection, org_id: &str) -> Result<(i64, String)> {
    if tx.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT id FROM orgs WHERE id = $1 FOR UPDATE").bind(org_id).execute(&mut *tx).await?;
    }
    let row = sqlx::query("SELECT seq, hash FROM audit_heads WHERE org_id = $1")
        .bind(org_id)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(match row {
        Some(r) => (r.try_get("seq")?, r.try_get("hash")?),
        None => (0, String::new()),
    })
}

/// The statement that moves an org's head (`$1` org, `$2` seq, `$3` hash).
pub(crate) const SET_HEAD: &str = "INSERT INTO audit_heads (org_id, seq, hash) VALUES ($1, $2, $3) \
     ON CONFLICT (org_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash";

/// The version of the migration that adds the chain; [`chain_existing`] runs right after it.
pub(crate) const CHAIN_MIGRATION: i64 = 12;

/// Chains the events written before the chain existed (inside the migration's transaction): per
/// org in `(at, id)` order, then sets the heads and makes `(org_id, seq)` unique.
pub(crate) async fn chain_existing(tx: &mut AnyConnection) -> Result<()> {
    let pg = tx.backend_name() == "PostgreSQL";
    // The append-only triggers refuse updates: this one rewrite, in the migration, is the exception.
    if pg {
        sqlx::raw_sql("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only").execute(&mut *tx).await?;
    } else {
        sqlx::raw_sql("DROP TRIGGER audit_events_no_update").execute(&mut *tx).await?;
    }
    let rows = sqlx::query(
        "SELECT org_id, id, at, actor_type, actor_id, action, workspace_id, target_type, target_id, ip, detail \
         FROM audit_events ORDER BY org_id, at, id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let events = rows.iter().map(crate::AuditEvent::from_row).collect::<Result<Vec<_>, _>>()?;
    let fields: Vec<Fields<'_>> = events.iter().map(fields_of).collect();
    let mut heads = Heads::new();
    let links = extend(&mut heads, &fields);
    for (f, l) in fields.iter().zip(&links) {
        sqlx::query("UPDATE audit_events SET seq = $1, prev_hash = $2, hash = $3 WHERE org_id = $4 AND id = $5")
            .bind(l.seq)
            .bind(&l.prev_hash)
            .bind(&l.hash)
            .bind(f.org_id)
            .bind(f.id)
            .execute(&mut *tx)
            .await?;
    }
    for (org, (seq, hash)) in &heads {
        sqlx::query(SET_HEAD).bind(org).bind(*seq).bind(hash).execute(&mut *tx).await?;
    }
    sqlx::raw_sql("CREATE UNIQUE INDEX audit_events_chain ON audit_events (org_id, seq)").execute(&mut *tx).await?;
    if pg {
        sqlx::raw_sql("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only").execute(&mut *tx).await?;
    } else {
        sqlx::raw_sql(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events \
             BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

fn fields_of(e: &crate::AuditEvent) -> Fields<'_> {
    Fields {
        org_id: &e.org_id,
        id: &e.id,
        at: e.at,
        actor_type: &e.actor_type,
        actor_id: &e.actor_id,
        action: &e.action,
        workspace_id: e.workspace_id.as_deref(),
        target_type: e.target_type.as_deref(),
        target_id: e.target_id.as_deref(),
        ip: e.ip.as_deref(),
        detail: &e.detail,
    }
}

/// The links of a ledger batch's audit events (in the batch's order) and the heads they leave.
#[derive(Debug, Default)]
pub(crate) struct Chain {
    pub links: Vec<Link>,
    /// `(org, seq, hash)`, one per org that got events.
    pub heads: Vec<(String, i64, String)>,
}

/// The orgs whose heads a batch of `rows` needs, each once.
pub(crate) fn orgs_of(rows: &[AuditRow]) -> Vec<&str> {
    let mut orgs: Vec<&str> = rows.iter().map(|r| r.org_id.as_str()).collect();
    orgs.sort_unstable();
    orgs.dedup();
    orgs
}

/// Chains a ledger batch's audit `rows` after `heads` (the newest links of their orgs, read under
/// the orgs' lock).
pub(crate) fn chain_rows(mut heads: Heads, rows: &[AuditRow]) -> Chain {
    let fields: Vec<Fields<'_>> = rows
        .iter()
        .map(|a| Fields {
            org_id: &a.org_id,
            id: &a.id,
            at: a.at,
            actor_type: a.actor_type.as_str(),
            actor_id: &a.actor_id,
            action: &a.action,
            workspace_id: a.workspace_id.as_deref(),
            target_type: a.target_type.as_deref(),
            target_id: a.target_id.as_deref(),
            ip: a.ip.as_deref(),
            detail: &a.detail,
        })
        .collect();
    let links = extend(&mut heads, &fields);
    let touched = orgs_of(rows);
    let heads = heads
        .into_iter()
        .filter(|(o, _)| touched.contains(&o.as_str()))
        .map(|(o, (seq, hash))| (o, seq, hash))
        .collect();
    Chain { links, heads }
}

/// What [`Store::verify_audit`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Whether every event is as written and none is missing.
    pub ok: bool,
    /// How many events the chain holds.
    pub events: u64,
    /// The first place where the chain breaks.
    pub first_bad: Option<BadLink>,
    /// The newest link's hash as recorded (`None` for an org without events): note it down to
    /// notice later a rewrite of the whole chain.
    pub head: Option<String>,
}

/// Where and how a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadLink {
    /// The event's place in the chain (from 1).
    pub seq: i64,
    /// The event's id; `None` when the event is missing.
    pub id: Option<String>,
    /// `changed` (its content or hash differs from what was chained) or `missing` (removed).
    pub problem: &'static str,
}

/// Events read per round while verifying.
const VERIFY_CHUNK: i64 = 1000;

impl Store {
    /// Walks the org's audit chain from its first event to its head and reports the first event
    /// that was changed or removed.
    pub async fn verify_audit(&self, org_id: &str) -> Result<ChainReport> {
        let mut conn = self.scoped(Scope::Org(org_id)).await?;
        let head: Option<(i64, String)> = sqlx::query("SELECT seq, hash FROM audit_heads WHERE org_id = $1")
            .bind(org_id)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| Ok::<_, sqlx::Error>((r.try_get("seq")?, r.try_get("hash")?)))
            .transpose()?;
        let (mut last_seq, mut last_id, mut last_hash) = (0_i64, None::<String>, String::new());
        let mut events = 0_u64;
        let bad = |seq, id, problem| Some(BadLink { seq, id, problem });
        let mut first_bad = None;
        'walk: loop {
            let rows = sqlx::query(
                "SELECT org_id, id, at, actor_type, actor_id, action, workspace_id, target_type, target_id, ip, detail, \
                 seq, prev_hash, hash FROM audit_events WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(org_id)
            .bind(last_seq)
            .bind(VERIFY_CHUNK)
            .fetch_all(&mut *conn)
            .await?;
            for r in &rows {
                let e = crate::AuditEvent::from_row(r)?;
                let (seq, prev, hash): (i64, String, String) =
                    (r.try_get("seq")?, r.try_get("prev_hash")?, r.try_get("hash")?);
                events += 1;
                if seq != last_seq + 1 {
                    first_bad = bad(last_seq + 1, None, "missing");
                } else if prev != last_hash {
                    // The event before was rewritten along with its own hash: it no longer is
                    // the one this event was chained to.
                    first_bad = bad(last_seq, last_id.clone(), "changed");
                } else if fields_of(&e).hash(seq, &prev) != hash {
                    first_bad = bad(seq, Some(e.id.clone()), "changed");
                }
                if first_bad.is_some() {
                    break 'walk;
                }
                (last_seq, last_id, last_hash) = (seq, Some(e.id), hash);
            }
            if i64::try_from(rows.len()).unwrap_or(i64::MAX) < VERIFY_CHUNK {
                break;
            }
        }
        if first_bad.is_none() {
            first_bad = match &head {
                // The newest events were removed (or the head was moved past them).
                Some((seq, _)) if *seq > last_seq => bad(last_seq + 1, None, "missing"),
                Some((seq, hash)) if *seq == last_seq && *hash != last_hash => bad(last_seq, last_id, "changed"),
                // Events past the head: written around roost.
                Some((seq, _)) if *seq < last_seq => bad(seq + 1, None, "changed"),
                None if last_seq > 0 => bad(last_seq, last_id, "changed"),
                _ => None,
            };
        }
        if first_bad.is_some() {
            // Count what the table holds, past the break too.
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE org_id = $1")
                .bind(org_id)
                .fetch_one(&mut *conn)
                .await?;
            events = u64::try_from(n).unwrap_or(0);
        }
        conn.done().await?;
        Ok(ChainReport { ok: first_bad.is_none(), events, first_bad, head: head.map(|h| h.1) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev<'a>(org: &'a str, id: &'a str) -> Fields<'a> {
        Fields {
            org_id: org,
            id,
            at: 1,
            actor_type: "user",
            actor_id: "usr_1",
            action: "org.created",
            workspace_id: None,
            target_type: None,
            target_id: None,
            ip: None,
            detail: "{}",
        }
    }

    #[test]
    fn each_org_has_a_chain_of_its_own() {
        let mut heads = Heads::new();
        let links = extend(&mut heads, &[ev("a", "1"), ev("b", "2"), ev("a", "3")]);
        assert_eq!((links[0].seq, links[1].seq, links[2].seq), (1, 1, 2));
        assert_eq!(links[0].prev_hash, "");
        assert_eq!(links[2].prev_hash, links[0].hash);
        assert_eq!(heads["a"], (2, links[2].hash.clone()));
        assert_eq!(links[0].hash, ev("a", "1").hash(1, ""));
        // Any column, the place and the link before all change the hash.
        assert_ne!(ev("a", "1").hash(1, ""), ev("a", "1").hash(2, ""));
        assert_ne!(ev("a", "1").hash(1, ""), ev("a", "1").hash(1, "x"));
        assert_ne!(ev("a", "1").hash(1, ""), Fields { ip: Some(""), ..ev("a", "1") }.hash(1, ""));
    }
}

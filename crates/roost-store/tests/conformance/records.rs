//! Workspace records in the store: versions that are never reused, conditions, the state quota,
//! history idempotency, retention by plan, deletion with the workspace, and the schema's isolation
//! (every table carries org_id and workspace_id; on PostgreSQL row-level security with a policy).

use roost_domain::records::Precondition;
use roost_domain::{Catalog, IdKind, Plan};
use roost_store::{Actor, HistoryEntry, HistoryFilter, Limit, NewHistory, Rule, Store, StoreError};
use sqlx::Row;

use super::{DAY, T0, ctx, new_workspace, signup};

/// The tables of workspace records.
pub const TABLES: [&str; 3] = ["workspace_state", "workspace_history", "workspace_records_usage"];

fn catalog_with_state_bytes(bytes: u64) -> Catalog {
    let plans: Vec<Plan> = Catalog::builtin()
        .all()
        .iter()
        .cloned()
        .map(|mut p| {
            p.state_bytes = Some(bytes);
            p
        })
        .collect();
    Catalog::new(plans, "free").expect("catalog")
}

fn entry(org: &str, ws: &str, kind: &str, at: i64) -> HistoryEntry {
    HistoryEntry {
        id: IdKind::History.generate(),
        org_id: org.into(),
        workspace_id: ws.into(),
        kind: kind.into(),
        ref_: Some("conv-1".into()),
        data: r#"{"text":"hi"}"#.into(),
        actor: Actor::user("usr_x"),
        at,
    }
}

pub async fn scenario_records(s: &Store) {
    let alice = signup(s, "alice", T0).await;
    let (org, ws) = (alice.org.as_str(), alice.ws.as_str());
    let cat = catalog_with_state_bytes(100);

    // Versions grow, conditions hold or refuse, and a deleted key's versions are never reused.
    let v1 = s.state_put(org, ws, "a", "{}", Precondition::Absent, &cat, &alice.id, T0).await.expect("create");
    assert_eq!((v1.version, v1.size), (1, 2));
    let again = s.state_put(org, ws, "a", "{}", Precondition::Absent, &cat, &alice.id, T0).await;
    assert!(matches!(again, Err(StoreError::Rule(Rule::VersionConflict))), "{again:?}");
    let stale = s.state_put(org, ws, "a", "[1]", Precondition::Version(7), &cat, &alice.id, T0).await;
    assert!(matches!(stale, Err(StoreError::Rule(Rule::VersionConflict))), "{stale:?}");
    let v2 = s.state_put(org, ws, "a", "[1]", Precondition::Version(1), &cat, &alice.id, T0).await.expect("update");
    assert_eq!(v2.version, 2);
    assert_eq!(s.state_get(org, ws, "a").await.expect("get").map(|d| d.doc).as_deref(), Some("[1]"));
    assert_eq!(s.state_usage(org, ws).await.expect("usage"), 1 + 3);
    s.state_delete(org, ws, "a", Precondition::Version(2)).await.expect("delete");
    assert!(matches!(s.state_delete(org, ws, "a", Precondition::Any).await, Err(StoreError::NotFound)));
    assert_eq!(s.state_usage(org, ws).await.expect("usage"), 0);
    let v3 = s.state_put(org, ws, "a", "1", Precondition::Any, &cat, &alice.id, T0).await.expect("again");
    assert!(v3.version > v2.version, "a version came back: {v3:?}");

    // The quota counts keys and documents, and shrinking is always allowed.
    let big = format!("\"{}\"", "x".repeat(90));
    assert!(s.state_put(org, ws, "b", &big, Precondition::Any, &cat, &alice.id, T0).await.is_ok());
    let over = s.state_put(org, ws, "c", "[1,2,3,4,5,6,7,8,9]", Precondition::Any, &cat, &alice.id, T0).await;
    assert!(matches!(over, Err(StoreError::Limit(Limit::StateBytes))), "{over:?}");
    assert!(s.state_put(org, ws, "b", "0", Precondition::Any, &cat, &alice.id, T0).await.is_ok());
    assert_eq!(s.state_usage(org, ws).await.expect("usage"), 2 + 2);

    // History: one entry per idempotency key; another request under the same key is refused.
    let first = NewHistory { entry: entry(org, ws, "turn", T0), idem_key: "k1".into(), idem_fp: "fp1".into() };
    let (e1, replayed) = s.history_append(&first).await.expect("append");
    assert!(!replayed);
    let retry = NewHistory { entry: entry(org, ws, "turn", T0 + 5), ..first.clone() };
    let (e1b, replayed) = s.history_append(&retry).await.expect("replay");
    assert!(replayed && e1b == e1, "{e1b:?} vs {e1:?}");
    let other = NewHistory { idem_fp: "fp2".into(), ..retry };
    assert!(matches!(s.history_append(&other).await, Err(StoreError::Rule(Rule::IdempotencyConflict))));
    let gone_ws = NewHistory {
        entry: entry(org, "ws_00000000000000000000000000", "turn", T0),
        idem_key: "k2".into(),
        idem_fp: "x".into(),
    };
    assert!(matches!(s.history_append(&gone_ws).await, Err(StoreError::NotFound)));

    // Retention by the plan's history_days (free keeps 30 days): only what is older goes.
    let fresh = NewHistory { entry: entry(org, ws, "turn", T0 + 40 * DAY), idem_key: "k3".into(), idem_fp: "x".into() };
    s.history_append(&fresh).await.expect("append fresh");
    let gone = s.purge_expired_history(T0 + 45 * DAY, &Catalog::builtin()).await.expect("purge");
    assert_eq!(gone, 1);
    let left = s.history_list(org, ws, &HistoryFilter::default(), 50, None).await.expect("list");
    assert_eq!(left.items.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), [fresh.entry.id.as_str()]);

    // Deleting a workspace deletes its records.
    let org2 = super::new_org(s, &alice.id, "team", T0).await;
    let extra = new_workspace(s, &org2.id, &alice.id, T0).await;
    s.state_put(&org2.id, &extra, "k", "{}", Precondition::Any, &cat, &alice.id, T0).await.expect("put");
    let e = NewHistory { entry: entry(&org2.id, &extra, "turn", T0), idem_key: "k".into(), idem_fp: "x".into() };
    s.history_append(&e).await.expect("append");
    let w = s.workspace_by_id(&extra).await.expect("ws").expect("exists").0;
    s.delete_workspace(&w, &ctx(&alice.id, T0)).await.expect("delete workspace");
    assert!(s.state_export_chunk(&org2.id, &extra, "", 10).await.expect("state").is_empty());
    assert!(s.history_export_chunk(&org2.id, &extra, "", 10).await.expect("history").is_empty());
    assert_eq!(s.state_usage(&org2.id, &extra).await.expect("usage"), 0);
    let late = s.state_put(&org2.id, &extra, "k", "{}", Precondition::Any, &cat, &alice.id, T0).await;
    assert!(matches!(late, Err(StoreError::NotFound)), "{late:?}");

    schema_isolates_records(s).await;
}

/// Every records table carries org_id and workspace_id; on PostgreSQL each has row-level security
/// enabled and a policy.
async fn schema_isolates_records(s: &Store) {
    for table in TABLES {
        let cols: Vec<String> = if s.backend() == "postgres" {
            sqlx::query_scalar("SELECT column_name::TEXT FROM information_schema.columns WHERE table_name = $1")
                .bind(table)
                .fetch_all(s.pool())
                .await
                .expect("columns")
        } else {
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT name FROM pragma_table_info('{table}')")))
                .fetch_all(s.pool())
                .await
                .expect("columns")
                .iter()
                .map(|r| r.get::<String, _>("name"))
                .collect()
        };
        for c in ["org_id", "workspace_id"] {
            assert!(cols.iter().any(|x| x == c), "{table} has no {c}: {cols:?}");
        }
        if s.backend() == "postgres" {
            let rls: bool = sqlx::query_scalar("SELECT relrowsecurity FROM pg_class WHERE relname = $1")
                .bind(table)
                .fetch_one(s.pool())
                .await
                .expect("relrowsecurity");
            assert!(rls, "{table} is not under row-level security");
            let policies: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_policies WHERE tablename = $1")
                .bind(table)
                .fetch_one(s.pool())
                .await
                .expect("policies");
            assert!(policies >= 1, "{table} has no policy");
        }
    }
}

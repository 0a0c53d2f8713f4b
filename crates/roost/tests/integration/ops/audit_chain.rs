//! The audit hash chain: `GET /v1/orgs/{org}/audit/verify` (and `roost audit verify`) finds an
//! event changed or removed straight in the database, and concurrent writers of one org (the API
//! and ledger batches) never fork the chain.

use roost::Client;
use roost_test_kit::{Backend, TestServer};
use serde_json::{Value, json};

use crate::credits::common::{api_key, business, topup};
use crate::support::{expect_problem, expect_status};

/// An org with a few audited actions of both kinds: the API's (workspaces, keys) and the ledger's
/// (a top-up); returns `(owner, org)`.
async fn audited_org(s: &TestServer, name: &str) -> (Client, String) {
    let (owner, _, org, ws) = business(s, name).await;
    for n in ["One", "Two"] {
        let r = owner.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": n})).await.unwrap();
        expect_status(&r, 201);
    }
    api_key(s, &owner, &ws, None).await;
    topup(&owner, &org, 5_000).await;
    (owner, org)
}

async fn verify(c: &Client, org: &str) -> Value {
    let r = c.get(&format!("/v1/orgs/{org}/audit/verify")).await.unwrap();
    expect_status(&r, 200);
    r.body
}

/// The org's event ids in chain order, read from the database.
async fn chain_ids(pool: &sqlx::AnyPool, org: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT id FROM audit_events WHERE org_id = $1 ORDER BY seq")
        .bind(org)
        .fetch_all(pool)
        .await
        .unwrap()
}

/// What someone with the database's credentials could do: lift the append-only triggers.
async fn lift_triggers(s: &TestServer, pool: &sqlx::AnyPool) {
    let sql = match s.backend() {
        Backend::Sqlite => "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;",
        Backend::Postgres => "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
    };
    sqlx::raw_sql(sql).execute(pool).await.unwrap();
}

/// The hash event `id` would have with `ip`, by the documented formula: SHA-256 (hex) of
/// `prev_hash`, a newline and the JSON array of its columns.
async fn rehash_with_ip(pool: &sqlx::AnyPool, org: &str, id: &str, ip: &str) -> String {
    use sqlx::Row;
    let r = sqlx::query(
        "SELECT org_id, id, seq, at, actor_type, actor_id, action, workspace_id, target_type, target_id, detail, \
         prev_hash, hash FROM audit_events WHERE org_id = $1 AND id = $2",
    )
    .bind(org)
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap();
    let text = |c: &str| r.get::<Option<String>, _>(c);
    let body = |ip: Option<&str>| {
        json!([
            text("org_id"),
            text("id"),
            r.get::<i64, _>("seq"),
            r.get::<i64, _>("at"),
            text("actor_type"),
            text("actor_id"),
            text("action"),
            text("workspace_id"),
            text("target_type"),
            text("target_id"),
            ip,
            text("detail")
        ])
    };
    let prev: String = r.get("prev_hash");
    let ip_now: Option<String> = sqlx::query_scalar("SELECT ip FROM audit_events WHERE org_id = $1 AND id = $2")
        .bind(org)
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
    // The formula gives the stored hash back for the event as it is…
    assert_eq!(roost_domain::tokens::hash(&format!("{prev}\n{}", body(ip_now.as_deref()))), r.get::<String, _>("hash"));
    // …and this one for the changed event.
    roost_domain::tokens::hash(&format!("{prev}\n{}", body(Some(ip))))
}

#[track_caller]
fn expect_bad(v: &Value, seq: usize, id: Option<&str>, problem: &str) {
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["first_bad"]["seq"], seq, "{v}");
    assert_eq!(v["first_bad"]["id"], id.map_or(Value::Null, Value::from), "{v}");
    assert_eq!(v["first_bad"]["problem"], problem, "{v}");
}

async fn audit_verify_finds_changed_and_removed_events(s: TestServer) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&s.admin_url).await.unwrap();
    let orgs = [
        audited_org(&s, "Changed").await,
        audited_org(&s, "Rehashed").await,
        audited_org(&s, "Gap").await,
        audited_org(&s, "Tail").await,
    ];
    for (owner, org) in &orgs {
        let v = verify(owner, org).await;
        assert_eq!(v["ok"], true, "{v}");
        assert!(v["first_bad"].is_null(), "{v}");
        let ids = chain_ids(&pool, org).await;
        // org.created, workspace.created ×3 (the primary and two), key.created, wallet.topped_up.
        assert!(ids.len() >= 6, "{ids:?}");
        assert_eq!(v["events"], ids.len(), "{v}");
        assert_eq!(v["head"].as_str().map(str::len), Some(64), "{v}");
    }
    lift_triggers(&s, &pool).await;

    // A changed column.
    let (owner, org) = &orgs[0];
    let ids = chain_ids(&pool, org).await;
    sqlx::query("UPDATE audit_events SET detail = '{\"name\":\"Other\"}' WHERE org_id = $1 AND id = $2")
        .bind(org)
        .bind(&ids[2])
        .execute(&pool)
        .await
        .unwrap();
    expect_bad(&verify(owner, org).await, 3, Some(&ids[2]), "changed");

    // A changed column with its own hash recomputed: the next event no longer links to it.
    let (owner, org) = &orgs[1];
    let ids = chain_ids(&pool, org).await;
    let rehashed = rehash_with_ip(&pool, org, &ids[1], "203.0.113.9").await;
    sqlx::query("UPDATE audit_events SET ip = '203.0.113.9', hash = $3 WHERE org_id = $1 AND id = $2")
        .bind(org)
        .bind(&ids[1])
        .bind(&rehashed)
        .execute(&pool)
        .await
        .unwrap();
    expect_bad(&verify(owner, org).await, 2, Some(&ids[1]), "changed");

    // An event removed from the middle.
    let (owner, org) = &orgs[2];
    let ids = chain_ids(&pool, org).await;
    sqlx::query("DELETE FROM audit_events WHERE org_id = $1 AND id = $2")
        .bind(org)
        .bind(&ids[3])
        .execute(&pool)
        .await
        .unwrap();
    let v = verify(owner, org).await;
    expect_bad(&v, 4, None, "missing");
    assert_eq!(v["events"], ids.len() - 1, "{v}");

    // The newest event removed: the head still names it.
    let (owner, org) = &orgs[3];
    let ids = chain_ids(&pool, org).await;
    let last = ids.last().unwrap();
    sqlx::query("DELETE FROM audit_events WHERE org_id = $1 AND id = $2")
        .bind(org)
        .bind(last)
        .execute(&pool)
        .await
        .unwrap();
    expect_bad(&verify(owner, org).await, ids.len(), None, "missing");

    // The other orgs' chains are their own: still whole.
    let (owner, org) = audited_org(&s, "Untouched").await;
    assert_eq!(verify(&owner, &org).await["ok"], true);
    pool.close().await;
}

async fn audit_verify_is_for_owners_and_admins(s: TestServer) {
    let (owner, org) = audited_org(&s, "Acme").await;
    let (member, m) = s.signup("Member").await;
    s.add_member(&owner, &org, &member, &m, "member").await;
    let r = member.get(&format!("/v1/orgs/{org}/audit/verify")).await.unwrap();
    expect_problem(&r, 403, "forbidden");
    let (stranger, _) = s.signup("Stranger").await;
    let r = stranger.get(&format!("/v1/orgs/{org}/audit/verify")).await.unwrap();
    expect_problem(&r, 404, "not_found");
    let (admin, a) = s.signup("Admin").await;
    s.add_member(&owner, &org, &admin, &a, "admin").await;
    assert_eq!(verify(&admin, &org).await["ok"], true);
}

/// Many writers of one org at once — API changes on both sides of ledger batches that audit
/// (top-ups) — leave one unbroken chain holding every event.
async fn concurrent_audit_writers_keep_one_chain(s: TestServer) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&s.admin_url).await.unwrap();
    let (owner, _, org, _) = business(&s, "Busy").await;
    let count = async || -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE org_id = $1")
            .bind(&org)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let before = count().await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (owner, org) = (owner.clone(), org.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let r = owner.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": format!("W{i}")})).await;
                expect_status(&r.unwrap(), 201);
            } else {
                topup(&owner, &org, 100).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let v = verify(&owner, &org).await;
    assert_eq!(v["ok"], true, "{v}");
    let n = count().await;
    assert_eq!(n, before + 12, "every change wrote its event");
    assert_eq!(v["events"], n, "{v}");
    pool.close().await;
}

/// Events written before the chain existed are chained by the migration that adds it, oldest
/// first; later events extend that chain.
async fn migration_chains_existing_events(s: TestServer) {
    let db = roost_test_kit::FreshDatabase::create_empty(s.backend()).await.unwrap();
    // Migrations are the owner's.
    let store = roost_store::Store::connect(db.admin_url()).await.unwrap();
    store.migrate_up_to(9).await.unwrap();
    for (org, id, at) in
        [("org_a", "aud_2", 20), ("org_a", "aud_1", 10), ("org_b", "aud_3", 30), ("org_a", "aud_4", 40)]
    {
        sqlx::query(
            "INSERT INTO audit_events (org_id, id, at, actor_type, actor_id, action, detail) \
             VALUES ($1, $2, $3, 'user', 'usr_1', 'org.updated', '{}')",
        )
        .bind(org)
        .bind(id)
        .bind(at)
        .execute(store.pool())
        .await
        .unwrap();
    }
    let applied = store.migrate().await.unwrap();
    assert!(applied.contains(&12), "{applied:?}");
    let a = store.verify_audit("org_a").await.unwrap();
    assert!(a.ok && a.events == 3, "{a:?}");
    let b = store.verify_audit("org_b").await.unwrap();
    assert!(b.ok && b.events == 1, "{b:?}");
    let order: Vec<String> = sqlx::query_scalar("SELECT id FROM audit_events WHERE org_id = 'org_a' ORDER BY seq")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(order, ["aud_1", "aud_2", "aud_4"]);
    // The append-only triggers are back.
    let r = sqlx::query("UPDATE audit_events SET action = 'x'").execute(store.pool()).await;
    assert!(r.is_err(), "the audit log must stay append-only");
    store.close().await;
    drop(s);
}

both_backends!(
    migration_chains_existing_events,
    audit_verify_finds_changed_and_removed_events,
    audit_verify_is_for_owners_and_admins,
    concurrent_audit_writers_keep_one_chain
);

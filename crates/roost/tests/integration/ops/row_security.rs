//! Row-level security on PostgreSQL (issue 11, item 3): every tenant table carries the policy,
//! the application's role sees and writes only the orgs its transaction names, and `roost
//! setup-postgres` makes that role. (The whole suite runs as such a role: see the test kit.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;
use sqlx::{Connection, PgConnection, Row};

use crate::ROOST;
use crate::credits::common::{api_key, business, charge, created, hold, idem, topup};
use crate::support::{expect_status, fresh_email};
use roost_test_kit::{Backend, FreshDatabase, TestServer};

/// The tables of roost's schema with an `org_id` column.
async fn tenant_tables(conn: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::TEXT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

pg_test! {
/// Every table with `org_id` has row-level security on (not forced: the owner runs migrations)
/// and the `org_isolation` policy for reads and writes; every `roost_*` function is SECURITY
/// DEFINER with a fixed search_path and not callable by PUBLIC; the test kit's role is neither
/// superuser nor owner, nor has BYPASSRLS.
#[tokio::test]
async fn every_tenant_table_has_its_policy() {
    let Some(db) = FreshDatabase::create(Backend::Postgres).await else {
        println!("{}", roost_test_kit::SKIPPED);
        return;
    };
    let mut conn = PgConnection::connect(db.admin_url()).await.unwrap();
    let tables = tenant_tables(&mut conn).await;
    for t in ["org_members", "wallets", "ledger_entries", "audit_events", "audit_heads", "events", "webhooks", "webhook_usage"] {
        assert!(tables.iter().any(|x| x == t), "{t} has org_id: {tables:?}");
    }
    assert!(tables.len() >= 23, "{tables:?}");
    for t in tables.iter().map(String::as_str).chain(["webhook_deliveries"]) {
        let r = sqlx::query(
            "SELECT c.relrowsecurity AS on, c.relforcerowsecurity AS forced, \
             (SELECT COUNT(*) FROM pg_policies p WHERE p.schemaname = current_schema() AND p.tablename = c.relname \
              AND p.policyname = 'org_isolation' AND p.cmd = 'ALL' AND p.qual IS NOT NULL AND p.with_check IS NOT NULL) AS policies \
             FROM pg_class c WHERE c.oid = to_regclass($1)",
        )
        .bind(t)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert!(r.get::<bool, _>("on"), "{t}: row-level security is off");
        assert!(!r.get::<bool, _>("forced"), "{t}: forced, the owner could not migrate");
        assert_eq!(r.get::<i64, _>("policies"), 1, "{t}: no org_isolation policy");
    }
    // The policies read the per-transaction setting.
    let quals: Vec<String> = sqlx::query_scalar(
        "SELECT qual || ' ' || with_check FROM pg_policies WHERE schemaname = current_schema() AND tablename = 'wallets'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(quals.iter().all(|q| q.matches("current_setting('roost.org_id'").count() == 2), "{quals:?}");

    let functions = sqlx::query(
        "SELECT p.proname::TEXT AS name, p.prosecdef AS definer, COALESCE(array_to_string(p.proconfig, ';'), '') AS config, \
         has_function_privilege('public', p.oid, 'EXECUTE') AS public_may, \
         has_function_privilege($1, p.oid, 'EXECUTE') AS app_may \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = current_schema() AND p.proname LIKE 'roost\\_%' AND p.prorettype <> 'trigger'::regtype",
    )
    .bind(roost_test_kit::APP_ROLE)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(functions.len() >= 10, "{} functions", functions.len());
    for f in &functions {
        let name: String = f.get("name");
        assert!(f.get::<bool, _>("definer"), "{name} is not SECURITY DEFINER");
        let config: String = f.get("config");
        assert!(config.contains("search_path=pg_catalog, public, pg_temp"), "{name}: search_path not fixed: {config}");
        assert!(!f.get::<bool, _>("public_may"), "{name}: PUBLIC may execute it");
        assert!(f.get::<bool, _>("app_may"), "{name}: the application role may not execute it");
    }

    let r = sqlx::query(
        "SELECT r.rolsuper, r.rolbypassrls, \
         (SELECT COUNT(*) FROM pg_class c WHERE c.relowner = r.oid) AS owns FROM pg_roles r WHERE r.rolname = $1",
    )
    .bind(roost_test_kit::APP_ROLE)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(!r.get::<bool, _>("rolsuper") && !r.get::<bool, _>("rolbypassrls"));
    assert_eq!(r.get::<i64, _>("owns"), 0);
    let _ = conn.close().await;
}
}

/// Counts `t`'s rows on `conn` (in whatever scope it is), and those of orgs other than `org`.
async fn counts(conn: &mut PgConnection, t: &str, org: &str) -> (i64, i64) {
    // `t` comes from pg_class, not from outside.
    let sql = format!("SELECT COUNT(*) AS n, COUNT(*) FILTER (WHERE org_id <> $1) AS other FROM {t}");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(org).fetch_one(conn).await.unwrap();
    (r.get("n"), r.get("other"))
}

/// Fills most tenant tables for one org through the API.
async fn busy_org(s: &TestServer, name: &str) -> String {
    let (owner, _, org, ws) = business(s, name).await;
    topup(&owner, &org, 10_000).await;
    let (_, key) = api_key(s, &owner, &ws, None).await;
    created(charge(&key, 10, "render").await);
    created(hold(&key, 20, None).await);
    let r = owner.put(&format!("/v1/workspaces/{ws}/budget"), &json!({"limit": 5_000, "alert_percents": [50]})).await;
    expect_status(&r.unwrap(), 200);
    let r = owner
        .post(&format!("/v1/orgs/{org}/webhooks"), &json!({"url": "https://1.1.1.1/hook", "events": ["key.created"]}))
        .await
        .unwrap();
    expect_status(&r, 201);
    let r = owner.post(&format!("/v1/orgs/{org}/invitations"), &json!({"email": fresh_email("inv")})).await.unwrap();
    expect_status(&r, 201);
    let domain = format!("{}.test", name.to_lowercase());
    let r =
        owner.post(&format!("/v1/orgs/{org}/domains"), &json!({"domain": domain, "mode": "auto_join"})).await.unwrap();
    expect_status(&r, 201);
    let r = owner
        .post_idem(&format!("/v1/orgs/{org}/wallets/credits/topups"), &idem(), &json!({"amount": 5}))
        .await
        .unwrap();
    expect_status(&r, 201);
    org
}

pg_test! {
/// With two orgs' data present, the server's role sees nothing without the setting, only org
/// A's rows with A's setting, and cannot write a row of org B under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_role_sees_only_its_scope() {
    let Some(s) = TestServer::start(Backend::Postgres).await else {
        println!("{}", roost_test_kit::SKIPPED);
        return;
    };
    let a = busy_org(&s, "Alpha").await;
    let b = busy_org(&s, "Beta").await;
    let mut owner = PgConnection::connect(&s.admin_url).await.unwrap();
    let mut app = PgConnection::connect(&s.database_url).await.unwrap();
    let role: String = sqlx::query_scalar("SELECT current_user::TEXT").fetch_one(&mut app).await.unwrap();
    assert_eq!(role, roost_test_kit::APP_ROLE, "the server's URL is the restricted role's");

    let mut both = BTreeSet::new();
    for t in tenant_tables(&mut owner).await {
        let (all, not_a) = counts(&mut owner, &t, &a).await;
        let of_a = all - not_a;
        let of_b: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {t} WHERE org_id = $1")))
            .bind(&b)
            .fetch_one(&mut owner)
            .await
            .unwrap();
        if of_a > 0 && of_b > 0 {
            both.insert(t.clone());
        }
        // No setting: nothing.
        assert_eq!(counts(&mut app, &t, &a).await, (0, 0), "{t} without the setting");
        // A's setting: all of A's rows, none of anyone else's.
        let mut tx = app.begin().await.unwrap();
        sqlx::query("SELECT set_config('roost.org_id', $1, true)").bind(&a).execute(&mut *tx).await.unwrap();
        assert_eq!(counts(&mut tx, &t, &a).await, (of_a, 0), "{t} in A's scope");
        tx.commit().await.unwrap();
        // A setting naming no org (or a malformed one): nothing.
        let mut tx = app.begin().await.unwrap();
        sqlx::query("SELECT set_config('roost.org_id', 'org_nobody', true)").execute(&mut *tx).await.unwrap();
        assert_eq!(counts(&mut tx, &t, &a).await, (0, 0), "{t} in an empty scope");
        tx.commit().await.unwrap();
    }
    // The check above is not vacuous: both orgs have rows in most tenant tables.
    for t in [
        "org_members", "workspaces", "workspace_members", "api_keys", "api_key_secrets", "audit_events", "audit_heads",
        "wallets", "grants", "ledger_entries", "ledger_heads", "holds", "budgets", "usage_rollups", "webhooks", "events",
        "invitations", "org_domains",
    ] {
        assert!(both.contains(t), "{t} holds rows of both orgs: {both:?}");
    }

    // Writes: a row of B under A's setting is refused, B's rows cannot be changed or deleted.
    let mut tx = app.begin().await.unwrap();
    sqlx::query("SELECT set_config('roost.org_id', $1, true)").bind(&a).execute(&mut *tx).await.unwrap();
    let moved = sqlx::query("UPDATE org_members SET role = 'owner' WHERE org_id = $1").bind(&b).execute(&mut *tx).await;
    assert_eq!(moved.unwrap().rows_affected(), 0, "B's members changed from A's scope");
    let gone = sqlx::query("DELETE FROM wallets WHERE org_id = $1").bind(&b).execute(&mut *tx).await;
    assert_eq!(gone.unwrap().rows_affected(), 0, "B's wallets deleted from A's scope");
    let stolen = sqlx::query("UPDATE org_members SET org_id = $1 WHERE org_id = $2").bind(&b).bind(&a).execute(&mut *tx).await;
    let err = stolen.expect_err("A's rows moved into B");
    assert!(err.to_string().contains("row-level security"), "{err}");
    tx.rollback().await.unwrap();
    let mut tx = app.begin().await.unwrap();
    sqlx::query("SELECT set_config('roost.org_id', $1, true)").bind(&a).execute(&mut *tx).await.unwrap();
    let planted = sqlx::query(
        "INSERT INTO org_members (org_id, user_id, role, created_at) VALUES ($1, 'usr_intruder', 'owner', 0)",
    )
    .bind(&b)
    .execute(&mut *tx)
    .await;
    let err = planted.expect_err("a row of B written under A's setting");
    assert!(err.to_string().contains("row-level security"), "{err}");
    tx.rollback().await.unwrap();
    // A direct write without any setting is refused as well.
    let planted = sqlx::query(
        "INSERT INTO audit_heads (org_id, seq, hash) VALUES ($1, 0, 'x')",
    )
    .bind(&a)
    .execute(&mut app)
    .await;
    assert!(planted.is_err(), "a write outside any scope");
    let _ = app.close().await;
    let _ = owner.close().await;
    s.assert_ledger().await;
}
}

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("roost-rls-{}", roost_domain::IdKind::Org.generate()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `roost ARGS` in `dir` to its end: (success, stdout, stderr).
fn run(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(ROOST)
        .args(args)
        .current_dir(dir)
        .env_remove("ROOST_DATABASE_URL")
        .env_remove("ROOST_CONFIG")
        .env("ROOST_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let s = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    (out.status.success(), s(&out.stdout), s(&out.stderr))
}

/// `roost setup-postgres` prints the role's SQL; names that could break out of it are refused.
#[test]
fn setup_postgres_prints_the_role_and_its_grants() {
    let dir = temp_dir();
    let (ok, out, err) = run(&dir, &["setup-postgres"]);
    assert!(ok, "{err}");
    for part in [
        "r text := 'roost_app'",
        "CREATE ROLE %I LOGIN",
        "NOSUPERUSER NOBYPASSRLS",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA",
        "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES",
    ] {
        assert!(out.contains(part), "missing {part:?} in:\n{out}");
    }
    assert!(!out.contains("PASSWORD"), "no password unless one is given:\n{out}");
    let pw = dir.join("pw");
    std::fs::write(&pw, "s3cret'pw\n").unwrap();
    let (ok, out, err) = run(&dir, &["setup-postgres", "--role", "shop_app", "--password-file", pw.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("r text := 'shop_app'") && out.contains("PASSWORD %L', r, 's3cret''pw'"), "{out}");
    for bad in ["Shop", "a;b", "pg_x", "x'y"] {
        let (ok, _, err) = run(&dir, &["setup-postgres", "--role", bad]);
        assert!(!ok && err.contains("not a usable role name"), "{bad}: {err}");
    }
    let (ok, _, err) = run(&dir, &["setup-postgres", "--apply"]);
    assert!(!ok && err.contains("--database-url"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

pg_test! {
/// `roost setup-postgres --apply` makes the role; a server as that role refuses a schema with
/// migrations pending (it may not migrate), and starts once the owner ran `roost migrate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_postgres_applies_and_a_restricted_server_starts() {
    let Some(db) = FreshDatabase::create_empty(Backend::Postgres).await else {
        println!("{}", roost_test_kit::SKIPPED);
        return;
    };
    let dir = temp_dir();
    let pw = dir.join("pw");
    std::fs::write(&pw, "setup-pw\n").unwrap();
    let role = "roost_t_setup";
    let apply = ["setup-postgres", "--apply", "--database-url", db.admin_url(), "--role", role, "--password-file", pw.to_str().unwrap()];
    let (ok, out, err) = run(&dir, &apply);
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("role `{role}` is ready")) && out.contains("roost migrate"), "{out}");
    let url = roost_test_kit::db::with_user(db.admin_url(), role, "setup-pw");

    // Pending migrations: refused, saying what to do.
    let (ok, out, err) = run(&dir, &["serve", "--listen", "127.0.0.1:0", "--database-url", &url]);
    assert!(!ok && !out.contains("listening"), "{out}");
    assert!(err.contains("roost migrate") && err.contains("owner"), "{err}");

    let (ok, out, err) = run(&dir, &["migrate", "--database-url", db.admin_url()]);
    assert!(ok, "{out}{err}");
    // Applying again is harmless (and covers the tables now there).
    let (ok, out, err) = run(&dir, &apply);
    assert!(ok, "{out}{err}");

    let server = roost_test_kit::process::Roost::start(ROOST, &url).await;
    let r = server
        .client
        .post("/v1/signup", &json!({"email": fresh_email("rls"), "password": "correct horse battery", "name": "R"}))
        .await
        .unwrap();
    expect_status(&r, 201);
    let me = server.client.with_token(r.str("token")).get("/v1/me").await.unwrap();
    expect_status(&me, 200);
    assert_eq!(server.client.get("/readyz").await.unwrap().status, 200);
    drop(server);

    let mut conn = PgConnection::connect(db.admin_url()).await.unwrap();
    let r = sqlx::query("SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = $1")
        .bind(role)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(!r.get::<bool, _>("rolsuper") && !r.get::<bool, _>("rolbypassrls") && r.get::<bool, _>("rolcanlogin"));
    let _ = conn.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
}

//! Start-up refuses a database it cannot use, at once and saying why, before it says "listening":
//! the real binary, as an operator runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::ROOST;

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("roost-start-{}", roost_domain::IdKind::Org.generate()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `roost ARGS` in `dir` to its end (at most 20 s): (success, stdout, stderr, time taken).
fn run(dir: &Path, args: &[&str]) -> (bool, String, String, Duration) {
    let started = Instant::now();
    let out = Command::new(ROOST)
        .args(args)
        .current_dir(dir)
        .env_remove("ROOST_DATABASE_URL")
        .env_remove("ROOST_LISTEN")
        .env_remove("ROOST_CONFIG")
        .env("ROOST_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let s = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    (out.status.success(), s(&out.stdout), s(&out.stderr), started.elapsed())
}

/// `roost serve` that must fail: its error line, after checking it never said "listening".
fn refused(dir: &Path, database_url: &str, extra: &[&str]) -> String {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--database-url", database_url];
    args.extend_from_slice(extra);
    let (ok, out, err, took) = run(dir, &args);
    assert!(!ok, "roost serve started on {database_url}: {out}");
    assert!(!out.contains("listening"), "said listening before failing: {out}");
    assert!(took < Duration::from_secs(8), "took {took:?} to fail: {err}");
    err
}

#[test]
fn connection_refused_is_named() {
    let dir = temp_dir();
    let err = refused(&dir, "postgres://postgres@127.0.0.1:1/roost", &[]);
    assert!(err.contains("connection refused") && err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("pool timed out"), "{err}");
}

pg_test! {
#[tokio::test]
async fn an_unknown_database_is_named() {
    let Some(admin) = roost_test_kit::pg_url() else {
        println!("{}", roost_test_kit::SKIPPED);
        return;
    };
    let url = roost_test_kit::db::with_database(&admin, "roost_t_no_such_database");
    let err = refused(&temp_dir(), &url, &[]);
    assert!(err.contains("does not exist") && err.contains("createdb"), "{err}");
}
}

#[test]
fn a_read_only_database_is_refused_at_start() {
    let dir = temp_dir();
    let mnt = dir.join("ro");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"]).arg(&mnt).status();
    if !mounted.is_ok_and(|s| s.success()) {
        println!(
            "SKIPPED: cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN); the read-only start was not tested"
        );
        return;
    }
    let url = format!("sqlite://{}", mnt.join("roost.db").display());
    let (ok, _, err, _) = run(&dir, &["migrate", "--database-url", &url]);
    let remounted = Command::new("mount").args(["-o", "remount,ro"]).arg(&mnt).status().is_ok_and(|s| s.success());
    let result = std::panic::catch_unwind(|| {
        assert!(ok, "{err}");
        assert!(remounted);
        refused(&dir, &url, &[])
    });
    let _ = Command::new("umount").arg("-l").arg(&mnt).status();
    let _ = std::fs::remove_dir_all(&dir);
    let err = result.unwrap();
    assert!(err.contains("cannot be written") && err.contains("read-only"), "{err}");
}

#[tokio::test]
async fn a_database_from_a_newer_roost_is_refused() {
    let dir = temp_dir();
    let db = roost_test_kit::FreshDatabase::sqlite();
    let store = db.store().await;
    sqlx::query("INSERT INTO roost_migrations (version, name, applied_at) VALUES (9999, 'future', 0)")
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    let err = refused(&dir, db.url(), &[]);
    assert!(err.contains("newer roost") && err.contains("9999"), "{err}");
    let (ok, _, err, _) = run(&dir, &["migrate", "--database-url", db.url()]);
    assert!(!ok && err.contains("newer roost"), "{err}");
}

#[tokio::test]
async fn a_plan_still_in_use_cannot_leave_the_catalog() {
    let db = roost_test_kit::FreshDatabase::sqlite();
    let server = roost_test_kit::process::Roost::start(ROOST, db.url()).await;
    let r = server
        .client
        .post(
            "/v1/signup",
            &serde_json::json!({"email": "p@example.com", "password": "correct horse battery", "name": "P"}),
        )
        .await
        .unwrap();
    let owner = server.client.with_token(r.str("token"));
    let r = owner.post("/v1/orgs", &serde_json::json!({"name": "On team", "plan": "team"})).await.unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    drop(server);
    let dir = temp_dir();
    let only_free = "[[plans]]\nid = \"free\"\nname = \"Free\"\npaid = false\nseats_included = 1\nmax_seats = 1\n\
        extra_seat_price = 0\nmax_workspaces = 1\nmonthly_credits = 100\nrollover_cap = 0\nrpm = 60\ntrial_days = 0\n";
    std::fs::write(dir.join("roost.toml"), only_free).unwrap();
    let err = refused(&dir, db.url(), &[]);
    assert!(err.contains("`team` (1 org)") && err.contains("[[plans]]"), "{err}");
    // With the plan back, it starts.
    std::fs::remove_file(dir.join("roost.toml")).unwrap();
    let server = roost_test_kit::process::Roost::start(ROOST, db.url()).await;
    assert_eq!(server.client.get("/readyz").await.unwrap().status, 200);
}

#[test]
fn operations_settings_are_checked_at_start() {
    for (toml, says) in [
        ("trusted_proxies = [\"10.0.0.0/33\"]\n", "trusted_proxies"),
        ("trusted_proxies = [\"not an address\"]\n", "trusted_proxies"),
        ("log_format = \"xml\"\n", "log_format"),
        ("db_max_connections = 0\n", "db_max_connections"),
        ("db_acquire_timeout_ms = 5\n", "db_acquire_timeout_ms"),
        ("http_max_connections = 0\n", "http_max_connections"),
        ("metrics = \"yes\"\n", "metrics"),
    ] {
        let dir = temp_dir();
        std::fs::write(dir.join("roost.toml"), toml).unwrap();
        let err = refused(&dir, "sqlite://roost.db", &[]);
        assert!(err.contains(says), "{toml}: {err}");
        assert!(!dir.join("roost.db").exists(), "{toml}: a bad setting is refused before the database is touched");
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (ok, _, err, _) = run(&temp_dir(), &["serve", "--log-format", "xml"]);
    assert!(!ok && err.contains("log_format"), "{err}");
}

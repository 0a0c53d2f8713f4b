//! `roost backup` and `roost restore` as real processes: a backup taken while charges keep
//! committing restores into a database whose ledger holds together and which holds every charge
//! acknowledged before the backup began; a database holding data is replaced only with `--force`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use roost_test_kit::{Backend, FreshDatabase, TestServer};
use tokio::sync::Mutex;

use crate::ROOST;
use crate::credits::common::{api_key, business, charge, topup};

/// Runs `roost ARGS --database-url URL` in a directory of its own; returns (exit code, stdout, stderr).
async fn roost(args: &[&str], url: &str, dir: &Path) -> (i32, String, String) {
    let out = tokio::process::Command::new(ROOST)
        .args(args)
        .args(["--database-url", url])
        .current_dir(dir)
        .env_remove("ROOST_CONFIG")
        .env("ROOST_LOG", "warn")
        .output()
        .await
        .expect("run roost");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("utf-8");
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

async fn entry_ids(url: &str, org: &str) -> Vec<String> {
    let store = roost_store::Store::connect(url).await.unwrap();
    let ids = sqlx::query_scalar("SELECT id FROM ledger_entries WHERE org_id = $1")
        .bind(org)
        .fetch_all(store.pool())
        .await
        .unwrap();
    store.close().await;
    ids
}

async fn backup_round_trip_under_write_load(s: TestServer) {
    let dir = std::env::temp_dir().join(format!("roost-backup-{}", roost_domain::IdKind::Event.generate()));
    std::fs::create_dir_all(&dir).unwrap();
    let (owner, _, org, ws) = business(&s, "Backed").await;
    topup(&owner, &org, 1_000_000).await;
    let (_, key) = api_key(&s, &owner, &ws, None).await;

    // Charges keep committing, from two clients, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut load = Vec::new();
    for _ in 0..2 {
        let (key, stop, acked) = (key.clone(), stop.clone(), acked.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = charge(&key, 3, "job").await;
                assert_eq!(r.status, 201, "{:?}", r.body);
                acked.lock().await.push(r.str("id").to_string());
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before: Vec<String> = acked.lock().await.clone();
    assert!(!before.is_empty(), "no charge committed before the backup");

    let file = dir.join(if s.backend() == Backend::Sqlite { "backup.db" } else { "backup.dump" });
    let file_arg = file.to_str().unwrap();
    let (code, out, err) = roost(&["backup", file_arg], &s.admin_url, &dir).await;
    assert_eq!(code, 0, "backup failed: {out} {err}");
    assert!(out.starts_with("backup written: "), "{out}");
    let during = acked.lock().await.len() - before.len();
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    assert!(during > 0, "no charge committed while the backup ran: it did not run under load");

    // An existing file is never overwritten.
    let (code, _, err) = roost(&["backup", file_arg], &s.admin_url, &dir).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already exists"), "{err}");

    // The live database is not replaced without --force.
    let (code, _, err) = roost(&["restore", file_arg], &s.admin_url, &dir).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--force"), "{err}");
    let r = charge(&key, 1, "job").await;
    assert_eq!(r.status, 201, "the live database still serves: {:?}", r.body);

    // Restored elsewhere: every charge acknowledged before the backup began is there, and the
    // ledger's invariants and the audit chain hold.
    let target = FreshDatabase::create_empty(s.backend()).await.unwrap();
    let (code, out, err) = roost(&["restore", file_arg], target.admin_url(), &dir).await;
    assert_eq!(code, 0, "restore failed: {out} {err}");
    let restored = entry_ids(target.admin_url(), &org).await;
    for id in &before {
        assert!(restored.contains(id), "charge {id}, acknowledged before the backup, is missing");
    }
    roost_test_kit::ledger::assert_ledger(target.admin_url()).await;
    let store = roost_store::Store::connect(target.admin_url()).await.unwrap();
    let chain = store.verify_audit(&org).await.unwrap();
    assert!(chain.ok && chain.events > 0, "{chain:?}");
    store.close().await;

    // Once restored it holds data: again only with --force.
    let (code, _, err) = roost(&["restore", file_arg], target.admin_url(), &dir).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--force"), "{err}");
    let (code, out, err) = roost(&["restore", file_arg, "--force"], target.admin_url(), &dir).await;
    assert_eq!(code, 0, "forced restore failed: {out} {err}");
    assert_eq!(entry_ids(target.admin_url(), &org).await.len(), restored.len());
    roost_test_kit::ledger::assert_ledger(target.admin_url()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

both_backends!(backup_round_trip_under_write_load);

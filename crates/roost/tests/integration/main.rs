//! roost's integration tests, one binary with a module per area: a real server on 127.0.0.1:0
//! (from `roost-test-kit`), driven through the same HTTP client the CLI uses, on SQLite always and
//! on PostgreSQL whenever `ROOST_TEST_PG` is set; `roost serve` and the CLI as real processes; the
//! credit ledger under load; and snapshots of response bodies. Scenarios that touch the ledger end
//! by checking its invariants straight in the database (`roost_test_kit::ledger`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
extern crate roost_test_kit;

mod accounts;
mod audit;
mod billing;
mod binary;
mod cli;
mod cli_credits;
mod cli_manage;
mod credits;
mod dashboard;
mod hardening;
mod identity;
mod invitations;
mod keys;
mod ledger_load;
mod limits;
mod openapi;
mod ops;
mod orgs;
mod records;
mod replicas;
mod resources;
mod roles;
mod security;
mod snapshots;
#[allow(dead_code)]
mod support;
mod webhooks;
mod workspaces;

/// The `roost` binary Cargo built for these tests, for tests that run it as a process.
pub(crate) const ROOST: &str = env!("CARGO_BIN_EXE_roost");

/// Says plainly, in every run, whether the PostgreSQL half of the suite ran.
#[test]
fn postgres_suite_skipped_notice() {
    match roost_test_kit::pg_url() {
        Some(url) => println!("PostgreSQL suite: running against {}", roost_store::redact(&url)),
        None => {
            println!("SKIPPED: ROOST_TEST_PG is not set, so the PostgreSQL suite did not run");
            eprintln!("SKIPPED: ROOST_TEST_PG is not set, so the PostgreSQL suite did not run");
        }
    }
}

/// Says plainly, in every run, whether the metrics were linted by `promtool` (Debian `prometheus`).
#[test]
fn promtool_skipped_notice() {
    match std::process::Command::new("promtool").arg("--version").output() {
        Ok(o) if o.status.success() => println!("promtool: the metrics tests lint GET /metrics"),
        _ => {
            println!("SKIPPED: promtool is not installed (apt-get install prometheus): GET /metrics was not linted");
            eprintln!("SKIPPED: promtool is not installed (apt-get install prometheus): GET /metrics was not linted");
        }
    }
}

/// Says plainly, in every run, whether the full-disk and read-only faults ran: they mount a tmpfs.
#[test]
fn tmpfs_faults_skipped_notice() {
    let dir = std::env::temp_dir().join(format!("roost-mount-probe-{}", roost_domain::IdKind::Event.generate()));
    std::fs::create_dir_all(&dir).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&dir)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if mounted {
        let _ = std::process::Command::new("umount").arg(&dir).status();
        println!("tmpfs: the full-disk and read-only database faults run");
    } else {
        println!(
            "SKIPPED: cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): the full-disk and read-only faults did not run"
        );
        eprintln!(
            "SKIPPED: cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): the full-disk and read-only faults did not run"
        );
    }
    let _ = std::fs::remove_dir(&dir);
}

//! roost's integration tests: a real server on 127.0.0.1:0, driven through the same HTTP client
//! the CLI uses, on SQLite always and on PostgreSQL whenever `ROOST_TEST_PG` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[macro_use]
mod harness;

mod accounts;
mod audit;
mod binary;
mod cli;
mod hardening;
mod invitations;
mod keys;
mod orgs;
mod replicas;
mod resources;
mod roles;
mod security;
mod support;
mod workspaces;

/// Says plainly, in every run, whether the PostgreSQL half of the suite ran.
#[test]
fn postgres_suite_skipped_notice() {
    match harness::pg_url() {
        Some(url) => println!("PostgreSQL suite: running against {}", roost_store::redact(&url)),
        None => {
            println!("SKIPPED: ROOST_TEST_PG is not set, so the PostgreSQL suite did not run");
            eprintln!("SKIPPED: ROOST_TEST_PG is not set, so the PostgreSQL suite did not run");
        }
    }
}

//! The credit ledger through HTTP (API.md § Credits): every error code with its extension members,
//! idempotency, cycles (allocation, rollover, cap, expiry) on the injected clock, holds, budgets,
//! attribution and usage reports, the background job, and the ledger rows of the role matrix.
//! After every scenario the ledger's invariants are checked straight from the database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../integration/harness.rs"]
#[macro_use]
#[allow(dead_code)]
mod harness;
#[path = "../integration/support.rs"]
#[allow(dead_code)]
mod support;

/// Like `both_backends!`, with the server's settings adjusted by `$adjust` (a `fn(&mut Settings)`).
macro_rules! both_backends_with {
    ($($name:ident => $adjust:path),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let s = $crate::harness::TestServer::start_with($crate::harness::Backend::Sqlite, $adjust)
                        .await
                        .expect("sqlite server");
                    super::$name(s).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    match $crate::harness::TestServer::start_with($crate::harness::Backend::Postgres, $adjust).await {
                        Some(s) => super::$name(s).await,
                        None => eprintln!("SKIPPED: ROOST_TEST_PG is not set, so this PostgreSQL test did not run"),
                    }
                }
            }
        )*
    };
}

mod attribution;
mod background;
mod budgets;
mod common;
mod cycles;
mod errors;
mod holds;
mod idempotency;
mod invariants;
mod key_scope;
mod review;
mod roles;

/// Says plainly, in every run, whether the PostgreSQL half of this suite ran.
#[test]
fn postgres_suite_skipped_notice() {
    match harness::pg_url() {
        Some(url) => println!("PostgreSQL suite: running against {}", roost_store::redact(&url)),
        None => {
            println!("SKIPPED: ROOST_TEST_PG is not set, so the PostgreSQL credit suite did not run");
            eprintln!("SKIPPED: ROOST_TEST_PG is not set, so the PostgreSQL credit suite did not run");
        }
    }
}

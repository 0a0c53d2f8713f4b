//! The credit ledger under load and under `kill -9`: many clients racing for the last credits,
//! budgets as the binding limit, one Idempotency-Key fired 64 times at once, several `roost serve`
//! processes on one PostgreSQL database, and a server killed while charges are in flight.
//!
//! Every scenario ends by checking the ledger's bookkeeping straight in the database
//! ([`common::invariants`]): wallet totals against grants, holds and the journal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../integration/harness.rs"]
#[macro_use]
#[allow(dead_code)]
mod harness;

#[path = "../integration/support.rs"]
#[allow(dead_code)]
mod support;

mod budgets;
mod common;
mod crash;
mod idempotency;
mod procs;
mod race;

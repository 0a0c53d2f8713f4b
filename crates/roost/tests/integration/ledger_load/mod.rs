//! The credit ledger under load and under `kill -9`: many clients racing for the last credits,
//! budgets as the binding limit, one Idempotency-Key fired 64 times at once, several `roost serve`
//! processes on one PostgreSQL database, and a server killed while charges are in flight.
//!
//! Every scenario ends by checking the ledger's bookkeeping straight in the database
//! ([`roost_test_kit::ledger::check_org`]): wallet totals against grants, holds and the journal.
mod budgets;
mod common;
mod crash;
mod idempotency;
mod race;

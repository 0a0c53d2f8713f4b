//! The credit ledger through HTTP (API.md § Credits): every error code with its extension members,
//! idempotency, cycles (allocation, rollover, cap, expiry) on the injected clock, holds, budgets,
//! attribution and usage reports, the background job, and the ledger rows of the role matrix.
//! After every scenario the ledger's invariants are checked straight from the database.
mod attribution;
mod background;
mod budgets;
pub(crate) mod common;
mod cycles;
mod errors;
mod holds;
mod idempotency;
mod key_scope;
mod review;
mod roles;
mod signals;

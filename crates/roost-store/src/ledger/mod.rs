//! The ledger's tables: what the engine (`roost-ledger`) reads and writes inside one transaction
//! per batch, and what the API reads back. The engine decides; this module only moves rows: with
//! multi-row statements through sqlx, or on SQLite's writer thread of its own.

mod bulk;
mod commit;
mod idem;
mod native;
mod plan;
mod reads;
mod rows;
mod tx;

pub use commit::{Batch, ChargeRoles, Committed, FenceCheck};
pub(crate) use native::{Writer, file_of};
pub use reads::{EntryFilter, UsageSum};
pub use rows::*;
pub use tx::LedgerTx;

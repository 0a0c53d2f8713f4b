//! The ledger's tables: what the engine (`roost-ledger`) reads and writes inside one transaction
//! per batch, and what the API reads back. The engine decides; this module only moves rows, with
//! multi-row statements.

mod bulk;
mod idem;
mod reads;
mod rows;
mod tx;

pub use reads::{EntryFilter, UsageSum};
pub use rows::*;
pub use tx::LedgerTx;

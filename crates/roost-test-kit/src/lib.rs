#![doc = include_str!("../README.md")]

pub mod db;
pub mod ledger;
pub mod peers;
pub mod process;
pub mod server;
pub mod splits;

pub use db::{APP_ROLE, Backend, FreshDatabase, SKIPPED, pg_url};
pub use server::{TestServer, test_settings};

//! roost: tenancy and prepaid credits for SaaS products, in one self-hostable binary.
//!
//! This library half of the `roost` crate holds the HTTP client and the CLI, so that the
//! integration tests drive the server through the very client the CLI uses.

pub mod cli;
pub mod client;

pub use client::{Client, ClientError, Response};

//! The engine's tests, in one binary: the invariants as properties against a reference model,
//! pipelined commits under failure, and idempotency keys in their two places.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod failures;
mod idem_keys;
mod properties;

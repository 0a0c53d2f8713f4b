//! The engine's tests, in one binary: the invariants as properties against a reference model, and
//! pipelined commits under failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod failures;
mod properties;
